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

	"github.com/filecoin-project/go-state-types/big"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warmstore/warmstore/chain/eip712"
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
