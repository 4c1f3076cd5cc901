package provider

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/pdp"
)

func TestNextStep(t *testing.T) {
	p := ProvingParams{Period: 30, Window: 10, Finality: 2, NumChecks: 5}
	open := func(d, ce abi.ChainEpoch, proven bool) chain.DataSet {
		return chain.DataSet{LeafCount: 8, Activation: 100, Deadline: d, NextChallengeEpoch: ce, ProvenThisPeriod: proven}
	}
	cases := []struct {
		name   string
		ds     chain.DataSet
		now    abi.ChainEpoch
		params *ProvingParams
		gaveUp abi.ChainEpoch
		want   Step
	}{
		{name: "deleted", ds: chain.DataSet{Deleted: true, LeafCount: 8}, now: 5, want: Step{Kind: StepDrop}},
		{name: "service ended", ds: chain.DataSet{EndEpoch: 500, LeafCount: 8, Deadline: 520}, now: 501, want: Step{Kind: StepDrop}},
		{name: "no leaves yet", ds: chain.DataSet{}, now: 100, want: Step{Kind: StepWait}},
		{name: "first period: middle of the window", ds: chain.DataSet{LeafCount: 8}, now: 100, want: Step{Kind: StepSchedule, ChallengeEpoch: 125}},
		{name: "re-activation keeps the grid", ds: chain.DataSet{LeafCount: 8, Activation: 100}, now: 175, want: Step{Kind: StepSchedule, ChallengeEpoch: 215}},
		{name: "before the challenge epoch", ds: open(130, 120, false), now: 119, want: Step{Kind: StepWait}},
		{name: "challenge epoch", ds: open(130, 120, false), now: 120, want: Step{Kind: StepProve}},
		{name: "at the deadline", ds: open(130, 120, false), now: 130, want: Step{Kind: StepProve}},
		{name: "challenge epoch late in the window", ds: open(130, 127, false), now: 125, want: Step{Kind: StepWait}},
		{name: "gave up on this period", ds: open(130, 120, false), now: 125, gaveUp: 130, want: Step{Kind: StepWait}},
		{name: "gave up on an earlier period", ds: open(130, 120, false), now: 125, gaveUp: 100, want: Step{Kind: StepProve}},
		{name: "proven: next window start", ds: open(130, 120, true), now: 125, want: Step{Kind: StepSchedule, ChallengeEpoch: 150}},
		{name: "missed: next period", ds: open(130, 120, false), now: 131, want: Step{Kind: StepSchedule, ChallengeEpoch: 150, Missed: true}},
		{name: "missed late: finality pushes the epoch", ds: open(130, 120, false), now: 155, want: Step{Kind: StepSchedule, ChallengeEpoch: 158, Missed: true}},
		{name: "missed: finality leaves no room", ds: open(130, 120, false), now: 159, want: Step{Kind: StepWait, Missed: true}},
		{name: "missed two periods", ds: open(130, 120, false), now: 161, want: Step{Kind: StepSchedule, ChallengeEpoch: 180, Missed: true}},
		{name: "terminated: proven to the end, never rescheduled", ds: chain.DataSet{LeafCount: 8, Activation: 100, Deadline: 130, NextChallengeEpoch: 120, ProvenThisPeriod: true, EndEpoch: 200}, now: 125, want: Step{Kind: StepWait}},
		{name: "large finality", ds: open(130, 120, true), now: 128, params: &ProvingParams{Period: 30, Window: 10, Finality: 15}, want: Step{Kind: StepSchedule, ChallengeEpoch: 150}},
		{name: "large finality, first period", ds: chain.DataSet{LeafCount: 8}, now: 100, params: &ProvingParams{Period: 30, Window: 10, Finality: 20}, want: Step{Kind: StepSchedule, ChallengeEpoch: 125}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pp := p
			if c.params != nil {
				pp = *c.params
			}
			if got := NextStep(&c.ds, c.now, pp, c.gaveUp); got != c.want {
				t.Fatalf("NextStep = %+v, want %+v", got, c.want)
			}
		})
	}
}

// TestDeriveChallengesMatchesChain compares the prover's challenge derivation with the
// chain's own, on a data set with a removed piece in the middle and a piece added after the
// period was scheduled.
func TestDeriveChallengesMatchesChain(t *testing.T) {
	ctx := context.Background()
	tl := newTestLedger(t, testConfig())
	sp := testKey(t, 2)
	if _, err := tl.client.RegisterProvider(ctx, sp, chain.RegisterProviderBody{ServiceURL: "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	payer := newTestPayer(t, tl, testKey(t, 1))
	id := payer.createDataSet(t, tl, sp)
	for i := range 4 {
		c, err := pieceOfPayload(randomPayload(uint64(10+i), 2000+i*3000))
		if err != nil {
			t.Fatal(err)
		}
		payer.addPieces(t, tl, sp, id, c)
	}
	dom, _ := tl.client.Domain(ctx)
	ds := tl.dataSet(id)
	// Removal of piece 1 (signed by the payer), processed when the period is scheduled.
	sig, err := dom.Sign(payer.key, removalOf(ds, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tl.client.SchedulePieceRemovals(ctx, sp, chain.SchedulePieceRemovalsBody{DataSetID: id, PieceIDs: []uint64{1}, Signature: sig}); err != nil {
		t.Fatal(err)
	}
	step := NextStep(tl.dataSet(id), tl.ledger.Epoch(), ProvingParamsOf(mustInfo(t, tl)), 0)
	if step.Kind != StepSchedule {
		t.Fatalf("step %v", step)
	}
	if _, err := tl.client.NextProvingPeriod(ctx, sp, chain.NextProvingPeriodBody{DataSetID: id, ChallengeEpoch: step.ChallengeEpoch}); err != nil {
		t.Fatal(err)
	}
	late, err := pieceOfPayload(randomPayload(99, 5000))
	if err != nil {
		t.Fatal(err)
	}
	payer.addPieces(t, tl, sp, id, late)
	ds = tl.dataSet(id)
	tl.clock.Set(ds.NextChallengeEpoch)
	want, err := tl.client.Challenges(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := tl.client.Randomness(ctx, ds.NextChallengeEpoch)
	if err != nil {
		t.Fatal(err)
	}
	pieces, err := tl.client.Pieces(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for n := 5; n <= 40; n += 35 {
		got, err := DeriveChallenges(seed, id, ds.ChallengeRange, pieces, n)
		if err != nil {
			t.Fatal(err)
		}
		if n == 5 {
			for i, w := range want.Challenges {
				if got[i].PieceID != w.PieceID || got[i].Offset != w.Offset || got[i].Piece != w.Piece {
					t.Fatalf("challenge %d: derived %+v, chain says %+v", i, got[i], w)
				}
			}
		}
		for _, c := range got {
			if c.PieceID == 1 || c.PieceID == 4 {
				t.Fatalf("challenge on piece %d (removed or added after scheduling): %+v", c.PieceID, c)
			}
		}
	}
	if _, err := DeriveChallenges(seed, id, ds.ChallengeRange+1_000_000, pieces, 5); err == nil {
		t.Fatal("a challenge range beyond the pieces' leaves was accepted")
	}
	if _, err := DeriveChallenges(seed, id, 0, pieces, 5); err == nil {
		t.Fatal("an empty challenge range was accepted")
	}
}

// TestProverNeverSubmitsOutsideWindow jumps the clock over a whole challenge window: the
// prover must not submit late, counts the period late, and proves the next period, retrying
// through a flaky chain endpoint.
func TestProverNeverSubmitsOutsideWindow(t *testing.T) {
	r := newProvingRig(t, 4)
	tl := r.tl
	m := tl.ledger.Config().ProvingPeriod
	c := r.ingest(randomPayload(7, 40_000))
	id := r.payer.createDataSet(t, tl, r.sp)
	r.payer.addPieces(t, tl, r.sp, id, c)
	waitFor(t, "scheduled", 10*time.Second, func() bool { return tl.dataSet(id).Deadline != 0 })
	ds := tl.dataSet(id)
	tl.clock.Set(ds.NextChallengeEpoch - 1)
	time.Sleep(30 * time.Millisecond) // several ticks before the window
	tl.clock.Set(ds.Deadline + 1)
	waitFor(t, "rescheduled after the missed window", 10*time.Second, func() bool { return tl.dataSet(id).Deadline == ds.Deadline+m })
	if n := len(tl.proofArrivals()); n != 0 {
		t.Fatalf("%d proofs submitted for a window the prover never saw open", n)
	}
	if late := counterValue(t, r.prover.m.ProofsLate); late != 1 {
		t.Fatalf("late = %v, want 1", late)
	}
	// Next period: the first two submissions hit a 503; the prover backs off and retries.
	tl.failNextProofs(2)
	r.provePeriod(id)
	if n := len(tl.proofArrivals()); n != 3 {
		t.Fatalf("%d proof submissions, want 2 failed + 1 accepted", n)
	}
	if ok := counterValue(t, r.prover.m.ProofsOK); ok != 1 {
		t.Fatalf("ok = %v, want 1", ok)
	}
	tl.checkProofsInWindow()
}

func mustInfo(t testing.TB, tl *testLedger) *chain.Info {
	t.Helper()
	in, err := tl.client.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func removalOf(ds *chain.DataSet, ids ...uint64) eip712.SchedulePieceRemovals {
	out := eip712.SchedulePieceRemovals{ClientDataSetID: ds.ClientDataSetID.Int}
	for _, id := range ids {
		out.PieceIDs = append(out.PieceIDs, big.NewIntUnsigned(id).Int)
	}
	return out
}

func pieceOfPayload(payload []byte) (pdp.PieceCID, error) { return pdp.CommP(bytes.NewReader(payload)) }

// concurrencyProbe passes proofs through from the real store and records how many calls
// overlapped.
type concurrencyProbe struct {
	next PieceProver
	mu   sync.Mutex
	cur  int
	peak int
}

func (c *concurrencyProbe) ProveLeaves(ctx context.Context, piece pdp.PieceCID, leaves []uint64) ([]pdp.Proof, error) {
	c.mu.Lock()
	c.cur++
	c.peak = max(c.peak, c.cur)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.cur--
		c.mu.Unlock()
	}()
	time.Sleep(20 * time.Millisecond) // long enough for unbounded work to overlap
	return c.next.ProveLeaves(ctx, piece, leaves)
}

// TestProverParallelismIsBounded: with Parallel 2, four data sets due at once are all proven,
// never more than two at a time.
func TestProverParallelismIsBounded(t *testing.T) {
	probe := &concurrencyProbe{}
	r := newProvingRigWith(t, 2, func(s PieceProver) PieceProver { probe.next = s; return probe })
	var ids []uint64
	for i := range 4 {
		c := r.ingest(randomPayload(uint64(100+i), 5_000+1000*i))
		id := r.payer.createDataSet(t, r.tl, r.sp)
		r.payer.addPieces(t, r.tl, r.sp, id, c)
		ids = append(ids, id)
	}
	waitFor(t, "all scheduled", 10*time.Second, func() bool {
		for _, id := range ids {
			if r.tl.dataSet(id).Deadline == 0 {
				return false
			}
		}
		return true
	})
	r.provePeriod(ids...)
	probe.mu.Lock()
	defer probe.mu.Unlock()
	if probe.peak > 2 {
		t.Fatalf("%d data sets proven at once, bound is 2", probe.peak)
	}
	if probe.peak < 2 {
		t.Logf("peak concurrency %d (the bound was not reached on this run)", probe.peak)
	}
	if ok := counterValue(t, r.prover.m.ProofsOK); ok != 4 {
		t.Fatalf("ok = %v, want 4", ok)
	}
}

// TestProverAndSettlerStopAtServiceEnd: after a consent termination the prover stops proving
// the set once its service has ended, and the settler settles it exactly to the end epoch,
// paying the proven periods only.
func TestProverAndSettlerStopAtServiceEnd(t *testing.T) {
	ctx := context.Background()
	r := newProvingRig(t, 2)
	tl := r.tl
	m := tl.ledger.Config().ProvingPeriod
	id := r.payer.createDataSet(t, tl, r.sp)
	r.payer.addPieces(t, tl, r.sp, id, r.ingest(randomPayload(8, 30_000)))
	waitFor(t, "scheduled", 10*time.Second, func() bool { return tl.dataSet(id).Deadline != 0 })
	d1 := r.provePeriod(id)
	d2 := r.provePeriod(id)

	// Mid-period 3, before its window: the payer consents to end the service now.
	end := d2 + 5
	tl.clock.Set(end)
	dom, _ := tl.client.Domain(ctx)
	sig, err := dom.Sign(r.payer.key, eip712.TerminateService{DataSetID: big.NewIntUnsigned(id).Int})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tl.client.TerminateService(ctx, r.sp, chain.TerminateServiceBody{DataSetID: id, Signature: sig}); err != nil {
		t.Fatal(err)
	}
	if got := tl.dataSet(id).EndEpoch; got != end {
		t.Fatalf("end epoch %d, want %d", got, end)
	}
	proofs := len(tl.proofArrivals())
	// Past the end (and past period 3's deadline): nothing more is proven or scheduled.
	tl.clock.Set(d2 + m + 1)
	waitFor(t, "the prover to drop the ended set", 10*time.Second, func() bool { return len(r.prover.DataSets()) == 0 })
	if n := len(tl.proofArrivals()); n != proofs {
		t.Fatalf("%d proofs submitted after the service ended", n-proofs)
	}
	got, err := r.settler.SettleOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].SettledUpTo != end {
		t.Fatalf("settlements %+v, want one to the end epoch %d", got, end)
	}
	rail, err := tl.client.Rail(ctx, tl.dataSet(id).PDPRail)
	if err != nil {
		t.Fatal(err)
	}
	// The settlement paid the two proven periods and nothing for the unproven tail.
	want := big.Mul(rail.PaymentRate, big.NewInt(int64(2*m)))
	if sum := sumSettled(t, tl, uint64(rail.ID)); !sum.Equals(want) {
		t.Fatalf("rail %d paid %v gross, want rate × %d = %v (periods ending %d and %d)", rail.ID, sum, 2*m, want, d1, d2)
	}
	if again, err := r.settler.SettleOnce(ctx); err != nil || len(again) != 0 {
		t.Fatalf("settling an ended rail again: %+v, %v", again, err)
	}
}

func sumSettled(t testing.TB, tl *testLedger, rail uint64) big.Int {
	t.Helper()
	sum := big.Zero()
	for _, ev := range tl.events(chain.EvRailSettled, 0) {
		if ev.RailID == rail {
			sum = big.Add(sum, *ev.Amount)
		}
	}
	return sum
}
