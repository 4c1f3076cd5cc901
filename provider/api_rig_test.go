package provider

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"io"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/filecoin-project/go-state-types/abi"
	fbig "github.com/filecoin-project/go-state-types/big"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/chain/extradata"
	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage"
)

// apiClock is a settable clock shared by the store and the provider.
type apiClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *apiClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *apiClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// apiChain is a real ledger on disk served over loopback HTTP.
type apiChain struct {
	ledger *chain.Ledger
	clock  *chain.ManualClock
	srv    *httptest.Server
	client *chain.Client
	info   *chain.Info
}

func newAPIChain(t *testing.T) *apiChain {
	t.Helper()
	clock := chain.NewManualClock(10)
	l, err := chain.Open(t.TempDir(), chain.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(chain.NewServer(l))
	c := &apiChain{ledger: l, clock: clock, srv: srv, client: chain.NewClient(srv.URL, nil)}
	t.Cleanup(func() {
		srv.Close()
		l.Close()
	})
	if c.info, err = c.client.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

func apiKey(t testing.TB, n byte) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(common.LeftPadBytes([]byte{n, 0xa9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func apiTokens(n int64) abi.TokenAmount { return fbig.Mul(fbig.NewInt(n), fbig.NewInt(1e18)) }

// fundPayer makes key a payer able to create data sets: tokens deposited and the warm-storage
// service approved as operator.
func (c *apiChain) fundPayer(t *testing.T, key *ecdsa.PrivateKey) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.client.Faucet(ctx, key, chain.FaucetBody{To: crypto.PubkeyToAddress(key.PublicKey), Amount: apiTokens(500)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.Deposit(ctx, key, chain.DepositBody{To: crypto.PubkeyToAddress(key.PublicKey), Amount: apiTokens(400)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.SetOperatorApproval(ctx, key, chain.SetOperatorApprovalBody{Operator: c.info.WarmStorage, Approved: true,
		RateAllowance: apiTokens(1), LockupAllowance: apiTokens(1000), MaxLockupPeriod: chain.PDPLockupPeriod}); err != nil {
		t.Fatal(err)
	}
}

func (c *apiChain) domain() eip712.Domain {
	return eip712.Domain{ChainID: c.info.ChainID, VerifyingContract: c.info.WarmStorage}
}

// apiRig is one provider over a real store, talking to a real chain, served on loopback.
type apiRig struct {
	t     testing.TB
	chain *apiChain
	clock *apiClock
	store *storage.Store
	key   *ecdsa.PrivateKey
	reg   *prometheus.Registry
	p     *Provider
	srv   *httptest.Server
}

func newAPIRig(t testing.TB, c *apiChain, keyN byte, tweak func(*Config)) *apiRig {
	t.Helper()
	clock := &apiClock{t: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	st, err := storage.Open(t.TempDir(), storage.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	key := apiKey(t, keyN)
	reg := prometheus.NewRegistry()
	cfg := Config{Store: st, Key: key, Registerer: reg, Now: clock.Now, SweepInterval: -1,
		Pull: PullConfig{AllowHTTP: true, AllowPrivateHosts: true, RetryDelay: 10 * time.Millisecond}}
	if c != nil {
		cfg.Chain = c.client
	}
	if tweak != nil {
		tweak(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	r := &apiRig{t: t, chain: c, clock: clock, store: st, key: key, reg: reg, p: p, srv: srv}
	t.Cleanup(func() {
		srv.Close()
		p.Close()
		st.Close()
	})
	if c != nil {
		if _, err := c.client.RegisterProvider(context.Background(), key, chain.RegisterProviderBody{ServiceURL: srv.URL, Name: "sp"}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func apiPayload(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 99))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func commPOf(t testing.TB, b []byte) pdp.PieceCID {
	t.Helper()
	c, err := pdp.CommP(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// apiResp is a response with its body read.
type apiResp struct {
	*http.Response
	body []byte
}

func (r *apiRig) do(method, path string, body io.Reader, hdr ...string) apiResp {
	r.t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+path, body)
	if err != nil {
		r.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return apiResp{Response: resp, body: b}
}

func (r *apiRig) doJSON(method, path string, v any) apiResp {
	r.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		r.t.Fatal(err)
	}
	return r.do(method, path, bytes.NewReader(b), "Content-Type", "application/json")
}

func (r apiResp) want(t testing.TB, status int) apiResp {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.body)
	}
	return r
}

// wantError checks a refusal: its status, a JSON body with a code and a message.
func (r apiResp) wantError(t testing.TB, status int, code string) {
	t.Helper()
	r.want(t, status)
	var eb ErrorBody
	if err := json.Unmarshal(r.body, &eb); err != nil || eb.Message == "" {
		t.Fatalf("%s %s: error body %q is not {code, message}", r.Request.Method, r.Request.URL.Path, r.body)
	}
	if code != "" && eb.Code != code {
		t.Fatalf("%s %s: error code %q, want %q (%s)", r.Request.Method, r.Request.URL.Path, eb.Code, code, eb.Message)
	}
}

func (r apiResp) decode(t testing.TB, v any) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want JSON", ct)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// upload stores b with the one-shot flow and returns its piece.
func (r *apiRig) upload(b []byte) pdp.PieceCID {
	r.t.Helper()
	c := commPOf(r.t, b)
	resp := r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": c.String()})
	if resp.StatusCode == http.StatusOK {
		return c
	}
	resp.want(r.t, http.StatusCreated)
	r.do("PUT", resp.Header.Get("Location"), bytes.NewReader(b)).want(r.t, http.StatusNoContent)
	return c
}

// Client-side signing helpers: what the Synapse SDK does with the payer's wallet.

func signCreate(t *testing.T, dom eip712.Domain, payer *ecdsa.PrivateKey, payee common.Address, clientID int64, meta []eip712.MetadataEntry) extradata.CreateDataSet {
	t.Helper()
	id := big.NewInt(clientID)
	sig, err := dom.Sign(payer, eip712.CreateDataSet{ClientDataSetID: id, Payee: payee, Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	return extradata.CreateDataSet{Payer: crypto.PubkeyToAddress(payer.PublicKey), ClientDataSetID: id, Metadata: meta, Signature: sig}
}

func signAdd(t *testing.T, dom eip712.Domain, payer *ecdsa.PrivateKey, clientID, nonce int64, pieces []pdp.PieceCID, meta [][]eip712.MetadataEntry) extradata.AddPieces {
	t.Helper()
	data := make([][]byte, len(pieces))
	for i, p := range pieces {
		data[i] = p.CID().Bytes()
	}
	if meta == nil {
		meta = make([][]eip712.MetadataEntry, len(pieces))
	}
	sig, err := dom.Sign(payer, eip712.AddPieces{ClientDataSetID: big.NewInt(clientID), Nonce: big.NewInt(nonce), PieceData: data, PieceMetadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	return extradata.AddPieces{Nonce: big.NewInt(nonce), PieceMetadata: meta, Signature: sig}
}

func hexOf(b []byte) string { return hexutil.Encode(b) }

func addItems(pieces ...pdp.PieceCID) []map[string]any {
	out := make([]map[string]any, len(pieces))
	for i, p := range pieces {
		out[i] = map[string]any{"pieceCid": p.String(), "subPieces": []map[string]string{{"subPieceCid": p.String()}}}
	}
	return out
}

// storeHas reports whether st holds piece, failing the test when the store cannot answer: a
// bare `has, _ :=` would turn a broken store into "not stored" and pass every absence check.
func storeHas(t testing.TB, st *storage.Store, piece pdp.PieceCID) bool {
	t.Helper()
	has, err := st.Has(piece)
	if err != nil {
		t.Fatalf("store Has %v: %v", piece, err)
	}
	return has
}

// storeRefs returns piece's storage references, failing the test when the store cannot answer.
func storeRefs(t testing.TB, st *storage.Store, piece pdp.PieceCID) []uint64 {
	t.Helper()
	refs, err := st.Refs(piece)
	if err != nil {
		t.Fatalf("store Refs %v: %v", piece, err)
	}
	return refs
}
