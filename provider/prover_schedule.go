package provider

import (
	"fmt"

	"github.com/filecoin-project/go-state-types/abi"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/pdp"
)

// ProvingParams are the chain's proving-schedule constants (chain.Info).
type ProvingParams struct {
	Period    abi.ChainEpoch // M
	Window    abi.ChainEpoch // W
	Finality  abi.ChainEpoch // minimum epochs between scheduling and the challenge epoch
	NumChecks int            // challenges per proof
}

// ProvingParamsOf extracts the proving parameters from a chain description.
func ProvingParamsOf(in *chain.Info) ProvingParams {
	n := in.NumChallenges
	if n <= 0 {
		n = chain.NumChallenges
	}
	return ProvingParams{Period: in.ProvingPeriod, Window: in.ChallengeWindow, Finality: in.ChallengeFinality, NumChecks: n}
}

// StepKind is what the prover should do next for one data set.
type StepKind int

const (
	// StepWait: nothing to do now.
	StepWait StepKind = iota
	// StepSchedule: send NextProvingPeriod with Step.ChallengeEpoch.
	StepSchedule
	// StepProve: answer the current period's challenges.
	StepProve
	// StepDrop: the data set is deleted or its service ended; stop tracking it.
	StepDrop
)

func (k StepKind) String() string {
	switch k {
	case StepWait:
		return "wait"
	case StepSchedule:
		return "schedule"
	case StepProve:
		return "prove"
	case StepDrop:
		return "drop"
	}
	return fmt.Sprintf("StepKind(%d)", int(k))
}

// Step is the prover's decision for one data set at one epoch.
type Step struct {
	Kind           StepKind
	ChallengeEpoch abi.ChainEpoch // StepSchedule: the challenge epoch to request
	// Missed is set when the open period's deadline has passed without a proof: the period
	// is a fault, whatever the next step.
	Missed bool
}

// NextStep decides, from the chain's view of a data set at epoch now, what the prover should
// do. It is pure: the proving loop calls it every tick, tests call it with tables.
//
//   - A set with leaves and no open period gets its first (or, after it was empty, next)
//     period scheduled. The challenge epoch is put in the middle of the window: the deadline
//     of a first period is now+M counted at the epoch the transaction lands, so a mid-window
//     choice survives the clock moving on while the transaction travels.
//   - Inside [max(challenge epoch, D−W), D] an unproven period is proven, unless gaveUp is the
//     period's deadline (its pieces could not be proven: the period is lost, never faked).
//   - Once the period is proven, or its deadline has passed, the next period is scheduled at
//     the start of its window (or later, to respect the challenge finality). Scheduling is what
//     keeps a faulted set on the grid so later periods can be proven and paid again.
func NextStep(ds *chain.DataSet, now abi.ChainEpoch, p ProvingParams, gaveUp abi.ChainEpoch) Step {
	m, w, f := p.Period, p.Window, p.Finality
	switch {
	case ds.Deleted, ds.EndEpoch != 0 && now > ds.EndEpoch:
		return Step{Kind: StepDrop}
	case ds.LeafCount == 0:
		return Step{Kind: StepWait}
	}
	if ds.Deadline == 0 {
		var d abi.ChainEpoch
		if ds.Activation == 0 {
			d = now + m
		} else {
			k := (now + m - ds.Activation + m - 1) / m
			d = ds.Activation + k*m
		}
		ce := d - w/2
		if ce-now < f {
			ce = min(d, now+f)
		}
		return Step{Kind: StepSchedule, ChallengeEpoch: ce}
	}
	d := ds.Deadline
	if !ds.ProvenThisPeriod && now <= d {
		open := max(ds.NextChallengeEpoch, d-w)
		if now >= open && gaveUp != d {
			return Step{Kind: StepProve}
		}
		return Step{Kind: StepWait}
	}
	missed := !ds.ProvenThisPeriod && now > d
	if ds.EndEpoch != 0 {
		// A terminated set is proven until its end but never scheduled past it.
		return Step{Kind: StepWait, Missed: missed}
	}
	var skipped abi.ChainEpoch
	if now > d {
		skipped = (now - d - 1) / m
	}
	next := d + m*(skipped+1)
	// One epoch of margin over the finality so a tick that lands just before the epoch turns
	// does not produce a transaction the chain refuses.
	ce := max(next-w, now+f+1)
	if ce > next {
		ce = now + f
	}
	if ce > next {
		// Too close to the next deadline to respect finality: wait for the grid to move on.
		return Step{Kind: StepWait, Missed: missed}
	}
	return Step{Kind: StepSchedule, ChallengeEpoch: ce, Missed: missed}
}

// Challenge is one challenge resolved to a piece: prove leaf Offset of Piece (id PieceID in
// its data set).
type Challenge struct {
	Index   uint64 // data-set leaf index drawn from the seed
	PieceID uint64
	Piece   pdp.PieceCID
	Offset  uint64
}

// DeriveChallenges computes a period's challenges the way the chain does: index i is
// keccak256(seed ‖ setID ‖ i) mod challengeRange, mapped to (piece, leaf) by a sum tree over
// the pieces' leaf counts (a removed piece counts zero). pieces is the data set's piece list as
// the chain reports it; pieces added after the period was scheduled lie past challengeRange and
// are never drawn.
func DeriveChallenges(seed [32]byte, setID uint64, challengeRange uint64, pieces []chain.Piece, n int) ([]Challenge, error) {
	if challengeRange == 0 {
		return nil, fmt.Errorf("provider: data set %d: empty challenge range", setID)
	}
	var maxID uint64
	for _, pc := range pieces {
		maxID = max(maxID, pc.ID+1)
	}
	counts := make([]uint64, maxID)
	byID := make(map[uint64]chain.Piece, len(pieces))
	for _, pc := range pieces {
		if _, dup := byID[pc.ID]; dup {
			return nil, fmt.Errorf("provider: data set %d: piece id %d listed twice", setID, pc.ID)
		}
		byID[pc.ID] = pc
		if !pc.Removed {
			counts[pc.ID] = pc.LeafCount
		}
	}
	tree := pdp.NewSumTree(counts)
	if tree.Total() < challengeRange {
		return nil, fmt.Errorf("provider: data set %d: pieces hold %d leaves, challenge range is %d", setID, tree.Total(), challengeRange)
	}
	out := make([]Challenge, 0, n)
	for i, x := range pdp.ChallengeIndices(seed, setID, n, challengeRange) {
		pid, off, err := tree.Find(x)
		if err != nil {
			return nil, fmt.Errorf("provider: data set %d challenge %d (leaf %d): %w", setID, i, x, err)
		}
		pc, ok := byID[pid]
		if !ok {
			return nil, fmt.Errorf("provider: data set %d challenge %d: piece %d not listed", setID, i, pid)
		}
		out = append(out, Challenge{Index: x, PieceID: pid, Piece: pc.CID, Offset: off})
	}
	return out, nil
}
