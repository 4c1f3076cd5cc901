package chain

import (
	"fmt"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/payments"
	"github.com/warmstore/warmstore/pdp"
)

// Period arithmetic (reference §3.2, exclusive–inclusive): period N of a data set activated at
// A is (A+N·M, A+(N+1)·M] and its deadline is A+(N+1)·M.

func periodOf(a, m, e abi.ChainEpoch) uint64 { return uint64((e - a - 1) / m) }

func deadlineOf(a, m abi.ChainEpoch, n uint64) abi.ChainEpoch { return a + abi.ChainEpoch(n+1)*m }

// lastPassedDeadline is the latest canonical deadline strictly before now, or 0 if none.
func lastPassedDeadline(a, m, now abi.ChainEpoch) abi.ChainEpoch {
	if a == 0 || now-a-1 < m {
		return 0
	}
	return a + ((now-a-1)/m)*m
}

// recordFaults records a fault for every period whose deadline is in (FaultsThrough, through]
// and that was not proven, then advances FaultsThrough. Each period is recorded exactly once.
func (c *applyCtx) recordFaults(ds *DataSet, through abi.ChainEpoch) error {
	if ds.Activation == 0 || ds.Deadline == 0 {
		return nil
	}
	if ds.EndEpoch != 0 && through > ds.EndEpoch {
		through = ds.EndEpoch
	}
	m := c.e.cfg.ProvingPeriod
	start := ds.FaultsThrough
	if start < ds.Activation {
		start = ds.Activation
	}
	for d := start + m; d <= through; d += m {
		n := periodOf(ds.Activation, m, d)
		ok, err := isProven(c.st, ds.ID, n)
		if err != nil {
			return err
		}
		if !ok {
			ds.Faults++
			c.emit(Event{Kind: EvFault, DataSetID: ds.ID, Period: u64p(n), Deadline: d})
		}
	}
	if through > ds.FaultsThrough {
		ds.FaultsThrough = through
	}
	return nil
}

func (c *applyCtx) nextProvingPeriod(b NextProvingPeriodBody) error {
	ds, err := c.ownDataSet(b.DataSetID)
	if err != nil {
		return err
	}
	m, w := c.e.cfg.ProvingPeriod, c.e.cfg.ChallengeWindow
	if err := c.checkRunning(ds); err != nil {
		return err
	}
	if ds.LeafCount == 0 {
		return fmt.Errorf("%w: data set %d has no pieces to prove", ErrInvalidArgument, ds.ID)
	}
	if ds.Deadline != 0 && c.now <= ds.Deadline-m {
		return fmt.Errorf("%w: the period ending at %d is already scheduled", ErrTooEarly, ds.Deadline)
	}
	removed, err := c.processRemovals(ds)
	if err != nil {
		return err
	}
	// Verifier: freeze the challenge range (additions join, removals leave) and check finality.
	ds.ChallengeRange = ds.LeafCount
	empty := ds.LeafCount == 0
	if empty {
		ds.NextChallengeEpoch = 0
		ds.LastProvenEpoch = c.now
		c.emit(Event{Kind: EvDataSetEmpty, DataSetID: ds.ID})
	} else {
		gap := b.ChallengeEpoch - c.now
		if gap < c.e.cfg.ChallengeFinality {
			return fmt.Errorf("%w: challenge epoch %d is %d epochs ahead, finality needs %d", ErrTooEarly, b.ChallengeEpoch, gap, c.e.cfg.ChallengeFinality)
		}
		if gap > MaxFinality {
			return fmt.Errorf("%w: challenge epoch %d is more than %d epochs ahead", ErrInvalidArgument, b.ChallengeEpoch, MaxFinality)
		}
		ds.NextChallengeEpoch = b.ChallengeEpoch
	}
	// Warm-storage listener: deadlines, the window, faults.
	inWindow := func(d abi.ChainEpoch) error {
		if b.ChallengeEpoch < d-w || b.ChallengeEpoch > d {
			return fmt.Errorf("%w: challenge epoch %d is outside the window [%d, %d]", ErrInvalidArgument, b.ChallengeEpoch, d-w, d)
		}
		return nil
	}
	if ds.Deadline == 0 {
		if !empty {
			var d abi.ChainEpoch
			if ds.Activation == 0 {
				ds.Activation = c.now
				d = c.now + m
			} else {
				// Re-activation after the set was empty keeps the period grid.
				k := (c.now + m - ds.Activation + m - 1) / m
				d = ds.Activation + k*m
			}
			if err := inWindow(d); err != nil {
				return err
			}
			ds.Deadline = d
			ds.FaultsThrough = d - m
		}
	} else {
		skipped := abi.ChainEpoch(0)
		if c.now > ds.Deadline {
			skipped = (c.now - ds.Deadline - 1) / m
		}
		next := ds.Deadline + m*(skipped+1)
		if err := c.recordFaults(ds, next-m); err != nil {
			return err
		}
		if empty {
			ds.Deadline = 0
		} else {
			if err := inWindow(next); err != nil {
				return err
			}
			ds.Deadline = next
		}
	}
	ds.ProvenThisPeriod = false
	if removed || !ds.PendingFees.IsZero() {
		if err := c.updateStorageRate(ds); err != nil {
			return err
		}
	}
	if err := c.putDataSet(ds); err != nil {
		return err
	}
	c.emit(Event{Kind: EvPeriodScheduled, DataSetID: ds.ID, ChallengeEpoch: ds.NextChallengeEpoch, Deadline: ds.Deadline, LeafCount: ds.ChallengeRange})
	return nil
}

// maxProofs bounds a proof submission (more than 5 is allowed by the rules; unbounded is not).
const maxProofs = 64

func (c *applyCtx) provePossession(b ProvePossessionBody) error {
	ds, err := c.ownDataSet(b.DataSetID)
	if err != nil {
		return err
	}
	if ds.NextChallengeEpoch == 0 || ds.Deadline == 0 {
		return fmt.Errorf("%w: data set %d", ErrNotProving, ds.ID)
	}
	if err := c.checkRunning(ds); err != nil {
		return err
	}
	w := c.e.cfg.ChallengeWindow
	switch {
	case c.now < ds.NextChallengeEpoch:
		return fmt.Errorf("%w: challenge epoch %d not reached (now %d)", ErrTooEarly, ds.NextChallengeEpoch, c.now)
	case c.now < ds.Deadline-w:
		return fmt.Errorf("%w: the challenge window opens at %d (now %d)", ErrTooEarly, ds.Deadline-w, c.now)
	case c.now > ds.Deadline:
		return fmt.Errorf("%w: the deadline was %d (now %d)", ErrTooLate, ds.Deadline, c.now)
	case ds.ProvenThisPeriod:
		return fmt.Errorf("%w: data set %d, deadline %d", ErrAlreadyProven, ds.ID, ds.Deadline)
	case len(b.Proofs) < NumChallenges:
		return fmt.Errorf("%w: %d proofs, %d challenges are required", ErrInvalidProof, len(b.Proofs), NumChallenges)
	case len(b.Proofs) > maxProofs:
		return fmt.Errorf("%w: %d proofs, at most %d", ErrInvalidArgument, len(b.Proofs), maxProofs)
	}
	chs, err := c.challenges(ds, len(b.Proofs))
	if err != nil {
		return err
	}
	for i, ch := range chs {
		if err := pdp.VerifyProof(ch.piece.CID.Root, ch.piece.CID.Height, ch.Offset, b.Proofs[i]); err != nil {
			return fmt.Errorf("%w: challenge %d (piece %d, leaf %d): %v", ErrInvalidProof, i, ch.PieceID, ch.Offset, err)
		}
	}
	period := periodOf(ds.Activation, c.e.cfg.ProvingPeriod, c.now)
	if err := markProven(c.st, ds.ID, period); err != nil {
		return err
	}
	ds.LastProvenEpoch = c.now
	ds.ProvenThisPeriod = true
	if err := c.putDataSet(ds); err != nil {
		return err
	}
	out := make([]Challenge, len(chs))
	for i, ch := range chs {
		out[i] = ch.Challenge
	}
	c.emit(Event{Kind: EvProven, DataSetID: ds.ID, Period: u64p(period), Deadline: ds.Deadline, Challenges: out})
	return nil
}

type resolvedChallenge struct {
	Challenge
	piece Piece
}

// challenges derives the current period's n challenges of ds from the beacon value of its
// challenge epoch (which the caller has checked is not in the future).
func (c *applyCtx) challenges(ds *DataSet, n int) ([]resolvedChallenge, error) {
	return deriveChallenges(c.st, c.beacon, ds, n)
}

func deriveChallenges(st Store, beacon Beacon, ds *DataSet, n int) ([]resolvedChallenge, error) {
	if ds.ChallengeRange == 0 {
		return nil, fmt.Errorf("%w: data set %d has an empty challenge range", ErrNotProving, ds.ID)
	}
	seed, err := beacon.Randomness(ds.NextChallengeEpoch)
	if err != nil {
		return nil, fmt.Errorf("%w: beacon at %d: %v", ErrInternal, ds.NextChallengeEpoch, err)
	}
	counts, err := getCounts(st, ds.ID)
	if err != nil {
		return nil, err
	}
	tree := pdp.NewSumTree(counts)
	idx := pdp.ChallengeIndices(seed, ds.ID, n, ds.ChallengeRange)
	out := make([]resolvedChallenge, n)
	// Challenges often land in the same piece (always, for a one-piece set): decode each once.
	pieces := make(map[uint64]Piece, n)
	for i, x := range idx {
		pid, off, err := tree.Find(x)
		if err != nil {
			return nil, fmt.Errorf("%w: challenge %d leaf %d: %v", ErrInternal, i, x, err)
		}
		p, ok := pieces[pid]
		if !ok {
			found, err := getJSON(st, keyPiece(ds.ID, pid), &p)
			if err != nil {
				return nil, err
			}
			if !found {
				return nil, fmt.Errorf("%w: challenged piece %d of data set %d is missing", ErrInternal, pid, ds.ID)
			}
			pieces[pid] = p
		}
		out[i] = resolvedChallenge{Challenge: Challenge{PieceID: pid, Offset: off}, piece: p}
	}
	return out, nil
}

func (c *applyCtx) recordFaultsTx(b RecordFaultsBody) error {
	ds, err := getDataSet(c.st, b.DataSetID)
	if err != nil {
		return err
	}
	if err := c.recordFaults(ds, lastPassedDeadline(ds.Activation, c.e.cfg.ProvingPeriod, c.now)); err != nil {
		return err
	}
	return c.putDataSet(ds)
}

// --- the warm-storage validator (reference §4.6) ---------------------------------------------

// fwssValidator pays a PDP rail rate × proven epochs: proven periods are paid (even before
// their deadline), past unproven periods settle at zero, and settlement stops at the open
// period.
type fwssValidator struct {
	c     *applyCtx
	words map[[2]uint64][]byte
}

var (
	_ payments.Validator           = (*fwssValidator)(nil)
	_ payments.TerminationListener = (*fwssValidator)(nil)
)

// railDataSet returns the live data set a PDP rail pays for, or nil. The result is shared
// through the cache: callers that modify it must write it back with putDataSet.
func (v *fwssValidator) railDataSet(id payments.RailID) (*DataSet, error) {
	dsID, err := getU64(v.c.st, keyRailDataSet(uint64(id)))
	if err != nil || dsID == 0 {
		return nil, err
	}
	ds := v.c.dsCache[dsID]
	if ds == nil {
		ds = new(DataSet)
		ok, err := getJSON(v.c.st, keyDataSet(dsID), ds)
		if err != nil || !ok {
			return nil, err
		}
		v.c.dsCache[dsID] = ds
	}
	if ds.Deleted || ds.PDPRail != uint64(id) {
		return nil, nil
	}
	return ds, nil
}

// proven is isProven through a per-transaction cache of bitmap words: settling 30 days of
// hourly periods asks about 720 periods that live in 3 words. Nothing marks a period proven
// during a settlement, so the cache cannot go stale within the transaction.
func (v *fwssValidator) proven(set, period uint64) (bool, error) {
	k := [2]uint64{set, period / 256}
	w, ok := v.words[k]
	if !ok {
		raw, found, err := v.c.st.Get(keyProven(set, period/256))
		if err != nil {
			return false, err
		}
		if found {
			w = raw
		}
		if v.words == nil {
			v.words = map[[2]uint64][]byte{}
		}
		v.words[k] = w
	}
	if w == nil {
		return false, nil
	}
	bit := period % 256
	return w[bit/8]&(1<<(bit%8)) != 0, nil
}

// ValidatePayment implements payments.Validator.
func (v *fwssValidator) ValidatePayment(rail payments.Rail, proposed abi.TokenAmount, from, to abi.ChainEpoch, rate abi.TokenAmount) (payments.ValidationResult, error) {
	ds, err := v.railDataSet(rail.ID)
	if err != nil {
		return payments.ValidationResult{}, err
	}
	if ds == nil {
		return payments.ValidationResult{Amount: big.Zero(), SettleUpTo: to, Note: "rail has no data set"}, nil
	}
	a, m := ds.Activation, v.c.e.cfg.ProvingPeriod
	if a == 0 || to <= a {
		return payments.ValidationResult{Amount: big.Zero(), SettleUpTo: to, Note: "before activation"}, nil
	}
	start := from
	if start < a {
		start = a
	}
	settle := start
	var proven abi.ChainEpoch
	for n := periodOf(a, m, start+1); ; n++ {
		d := deadlineOf(a, m, n)
		lo := d - m
		if lo >= to {
			break
		}
		hi := min(to, d)
		ok, err := v.proven(ds.ID, n)
		if err != nil {
			return payments.ValidationResult{}, err
		}
		if ok {
			proven += hi - max(lo, start)
			settle = hi
		} else if d < v.c.now {
			settle = hi
		} else {
			break
		}
	}
	return payments.ValidationResult{Amount: big.Mul(rate, big.NewInt(int64(proven))), SettleUpTo: settle}, nil
}

// RailTerminated implements payments.TerminationListener: the PDP rail ends only through the
// service (terminateService), which records the end epoch.
func (v *fwssValidator) RailTerminated(rail payments.Rail, terminator payments.Address, endEpoch abi.ChainEpoch) error {
	ds, err := v.railDataSet(rail.ID)
	if err != nil {
		return err
	}
	if ds == nil {
		return nil
	}
	if terminator != v.c.e.cfg.WarmStorage {
		return fmt.Errorf("%w: the PDP rail of data set %d can only be terminated through the service", ErrUnauthorized, ds.ID)
	}
	ds.EndEpoch = endEpoch
	return v.c.putDataSet(ds)
}
