package provider

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	stdbig "math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/filecoin-project/go-state-types/abi"

	"github.com/warmstore/warmstore/chain"
)

// SettlerConfig configures a Settler.
type SettlerConfig struct {
	Chain *chain.Client
	Key   *ecdsa.PrivateKey // the provider's key; its data sets' PDP rails are settled
	// Interval between settlement rounds (default 10 min).
	Interval time.Duration
	Metrics  *ProvingMetrics
	Logger   *slog.Logger
}

// Settler settles the provider's PDP rails up to the last closed proving deadline at an
// interval, so the payee is paid for proven periods without waiting for anyone else to
// settle. Settling to a closed deadline never pays the open period early and never settles a
// period whose proof may still arrive.
type Settler struct {
	cfg  SettlerConfig
	addr common.Address
	log  *slog.Logger
	m    *ProvingMetrics
	// period is the chain's proving period, read once.
	period abi.ChainEpoch
}

// NewSettler returns a settler; Run starts it, SettleOnce runs one round.
func NewSettler(cfg SettlerConfig) (*Settler, error) {
	if cfg.Chain == nil || cfg.Key == nil {
		return nil, errors.New("provider: settler needs a chain client and a key")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Minute
	}
	s := &Settler{cfg: cfg, addr: crypto.PubkeyToAddress(cfg.Key.PublicKey), log: cfg.Logger, m: cfg.Metrics}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.m == nil {
		s.m, _ = NewProvingMetrics(nil)
	}
	return s, nil
}

// LastClosedDeadline is the latest deadline of a data set activated at activation (period M)
// that lies strictly before now, or 0 when none has passed. A deadline is inclusive (a proof
// may land at it), so it is closed only once the chain is past it.
func LastClosedDeadline(activation, m, now abi.ChainEpoch) abi.ChainEpoch {
	if activation == 0 || m <= 0 || now-activation-1 < m {
		return 0
	}
	return activation + ((now-activation-1)/m)*m
}

// Settlement is one accepted settlement.
type Settlement struct {
	DataSetID   uint64
	RailID      uint64
	SettledUpTo abi.ChainEpoch
	Gross       abi.TokenAmount
	NetPayee    abi.TokenAmount
	NetworkFee  abi.TokenAmount
}

// Run settles every Interval until ctx ends.
func (s *Settler) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := s.SettleOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("settler: round", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// SettleOnce settles each of the provider's PDP rails to the last closed deadline of its data
// set (capped at the service's end). Rails already settled that far are skipped. It returns
// the settlements the chain accepted; an error is the first failure (other rails are still
// tried).
func (s *Settler) SettleOnce(ctx context.Context) ([]Settlement, error) {
	if s.period == 0 {
		in, err := s.cfg.Chain.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("provider: settle: %w", err)
		}
		s.period = in.ProvingPeriod
	}
	sets, err := s.cfg.Chain.DataSets(ctx, s.addr, common.Address{})
	if err != nil {
		return nil, fmt.Errorf("provider: settle: list data sets: %w", err)
	}
	head, err := s.cfg.Chain.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("provider: settle: %w", err)
	}
	var out []Settlement
	var first error
	for _, ds := range sets {
		until := LastClosedDeadline(ds.Activation, s.period, head.Epoch)
		if ds.EndEpoch != 0 && until > ds.EndEpoch {
			until = ds.EndEpoch
		}
		if until == 0 || ds.PDPRail == 0 {
			continue
		}
		rail, err := s.cfg.Chain.Rail(ctx, ds.PDPRail)
		if err != nil {
			first = cmpErr(first, fmt.Errorf("provider: settle data set %d: rail %d: %w", ds.ID, ds.PDPRail, err))
			continue
		}
		if rail.Finalized || rail.SettledUpTo >= until {
			continue
		}
		rc, err := s.cfg.Chain.SettleRail(ctx, s.cfg.Key, chain.SettleRailBody{RailID: ds.PDPRail, UntilEpoch: until})
		if err != nil {
			first = cmpErr(first, fmt.Errorf("provider: settle data set %d rail %d to %d: %w", ds.ID, ds.PDPRail, until, err))
			continue
		}
		for _, ev := range rc.Events {
			if ev.Kind != chain.EvRailSettled || ev.RailID != ds.PDPRail {
				continue
			}
			st := Settlement{DataSetID: ds.ID, RailID: ev.RailID, SettledUpTo: ev.SettledUpTo}
			if ev.Amount != nil {
				st.Gross = *ev.Amount
			}
			if ev.NetPayee != nil {
				st.NetPayee = *ev.NetPayee
				if st.NetPayee.Int != nil && st.NetPayee.Sign() > 0 {
					v, _ := new(stdbig.Float).SetInt(st.NetPayee.Int).Float64()
					s.m.SettledNet.Add(v)
				}
			}
			if ev.NetworkFee != nil {
				st.NetworkFee = *ev.NetworkFee
			}
			s.m.Settlements.Inc()
			s.log.Info("settler: rail settled", "dataSet", ds.ID, "rail", ev.RailID, "upTo", ev.SettledUpTo, "net", st.NetPayee)
			out = append(out, st)
		}
	}
	return out, first
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
