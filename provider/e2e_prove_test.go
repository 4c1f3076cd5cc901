package provider

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/payments"
	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage"
)

// provingRig is a ledger, a registered provider with a real store, a funded payer, and the
// provider's prover running against them.
type provingRig struct {
	t        *testing.T
	tl       *testLedger
	sp       *ecdsa.PrivateKey
	spAddr   common.Address
	payer    *testPayer
	storeDir string
	store    *storage.Store
	prover   *Prover
	settler  *Settler
	stop     func()
}

func newProvingRig(t *testing.T, parallel int) *provingRig {
	return newProvingRigWith(t, parallel, nil)
}

// newProvingRigWith lets a test wrap the store the prover reads proofs from.
func newProvingRigWith(t *testing.T, parallel int, wrap func(PieceProver) PieceProver) *provingRig {
	t.Helper()
	ctx := context.Background()
	tl := newTestLedger(t, testConfig())
	spKey := testKey(t, 2)
	if _, err := tl.client.RegisterProvider(ctx, spKey, chain.RegisterProviderBody{ServiceURL: "http://127.0.0.1:1", Name: "e2e"}); err != nil {
		t.Fatal(err)
	}
	r := &provingRig{t: t, tl: tl, sp: spKey, spAddr: crypto.PubkeyToAddress(spKey.PublicKey), storeDir: t.TempDir()}
	r.payer = newTestPayer(t, tl, testKey(t, 1))
	var err error
	// A small cached layer so proofs combine a section read with sidecar nodes.
	r.store, err = storage.Open(r.storeDir, storage.Options{LayerHeight: 4})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewProvingMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	var pp PieceProver = r.store
	if wrap != nil {
		pp = wrap(pp)
	}
	r.prover, err = NewProver(ProverConfig{Chain: tl.client, Key: spKey, Store: pp, Parallel: parallel,
		PollInterval: 5 * time.Millisecond, RetryBackoff: 10 * time.Millisecond, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	r.settler, err = NewSettler(SettlerConfig{Chain: tl.client, Key: spKey, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.prover.Run(runCtx) }()
	r.stop = func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("prover.Run: %v", err)
		}
		r.store.Close()
	}
	t.Cleanup(func() {
		if r.stop != nil {
			r.stop()
		}
	})
	return r
}

// ingest stores a payload and returns its piece CID.
func (r *provingRig) ingest(payload []byte) pdp.PieceCID {
	r.t.Helper()
	info, err := r.store.Ingest(context.Background(), bytes.NewReader(payload), nil)
	if err != nil {
		r.t.Fatal(err)
	}
	return info.Piece
}

// blobOf returns the path of the stored file holding piece's payload (found by its size,
// which the test makes unique).
func (r *provingRig) blobOf(piece pdp.PieceCID) string {
	r.t.Helper()
	ents, err := os.ReadDir(filepath.Join(r.storeDir, "blobs"))
	if err != nil {
		r.t.Fatal(err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err == nil && filepath.Ext(e.Name()) == ".data" && uint64(fi.Size()) == piece.RawSize() {
			return filepath.Join(r.storeDir, "blobs", e.Name())
		}
	}
	r.t.Fatalf("no blob of %d bytes for %v", piece.RawSize(), piece)
	return ""
}

// provePeriod moves the clock to the sets' challenge epoch and waits until every set has
// proven the period and scheduled the next one. It returns the proven period's deadline.
func (r *provingRig) provePeriod(sets ...uint64) abi.ChainEpoch {
	r.t.Helper()
	var ce, d abi.ChainEpoch
	for _, id := range sets {
		ds := r.tl.dataSet(id)
		ce, d = max(ce, ds.NextChallengeEpoch), ds.Deadline
	}
	r.tl.clock.Set(ce)
	m := r.tl.ledger.Config().ProvingPeriod
	waitFor(r.t, "period proven and the next scheduled", 20*time.Second, func() bool {
		for _, id := range sets {
			if r.tl.dataSet(id).Deadline != d+m {
				return false
			}
		}
		return true
	})
	return d
}

func periodIndex(ds *chain.DataSet, m, deadline abi.ChainEpoch) uint64 {
	return uint64((deadline - ds.Activation - 1) / m)
}

// TestProverProvesPaysFaultsAndResumes walks a provider through several proven periods of
// two data sets proven in parallel, settles and checks the payee got exactly rate × proven
// epochs minus the network fee; then deletes a challenged piece file behind the store's back:
// that period is not proven, faults and is paid nothing, and proving resumes once the piece is
// stored again.
func TestProverProvesPaysFaultsAndResumes(t *testing.T) {
	r := newProvingRig(t, 2)
	ctx := context.Background()
	tl, m := r.tl, r.tl.ledger.Config().ProvingPeriod

	payA, payB, payC := randomPayload(1, 100_000), randomPayload(2, 300_000), randomPayload(3, 50_000)
	a, b, c := r.ingest(payA), r.ingest(payB), r.ingest(payC)
	set1 := r.payer.createDataSet(t, tl, r.sp)
	set2 := r.payer.createDataSet(t, tl, r.sp)
	r.payer.addPieces(t, tl, r.sp, set1, a, b)
	r.payer.addPieces(t, tl, r.sp, set2, c)

	waitFor(t, "both sets scheduled", 10*time.Second, func() bool {
		return tl.dataSet(set1).Deadline != 0 && tl.dataSet(set2).Deadline != 0
	})
	var deadlines []abi.ChainEpoch
	for range 3 {
		deadlines = append(deadlines, r.provePeriod(set1, set2))
	}
	for _, id := range []uint64{set1, set2} {
		ds := tl.dataSet(id)
		for _, d := range deadlines {
			if ok, err := tl.client.IsProven(ctx, id, periodIndex(ds, m, d)); err != nil || !ok {
				t.Fatalf("set %d period ending %d: proven=%v err=%v", id, d, ok, err)
			}
		}
	}
	if got := counterValue(t, r.prover.m.ProofsOK); got != 6 {
		t.Fatalf("proofs ok = %v, want 6", got)
	}

	// Settle after the third deadline: three proven periods per set.
	last := deadlines[len(deadlines)-1]
	tl.clock.Set(last + 1)
	r.expectSettlement(map[uint64]abi.ChainEpoch{set1: 3 * m, set2: 3 * m}, last)

	// A piece file disappears. Find the piece set1 will be challenged on next.
	ds1 := tl.dataSet(set1)
	pieces, err := tl.client.Pieces(ctx, set1)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := tl.beacon.Randomness(ds1.NextChallengeEpoch)
	if err != nil {
		t.Fatal(err)
	}
	chs, err := DeriveChallenges(seed, set1, ds1.ChallengeRange, pieces, chain.NumChallenges)
	if err != nil {
		t.Fatal(err)
	}
	lost := chs[0].Piece
	lostPayload := payA
	if lost == b {
		lostPayload = payB
	}
	if err := os.Remove(r.blobOf(lost)); err != nil {
		t.Fatal(err)
	}
	faultDeadline := ds1.Deadline
	proofsBefore := len(tl.proofArrivals())
	tl.clock.Set(ds1.NextChallengeEpoch)
	// The chain agrees the lost piece is challenged.
	cs, err := tl.client.Challenges(ctx, set1)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Challenges[0].Piece != lost {
		t.Fatalf("chain challenges %v first, prover derived %v", cs.Challenges[0].Piece, lost)
	}
	waitFor(t, "set1's period to fail", 10*time.Second, func() bool { return counterValue(t, r.prover.m.ProofsFailed) == 1 })
	waitFor(t, "set2 proven", 10*time.Second, func() bool { return tl.dataSet(set2).Deadline == faultDeadline+m })
	for _, a := range tl.proofArrivals()[proofsBefore:] {
		if a.DataSetID == set1 {
			t.Fatalf("a proof for set1 was submitted although its piece is gone: %+v", a)
		}
	}
	// Past the deadline the prover schedules the next period, which records the fault.
	tl.clock.Set(faultDeadline + 1)
	waitFor(t, "set1 rescheduled after the fault", 10*time.Second, func() bool { return tl.dataSet(set1).Deadline == faultDeadline+m })
	faults := tl.events(chain.EvFault, set1)
	if len(faults) != 1 || faults[0].Deadline != faultDeadline {
		t.Fatalf("fault events of set1 = %+v, want one for deadline %d", faults, faultDeadline)
	}
	waitFor(t, "fault counted", 5*time.Second, func() bool { return counterValue(t, r.prover.m.Faults) == 1 })
	if late := counterValue(t, r.prover.m.ProofsLate); late != 0 {
		t.Fatalf("late = %v: a failed period must not also count as late", late)
	}

	// The period after the fault is still unprovable (the piece is still gone)…
	// … until the piece is stored again.
	if _, err := r.store.Ingest(ctx, bytes.NewReader(lostPayload), &lost); err != nil {
		t.Fatal(err)
	}
	d := r.provePeriod(set1, set2)
	if d != faultDeadline+m {
		t.Fatalf("proved the period ending %d, want %d", d, faultDeadline+m)
	}
	tl.clock.Set(d + 1)
	// set1: the faulted period pays nothing, the resumed one pays a full period.
	r.expectSettlement(map[uint64]abi.ChainEpoch{set1: m, set2: 2 * m}, d)
	if ok, _ := tl.client.IsProven(ctx, set1, periodIndex(ds1, m, faultDeadline)); ok {
		t.Fatal("the faulted period is marked proven")
	}
	tl.checkProofsInWindow()
}

// expectSettlement runs one settlement round and checks, per data set, that the chain paid
// gross = rate × provenEpochs with the network fee taken, that the rail is settled to until,
// and that the payee's funds grew by exactly the net amounts.
func (r *provingRig) expectSettlement(provenEpochs map[uint64]abi.ChainEpoch, until abi.ChainEpoch) {
	r.t.Helper()
	ctx := context.Background()
	before := r.tl.funds(r.spAddr)
	got, err := r.settler.SettleOnce(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	if len(got) != len(provenEpochs) {
		r.t.Fatalf("settlements %+v, want one per data set %v", got, provenEpochs)
	}
	net := big.Zero()
	for _, s := range got {
		ds := r.tl.dataSet(s.DataSetID)
		rail, err := r.tl.client.Rail(ctx, ds.PDPRail)
		if err != nil {
			r.t.Fatal(err)
		}
		if !rail.PaymentRate.Equals(chain.StorageRate(ds.LeafCount)) {
			r.t.Fatalf("rail rate %v, want StorageRate(%d) = %v", rail.PaymentRate, ds.LeafCount, chain.StorageRate(ds.LeafCount))
		}
		want := big.Mul(rail.PaymentRate, big.NewInt(int64(provenEpochs[s.DataSetID])))
		if !s.Gross.Equals(want) {
			r.t.Errorf("set %d: gross %v, want rate %v × %d epochs = %v", s.DataSetID, s.Gross, rail.PaymentRate, provenEpochs[s.DataSetID], want)
		}
		if fee := payments.NetworkFee(want); !s.NetworkFee.Equals(fee) || !s.NetPayee.Equals(big.Sub(want, fee)) {
			r.t.Errorf("set %d: fee %v net %v, want fee %v net %v", s.DataSetID, s.NetworkFee, s.NetPayee, fee, big.Sub(want, fee))
		}
		if s.SettledUpTo != until || rail.SettledUpTo != until {
			r.t.Errorf("set %d settled to %d (rail says %d), want %d", s.DataSetID, s.SettledUpTo, rail.SettledUpTo, until)
		}
		net = big.Add(net, s.NetPayee)
	}
	after := r.tl.funds(r.spAddr)
	if d := big.Sub(after, before); !d.Equals(net) {
		r.t.Fatalf("payee funds grew by %v, settlements paid %v net", d, net)
	}
	// Nothing more to settle until the next deadline closes.
	again, err := r.settler.SettleOnce(ctx)
	if err != nil || len(again) != 0 {
		r.t.Fatalf("second settlement round: %+v, %v", again, err)
	}
}
