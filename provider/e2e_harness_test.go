package provider

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/pdp"
)

// testLedger is a real ledger on disk with a hand-moved clock and a fixed beacon, served over
// loopback HTTP. Every transaction posted to it passes through a recorder that notes the epoch
// it arrived at and, for proofs, the window that was open then.
type testLedger struct {
	t      testing.TB
	ledger *chain.Ledger
	clock  *chain.ManualClock
	beacon chain.Beacon
	srv    *httptest.Server
	client *chain.Client

	mu     sync.Mutex
	proofs []proofArrival
	// failProofs is how many of the next ProvePossession posts answer 503 without reaching
	// the ledger (a flaky chain endpoint).
	failProofs int
}

// proofArrival is one ProvePossession transaction as the chain received it.
type proofArrival struct {
	DataSetID        uint64
	Epoch            abi.ChainEpoch
	WindowLo, Deadln abi.ChainEpoch
	Open             bool // a period was scheduled when it arrived
}

func newTestLedger(t testing.TB, cfg chain.Config) *testLedger {
	t.Helper()
	beacon, err := chain.NewSecretBeacon([]byte("warmstore provider e2e beacon secret"))
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLedger{t: t, clock: chain.NewManualClock(1000), beacon: beacon}
	tl.ledger, err = chain.Open(filepath.Join(t.TempDir(), "chain"), chain.Options{Config: &cfg, Clock: tl.clock, Beacon: beacon})
	if err != nil {
		t.Fatal(err)
	}
	api := chain.NewServer(tl.ledger)
	api.MaxWait = 200 * time.Millisecond
	tl.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/tx" {
			body, _ := io.ReadAll(r.Body)
			if tl.note(body) {
				http.Error(w, "injected outage", http.StatusServiceUnavailable)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		api.ServeHTTP(w, r)
	}))
	tl.client = chain.NewClient(tl.srv.URL, nil)
	t.Cleanup(func() {
		tl.srv.Close()
		tl.ledger.Close()
	})
	return tl
}

// note records a proof's arrival and reports whether to fail it.
func (tl *testLedger) note(body []byte) (fail bool) {
	var tx chain.Tx
	if json.Unmarshal(body, &tx) != nil || tx.Kind != chain.TxProvePossession {
		return false
	}
	var b chain.ProvePossessionBody
	if json.Unmarshal(tx.Body, &b) != nil {
		return false
	}
	a := proofArrival{DataSetID: b.DataSetID, Epoch: tl.ledger.Epoch()}
	_ = tl.ledger.Read(func(v *chain.View) error {
		ds, err := v.DataSet(b.DataSetID)
		if err != nil {
			return err
		}
		cfg := tl.ledger.Config()
		a.Open = ds.Deadline != 0
		a.Deadln = ds.Deadline
		a.WindowLo = max(ds.NextChallengeEpoch, ds.Deadline-cfg.ChallengeWindow)
		return nil
	})
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.proofs = append(tl.proofs, a)
	if tl.failProofs > 0 {
		tl.failProofs--
		return true
	}
	return false
}

// failNextProofs makes the next n proof submissions fail with 503.
func (tl *testLedger) failNextProofs(n int) {
	tl.mu.Lock()
	tl.failProofs = n
	tl.mu.Unlock()
}

// proofArrivals returns the proofs received so far.
func (tl *testLedger) proofArrivals() []proofArrival {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]proofArrival(nil), tl.proofs...)
}

// checkProofsInWindow fails the test if any proof arrived outside its challenge window.
func (tl *testLedger) checkProofsInWindow() {
	tl.t.Helper()
	for _, a := range tl.proofArrivals() {
		if !a.Open || a.Epoch < a.WindowLo || a.Epoch > a.Deadln {
			tl.t.Errorf("proof for data set %d arrived at epoch %d outside its window [%d, %d] (open %v)", a.DataSetID, a.Epoch, a.WindowLo, a.Deadln, a.Open)
		}
	}
}

func (tl *testLedger) dataSet(id uint64) *chain.DataSet {
	tl.t.Helper()
	ds, err := tl.client.DataSet(context.Background(), id)
	if err != nil {
		tl.t.Fatal(err)
	}
	return ds
}

func (tl *testLedger) events(kind chain.EventKind, dataSet uint64) []chain.Event {
	tl.t.Helper()
	var out []chain.Event
	var after uint64
	for {
		evs, err := tl.client.Events(context.Background(), after, 1000, 0)
		if err != nil {
			tl.t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
		for _, e := range evs {
			if e.Kind == kind && (dataSet == 0 || e.DataSetID == dataSet) {
				out = append(out, e)
			}
			after = e.Seq
		}
	}
}

func (tl *testLedger) funds(a common.Address) abi.TokenAmount {
	tl.t.Helper()
	acc, err := tl.client.Account(context.Background(), a)
	if err != nil {
		tl.t.Fatal(err)
	}
	return acc.Payments.Funds
}

// testConfig is a devnet configuration with a short period so a test walks many periods.
func testConfig() chain.Config {
	cfg := chain.DefaultConfig()
	cfg.ProvingPeriod, cfg.ChallengeWindow, cfg.ChallengeFinality = 30, 10, 2
	return cfg
}

func tokens(n int64) abi.TokenAmount { return big.Mul(big.NewInt(n), big.NewInt(1e18)) }

func testKey(t testing.TB, n byte) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.ToECDSA(common.LeftPadBytes([]byte{n, 0x77}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testPayer is a client wallet: funded, deposited and approving the warm-storage service.
type testPayer struct {
	key      *ecdsa.PrivateKey
	addr     common.Address
	clientID int64
	nonce    int64
}

func newTestPayer(t testing.TB, tl *testLedger, key *ecdsa.PrivateKey) *testPayer {
	t.Helper()
	ctx := context.Background()
	c := tl.client
	in, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ *chain.Receipt, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Faucet(ctx, key, chain.FaucetBody{Amount: tokens(500)}))
	must(c.Deposit(ctx, key, chain.DepositBody{Amount: tokens(400)}))
	must(c.SetOperatorApproval(ctx, key, chain.SetOperatorApprovalBody{Operator: in.WarmStorage, Approved: true,
		RateAllowance: tokens(1), LockupAllowance: tokens(1000), MaxLockupPeriod: chain.PDPLockupPeriod}))
	return &testPayer{key: key, addr: crypto.PubkeyToAddress(key.PublicKey)}
}

// createDataSet signs the payer's CreateDataSet and sends it with the provider's key.
func (p *testPayer) createDataSet(t testing.TB, tl *testLedger, sp *ecdsa.PrivateKey) uint64 {
	t.Helper()
	ctx := context.Background()
	dom, err := tl.client.Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.clientID++
	payee := crypto.PubkeyToAddress(sp.PublicKey)
	sig, err := dom.Sign(p.key, eip712.CreateDataSet{ClientDataSetID: big.NewInt(p.clientID).Int, Payee: payee})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := tl.client.CreateDataSet(ctx, sp, chain.CreateDataSetBody{Payer: p.addr, ClientDataSetID: big.NewInt(p.clientID), Signature: sig})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rc.Events {
		if e.Kind == chain.EvDataSetCreated {
			return e.DataSetID
		}
	}
	t.Fatal("no DataSetCreated event")
	return 0
}

// addPieces signs the payer's AddPieces and sends it with the provider's key.
func (p *testPayer) addPieces(t testing.TB, tl *testLedger, sp *ecdsa.PrivateKey, id uint64, pieces ...pdp.PieceCID) {
	t.Helper()
	ctx := context.Background()
	dom, err := tl.client.Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ds := tl.dataSet(id)
	p.nonce++
	data := make([][]byte, len(pieces))
	for i, pc := range pieces {
		data[i] = pc.CID().Bytes()
	}
	meta := make([][]eip712.MetadataEntry, len(pieces))
	sig, err := dom.Sign(p.key, eip712.AddPieces{ClientDataSetID: ds.ClientDataSetID.Int, Nonce: big.NewInt(p.nonce).Int, PieceData: data, PieceMetadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tl.client.AddPieces(ctx, sp, chain.AddPiecesBody{DataSetID: id, Nonce: big.NewInt(p.nonce), Pieces: pieces, PieceMetadata: meta, Signature: sig}); err != nil {
		t.Fatal(err)
	}
}

// randomPayload returns n deterministic pseudo-random bytes.
func randomPayload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 99))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(3 * time.Millisecond)
	}
}

// counterValue reads a Prometheus counter.
func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
