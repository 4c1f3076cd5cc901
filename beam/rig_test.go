package beam

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"io"
	"log/slog"
	mathbig "math/big"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/provider"
	"github.com/warmstore/warmstore/storage"
)

// rig is a real ledger (pebble on disk, manual clock) served over loopback, a funded payer,
// real providers (storage + provider HTTP API) behind a switchable fault layer, and an edge.
type rig struct {
	t       testing.TB
	ledger  *chain.Ledger
	chain   *chain.Client
	chainSv *httptest.Server
	payer   *ecdsa.PrivateKey
	edgeKey *ecdsa.PrivateKey
	drainer *ecdsa.PrivateKey // a second authorized edge, used to use up lockups
	domain  eip712.Domain
	nextCID int64
	nonce   int64
	origins []*origin
	dir     string // edge directory

	edge   *Edge
	edgeSv *httptest.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// origin is one provider: a real provider API over real storage, with injectable faults.
type origin struct {
	key   *ecdsa.PrivateKey
	store *storage.Store
	prov  *provider.Provider
	srv   *httptest.Server
	// corrupt flips one byte of every /piece body; delay holds back the response headers.
	corrupt atomic.Bool
	delay   atomic.Int64
	fetches atomic.Int64
}

func (o *origin) addr() common.Address { return crypto.PubkeyToAddress(o.key.PublicKey) }

func testKey(t testing.TB, n byte) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(common.LeftPadBytes([]byte{n, 0xbe, 0xa3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func usdfc(n int64) abi.TokenAmount { return big.Mul(big.NewInt(n), big.NewInt(1e18)) }

func newRig(t testing.TB, providers int) *rig {
	t.Helper()
	r := &rig{t: t, payer: testKey(t, 1), edgeKey: testKey(t, 2), drainer: testKey(t, 3), dir: filepath.Join(t.TempDir(), "edge")}
	cfg := chain.DefaultConfig()
	cfg.Edges = []common.Address{crypto.PubkeyToAddress(r.edgeKey.PublicKey), crypto.PubkeyToAddress(r.drainer.PublicKey)}
	beacon, err := chain.NewSecretBeacon([]byte("warmstore beam test beacon secret"))
	if err != nil {
		t.Fatal(err)
	}
	r.ledger, err = chain.Open(filepath.Join(t.TempDir(), "chain"), chain.Options{Config: &cfg, Clock: chain.NewManualClock(100), Beacon: beacon})
	if err != nil {
		t.Fatal(err)
	}
	api := chain.NewServer(r.ledger)
	api.MaxWait = 200 * time.Millisecond
	api.Logger = slog.New(slog.DiscardHandler)
	r.chainSv = httptest.NewServer(api)
	r.chain = chain.NewClient(r.chainSv.URL, nil)
	t.Cleanup(func() {
		r.stopEdge()
		for _, o := range r.origins {
			o.srv.Close()
			o.prov.Close()
			o.store.Close()
		}
		r.chainSv.Close()
		r.ledger.Close()
	})
	ctx := context.Background()
	r.domain, err = r.chain.Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ws := cfg.WarmStorage
	r.must(r.chain.Faucet(ctx, r.payer, chain.FaucetBody{To: r.addr(r.payer), Amount: usdfc(500)}))
	r.must(r.chain.Deposit(ctx, r.payer, chain.DepositBody{To: r.addr(r.payer), Amount: usdfc(200)}))
	r.must(r.chain.SetOperatorApproval(ctx, r.payer, chain.SetOperatorApprovalBody{Operator: ws, Approved: true,
		RateAllowance: usdfc(200), LockupAllowance: usdfc(200), MaxLockupPeriod: chain.PDPLockupPeriod}))
	for i := 0; i < providers; i++ {
		r.addOrigin(byte(10 + i))
	}
	return r
}

func (r *rig) addr(k *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(k.PublicKey) }

func (r *rig) must(_ *chain.Receipt, err error) {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) addOrigin(n byte) *origin {
	t := r.t
	o := &origin{key: testKey(t, n)}
	var err error
	o.store, err = storage.Open(filepath.Join(t.TempDir(), "sp"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o.prov, err = provider.New(provider.Config{Store: o.store, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	h := o.prov.Handler()
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		o.fetches.Add(1)
		if d := o.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		if o.corrupt.Load() {
			h.ServeHTTP(&flipWriter{ResponseWriter: w}, req)
			return
		}
		h.ServeHTTP(w, req)
	}))
	r.must(r.chain.RegisterProvider(context.Background(), o.key, chain.RegisterProviderBody{ServiceURL: o.srv.URL, Name: "sp"}))
	r.origins = append(r.origins, o)
	return o
}

// flipWriter flips the first body byte: same length, wrong piece.
type flipWriter struct {
	http.ResponseWriter
	flipped bool
}

func (f *flipWriter) Write(b []byte) (int, error) {
	if !f.flipped && len(b) > 0 {
		f.flipped = true
		c := append([]byte(nil), b...)
		c[0] ^= 0xff
		return f.ResponseWriter.Write(c)
	}
	return f.ResponseWriter.Write(b)
}

// piece makes size random bytes and their piece CID.
func makePiece(t testing.TB, seed uint64, size int) ([]byte, pdp.PieceCID) {
	t.Helper()
	b := make([]byte, size)
	rng := rand.New(rand.NewPCG(seed, 99))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	p, err := pdp.CommP(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return b, p
}

// store puts a piece into an origin's storage.
func (r *rig) store(o *origin, data []byte, p pdp.PieceCID) {
	r.t.Helper()
	if _, err := o.store.Ingest(context.Background(), bytes.NewReader(data), &p); err != nil {
		r.t.Fatal(err)
	}
}

// dataSet creates a data set of the payer at origin o (with CDN when cdn) holding pieces.
func (r *rig) dataSet(o *origin, cdn bool, pieces ...pdp.PieceCID) uint64 {
	r.t.Helper()
	ctx := context.Background()
	r.nextCID++
	var meta []eip712.MetadataEntry
	if cdn {
		meta = []eip712.MetadataEntry{{Key: "withCDN", Value: ""}}
	}
	cid := big.NewInt(r.nextCID)
	sig, err := r.domain.Sign(r.payer, eip712.CreateDataSet{ClientDataSetID: cid.Int, Payee: o.addr(), Metadata: meta})
	if err != nil {
		r.t.Fatal(err)
	}
	rc, err := r.chain.CreateDataSet(ctx, o.key, chain.CreateDataSetBody{Payer: r.addr(r.payer), ClientDataSetID: cid, Metadata: meta, Signature: sig})
	if err != nil {
		r.t.Fatal(err)
	}
	var id uint64
	for _, ev := range rc.Events {
		if ev.Kind == chain.EvDataSetCreated {
			id = ev.DataSetID
		}
	}
	if len(pieces) > 0 {
		r.nonce++
		pm := make([][]eip712.MetadataEntry, len(pieces))
		sig, err := r.domain.Sign(r.payer, chain.AddPiecesAuthorization(cid.Int, big.NewInt(r.nonce).Int, pieces, pm))
		if err != nil {
			r.t.Fatal(err)
		}
		r.must(r.chain.AddPieces(ctx, o.key, chain.AddPiecesBody{DataSetID: id, Nonce: big.NewInt(r.nonce), Pieces: pieces, PieceMetadata: pm, Signature: sig}))
	}
	return id
}

// startEdge starts (or restarts) the edge on the rig's directory and waits until it has
// caught up with the chain.
func (r *rig) startEdge(tune func(*Config)) {
	r.t.Helper()
	cfg := Config{Chain: chain.NewClient(r.chainSv.URL, nil), Key: r.edgeKey, Dir: r.dir, ReportInterval: -1,
		RequestsPerSecond: -1, EgressBytesPerSecond: -1}
	if tune != nil {
		tune(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.edge, r.cancel, r.done = e, cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		_ = e.Run(ctx)
	}()
	r.edgeSv = httptest.NewServer(e.Handler())
	r.sync()
}

func (r *rig) sync() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.edge.Sync(ctx); err != nil {
		r.t.Fatal(err)
	}
}

// meteredAtLeast waits until the edge has metered at least want served bytes and returns its
// usage then. The handler meters after its last write, so a client can hold every byte before
// the meter has counted them; tests that compare billed with served bytes wait here first and
// still assert the exact total, so over-billing fails.
func (r *rig) meteredAtLeast(want uint64) (usage []Usage, total uint64) {
	r.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		usage, total = r.edge.Usage(), 0
		for _, u := range usage {
			total += u.ServedBytes
		}
		if total >= want || time.Now().After(deadline) {
			return usage, total
		}
	}
}

func (r *rig) stopEdge() {
	if r.edge == nil {
		return
	}
	r.edgeSv.Close()
	r.cancel()
	<-r.done
	if err := r.edge.Close(); err != nil {
		r.t.Error(err)
	}
	r.edge = nil
}

// get fetches a piece through the edge; rangeHdr may be empty.
func (r *rig) get(p pdp.PieceCID, rangeHdr string) (*http.Response, []byte, error) {
	return r.fetch(http.MethodGet, "/"+r.addr(r.payer).Hex()+"/"+p.String(), rangeHdr)
}

func (r *rig) fetch(method, path, rangeHdr string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, r.edgeSv.URL+path, nil)
	if err != nil {
		return nil, nil, err
	}
	if rangeHdr != "" {
		req.Header.Set("Range", rangeHdr)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// usageEvents sums the chain's UsageReported events of an edge per data set.
func (r *rig) usageEvents(edge common.Address) map[uint64]usage {
	r.t.Helper()
	out := map[uint64]usage{}
	evs, err := r.chain.Events(context.Background(), 0, 100000, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Kind == chain.EvUsageReported && ev.Address != nil && *ev.Address == edge {
			u := out[ev.DataSetID]
			u.CDN += ev.Bytes
			u.Miss += ev.CacheMissBytes
			out[ev.DataSetID] = u
		}
	}
	return out
}

func big0() *mathbig.Int   { return new(mathbig.Int) }
func bigOne() *mathbig.Int { return mathbig.NewInt(1) }
