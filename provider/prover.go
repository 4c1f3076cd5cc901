package provider

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/filecoin-project/go-state-types/abi"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage"
)

// PieceProver produces leaf proofs from stored pieces; *storage.Store implements it. It must
// return an error (storage.ErrCorrupt, storage.ErrNotFound, …) rather than a proof for data it
// no longer holds intact.
type PieceProver interface {
	ProveLeaves(ctx context.Context, piece pdp.PieceCID, leaves []uint64) ([]pdp.Proof, error)
}

// ProverConfig configures a Prover.
type ProverConfig struct {
	Chain *chain.Client
	Key   *ecdsa.PrivateKey // the provider's key: data sets whose provider is its address are proven
	Store PieceProver
	// Parallel bounds how many data sets are proven or scheduled at once (default 4).
	Parallel int
	// PollInterval is how often the chain head is read (default 1 s). Epochs are 30 s on a
	// real network and 1 s on a devnet; the event stream wakes the prover for everything else.
	PollInterval time.Duration
	// ResyncInterval is how often the full list of data sets is re-read in case an event was
	// missed (default 1 min).
	ResyncInterval time.Duration
	// RetryBackoff is the first wait after a transient error (default 250 ms, doubling to 10 s).
	RetryBackoff time.Duration
	Metrics      *ProvingMetrics // nil: unregistered metrics
	Logger       *slog.Logger
}

// Prover proves every data set of its provider on chain: it schedules each next proving
// period, waits for the challenge epoch, derives the challenges from the chain's beacon, reads
// the proofs from storage, verifies them locally and submits them inside the challenge window.
type Prover struct {
	cfg    ProverConfig
	addr   common.Address
	log    *slog.Logger
	m      *ProvingMetrics
	params ProvingParams

	mu    sync.Mutex
	sets  map[uint64]*provingSet
	dirty map[uint64]bool
	wake  chan struct{}

	ready     chan struct{}
	readyOnce sync.Once
}

// provingSet is the prover's local state of one data set.
type provingSet struct {
	ds       chain.DataSet
	busy     bool
	gaveUp   abi.ChainEpoch // deadline of a period that cannot be proven
	counted  abi.ChainEpoch // deadline of a period already counted failed or late
	retryAt  time.Time
	backoff  time.Duration
	lastStep StepKind
	// gen counts finished steps: a chain read that started before a step finished is stale
	// and must not overwrite what the step changed.
	gen uint64
}

// NewProver checks the configuration and returns a prover; Run starts it.
func NewProver(cfg ProverConfig) (*Prover, error) {
	if cfg.Chain == nil || cfg.Key == nil || cfg.Store == nil {
		return nil, errors.New("provider: prover needs a chain client, a key and a store")
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = time.Minute
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 250 * time.Millisecond
	}
	p := &Prover{cfg: cfg, addr: crypto.PubkeyToAddress(cfg.Key.PublicKey), log: cfg.Logger, m: cfg.Metrics,
		sets: map[uint64]*provingSet{}, dirty: map[uint64]bool{}, wake: make(chan struct{}, 1), ready: make(chan struct{})}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.m == nil {
		p.m, _ = NewProvingMetrics(nil)
	}
	return p, nil
}

// Metrics returns the prover's metrics.
func (p *Prover) Metrics() *ProvingMetrics { return p.m }

// DataSets returns the ids of the data sets being proven, ascending.
func (p *Prover) DataSets() []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]uint64, 0, len(p.sets))
	for id := range p.sets {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Ready is closed once Run has read the chain and follows its events (or has given up):
// anything that happens on chain after it, such as faults recorded by a settlement, is seen
// by the prover.
func (p *Prover) Ready() <-chan struct{} { return p.ready }

// Run proves until ctx ends. It returns ctx's error, or an error if the chain cannot be
// reached at startup.
func (p *Prover) Run(ctx context.Context) error {
	defer p.readyOnce.Do(func() { close(p.ready) })
	var info *chain.Info
	err := p.retry(ctx, "read chain info", func() error {
		var err error
		info, err = p.cfg.Chain.Info(ctx)
		return err
	})
	if err != nil {
		return err
	}
	p.params = ProvingParamsOf(info)
	// Events from the head on; the listing below covers everything before it.
	cursor := info.Head.EventSeq
	p.readyOnce.Do(func() { close(p.ready) })
	if err := p.resync(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = p.cfg.Chain.Follow(ctx, cursor, p.onEvent)
	}()

	sem := make(chan struct{}, p.cfg.Parallel)
	tick := time.NewTicker(p.cfg.PollInterval)
	defer tick.Stop()
	lastResync := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case <-p.wake:
		}
		if time.Since(lastResync) > p.cfg.ResyncInterval {
			if err := p.resync(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("prover: resync", "err", err)
			}
			lastResync = time.Now()
		}
		p.refreshDirty(ctx)
		head, err := p.cfg.Chain.Head(ctx)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Warn("prover: read head", "err", err)
			}
			continue
		}
		p.act(ctx, head.Epoch, sem, &wg)
	}
}

// onEvent marks data sets touched by an event for refresh and counts faults.
func (p *Prover) onEvent(ev chain.Event) error {
	if ev.DataSetID == 0 {
		return nil
	}
	p.mu.Lock()
	_, mine := p.sets[ev.DataSetID]
	if ev.Kind == chain.EvDataSetCreated && ev.Note == p.addr.Hex() {
		mine = true
	}
	if mine {
		p.dirty[ev.DataSetID] = true
	}
	p.mu.Unlock()
	if mine && ev.Kind == chain.EvFault {
		p.m.Faults.Inc()
		p.log.Warn("prover: fault recorded", "dataSet", ev.DataSetID, "deadline", ev.Deadline)
	}
	if mine {
		p.poke()
	}
	return nil
}

func (p *Prover) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// resync reads every data set of this provider from the chain.
func (p *Prover) resync(ctx context.Context) error {
	p.mu.Lock()
	gens := make(map[uint64]uint64, len(p.sets))
	for id, st := range p.sets {
		gens[id] = st.gen
	}
	p.mu.Unlock()
	var list []chain.DataSet
	err := p.retry(ctx, "list data sets", func() error {
		var err error
		list, err = p.cfg.Chain.DataSets(ctx, p.addr, common.Address{})
		return err
	})
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := map[uint64]bool{}
	for _, ds := range list {
		seen[ds.ID] = true
		st := p.sets[ds.ID]
		if st == nil {
			st = &provingSet{}
			p.sets[ds.ID] = st
			p.log.Info("prover: tracking data set", "dataSet", ds.ID, "payer", ds.Payer)
		}
		if g, known := gens[ds.ID]; !st.busy && (!known || g == st.gen) {
			st.ds = ds
		}
	}
	for id, st := range p.sets {
		if g, known := gens[id]; !seen[id] && !st.busy && known && g == st.gen {
			delete(p.sets, id)
		}
	}
	p.m.DataSets.Set(float64(len(p.sets)))
	return nil
}

func (p *Prover) refreshDirty(ctx context.Context) {
	p.mu.Lock()
	ids := make([]uint64, 0, len(p.dirty))
	gens := make(map[uint64]uint64, len(p.dirty))
	for id := range p.dirty {
		ids = append(ids, id)
		if st := p.sets[id]; st != nil {
			gens[id] = st.gen
		}
	}
	p.mu.Unlock()
	for _, id := range ids {
		ds, err := p.cfg.Chain.DataSet(ctx, id)
		p.mu.Lock()
		if st := p.sets[id]; st != nil && (st.busy || st.gen != gens[id]) {
			// A step is running or finished while we read: read again next tick.
			p.mu.Unlock()
			continue
		}
		switch {
		case errors.Is(err, chain.ErrNotFound):
			delete(p.sets, id)
			delete(p.dirty, id)
		case err != nil:
			// Keep it dirty; the next tick tries again.
		case ds.Provider != p.addr:
			delete(p.dirty, id)
		default:
			delete(p.dirty, id)
			st := p.sets[id]
			if st == nil {
				st = &provingSet{}
				p.sets[id] = st
				p.log.Info("prover: tracking data set", "dataSet", id, "payer", ds.Payer)
			}
			st.ds = *ds
		}
		p.m.DataSets.Set(float64(len(p.sets)))
		p.mu.Unlock()
	}
}

// act decides the next step of every idle data set and starts the work, at most Parallel at
// once; sets that do not get a slot are looked at again on the next tick.
func (p *Prover) act(ctx context.Context, now abi.ChainEpoch, sem chan struct{}, wg *sync.WaitGroup) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]uint64, 0, len(p.sets))
	for id := range p.sets {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		st := p.sets[id]
		if st.busy || p.dirty[id] || time.Now().Before(st.retryAt) {
			// Busy, or its last known state is stale (a step just finished or an event
			// touched it): decide once the refresh has read it again.
			continue
		}
		step := NextStep(&st.ds, now, p.params, st.gaveUp)
		if step.Missed && st.counted != st.ds.Deadline {
			// The deadline passed without a proof and no failure was counted for it: late.
			st.counted = st.ds.Deadline
			p.m.ProofsLate.Inc()
			p.log.Warn("prover: period missed", "dataSet", id, "deadline", st.ds.Deadline, "now", now)
		}
		switch step.Kind {
		case StepDrop:
			p.log.Info("prover: data set ended", "dataSet", id)
			delete(p.sets, id)
			p.m.DataSets.Set(float64(len(p.sets)))
			continue
		case StepWait:
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			return // every slot busy
		}
		st.busy, st.lastStep = true, step.Kind
		ds := st.ds
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var out stepOutcome
			if step.Kind == StepSchedule {
				out = p.schedule(ctx, &ds, step.ChallengeEpoch)
			} else {
				out = p.prove(ctx, &ds)
			}
			p.finish(id, &ds, out)
		}()
	}
}

// stepOutcome is how a worker's step ended.
type stepOutcome int

const (
	outcomeDone      stepOutcome = iota // the chain accepted the step
	outcomeRetry                        // transient trouble: back off and try again
	outcomeGiveUp                       // the period cannot be proven (counted as failed)
	outcomeLate                         // the window closed first (counted as late)
	outcomeRefresh                      // the chain's state moved on: re-read it and decide again
	outcomeCancelled                    // shutting down
)

func (p *Prover) finish(id uint64, ds *chain.DataSet, out stepOutcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.sets[id]
	if st == nil {
		return
	}
	st.busy = false
	st.gen++
	p.dirty[id] = true
	switch out {
	case outcomeRetry:
		if st.backoff == 0 {
			st.backoff = p.cfg.RetryBackoff
		} else {
			st.backoff = min(2*st.backoff, 10*time.Second)
		}
		st.retryAt = time.Now().Add(st.backoff)
	case outcomeGiveUp:
		st.gaveUp = ds.Deadline
		if st.counted != ds.Deadline {
			st.counted = ds.Deadline
			p.m.ProofsFailed.Inc()
		}
		st.backoff, st.retryAt = 0, time.Time{}
	case outcomeLate:
		if st.counted != ds.Deadline {
			st.counted = ds.Deadline
			p.m.ProofsLate.Inc()
		}
		st.backoff, st.retryAt = 0, time.Time{}
	default:
		st.backoff, st.retryAt = 0, time.Time{}
	}
	p.poke()
}

// schedule asks the chain for the data set's next proving period.
func (p *Prover) schedule(ctx context.Context, ds *chain.DataSet, ce abi.ChainEpoch) stepOutcome {
	_, err := p.cfg.Chain.NextProvingPeriod(ctx, p.cfg.Key, chain.NextProvingPeriodBody{DataSetID: ds.ID, ChallengeEpoch: ce})
	switch {
	case err == nil:
		p.log.Debug("prover: period scheduled", "dataSet", ds.ID, "challengeEpoch", ce)
		return outcomeDone
	case ctx.Err() != nil:
		return outcomeCancelled
	case transientChainError(err):
		p.log.Warn("prover: schedule (will retry)", "dataSet", ds.ID, "err", err)
		return outcomeRetry
	default:
		// Already scheduled, a window or finality refusal after the clock moved, a terminated
		// set: re-read the set and decide again, not too eagerly.
		p.log.Info("prover: schedule refused", "dataSet", ds.ID, "challengeEpoch", ce, "err", err)
		return outcomeRetry
	}
}

// errGiveUp marks a proving failure that retrying within the period cannot fix.
var errGiveUp = errors.New("period cannot be proven")

// prove answers the current period's challenges of ds. It never submits outside the window
// and never submits a proof that does not verify.
func (p *Prover) prove(ctx context.Context, ds *chain.DataSet) stepOutcome {
	start := time.Now()
	proofs, err := p.buildProofs(ctx, ds)
	switch {
	case ctx.Err() != nil:
		return outcomeCancelled
	case errors.Is(err, errGiveUp):
		p.log.Error("prover: cannot prove period; not submitting", "dataSet", ds.ID, "deadline", ds.Deadline, "err", err)
		return outcomeGiveUp
	case err != nil:
		p.log.Warn("prover: building proofs (will retry)", "dataSet", ds.ID, "err", err)
		return outcomeRetry
	}
	backoff := p.cfg.RetryBackoff
	for {
		head, err := p.cfg.Chain.Head(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return outcomeCancelled
			}
			if !p.sleep(ctx, &backoff) {
				return outcomeCancelled
			}
			continue
		}
		switch {
		case head.Epoch > ds.Deadline:
			p.log.Warn("prover: window closed before submission", "dataSet", ds.ID, "deadline", ds.Deadline, "now", head.Epoch)
			return outcomeLate
		case head.Epoch < max(ds.NextChallengeEpoch, ds.Deadline-p.params.Window):
			return outcomeRefresh // not open (cannot happen unless the chain went back)
		}
		_, err = p.cfg.Chain.ProvePossession(ctx, p.cfg.Key, chain.ProvePossessionBody{DataSetID: ds.ID, Proofs: proofs})
		switch {
		case err == nil, errors.Is(err, chain.ErrAlreadyProven):
			// AlreadyProven: an earlier attempt landed though its answer was lost.
			p.m.ProofsOK.Inc()
			p.m.ProofLatency.Observe(time.Since(start).Seconds())
			p.log.Info("prover: period proven", "dataSet", ds.ID, "deadline", ds.Deadline, "epoch", head.Epoch, "took", time.Since(start))
			return outcomeDone
		case ctx.Err() != nil:
			return outcomeCancelled
		case errors.Is(err, chain.ErrTooLate):
			return outcomeLate
		case errors.Is(err, chain.ErrTooEarly):
			return outcomeRefresh
		case errors.Is(err, chain.ErrInvalidProof), errors.Is(err, chain.ErrNotProving),
			errors.Is(err, chain.ErrTerminated), errors.Is(err, chain.ErrUnauthorized), errors.Is(err, chain.ErrNotFound):
			p.log.Error("prover: proof refused", "dataSet", ds.ID, "deadline", ds.Deadline, "err", err)
			return outcomeGiveUp
		case transientChainError(err):
			p.log.Warn("prover: submit (will retry)", "dataSet", ds.ID, "err", err)
			if !p.sleep(ctx, &backoff) {
				return outcomeCancelled
			}
		default:
			p.log.Error("prover: proof refused", "dataSet", ds.ID, "deadline", ds.Deadline, "err", err)
			return outcomeGiveUp
		}
	}
}

// buildProofs derives the challenges and reads and verifies their proofs. Errors wrapping
// errGiveUp mean the data is not there to be proven.
func (p *Prover) buildProofs(ctx context.Context, ds *chain.DataSet) ([]pdp.Proof, error) {
	seed, err := p.cfg.Chain.Randomness(ctx, ds.NextChallengeEpoch)
	if err != nil {
		return nil, fmt.Errorf("randomness of epoch %d: %w", ds.NextChallengeEpoch, err)
	}
	pieces, err := p.cfg.Chain.Pieces(ctx, ds.ID)
	if err != nil {
		return nil, fmt.Errorf("pieces: %w", err)
	}
	chs, err := DeriveChallenges(seed, ds.ID, ds.ChallengeRange, pieces, p.params.NumChecks)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errGiveUp, err)
	}
	// One storage call per piece: its challenged leaves share the open files.
	type group struct {
		piece pdp.PieceCID
		idx   []int
		leaf  []uint64
	}
	var groups []*group
	byPiece := map[pdp.PieceCID]*group{}
	for i, ch := range chs {
		g := byPiece[ch.Piece]
		if g == nil {
			g = &group{piece: ch.Piece}
			byPiece[ch.Piece] = g
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
		g.leaf = append(g.leaf, ch.Offset)
	}
	proofs := make([]pdp.Proof, len(chs))
	for _, g := range groups {
		prs, err := p.cfg.Store.ProveLeaves(ctx, g.piece, g.leaf)
		if err != nil {
			if errors.Is(err, storage.ErrCorrupt) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalid) {
				return nil, fmt.Errorf("%w: piece %v: %w", errGiveUp, g.piece, err)
			}
			return nil, fmt.Errorf("piece %v: %w", g.piece, err)
		}
		if len(prs) != len(g.leaf) {
			return nil, fmt.Errorf("%w: piece %v: storage returned %d proofs for %d leaves", errGiveUp, g.piece, len(prs), len(g.leaf))
		}
		for k, i := range g.idx {
			proofs[i] = prs[k]
		}
	}
	for i, ch := range chs {
		if err := pdp.VerifyProof(ch.Piece.Root, ch.Piece.Height, ch.Offset, proofs[i]); err != nil {
			return nil, fmt.Errorf("%w: challenge %d (piece %d leaf %d) does not verify: %w", errGiveUp, i, ch.PieceID, ch.Offset, err)
		}
	}
	return proofs, nil
}

// retry runs fn until it succeeds or fails permanently, backing off after transient errors.
func (p *Prover) retry(ctx context.Context, what string, fn func() error) error {
	backoff := p.cfg.RetryBackoff
	for {
		err := fn()
		if err == nil || !transientChainError(err) || ctx.Err() != nil {
			if err != nil {
				return fmt.Errorf("provider: %s: %w", what, err)
			}
			return nil
		}
		p.log.Warn("prover: "+what+" (will retry)", "err", err)
		if !p.sleep(ctx, &backoff) {
			return ctx.Err()
		}
	}
}

func (p *Prover) sleep(ctx context.Context, backoff *time.Duration) bool {
	t := time.NewTimer(*backoff)
	defer t.Stop()
	*backoff = min(2**backoff, 10*time.Second)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// transient reports whether err may go away by itself: the chain unreachable, a server-side
// failure, or a nonce race. Rule refusals are not transient.
func transientChainError(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ae *chain.APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500 || errors.Is(err, chain.ErrInternal) || errors.Is(err, chain.ErrBadNonce)
	}
	return true // transport errors: connection refused, reset, timeouts
}
