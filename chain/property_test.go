package chain

import (
	"testing"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"
	"pgregory.net/rapid"

	"github.com/warmstore/warmstore/pdp"
)

// TestProvingAndPaymentProperties drives one data set through random sequences of clock moves,
// proofs, schedules and settlements and checks the payment and fault invariants: every period
// ends up either proven or faulted (never both, never neither), the provider is paid exactly
// rate × epochs of proven periods, and refused transactions change nothing.
func TestProvingAndPaymentProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		w := newWorld(t)
		id := w.setup(false)
		w.addPieces(id, makePiece(t, 1, 64))
		w.schedule(id)
		m := w.cfg().ProvingPeriod
		rate := StorageRate(64)
		act := w.dataSet(id).Activation
		paid := big.Zero()
		proven := 0
		try := func(kind TxKind, body any) []Event {
			h := w.hash()
			evs, err := w.send(w.sp, kind, body)
			if err != nil && w.hash() != h {
				rt.Fatalf("refused %s changed the state: %v", kind, err)
			}
			return evs
		}
		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for i := 0; i < steps; i++ {
			ds := w.dataSet(id)
			switch rapid.IntRange(0, 3).Draw(rt, "action") {
			case 0:
				w.now += abi.ChainEpoch(rapid.IntRange(1, int(2*m)).Draw(rt, "advance"))
			case 1:
				canProve := ds.NextChallengeEpoch != 0 && w.now >= ds.NextChallengeEpoch && w.now <= ds.Deadline && !ds.ProvenThisPeriod
				var proofs = w.proofsIfAvailable(id)
				evs := try(TxProvePossession, ProvePossessionBody{DataSetID: id, Proofs: proofs})
				if got := findKind(evs, EvProven) != nil; got != canProve {
					rt.Fatalf("prove at %d (challenge %d, deadline %d, proven %v): accepted=%v", w.now, ds.NextChallengeEpoch, ds.Deadline, ds.ProvenThisPeriod, got)
				}
				if canProve {
					proven++
				}
			case 2:
				d := ds.Deadline
				if w.now > d {
					d += m * ((w.now-d-1)/m + 1)
				} else {
					d += m
				}
				try(TxNextProvingPeriod, NextProvingPeriodBody{DataSetID: id, ChallengeEpoch: d - w.cfg().ChallengeWindow})
			case 3:
				evs := w.must(w.sp, TxSettleRail, SettleRailBody{RailID: ds.PDPRail})
				if s := findKind(evs, EvRailSettled); s != nil {
					paid = big.Add(paid, *s.Amount)
				}
			}
		}
		// Close the books: let every period pass, record faults, settle through the last one.
		w.now = max(w.now, w.dataSet(id).Deadline) + 2*m + 1
		w.must(w.other, TxRecordFaults, RecordFaultsBody{DataSetID: id})
		ds := w.dataSet(id)
		if s := findKind(w.must(w.sp, TxSettleRail, SettleRailBody{RailID: ds.PDPRail, UntilEpoch: ds.FaultsThrough}), EvRailSettled); s != nil {
			paid = big.Add(paid, *s.Amount)
		}
		periods := int((ds.FaultsThrough - act) / m)
		if int(ds.Faults)+proven != periods {
			rt.Fatalf("%d faults + %d proven != %d periods", ds.Faults, proven, periods)
		}
		if want := big.Mul(rate, big.NewInt(int64(proven)*int64(m))); !paid.Equals(want) {
			rt.Fatalf("paid %s, want %d proven periods × %d epochs × %s = %s", paid, proven, m, rate, want)
		}
	})
}

// proofsIfAvailable returns honest proofs when the challenges exist, else five empty proofs.
func (w *world) proofsIfAvailable(id uint64) []pdp.Proof {
	if _, err := w.view().Challenges(id); err != nil {
		return make([]pdp.Proof, NumChallenges)
	}
	return w.proofs(id)
}
