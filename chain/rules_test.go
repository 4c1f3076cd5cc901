package chain

import (
	"errors"
	"testing"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/payments"
	"github.com/warmstore/warmstore/pdp"
)

func TestStorageRateExample(t *testing.T) {
	// Reference §5.1: 1 TiB padded (2^35 leaves) costs 28,986,906,828,702 per epoch.
	if got := StorageRate(1 << 35); !got.Equals(big.NewInt(28986906828702)) {
		t.Fatalf("rate %s", got)
	}
	if r0 := StorageRate(0); !r0.IsZero() {
		t.Fatal("empty set must be free")
	}
	if got := EgressCharge(1<<40, CDNPricePerTiB); !got.Equals(tokens(7)) {
		t.Fatalf("1 TiB egress %s", got)
	}
}

// settle settles the data set's PDP rail up to until and returns the RailSettled event.
func (w *world) settle(id uint64, until abi.ChainEpoch) *Event {
	w.t.Helper()
	ds := w.dataSet(id)
	evs := w.must(w.sp, TxSettleRail, SettleRailBody{RailID: ds.PDPRail, UntilEpoch: until})
	return findKind(evs, EvRailSettled)
}

func netOf(gross abi.TokenAmount) abi.TokenAmount { return big.Sub(gross, payments.NetworkFee(gross)) }

func TestProvingEveryPeriodPaysRateTimesEpochs(t *testing.T) {
	w := newWorld(t)
	id := w.setup(false)
	w.addPieces(id, makePiece(t, 1, 128), makePiece(t, 2, 256))
	w.now += 7
	w.schedule(id)
	act := w.dataSet(id).Activation
	m := w.cfg().ProvingPeriod
	const periods = 4
	for i := 0; i < periods; i++ {
		w.toChallenge(id)
		if err := w.prove(id); err != nil {
			t.Fatalf("period %d: %v", i, err)
		}
		w.schedule(id)
	}
	w.now = act + periods*m + 1 // past the last proven deadline, inside the next (unproven) period
	ds := w.dataSet(id)
	rate := StorageRate(ds.LeafCount)
	before := w.account(addr(w.sp)).Payments.Funds
	ev := w.settle(id, act+periods*m)
	want := big.Mul(rate, big.NewInt(int64(periods*m)))
	if ev == nil || !ev.Amount.Equals(want) {
		t.Fatalf("settled %v, want rate %s × %d epochs = %s", ev, rate, periods*m, want)
	}
	if !ev.NetPayee.Equals(netOf(want)) {
		t.Fatalf("net %s, want %s", ev.NetPayee, netOf(want))
	}
	after := w.account(addr(w.sp)).Payments.Funds
	if got := big.Sub(after, before); !got.Equals(netOf(want)) {
		t.Fatalf("provider received %s, want %s", got, netOf(want))
	}
	if ds.Faults != 0 {
		t.Fatalf("%d faults", ds.Faults)
	}
	// The open period blocks: settling to now pays nothing more and does not advance.
	ev2 := w.must(w.sp, TxSettleRail, SettleRailBody{RailID: ds.PDPRail})
	if s := findKind(ev2, EvRailSettled); s != nil && !s.Amount.IsZero() {
		t.Fatalf("open period was paid: %v", s)
	}
}

func TestMissedPeriodIsUnpaidThenPaymentResumes(t *testing.T) {
	w := newWorld(t)
	id := w.setup(false)
	w.addPieces(id, makePiece(t, 1, 128))
	w.schedule(id)
	act := w.dataSet(id).Activation
	m := w.cfg().ProvingPeriod
	rate := StorageRate(w.dataSet(id).LeafCount)

	// Period 0 proven.
	w.toChallenge(id)
	if err := w.prove(id); err != nil {
		t.Fatal(err)
	}
	w.schedule(id)
	// Period 1 missed: nothing is sent until period 2 has begun.
	w.now = act + 2*m + 1
	ev := w.settle(id, act+2*m)
	if !ev.Amount.Equals(big.Mul(rate, big.NewInt(int64(m)))) || ev.SettledUpTo != act+2*m {
		t.Fatalf("after a missed period: paid %s up to %d, want only period 0 (%s) up to %d", ev.Amount, ev.SettledUpTo, big.Mul(rate, big.NewInt(int64(m))), act+2*m)
	}
	if ds := w.dataSet(id); ds.Faults != 1 {
		t.Fatalf("faults %d, want 1 (recorded when settling past the deadline)", ds.Faults)
	}
	// The provider comes back: late NextProvingPeriod skips to period 2; no double fault.
	evs := w.schedule(id)
	if n := countKind(evs, EvFault); n != 0 {
		t.Fatalf("fault recorded twice (%d more)", n)
	}
	if ds := w.dataSet(id); ds.Deadline != act+3*m {
		t.Fatalf("deadline %d want %d", ds.Deadline, act+3*m)
	}
	w.toChallenge(id)
	if err := w.prove(id); err != nil {
		t.Fatal(err)
	}
	// A proven period can be settled before its deadline.
	ev = w.settle(id, w.now)
	if want := big.Mul(rate, big.NewInt(int64(w.now-(act+2*m)))); !ev.Amount.Equals(want) {
		t.Fatalf("resumed payment %s want %s", ev.Amount, want)
	}
}

func TestFaultRecordedForEachMissedPeriod(t *testing.T) {
	w := newWorld(t)
	id := w.setup(false)
	w.addPieces(id, makePiece(t, 1, 128))
	w.schedule(id)
	act := w.dataSet(id).Activation
	m := w.cfg().ProvingPeriod
	// Miss periods 0, 1, 2; return in period 3.
	w.now = act + 3*m + 1
	evs := w.schedule(id)
	if n := countKind(evs, EvFault); n != 3 {
		t.Fatalf("%d fault events, want 3", n)
	}
	for i, e := range evs {
		if e.Kind == EvFault && *e.Period != uint64(i) {
			t.Fatalf("fault %d for period %d", i, *e.Period)
		}
	}
	w.toChallenge(id)
	if err := w.prove(id); err != nil {
		t.Fatal(err)
	}
	// Missing period 3 as well (deadline act+4m): anyone records it after the deadline.
	w.now = act + 4*m + 1
	evs = w.must(w.other, TxRecordFaults, RecordFaultsBody{DataSetID: id})
	if countKind(evs, EvFault) != 0 {
		t.Fatal("proven period 3 recorded as fault")
	}
	w.now = act + 5*m + 1
	evs = w.must(w.other, TxRecordFaults, RecordFaultsBody{DataSetID: id})
	if countKind(evs, EvFault) != 1 || w.dataSet(id).Faults != 4 {
		t.Fatalf("faults %d", w.dataSet(id).Faults)
	}
	// Settling through all of it pays exactly the one proven period.
	ev := w.settle(id, act+5*m)
	if want := big.Mul(StorageRate(128), big.NewInt(int64(m))); !ev.Amount.Equals(want) {
		t.Fatalf("paid %s want %s", ev.Amount, want)
	}
}

func TestProofRefusals(t *testing.T) {
	w := newWorld(t)
	id := w.setup(false)
	w.addPieces(id, makePiece(t, 1, 128), makePiece(t, 2, 64))
	w.schedule(id)
	ds := w.dataSet(id)
	w.now = ds.NextChallengeEpoch
	good := w.proofs(id)

	check := func(name string, proofs []pdp.Proof, want error) {
		t.Helper()
		h := w.hash()
		_, err := w.send(w.sp, TxProvePossession, ProvePossessionBody{DataSetID: id, Proofs: proofs})
		if !errors.Is(err, want) {
			t.Fatalf("%s: got %v, want %v", name, err, want)
		}
		if w.hash() != h {
			t.Fatalf("%s: refused proof changed the state", name)
		}
	}
	// Early: before the challenge epoch.
	w.now = ds.NextChallengeEpoch - 1
	check("early", good, ErrTooEarly)
	w.now = ds.NextChallengeEpoch

	// Wrong seed: answer the challenges drawn from another epoch's randomness.
	seed, err := w.beacon.Randomness(ds.NextChallengeEpoch + 1)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := getCounts(w.st, id)
	if err != nil {
		t.Fatal(err)
	}
	tree := pdp.NewSumTree(counts)
	var wrongSeed []pdp.Proof
	for _, x := range pdp.ChallengeIndices(seed, id, NumChallenges, ds.ChallengeRange) {
		pid, off, err := tree.Find(x)
		if err != nil {
			t.Fatal(err)
		}
		var p Piece
		if ok, err := getJSON(w.st, keyPiece(id, pid), &p); err != nil || !ok {
			t.Fatalf("piece %d: found %v, %v", pid, ok, err)
		}
		wrongSeed = append(wrongSeed, w.pieces[p.CID].prove(off))
	}
	check("wrong seed", wrongSeed, ErrInvalidProof)

	// Wrong leaf: one leaf byte flipped.
	bad := append([]pdp.Proof(nil), good...)
	bad[2].Leaf[0] ^= 1
	check("wrong leaf", bad, ErrInvalidProof)

	// Root presented as a leaf with an empty path.
	rootAsLeaf := append([]pdp.Proof(nil), good...)
	rootAsLeaf[0] = pdp.Proof{Leaf: w.pieces[w.dataSetPiece(id, 0)].cid.Root}
	check("root as leaf", rootAsLeaf, ErrInvalidProof)

	// Short of five challenges.
	check("four proofs", good[:4], ErrInvalidProof)

	// Late: after the deadline.
	w.now = ds.Deadline + 1
	check("late", good, ErrTooLate)

	// In time, the honest proof passes; a second one in the same period is refused.
	w.now = ds.Deadline
	if _, err := w.send(w.sp, TxProvePossession, ProvePossessionBody{DataSetID: id, Proofs: good}); err != nil {
		t.Fatal(err)
	}
	check("twice", good, ErrAlreadyProven)
}

// onlyChallenged fails the test, saying why, unless every current challenge of data set id
// falls in piece pieceID.
func (w *world) onlyChallenged(id, pieceID uint64, why string) {
	w.t.Helper()
	cs, err := w.view().Challenges(id)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, ch := range cs.Challenges {
		if ch.PieceID != pieceID {
			w.t.Fatalf("%s: %+v", why, ch)
		}
	}
}

// dataSetPiece returns the CID of the piece that challenge i of the current period hits.
func (w *world) dataSetPiece(id uint64, i int) pdp.PieceCID {
	cs, err := w.view().Challenges(id)
	if err != nil {
		w.t.Fatal(err)
	}
	return cs.Challenges[i].Piece
}

func TestPiecesAddedMidPeriodAreChallengedFromTheNextPeriod(t *testing.T) {
	w := newWorld(t)
	id := w.setup(false)
	a, b := makePiece(t, 1, 128), makePiece(t, 2, 128)
	w.addPieces(id, a)
	w.schedule(id)
	w.now += 10
	w.addPieces(id, b) // mid-period
	ds := w.dataSet(id)
	if ds.ChallengeRange != a.cid.LeafCount() || ds.LeafCount != a.cid.LeafCount()+b.cid.LeafCount() {
		t.Fatalf("range %d leaves %d", ds.ChallengeRange, ds.LeafCount)
	}
	w.toChallenge(id)
	w.onlyChallenged(id, 0, "piece added mid-period was challenged")
	if err := w.prove(id); err != nil {
		t.Fatal(err)
	}
	w.schedule(id)
	if ds := w.dataSet(id); ds.ChallengeRange != a.cid.LeafCount()+b.cid.LeafCount() {
		t.Fatalf("next period range %d", ds.ChallengeRange)
	}
	// The rate followed the leaf count as soon as the piece was added.
	r := w.rail(w.dataSet(id).PDPRail)
	if !r.PaymentRate.Equals(StorageRate(256)) {
		t.Fatalf("rate %s want %s", r.PaymentRate, StorageRate(256))
	}
}

func (w *world) removeBody(id uint64, ids ...uint64) SchedulePieceRemovalsBody {
	ds := w.dataSet(id)
	sig, err := w.eng.Domain().Sign(w.payer, eip712.SchedulePieceRemovals{ClientDataSetID: ds.ClientDataSetID.Int, PieceIDs: toStdInts(ids)})
	if err != nil {
		w.t.Fatal(err)
	}
	return SchedulePieceRemovalsBody{DataSetID: id, PieceIDs: ids, Signature: sig}
}

func TestRemovalsApplyAtTheBoundary(t *testing.T) {
	w := newWorld(t)
	id := w.setup(false)
	a, b := makePiece(t, 1, 128), makePiece(t, 2, 64)
	w.addPieces(id, a, b)
	w.schedule(id)
	w.now += 5
	w.must(w.sp, TxSchedulePieceRemovals, w.removeBody(id, 0))
	ds := w.dataSet(id)
	if ds.LeafCount != 192 || ds.ChallengeRange != 192 {
		t.Fatalf("removal applied early: leaves %d range %d", ds.LeafCount, ds.ChallengeRange)
	}
	rail := w.rail(ds.PDPRail)
	if !rail.PaymentRate.Equals(StorageRate(192)) {
		t.Fatal("rate dropped before the boundary")
	}
	// Scheduling the same piece again is refused.
	if _, err := w.send(w.sp, TxSchedulePieceRemovals, w.removeBody(id, 0)); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("duplicate removal: %v", err)
	}
	w.toChallenge(id)
	if err := w.prove(id); err != nil {
		t.Fatal(err)
	}
	evs := w.schedule(id)
	if countKind(evs, EvPiecesRemoved) != 1 {
		t.Fatal("no PiecesRemoved at the boundary")
	}
	ds = w.dataSet(id)
	if ds.LeafCount != 64 || ds.ChallengeRange != 64 {
		t.Fatalf("after boundary: leaves %d range %d", ds.LeafCount, ds.ChallengeRange)
	}
	rail = w.rail(ds.PDPRail)
	if !rail.PaymentRate.Equals(StorageRate(64)) {
		t.Fatalf("rate %s want %s", rail.PaymentRate, StorageRate(64))
	}
	w.toChallenge(id)
	w.onlyChallenged(id, 1, "removed piece challenged")
	if err := w.prove(id); err != nil {
		t.Fatal(err)
	}
}

func TestSignatureRefusals(t *testing.T) {
	w := newWorld(t)
	id := w.setup(false)
	p := makePiece(t, 1, 128)

	refused := func(name string, tx *Tx, want error) {
		t.Helper()
		h := w.hash()
		if _, err := w.apply(tx); !errors.Is(err, want) {
			t.Fatalf("%s: got %v, want %v", name, err, want)
		}
		if w.hash() != h {
			t.Fatalf("%s: refused transaction changed the state", name)
		}
	}
	// Client authorization signed by someone other than the payer.
	refused("wrong signer", w.tx(w.sp, TxAddPieces, w.addBody(id, w.other, p)), ErrWrongSigner)
	// Payload changed after the payer signed it.
	body := w.addBody(id, w.payer, p)
	body.Pieces = []pdp.PieceCID{makePiece(t, 9, 128).cid}
	refused("tampered authorization", w.tx(w.sp, TxAddPieces, body), ErrWrongSigner)
	// A valid authorization works once; its nonce cannot be used again.
	good := w.addBody(id, w.payer, p)
	if _, err := w.send(w.sp, TxAddPieces, good); err != nil {
		t.Fatal(err)
	}
	refused("replayed authorization nonce", w.tx(w.sp, TxAddPieces, good), ErrNonceUsed)
	// The same signed transaction twice: the sender nonce is spent.
	tx := w.tx(w.payer, TxFaucet, FaucetBody{Amount: tokens(1)})
	if _, err := w.apply(tx); err != nil {
		t.Fatal(err)
	}
	refused("replayed transaction", tx, ErrBadNonce)
	// Transaction body edited after signing.
	tx = w.tx(w.payer, TxFaucet, FaucetBody{Amount: tokens(1)})
	tx.Body = []byte(`{"to":"0x0000000000000000000000000000000000000000","amount":"999"}`)
	refused("tampered transaction", tx, ErrWrongSigner)
	// Malformed body, unknown kind, a CreateDataSet replay and a non-provider creating.
	refused("unknown field", w.tx(w.payer, TxFaucet, map[string]any{"amount": "1", "bogus": 1}), ErrMalformed)
	refused("unknown kind", w.tx(w.payer, TxKind("Mint"), FaucetBody{}), ErrUnknownKind)
	sig, _ := w.eng.Domain().Sign(w.payer, eip712.CreateDataSet{ClientDataSetID: big.NewInt(1).Int, Payee: addr(w.sp)})
	refused("replayed clientDataSetId", w.tx(w.sp, TxCreateDataSet, CreateDataSetBody{Payer: addr(w.payer), ClientDataSetID: big.NewInt(1), Signature: sig}), ErrNonceUsed)
	refused("not a provider", w.tx(w.other, TxCreateDataSet, CreateDataSetBody{Payer: addr(w.payer), ClientDataSetID: big.NewInt(2), Signature: sig}), ErrUnauthorized)
	// Someone else's data set.
	refused("foreign data set", w.tx(w.other, TxNextProvingPeriod, NextProvingPeriodBody{DataSetID: id, ChallengeEpoch: w.now + 100}), ErrUnauthorized)
}

func TestNextProvingPeriodWindowRules(t *testing.T) {
	w := newWorld(t)
	id := w.setup(false)
	w.addPieces(id, makePiece(t, 1, 128))
	m, win := w.cfg().ProvingPeriod, w.cfg().ChallengeWindow
	for _, ce := range []abi.ChainEpoch{w.now + m - win - 1, w.now + m + 1, w.now + 1} {
		if _, err := w.send(w.sp, TxNextProvingPeriod, NextProvingPeriodBody{DataSetID: id, ChallengeEpoch: ce}); err == nil {
			t.Fatalf("challenge epoch %d (now %d) accepted", ce, w.now)
		}
	}
	w.schedule(id)
	if _, err := w.send(w.sp, TxNextProvingPeriod, NextProvingPeriodBody{DataSetID: id, ChallengeEpoch: w.now + 2*m - win}); !errors.Is(err, ErrTooEarly) {
		t.Fatalf("second schedule in one period: %v", err)
	}
}

func TestCDNUsageAndFaucet(t *testing.T) {
	w := newWorld(t)
	id := w.setup(true)
	ds := w.dataSet(id)
	if ds.CDNRail == 0 || ds.CacheMissRail == 0 {
		t.Fatal("no CDN rails")
	}
	spBefore := w.account(addr(w.sp)).Payments.Funds
	beamBefore := w.account(w.cfg().FilBeam).Payments.Funds
	evs := w.must(w.edge, TxReportUsage, ReportUsageBody{DataSetID: id, CDNBytes: 1 << 30, CacheMissBytes: 1 << 29})
	cdn, miss := EgressCharge(1<<30, CDNPricePerTiB), EgressCharge(1<<29, CacheMissPricePerTiB)
	if e := findKind(evs, EvUsageReported); e == nil || !e.Amount.Equals(big.Add(cdn, miss)) {
		t.Fatalf("usage event %v", evs)
	}
	if got := big.Sub(w.account(w.cfg().FilBeam).Payments.Funds, beamBefore); !got.Equals(netOf(cdn)) {
		t.Fatalf("edge beneficiary got %s want %s", got, netOf(cdn))
	}
	if got := big.Sub(w.account(addr(w.sp)).Payments.Funds, spBefore); !got.Equals(netOf(miss)) {
		t.Fatalf("provider got %s want %s", got, netOf(miss))
	}
	if _, err := w.send(w.other, TxReportUsage, ReportUsageBody{DataSetID: id, CDNBytes: 1}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("unauthorized edge: %v", err)
	}
	// More usage than the CDN lockup covers is refused until the payer tops up.
	if _, err := w.send(w.edge, TxReportUsage, ReportUsageBody{DataSetID: id, CDNBytes: 1 << 40}); err == nil {
		t.Fatal("usage beyond the lockup accepted")
	}
	w.must(w.payer, TxTopUpCDN, TopUpCDNBody{DataSetID: id, CDNAmount: tokens(7), CacheMissAmount: big.Zero()})
	w.must(w.edge, TxReportUsage, ReportUsageBody{DataSetID: id, CDNBytes: 1 << 40})

	// Faucet limits; a ledger without a faucet refuses it.
	if _, err := w.send(w.other, TxFaucet, FaucetBody{Amount: tokens(1001)}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("over-limit faucet: %v", err)
	}
	cfg := DefaultConfig()
	cfg.Faucet = false
	eng, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := NewTx(w.other, cfg.ChainID, TxFaucet, 0, FaucetBody{Amount: tokens(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.Apply(NewMemStore(), tx, 1, w.beacon); !errors.Is(err, ErrFaucetDisabled) {
		t.Fatalf("faucet on a non-devnet: %v", err)
	}
}

func TestTerminateSettleDelete(t *testing.T) {
	w := newWorld(t)
	id := w.setup(false)
	w.addPieces(id, makePiece(t, 1, 128))
	w.schedule(id)
	w.toChallenge(id)
	if err := w.prove(id); err != nil {
		t.Fatal(err)
	}
	w.schedule(id)
	// Payer-consent termination through the provider: ends now.
	sig, _ := w.eng.Domain().Sign(w.payer, eip712.TerminateService{DataSetID: big.NewInt(int64(id)).Int})
	evs := w.must(w.sp, TxTerminateService, TerminateServiceBody{DataSetID: id, Signature: sig})
	term := findKind(evs, EvServiceTerminated)
	if term == nil || term.EndEpoch != w.now {
		t.Fatalf("termination %v (now %d)", term, w.now)
	}
	if _, err := w.send(w.sp, TxAddPieces, w.addBody(id, w.payer, makePiece(t, 3, 64))); !errors.Is(err, ErrTerminated) {
		t.Fatalf("add after termination: %v", err)
	}
	w.now = w.dataSet(id).Deadline + 1
	// After the end epoch the provider can no longer schedule, prove or queue removals.
	for _, refused := range []struct {
		kind TxKind
		body any
	}{
		{TxNextProvingPeriod, NextProvingPeriodBody{DataSetID: id, ChallengeEpoch: w.now + w.cfg().ChallengeFinality}},
		{TxProvePossession, ProvePossessionBody{DataSetID: id, Proofs: make([]pdp.Proof, NumChallenges)}},
		{TxSchedulePieceRemovals, w.removeBody(id, 0)},
	} {
		if _, err := w.send(w.sp, refused.kind, refused.body); !errors.Is(err, ErrTerminated) {
			t.Fatalf("%s after the end epoch: %v", refused.kind, err)
		}
	}
	evs = w.must(w.sp, TxDeleteDataSet, DeleteDataSetBody{DataSetID: id})
	if findKind(evs, EvDataSetDeleted) == nil {
		t.Fatal("not deleted")
	}
	if _, err := w.view().DataSet(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted data set visible: %v", err)
	}
	// The payer gets back everything that was not paid: its lockup is all released.
	acc := w.account(addr(w.payer))
	if !acc.Payments.LockupCurrent.IsZero() {
		t.Fatalf("payer lockup %s after deletion", acc.Payments.LockupCurrent)
	}
}

func TestWithdrawAndNormalTermination(t *testing.T) {
	w := newWorld(t)
	id := w.setup(false)
	w.addPieces(id, makePiece(t, 1, 128))
	w.schedule(id)
	w.toChallenge(id)
	if err := w.prove(id); err != nil {
		t.Fatal(err)
	}
	ev := w.settle(id, w.now)
	// The provider takes its earnings out of the payments account into its wallet.
	funds := w.account(addr(w.sp)).Payments.Funds
	if funds.LessThan(*ev.NetPayee) {
		t.Fatalf("provider funds %s < settled %s", funds, ev.NetPayee)
	}
	w.must(w.sp, TxWithdraw, WithdrawBody{Amount: funds})
	if acc := w.account(addr(w.sp)); !acc.Wallet.Equals(funds) || !acc.Payments.Funds.IsZero() {
		t.Fatalf("after withdrawal: %+v", acc)
	}
	if _, err := w.send(w.sp, TxWithdraw, WithdrawBody{Amount: tokens(1)}); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("overdraw: %v", err)
	}
	// The payer locks up 30 days of rate, so it cannot withdraw everything.
	payer := w.account(addr(w.payer)).Payments
	if _, err := w.send(w.payer, TxWithdraw, WithdrawBody{Amount: payer.Funds}); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("payer withdrew its lockup: %v", err)
	}
	// Payer terminates without consent: the service runs for the lockup period.
	w.schedule(id)
	if _, err := w.send(w.other, TxTerminateService, TerminateServiceBody{DataSetID: id}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("stranger terminated: %v", err)
	}
	evs := w.must(w.payer, TxTerminateService, TerminateServiceBody{DataSetID: id})
	end := findKind(evs, EvServiceTerminated).EndEpoch
	if end != w.now+PDPLockupPeriod {
		t.Fatalf("end epoch %d, want now+%d = %d", end, PDPLockupPeriod, w.now+PDPLockupPeriod)
	}
	if _, err := w.send(w.sp, TxDeleteDataSet, DeleteDataSetBody{DataSetID: id}); !errors.Is(err, ErrTooEarly) {
		t.Fatalf("delete during the lockup window: %v", err)
	}
	// The provider keeps proving and keeps being paid until the end.
	w.toChallenge(id)
	if err := w.prove(id); err != nil {
		t.Fatal(err)
	}
}

func TestAbandonedDataSetCanBeDeletedAfterInactivity(t *testing.T) {
	w := newWorld(t)
	id := w.setup(true)
	w.addPieces(id, makePiece(t, 1, 128))
	w.schedule(id)
	w.toChallenge(id)
	if err := w.prove(id); err != nil {
		t.Fatal(err)
	}
	provenAt := w.now
	act := w.dataSet(id).Activation
	m := w.cfg().ProvingPeriod
	// Nobody may delete it while it is active and not terminated.
	w.now = provenAt + InactivityWindow
	if _, err := w.send(w.sp, TxDeleteDataSet, DeleteDataSetBody{DataSetID: id}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("provider deleted an active data set: %v", err)
	}
	if _, err := w.send(w.other, TxDeleteDataSet, DeleteDataSetBody{DataSetID: id}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("stranger deleted an active data set: %v", err)
	}
	// After the inactivity window anyone may clean it up.
	w.now = provenAt + InactivityWindow + 1
	spBefore := w.account(addr(w.sp)).Payments.Funds
	evs := w.must(w.other, TxDeleteDataSet, DeleteDataSetBody{DataSetID: id})
	if findKind(evs, EvDataSetDeleted) == nil {
		t.Fatal("not deleted")
	}
	var paid = big.Zero()
	for _, e := range evs {
		if e.Kind == EvRailSettled {
			paid = big.Add(paid, *e.Amount)
		}
	}
	// Paid for the one proven period only, although the rate ran for 30 days.
	want := big.Mul(StorageRate(128), big.NewInt(int64(m)))
	if !paid.Equals(want) {
		t.Fatalf("abandoned data set paid %s, want the one proven period %s (activation %d)", paid, want, act)
	}
	if got := big.Sub(w.account(addr(w.sp)).Payments.Funds, spBefore); !got.Equals(netOf(want)) {
		t.Fatalf("provider received %s want %s", got, netOf(want))
	}
	r := w.rail(w.dataSetRecord(id).PDPRail)
	if !r.Finalized {
		t.Fatal("PDP rail not finalized")
	}
}

// rail reads a rail, failing the test if it cannot.
func (w *world) rail(id uint64) *RailInfo {
	w.t.Helper()
	r, err := w.view().Rail(id)
	if err != nil {
		w.t.Fatalf("rail %d: %v", id, err)
	}
	return r
}

// dataSetRecord reads a data set record even after deletion.
func (w *world) dataSetRecord(id uint64) *DataSet {
	var ds DataSet
	if ok, err := getJSON(w.st, keyDataSet(id), &ds); !ok || err != nil {
		w.t.Fatalf("data set %d record: %v", id, err)
	}
	return &ds
}

// The lifecycle reserve (the PDP rail's fixed lockup) pays each call's fee and is topped back
// up to 0.10 USDFC + pending before it would run short.
func TestLifecycleReserveReplenishes(t *testing.T) {
	w := newWorld(t)
	id := w.setup(false)
	replenished := false
	for i := 0; i < 120; i++ {
		before := w.dataSet(id).Reserve
		w.addPieces(id, makePiece(t, uint64(i), 4))
		ds := w.dataSet(id)
		rail := w.rail(ds.PDPRail)
		if !rail.LockupFixed.Equals(ds.Reserve) {
			t.Fatalf("add %d: rail fixed lockup %s, reserve %s", i, rail.LockupFixed, ds.Reserve)
		}
		if ds.Reserve.GreaterThan(before) {
			replenished = true
		}
		if ds.Reserve.LessThan(ReplenishThreshold) {
			t.Fatalf("add %d: reserve %s fell under the threshold", i, ds.Reserve)
		}
	}
	if !replenished {
		t.Fatal("reserve never replenished")
	}
}
