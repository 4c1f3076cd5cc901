package sdk

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/ipfs"
	"github.com/warmstore/warmstore/provider"
	"github.com/warmstore/warmstore/storage"
)

// devnet is a real chain ledger and real providers (storage on disk, provider.New), all on
// loopback HTTP servers. Each provider sits behind a fault switch that can tamper with its
// answers; with no fault set the switch passes requests through untouched.
type devnet struct {
	t         testing.TB
	ledger    *chain.Ledger
	clock     *chain.ManualClock
	chainSrv  *httptest.Server
	chainURL  string
	providers []*devProvider
}

type devProvider struct {
	name   string
	key    *ecdsa.PrivateKey
	store  *storage.Store
	prov   *provider.Provider
	srv    *httptest.Server
	fault  atomic.Value // fault
	hits   atomic.Int64 // /piece requests served
	mu     sync.Mutex
	stalls []chan struct{}
}

// fault is a misbehaviour of a provider's /piece route.
type fault string

const (
	faultNone     fault = ""
	faultFlip     fault = "flip"     // flips one byte of every /piece body
	faultTruncate fault = "truncate" // ends /piece bodies halfway
	faultStall    fault = "stall"    // sends half a /piece body then hangs
	faultLacks    fault = "lacks"    // answers 200 to "do you have it" and 404 to /piece
	faultGarbage  fault = "garbage"  // answers /piece with the right length of wrong bytes
	faultBadProof fault = "badproof" // serves good bytes but range proofs with a wrong node
	faultSlowPut  fault = "slowput"  // reads 64 KiB of an upload, then stops reading
)

func newDevnet(t testing.TB, nProviders int) *devnet {
	t.Helper()
	cfg := chain.DefaultConfig()
	cfg.FaucetLimit = big.Mul(big.NewInt(1_000_000), big.NewInt(1e18))
	d := &devnet{t: t, clock: chain.NewManualClock(100)}
	var err error
	d.ledger, err = chain.Open(filepath.Join(t.TempDir(), "chain"), chain.Options{Config: &cfg, Clock: d.clock})
	if err != nil {
		t.Fatal(err)
	}
	srv := chain.NewServer(d.ledger)
	srv.MaxWait = 100 * time.Millisecond
	d.chainSrv = httptest.NewServer(srv)
	d.chainURL = d.chainSrv.URL
	t.Cleanup(func() {
		d.chainSrv.Close()
		d.ledger.Close()
	})
	for i := range nProviders {
		d.addProvider(fmt.Sprintf("sp%d", i+1))
	}
	return d
}

func (d *devnet) addProvider(name string) *devProvider {
	t := d.t
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(filepath.Join(t.TempDir(), name), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := ipfs.OpenIndex(filepath.Join(t.TempDir(), name+"-ipfs"), st, ipfs.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cc := chain.NewClient(d.chainURL, nil)
	dp := &devProvider{name: name, key: key, store: st}
	dp.fault.Store(faultNone)
	var handler atomic.Value
	dp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	p, err := provider.New(provider.Config{
		Store: st, Chain: cc, Key: key, ServiceURL: dp.srv.URL, SweepInterval: -1, IPFS: ix,
		Pull: provider.PullConfig{AllowHTTP: true, AllowPrivateHosts: true, RetryDelay: 50 * time.Millisecond, Attempts: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	dp.prov = p
	handler.Store(dp.tamper(p.Handler()))
	ctx := context.Background()
	if _, err := cc.RegisterProvider(ctx, key, chain.RegisterProviderBody{ServiceURL: dp.srv.URL, Name: name}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dp.release()
		dp.srv.Close()
		p.Close()
		ix.Close()
		st.Close()
	})
	d.providers = append(d.providers, dp)
	return dp
}

func (dp *devProvider) setFault(f fault) { dp.fault.Store(f) }

// release unblocks stalled responses so servers can shut down.
func (dp *devProvider) release() {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	for _, c := range dp.stalls {
		close(c)
	}
	dp.stalls = nil
}

// tamper wraps a real provider's handler with the configured fault.
func (dp *devProvider) tamper(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := dp.fault.Load().(fault)
		// /ipfs/ answers carry blocks: the byte faults apply to them as to /piece/.
		isPiece := strings.HasPrefix(r.URL.Path, "/piece/") || strings.HasPrefix(r.URL.Path, "/ipfs/")
		if isPiece {
			dp.hits.Add(1)
		}
		if f == faultLacks && r.URL.Path == "/pdp/piece" && r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"pieceCid":%q}`, r.URL.Query().Get("pieceCid"))
			return
		}
		if f == faultSlowPut && r.Method == http.MethodPut {
			_, _ = io.CopyN(io.Discard, r.Body, 64<<10)
			c := make(chan struct{})
			dp.mu.Lock()
			dp.stalls = append(dp.stalls, c)
			dp.mu.Unlock()
			select {
			case <-c:
			case <-r.Context().Done():
			}
			return
		}
		if f == faultBadProof && strings.HasSuffix(r.URL.Path, "/proof") {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var rp RangeProof
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &rp) != nil || len(rp.Proofs) == 0 {
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				return
			}
			last := &rp.Proofs[0].Path[len(rp.Proofs[0].Path)-1]
			last[0] ^= 0x04
			_ = json.NewEncoder(w).Encode(rp)
			return
		}
		if !isPiece || f == faultNone || f == faultBadProof {
			next.ServeHTTP(w, r)
			return
		}
		switch f {
		case faultLacks:
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		switch f {
		case faultFlip:
			if len(body) > 0 {
				body = append([]byte(nil), body...)
				body[len(body)/2] ^= 0x01
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
		case faultGarbage:
			body = make([]byte, len(body))
			for i := range body {
				body[i] = byte(i*7 + 3)
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
		case faultTruncate:
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body[:len(body)/2])
			// Ending the handler after a short body makes net/http close the connection: the
			// client sees an unexpected EOF.
		case faultStall:
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body[:len(body)/2])
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			c := make(chan struct{})
			dp.mu.Lock()
			dp.stalls = append(dp.stalls, c)
			dp.mu.Unlock()
			select {
			case <-c:
			case <-r.Context().Done():
			}
		}
	})
}

// newClient makes a funded, approved payer (deposit in USDFC; 0 = no deposit or approval).
func (d *devnet) newClient(deposit int64, mutate ...func(*Config)) *Client {
	t := d.t
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{ChainURL: d.chainURL, Key: key, StallTimeout: 2 * time.Second, PollInterval: 20 * time.Millisecond, WaitTimeout: 30 * time.Second, PingTimeout: 2 * time.Second}
	for _, m := range mutate {
		m(&cfg)
	}
	ctx := context.Background()
	c, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Faucet(ctx, usdfc(1000)); err != nil {
		t.Fatal(err)
	}
	if deposit > 0 {
		if _, err := c.Deposit(ctx, usdfc(deposit)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Approve(ctx, Allowances{}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func usdfc(n int64) big.Int { return big.Mul(big.NewInt(n), big.NewInt(1e18)) }
