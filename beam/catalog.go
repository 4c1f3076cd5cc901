package beam

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/filecoin-project/go-state-types/abi"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/pdp"
)

// dataSet is the edge's view of one data set.
type dataSet struct {
	ID            uint64
	Payer         common.Address
	Provider      common.Address
	WithCDN       bool
	CDNRail       uint64
	CacheMissRail uint64
	// Remaining fixed lockups of the CDN rails as last read from the chain.
	CDNLockup, MissLockup *big.Int
	pieces                map[uint64]pdp.PieceCID // piece id → piece
}

// usage is a pair of byte counters: all egress and the cache-miss part of it.
type usage struct{ CDN, Miss uint64 }

// catalog is what the edge knows from the chain: providers, CDN data sets and their pieces,
// the usage already reported by this edge, and the event cursor. It is rebuilt by following
// the event stream from the start.
type catalog struct {
	mu        sync.RWMutex
	cond      *sync.Cond
	cursor    uint64
	providers map[common.Address]string // service URL
	sets      map[uint64]*dataSet
	byRoot    map[pdp.Node]map[uint64]pdp.PieceCID // root → data set → piece
	reported  map[uint64]usage                     // per data set, by this edge
	edge      common.Address
}

func newCatalog(edge common.Address) *catalog {
	c := &catalog{providers: map[common.Address]string{}, sets: map[uint64]*dataSet{},
		byRoot: map[pdp.Node]map[uint64]pdp.PieceCID{}, reported: map[uint64]usage{}, edge: edge}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// candidate is one way to serve a piece: a CDN data set of the payer holding it.
type candidate struct {
	Set      uint64
	Provider common.Address
	URL      string
	Piece    pdp.PieceCID
}

// lookup returns the CDN data sets of payer that hold a piece with this root (and, when the
// reference is sized, exactly this piece), ordered by data set id.
func (c *catalog) lookup(payer common.Address, ref pdp.PieceRef) []candidate {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []candidate
	for id, p := range c.byRoot[ref.Root] {
		ds := c.sets[id]
		if ds == nil || !ds.WithCDN || ds.Payer != payer || (ref.Sized && p != ref.Piece) {
			continue
		}
		out = append(out, candidate{Set: id, Provider: ds.Provider, URL: c.providers[ds.Provider], Piece: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Set < out[j].Set })
	return out
}

// quotaBytes returns how many bytes the remaining lockups of a data set's CDN rails can pay
// for, before subtracting unreported usage.
func (c *catalog) quotaBytes(id uint64) (cdn, miss uint64, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ds := c.sets[id]
	if ds == nil || !ds.WithCDN {
		return 0, 0, false
	}
	return bytesFor(ds.CDNLockup, chain.CDNPricePerTiB), bytesFor(ds.MissLockup, chain.CacheMissPricePerTiB), true
}

// bytesFor is the most bytes whose charge (chain.EgressCharge: floor(bytes × price / 2^40))
// stays within amount.
func bytesFor(amount *big.Int, pricePerTiB abi.TokenAmount) uint64 {
	if amount == nil || amount.Sign() <= 0 || pricePerTiB.Sign() <= 0 {
		return 0
	}
	// floor(b·p/2^40) ≤ a  ⇔  b·p < (a+1)·2^40  ⇔  b ≤ ((a+1)·2^40 − 1) / p.
	n := new(big.Int).Add(amount, big.NewInt(1))
	n.Lsh(n, 40)
	n.Sub(n, big.NewInt(1))
	n.Quo(n, pricePerTiB.Int)
	if !n.IsUint64() {
		return ^uint64(0)
	}
	return n.Uint64()
}

func (c *catalog) reportedOf(id uint64) usage {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.reported[id]
}

// waitCursor blocks until the catalog has handled every event up to seq, or ctx ends.
func (c *catalog) waitCursor(ctx context.Context, seq uint64) error {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.cursor < seq {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("beam: waiting for chain event %d (at %d): %w", seq, c.cursor, err)
		}
		c.cond.Wait()
	}
	return nil
}

func (c *catalog) cursorNow() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cursor
}

// providerURLs returns every known provider's service URL.
func (c *catalog) providerURLs() map[common.Address]string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[common.Address]string, len(c.providers))
	for a, u := range c.providers {
		out[a] = u
	}
	return out
}

// samplePieces returns, per provider, the pieces it holds in CDN data sets (for the prober).
func (c *catalog) samplePieces() map[common.Address][]pdp.PieceCID {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := map[common.Address][]pdp.PieceCID{}
	for _, ds := range c.sets {
		if !ds.WithCDN {
			continue
		}
		for _, p := range ds.pieces {
			out[ds.Provider] = append(out[ds.Provider], p)
		}
	}
	return out
}

// follower applies chain events to a catalog, reading what the events only point at (data
// sets, pieces, rails, providers) from the chain.
type follower struct {
	cl  *chain.Client
	cat *catalog
}

func (f *follower) apply(ctx context.Context, ev chain.Event) error {
	switch ev.Kind {
	case chain.EvProviderRegistered:
		if ev.Address == nil {
			break
		}
		p, err := f.cl.Provider(ctx, *ev.Address)
		if err != nil {
			return err
		}
		f.cat.mu.Lock()
		f.cat.providers[p.Address] = p.ServiceURL
		f.cat.mu.Unlock()
	case chain.EvDataSetCreated:
		if err := f.refreshSet(ctx, ev.DataSetID, true); err != nil {
			return err
		}
	case chain.EvPiecesAdded:
		if err := f.refreshSet(ctx, ev.DataSetID, true); err != nil {
			return err
		}
	case chain.EvPiecesRemoved:
		f.cat.mu.Lock()
		if ds := f.cat.sets[ev.DataSetID]; ds != nil {
			for _, pid := range ev.PieceIDs {
				if p, ok := ds.pieces[pid]; ok {
					delete(ds.pieces, pid)
					f.cat.unindex(ds.ID, p)
				}
			}
		}
		f.cat.mu.Unlock()
	case chain.EvDataSetDeleted:
		f.cat.mu.Lock()
		if ds := f.cat.sets[ev.DataSetID]; ds != nil {
			for _, p := range ds.pieces {
				f.cat.unindex(ds.ID, p)
			}
			delete(f.cat.sets, ev.DataSetID)
		}
		f.cat.mu.Unlock()
	case chain.EvUsageReported:
		// The lower lockup and the reported bytes change together, so admission never sees
		// the one without the other.
		var mine func()
		if ev.Address != nil && *ev.Address == f.cat.edge {
			mine = func() {
				u := f.cat.reported[ev.DataSetID]
				u.CDN += ev.Bytes
				u.Miss += ev.CacheMissBytes
				f.cat.reported[ev.DataSetID] = u
			}
		}
		if err := f.refreshSetThen(ctx, ev.DataSetID, false, mine); err != nil {
			return err
		}
	case chain.EvCDNToppedUp:
		if err := f.refreshSet(ctx, ev.DataSetID, false); err != nil {
			return err
		}
	}
	return nil
}

// refreshSet rereads a data set (and, with pieces, its piece list) and its CDN rails. A data
// set that no longer exists is dropped.
func (f *follower) refreshSet(ctx context.Context, id uint64, pieces bool) error {
	return f.refreshSetThen(ctx, id, pieces, nil)
}

// refreshSetThen is refreshSet that also runs locked (when non-nil) under the catalog's lock
// with the new state.
func (f *follower) refreshSetThen(ctx context.Context, id uint64, pieces bool, locked func()) error {
	ds, err := f.cl.DataSet(ctx, id)
	if errors.Is(err, chain.ErrNotFound) {
		if locked != nil {
			f.cat.mu.Lock()
			locked()
			f.cat.mu.Unlock()
		}
		return nil
	}
	if err != nil {
		return err
	}
	n := &dataSet{ID: ds.ID, Payer: ds.Payer, Provider: ds.Provider, WithCDN: ds.WithCDN && !ds.Deleted,
		CDNRail: ds.CDNRail, CacheMissRail: ds.CacheMissRail}
	if n.WithCDN {
		if n.CDNLockup, err = f.lockup(ctx, ds.CDNRail); err != nil {
			return err
		}
		if n.MissLockup, err = f.lockup(ctx, ds.CacheMissRail); err != nil {
			return err
		}
	}
	var list []chain.Piece
	if pieces {
		if list, err = f.cl.Pieces(ctx, id); err != nil {
			return err
		}
	}
	f.cat.mu.RLock()
	_, known := f.cat.providers[n.Provider]
	f.cat.mu.RUnlock()
	var prov *chain.Provider
	if !known {
		// Registration events come first; this only happens when that read failed.
		if prov, err = f.cl.Provider(ctx, n.Provider); err != nil {
			return err
		}
	}
	f.cat.mu.Lock()
	defer f.cat.mu.Unlock()
	if prov != nil {
		f.cat.providers[prov.Address] = prov.ServiceURL
	}
	if old := f.cat.sets[id]; old != nil {
		n.pieces = old.pieces
	} else {
		n.pieces = map[uint64]pdp.PieceCID{}
	}
	for _, p := range list {
		if p.Removed {
			if q, ok := n.pieces[p.ID]; ok {
				delete(n.pieces, p.ID)
				f.cat.unindex(id, q)
			}
			continue
		}
		n.pieces[p.ID] = p.CID
		m := f.cat.byRoot[p.CID.Root]
		if m == nil {
			m = map[uint64]pdp.PieceCID{}
			f.cat.byRoot[p.CID.Root] = m
		}
		m[id] = p.CID
	}
	f.cat.sets[id] = n
	if locked != nil {
		locked()
	}
	return nil
}

// unindex drops a piece of a data set from the root index (unless the set holds it twice).
func (c *catalog) unindex(id uint64, p pdp.PieceCID) {
	if ds := c.sets[id]; ds != nil {
		for _, q := range ds.pieces {
			if q == p {
				return
			}
		}
	}
	if m := c.byRoot[p.Root]; m != nil {
		delete(m, id)
		if len(m) == 0 {
			delete(c.byRoot, p.Root)
		}
	}
}

func (f *follower) lockup(ctx context.Context, rail uint64) (*big.Int, error) {
	if rail == 0 {
		return new(big.Int), nil
	}
	r, err := f.cl.Rail(ctx, rail)
	if err != nil {
		return nil, fmt.Errorf("beam: read rail %d: %w", rail, err)
	}
	if r.Terminated || r.Finalized || r.LockupFixed.Int == nil {
		return new(big.Int), nil
	}
	return new(big.Int).Set(r.LockupFixed.Int), nil
}

// run follows the chain from the start until ctx ends. Errors reading what an event points at
// are retried (the chain may be restarting); the cursor only moves past handled events.
func (f *follower) run(ctx context.Context) error {
	cursor := f.cat.cursorNow()
	for {
		next, err := f.cl.Follow(ctx, cursor, func(ev chain.Event) error {
			if err := f.apply(ctx, ev); err != nil {
				return err
			}
			f.cat.mu.Lock()
			f.cat.cursor = ev.Seq
			f.cat.cond.Broadcast()
			f.cat.mu.Unlock()
			return nil
		})
		cursor = next
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}
