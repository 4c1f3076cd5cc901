package beam

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"golang.org/x/time/rate"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/pdp"
)

// Config configures an Edge.
type Config struct {
	// ChainURL is the chain API (required unless Chain is set).
	ChainURL string
	Chain    *chain.Client
	// Key is the edge's secp256k1 key; its address must be in the chain's genesis Edges for
	// usage reports to be accepted.
	Key *ecdsa.PrivateKey
	// Dir holds the piece cache (cache/) and the usage meter (meter/).
	Dir string
	// CacheBytes bounds the piece cache (default 10 GiB).
	CacheBytes int64
	// Domain enables the host form {payer}.{Domain}/{pieceCid} (e.g. "beam.example").
	Domain string
	// ReportInterval is how often usage is reported to the chain (default 1 minute; negative:
	// only when Run ends or ReportNow is called).
	ReportInterval time.Duration
	// ProbeInterval enables the synthetic prober: every interval, one small ranged fetch of a
	// random CDN piece from every provider (0: off).
	ProbeInterval time.Duration
	// Per-requester limits. Zero picks the default (20 requests/s, burst 40; 64 MiB/s egress,
	// burst 8 MiB); negative means unlimited.
	RequestsPerSecond    float64
	RequestBurst         int
	EgressBytesPerSecond float64
	EgressBurst          int
	// TrustForwardedFor keys requesters by the first X-Forwarded-For address (behind a proxy).
	TrustForwardedFor bool
	// FetchTimeout bounds one origin fetch (default 10 minutes).
	FetchTimeout time.Duration
	// CoalesceWait is how long a miss waits for another request's fetch of the same piece to
	// finish (and then serves it from the cache) before fetching on its own (default 5 s;
	// negative: never wait).
	CoalesceWait time.Duration
	// HTTPClient fetches from providers (default: a client with sane timeouts).
	HTTPClient *http.Client
	// Now is the clock for stats and rate limits (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Edge is a running CDN edge.
type Edge struct {
	cfg     Config
	cl      *chain.Client
	key     *ecdsa.PrivateKey
	addr    common.Address
	cache   *pieceCache
	cat     *catalog
	meter   *meter
	board   *scoreboard
	limits  *requesterLimits
	metrics *edgeMetrics
	hc      *http.Client
	log     *slog.Logger
	now     func() time.Time
	mux     *http.ServeMux
	started time.Time

	fillMu sync.Mutex
	fills  map[pdp.PieceCID]chan struct{} // misses being fetched, closed when done

	closeOnce sync.Once
	closeErr  error
	runMu     sync.Mutex
	running   bool
}

// New opens an edge's cache and meter. Call Run to follow the chain and report usage, serve
// Handler, and Close when done.
func New(cfg Config) (*Edge, error) {
	if cfg.Dir == "" {
		return nil, errors.New("beam: Config.Dir is required")
	}
	if cfg.Key == nil {
		return nil, errors.New("beam: Config.Key is required (the edge signs usage reports)")
	}
	cl := cfg.Chain
	if cl == nil {
		if cfg.ChainURL == "" {
			return nil, errors.New("beam: Config.ChainURL or Config.Chain is required")
		}
		cl = chain.NewClient(cfg.ChainURL, nil)
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = 10 << 30
	}
	if cfg.ReportInterval == 0 {
		cfg.ReportInterval = time.Minute
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CoalesceWait == 0 {
		cfg.CoalesceWait = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 32
		tr.ResponseHeaderTimeout = 30 * time.Second
		hc = &http.Client{Transport: tr}
	}
	limit := func(v float64, def float64) rate.Limit {
		switch {
		case v < 0:
			return rate.Inf
		case v == 0:
			return rate.Limit(def)
		}
		return rate.Limit(v)
	}
	burst := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("beam: %w", err)
	}
	cache, err := openPieceCache(filepath.Join(cfg.Dir, "cache"), cfg.CacheBytes)
	if err != nil {
		return nil, err
	}
	addr := crypto.PubkeyToAddress(cfg.Key.PublicKey)
	cat := newCatalog(addr)
	m, err := openMeter(filepath.Join(cfg.Dir, "meter"), cat)
	if err != nil {
		return nil, err
	}
	e := &Edge{cfg: cfg, cl: cl, key: cfg.Key, addr: addr, cache: cache, cat: cat, meter: m,
		board:  newScoreboard(512, time.Minute, 120),
		limits: newRequesterLimits(float64(limit(cfg.RequestsPerSecond, 20)), burst(cfg.RequestBurst, 40), float64(limit(cfg.EgressBytesPerSecond, 64<<20)), burst(cfg.EgressBurst, 8<<20)),
		hc:     hc, log: cfg.Logger, now: cfg.Now, started: cfg.Now(), fills: map[pdp.PieceCID]chan struct{}{}}
	e.metrics = newEdgeMetrics(cache)
	e.routes()
	return e, nil
}

// Address is the edge's chain address (it must be an authorized edge on the chain).
func (e *Edge) Address() common.Address { return e.addr }

// Handler serves pieces, /metrics, /stats and /dashboard.
func (e *Edge) Handler() http.Handler { return e.mux }

// Run follows the chain, reports usage every ReportInterval and runs the prober until ctx
// ends; then it sends a last usage report (bounded to 10 s) and returns.
func (e *Edge) Run(ctx context.Context) error {
	e.runMu.Lock()
	if e.running {
		e.runMu.Unlock()
		return errors.New("beam: Run called twice")
	}
	e.running = true
	e.runMu.Unlock()
	var wg sync.WaitGroup
	f := &follower{cl: e.cl, cat: e.cat}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := f.run(ctx); err != nil {
			e.log.Error("beam: chain follower", "err", err)
		}
	}()
	if e.cfg.ProbeInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.probeLoop(ctx)
		}()
	}
	var tick <-chan time.Time
	if e.cfg.ReportInterval > 0 {
		t := time.NewTicker(e.cfg.ReportInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			// The follower is stopping too; a last report only needs the head it can read.
			// Wait for the follower to stop, then run a fresh one (from the same cursor) just
			// long enough for a last report to see its own events.
			wg.Wait()
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			done := make(chan struct{})
			go func() { defer close(done); _ = f.run(fctx) }()
			if _, err := e.ReportNow(fctx); err != nil {
				e.log.Warn("beam: final usage report", "err", err)
			}
			cancel()
			<-done
			return nil
		case <-tick:
			if _, err := e.ReportNow(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("beam: usage report", "err", err)
			}
		}
	}
}

// ReportNow reports all unreported usage to the chain and returns how many reports were
// sent. It needs Run's chain follower to be running.
func (e *Edge) ReportNow(ctx context.Context) (int, error) {
	n, err := e.meter.report(ctx, e.cl, e.key)
	if n > 0 {
		e.metrics.reports.WithLabelValues("ok").Add(float64(n))
	}
	if err != nil {
		e.metrics.reports.WithLabelValues("error").Inc()
	}
	return n, err
}

// Sync waits until the edge has applied every chain event that exists now (so data sets and
// pieces created before the call are servable).
func (e *Edge) Sync(ctx context.Context) error {
	h, err := e.cl.Head(ctx)
	if err != nil {
		return err
	}
	return e.cat.waitCursor(ctx, h.EventSeq)
}

// Usage is a data set's metered egress.
type Usage struct {
	DataSetID uint64 `json:"dataSetId"`
	// Served is every byte this edge has metered; Reported is what the chain has accepted.
	ServedBytes, ServedMissBytes     uint64
	ReportedBytes, ReportedMissBytes uint64
}

// Usage returns the metered egress of every data set the edge has served.
func (e *Edge) Usage() []Usage {
	var out []Usage
	for id, s := range e.meter.totals() {
		r := e.cat.reportedOf(id)
		out = append(out, Usage{DataSetID: id, ServedBytes: s.CDN, ServedMissBytes: s.Miss, ReportedBytes: r.CDN, ReportedMissBytes: r.Miss})
	}
	sortUsage(out)
	return out
}

// ProviderStats returns every known provider's stats, best first.
func (e *Edge) ProviderStats() []ProviderStats { return e.board.stats(e.cat.providerURLs()) }

// Close releases the meter. Stop Run (cancel its context) first.
func (e *Edge) Close() error {
	e.closeOnce.Do(func() { e.closeErr = e.meter.close() })
	return e.closeErr
}

// probeLoop fetches the first KiB of a random CDN piece from every provider each interval.
func (e *Edge) probeLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		urls := e.cat.providerURLs()
		for prov, pieces := range e.cat.samplePieces() {
			if len(pieces) == 0 || urls[prov] == "" {
				continue
			}
			p := pieces[rand.IntN(len(pieces))]
			e.probe(ctx, prov, urls[prov], p)
		}
	}
}

// probe is one synthetic ranged fetch; it is not billed to anyone.
func (e *Edge) probe(ctx context.Context, prov common.Address, base string, p pdp.PieceCID) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	smp := Sample{At: e.now(), Probe: true}
	start := e.now()
	want := min(p.RawSize(), 1024)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pieceURL(base, p), nil)
	if err != nil {
		return
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=0-%d", want-1))
	resp, err := e.hc.Do(req)
	if err == nil {
		buf := make([]byte, want)
		var n int
		if resp.StatusCode == http.StatusPartialContent || resp.StatusCode == http.StatusOK {
			n, err = readFirst(resp.Body, buf, func() { smp.TTFB = e.now().Sub(start) })
		} else {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		resp.Body.Close()
		smp.Bytes = int64(n)
		if err == nil && uint64(n) != want {
			err = fmt.Errorf("short probe: %d of %d bytes", n, want)
		}
	}
	smp.TTLB = e.now().Sub(start)
	smp.OK = err == nil
	if err != nil {
		smp.Error = err.Error()
	}
	if ctx.Err() != nil && smp.TTFB == 0 {
		return // shutting down, not the provider's fault
	}
	e.board.record(prov, smp)
	e.metrics.observeOrigin(prov.Hex(), "probe", smp)
}

// ErrNotAuthorized means the chain does not list this edge among those allowed to report
// usage: whatever it served would go unbilled.
var ErrNotAuthorized = errors.New("beam: edge is not authorized on the chain")

// CheckAuthorized asks the chain whether this edge's address may report usage.
func (e *Edge) CheckAuthorized(ctx context.Context) error {
	in, err := e.cl.Info(ctx)
	if err != nil {
		return fmt.Errorf("beam: chain info: %w", err)
	}
	for _, a := range in.Edges {
		if a == e.addr {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is not in the chain's genesis edges %v", ErrNotAuthorized, e.addr.Hex(), in.Edges)
}

// beginFill marks a fetch of p as in progress; the returned func ends it. When another fetch
// of p is already running, this one is not registered (it is a fallback after a wait).
func (e *Edge) beginFill(p pdp.PieceCID) (end func()) {
	e.fillMu.Lock()
	defer e.fillMu.Unlock()
	if _, busy := e.fills[p]; busy {
		return func() {}
	}
	ch := make(chan struct{})
	e.fills[p] = ch
	return func() {
		e.fillMu.Lock()
		delete(e.fills, p)
		e.fillMu.Unlock()
		close(ch)
	}
}

// awaitFill waits (up to CoalesceWait) for a running fetch of p and reports whether one
// finished, so a burst of misses for one piece costs the origin one transfer.
func (e *Edge) awaitFill(ctx context.Context, p pdp.PieceCID) bool {
	if e.cfg.CoalesceWait < 0 {
		return false
	}
	e.fillMu.Lock()
	ch := e.fills[p]
	e.fillMu.Unlock()
	if ch == nil {
		return false
	}
	t := time.NewTimer(e.cfg.CoalesceWait)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}
