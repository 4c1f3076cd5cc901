package chain

import (
	"sync"
	"time"

	"github.com/filecoin-project/go-state-types/abi"
)

// DefaultEpochDuration is Filecoin's block time.
const DefaultEpochDuration = 30 * time.Second

// Clock tells the ledger the current epoch. Epochs are integers counted from genesis; the rule
// engine never reads a clock itself, the server passes the epoch in.
type Clock interface {
	Epoch() abi.ChainEpoch
}

// RealClock maps wall time to epochs: epoch = floor((now − Genesis) / EpochDuration).
type RealClock struct {
	Genesis       time.Time
	EpochDuration time.Duration // DefaultEpochDuration when zero
	Now           func() time.Time
}

// Epoch implements Clock.
func (c RealClock) Epoch() abi.ChainEpoch {
	d := c.EpochDuration
	if d <= 0 {
		d = DefaultEpochDuration
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	el := now().Sub(c.Genesis)
	if el < 0 {
		return 0
	}
	return abi.ChainEpoch(el / d)
}

// TimeOf returns the wall time at which epoch e begins.
func (c RealClock) TimeOf(e abi.ChainEpoch) time.Time {
	d := c.EpochDuration
	if d <= 0 {
		d = DefaultEpochDuration
	}
	return c.Genesis.Add(time.Duration(e) * d)
}

// ManualClock is a clock tests move by hand. It is safe for concurrent use.
type ManualClock struct {
	mu sync.Mutex
	e  abi.ChainEpoch
}

// NewManualClock returns a clock standing at epoch e.
func NewManualClock(e abi.ChainEpoch) *ManualClock { return &ManualClock{e: e} }

// Epoch implements Clock.
func (c *ManualClock) Epoch() abi.ChainEpoch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.e
}

// Set moves the clock to e (it may not go backwards; earlier values are ignored).
func (c *ManualClock) Set(e abi.ChainEpoch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e > c.e {
		c.e = e
	}
}

// Advance moves the clock forward by n epochs and returns the new epoch.
func (c *ManualClock) Advance(n abi.ChainEpoch) abi.ChainEpoch {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > 0 {
		c.e += n
	}
	return c.e
}
