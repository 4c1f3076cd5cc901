package chain

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/filecoin-project/go-state-types/big"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/payments"
	"github.com/warmstore/warmstore/pdp"
)

func TestHTTPClientEndToEnd(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	openWorld(t, w, t.TempDir())
	defer w.led.Close()
	srv := httptest.NewServer(NewServer(w.led))
	defer srv.Close()
	c := NewClient(srv.URL, nil)

	info, err := c.Info(ctx)
	if err != nil || info.ChainID != w.cfg().ChainID || info.ProvingPeriod != 120 {
		t.Fatalf("info %+v %v", info, err)
	}
	fws := info.WarmStorage
	mustSend := func(rc *Receipt, err error) *Receipt {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return rc
	}
	mustSend(c.Faucet(ctx, w.payer, FaucetBody{Amount: tokens(100)}))
	mustSend(c.Deposit(ctx, w.payer, DepositBody{Amount: tokens(50)}))
	mustSend(c.SetOperatorApproval(ctx, w.payer, SetOperatorApprovalBody{Operator: fws, Approved: true,
		RateAllowance: tokens(1), LockupAllowance: tokens(100), MaxLockupPeriod: PDPLockupPeriod}))
	mustSend(c.RegisterProvider(ctx, w.sp, RegisterProviderBody{ServiceURL: "https://sp.example", Name: "sp"}))
	provs, err := c.Providers(ctx)
	if err != nil || len(provs) != 1 || provs[0].ServiceURL != "https://sp.example" {
		t.Fatalf("providers %v %v", provs, err)
	}

	dom, err := c.Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := dom.Sign(w.payer, eip712.CreateDataSet{ClientDataSetID: big.NewInt(42).Int, Payee: addr(w.sp)})
	rc := mustSend(c.CreateDataSet(ctx, w.sp, CreateDataSetBody{Payer: addr(w.payer), ClientDataSetID: big.NewInt(42), Signature: sig}))
	id := findKind(rc.Events, EvDataSetCreated).DataSetID

	p := makePiece(t, 5, 256)
	w.pieces[p.cid] = p
	asig, _ := dom.Sign(w.payer, eip712.AddPieces{ClientDataSetID: big.NewInt(42).Int, Nonce: big.NewInt(1).Int,
		PieceData: [][]byte{p.cid.CID().Bytes()}, PieceMetadata: [][]eip712.MetadataEntry{{}}})
	mustSend(c.AddPieces(ctx, w.sp, AddPiecesBody{DataSetID: id, Nonce: big.NewInt(1), Pieces: []pdp.PieceCID{p.cid},
		PieceMetadata: [][]eip712.MetadataEntry{{}}, Signature: asig}))
	pieces, err := c.Pieces(ctx, id)
	if err != nil || len(pieces) != 1 || pieces[0].CID != p.cid {
		t.Fatalf("pieces %v %v", pieces, err)
	}

	head, _ := c.Head(ctx)
	ce := head.Epoch + 100
	mustSend(c.NextProvingPeriod(ctx, w.sp, NextProvingPeriodBody{DataSetID: id, ChallengeEpoch: ce}))
	// The challenges do not exist before the challenge epoch, and the error says so over the wire.
	if _, err := c.Challenges(ctx, id); !errors.Is(err, ErrFutureEpoch) {
		t.Fatalf("early challenges: %v", err)
	}
	if _, err := c.Randomness(ctx, ce); !errors.Is(err, ErrFutureEpoch) {
		t.Fatalf("future randomness: %v", err)
	}

	// A follower sees every event in order, waking on new ones.
	var mu sync.Mutex
	var seen []Event
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.Follow(fctx, 0, func(e Event) error {
			mu.Lock()
			seen = append(seen, e)
			mu.Unlock()
			return nil
		})
	}()

	w.now = ce
	w.clock.Set(ce)
	cs, err := c.Challenges(ctx, id)
	if err != nil || len(cs.Challenges) != NumChallenges {
		t.Fatalf("challenges %v %v", cs, err)
	}
	var proofs []pdp.Proof
	for _, ch := range cs.Challenges {
		proofs = append(proofs, w.pieces[ch.Piece].prove(ch.Offset))
	}
	if _, err := c.ProvePossession(ctx, w.sp, ProvePossessionBody{DataSetID: id, Proofs: proofs[:3]}); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("short proof over HTTP: %v", err)
	}
	rc = mustSend(c.ProvePossession(ctx, w.sp, ProvePossessionBody{DataSetID: id, Proofs: proofs}))
	if findKind(rc.Events, EvProven) == nil {
		t.Fatal("no proven event")
	}

	// Concurrent senders on one key get consecutive nonces.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Faucet(ctx, w.other, FaucetBody{Amount: tokens(1)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	acc, err := c.Account(ctx, addr(w.other))
	if err != nil || !acc.Wallet.Equals(tokens(8)) {
		t.Fatalf("wallet %v %v", acc, err)
	}
	// A second client with a stale nonce view recovers from the conflict.
	c2 := NewClient(srv.URL, nil)
	c2.nonces[addr(w.other)] = 0
	if _, err := c2.Faucet(ctx, w.other, FaucetBody{Amount: tokens(1)}); err != nil {
		t.Fatalf("stale nonce not recovered: %v", err)
	}

	sh, err := c.StateHash(ctx)
	if h := w.hash(); err != nil || sh != h {
		t.Fatalf("state hash over HTTP %x, ledger %x", sh, h)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if uint64(n) == w.led.Head().EventSeq || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if uint64(len(seen)) != w.led.Head().EventSeq {
		t.Fatalf("follower saw %d events, ledger has %d", len(seen), w.led.Head().EventSeq)
	}
	for i, e := range seen {
		if e.Seq != uint64(i+1) {
			t.Fatalf("follower event %d has seq %d", i, e.Seq)
		}
	}
	// Malformed requests.
	if _, err := c.DataSet(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing data set: %v", err)
	}
	// A payments rule survives the trip: withdrawing more than is available.
	if _, err := c.Withdraw(ctx, w.payer, WithdrawBody{Amount: tokens(1000)}); !errors.Is(err, ErrInsufficientFunds) || !errors.Is(err, payments.ErrWithdrawExceedsAvailable) {
		t.Fatalf("overdraw over HTTP: %v", err)
	}
	if _, err := c.SubmitTx(ctx, &Tx{Kind: TxFaucet}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("unsigned tx: %v", err)
	}
}

func TestServerMetrics(t *testing.T) {
	w := newWorld(t)
	openWorld(t, w, t.TempDir())
	defer w.led.Close()
	s := NewServer(w.led)
	s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	if err := s.Register(reg); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := NewClient(srv.URL, nil)
	ctx := context.Background()
	if _, err := c.Faucet(ctx, w.payer, FaucetBody{Amount: tokens(1)}); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Faucet(ctx, w.payer, FaucetBody{Amount: tokens(100000)})
	counts := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "warmstore_chain_transactions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := ""
			for _, lp := range m.GetLabel() {
				key += lp.GetName() + "=" + lp.GetValue() + " "
			}
			counts[key] = m.GetCounter().GetValue()
		}
	}
	if counts["kind=Faucet result=ok "] != 1 || counts["kind=Faucet result=invalid_argument "] != 1 {
		t.Fatalf("transaction counters %v", counts)
	}
}

// TestHTTPClientLifecycle walks a CDN data set through every remaining client method over HTTP.
func TestHTTPClientLifecycle(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	openWorld(t, w, t.TempDir())
	defer w.led.Close()
	srv := httptest.NewServer(NewServer(w.led))
	defer srv.Close()
	c := NewClient(srv.URL, nil)
	id := w.setup(true) // through the ledger directly; the client sees the same state
	w.nonces = map[common.Address]uint64{}
	ok := func(_ *Receipt, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	info, err := c.Info(ctx)
	if err != nil || info.EpochDurationMs != DefaultEpochDuration.Milliseconds() {
		t.Fatalf("info %+v %v", info, err)
	}
	if p, err := c.Provider(ctx, addr(w.sp)); err != nil || p.Payee != addr(w.sp) {
		t.Fatalf("provider %v %v", p, err)
	}
	if sets, err := c.DataSets(ctx, addr(w.sp), addr(w.payer)); err != nil || len(sets) != 1 || !sets[0].WithCDN {
		t.Fatalf("data sets %v %v", sets, err)
	}
	if sets, err := c.DataSets(ctx, addr(w.other), common.Address{}); err != nil || len(sets) != 0 {
		t.Fatalf("other provider's data sets %v %v", sets, err)
	}
	if a, err := c.Approval(ctx, addr(w.payer), info.WarmStorage); err != nil || !a.Approved {
		t.Fatalf("approval %v %v", a, err)
	}
	dom, _ := c.Domain(ctx)
	ds, _ := c.DataSet(ctx, id)
	p1, p2 := makePiece(t, 1, 128), makePiece(t, 2, 128)
	w.pieces[p1.cid], w.pieces[p2.cid] = p1, p2
	pieces := []pdp.PieceCID{p1.cid, p2.cid}
	sig, _ := dom.Sign(w.payer, AddPiecesAuthorization(ds.ClientDataSetID.Int, big.NewInt(7).Int, pieces, nil))
	ok(c.AddPieces(ctx, w.sp, AddPiecesBody{DataSetID: id, Nonce: big.NewInt(7), Pieces: pieces, Signature: sig}))

	ds, _ = c.DataSet(ctx, id)
	ce, can := info.Config().NextChallengeEpoch(ds, w.now)
	if !can {
		t.Fatal("cannot schedule")
	}
	ok(c.NextProvingPeriod(ctx, w.sp, NextProvingPeriodBody{DataSetID: id, ChallengeEpoch: ce}))
	rsig, _ := dom.Sign(w.payer, SchedulePieceRemovalsAuthorization(ds.ClientDataSetID.Int, []uint64{1}))
	ok(c.SchedulePieceRemovals(ctx, w.sp, SchedulePieceRemovalsBody{DataSetID: id, PieceIDs: []uint64{1}, Signature: rsig}))
	w.now = ce
	w.clock.Set(ce)
	cs, err := c.Challenges(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.Randomness(ctx, ce); err != nil || r != cs.Seed {
		t.Fatalf("randomness %x vs seed %x (%v)", r, cs.Seed, err)
	}
	var proofs []pdp.Proof
	for _, ch := range cs.Challenges {
		proofs = append(proofs, w.pieces[ch.Piece].prove(ch.Offset))
	}
	ok(c.ProvePossession(ctx, w.sp, ProvePossessionBody{DataSetID: id, Proofs: proofs}))
	ds, _ = c.DataSet(ctx, id)
	if proven, err := c.IsProven(ctx, id, 0); err != nil || !proven {
		t.Fatalf("period 0 proven: %v %v", proven, err)
	}
	ok(c.SettleRail(ctx, w.sp, SettleRailBody{RailID: ds.PDPRail}))
	rail, err := c.Rail(ctx, ds.PDPRail)
	if err != nil || rail.SettledUpTo != w.now {
		t.Fatalf("rail %+v %v (now %d)", rail, err, w.now)
	}
	// Miss the next period; anyone records the fault.
	w.now = ds.Deadline + w.cfg().ProvingPeriod + 1
	w.clock.Set(w.now)
	rc, err := c.RecordFaults(ctx, w.other, RecordFaultsBody{DataSetID: id})
	if err != nil || countKind(rc.Events, EvFault) != 1 {
		t.Fatalf("record faults %v %v", rc, err)
	}
	// CDN usage by the edge, a top-up by the payer.
	ok(c.ReportUsage(ctx, w.edge, ReportUsageBody{DataSetID: id, CDNBytes: 1 << 30}))
	ok(c.TopUpCDN(ctx, w.payer, TopUpCDNBody{DataSetID: id, CDNAmount: tokens(1), CacheMissAmount: tokens(1)}))
	// The provider withdraws what it earned.
	acc, _ := c.Account(ctx, addr(w.sp))
	ok(c.Withdraw(ctx, w.sp, WithdrawBody{Amount: acc.Payments.Funds}))
	// Consent termination, then deletion once the last period has passed.
	tsig, _ := dom.Sign(w.payer, TerminateServiceAuthorization(id))
	ok(c.TerminateService(ctx, w.sp, TerminateServiceBody{DataSetID: id, Signature: tsig}))
	if _, err := c.DeleteDataSet(ctx, w.other, DeleteDataSetBody{DataSetID: id}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("stranger deletes: %v", err)
	}
	var apiErr *APIError
	if _, err := c.DeleteDataSet(ctx, w.sp, DeleteDataSetBody{DataSetID: 99}); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Fatalf("missing data set: %v", err)
	}
	if _, err := c.DeleteDataSet(ctx, w.sp, DeleteDataSetBody{DataSetID: id}); !errors.Is(err, ErrPayments) {
		t.Fatalf("delete while the period holding the end epoch is open: %v", err)
	}
	ds, _ = c.DataSet(ctx, id)
	w.now = ds.Activation + (ds.EndEpoch-ds.Activation+w.cfg().ProvingPeriod-1)/w.cfg().ProvingPeriod*w.cfg().ProvingPeriod + 1
	w.clock.Set(w.now)
	ok(c.DeleteDataSet(ctx, w.sp, DeleteDataSetBody{DataSetID: id}))
	if _, err := c.DataSet(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted data set: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"chain id":      func(c *Config) { c.ChainID = 0 },
		"period":        func(c *Config) { c.ProvingPeriod = 0 },
		"window":        func(c *Config) { c.ChallengeWindow = c.ProvingPeriod },
		"finality":      func(c *Config) { c.ChallengeFinality = -1 },
		"no room":       func(c *Config) { c.ChallengeFinality = c.ProvingPeriod - c.ChallengeWindow + 1 },
		"addresses":     func(c *Config) { c.WarmStorage = common.Address{} },
		"faucet limit":  func(c *Config) { c.FaucetLimit = big.Zero() },
		"huge finality": func(c *Config) { c.ChallengeFinality = MaxFinality },
	} {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
