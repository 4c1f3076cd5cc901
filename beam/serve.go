package beam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/warmstore/warmstore/pdp"
)

// errInvalidPiece marks an origin whose bytes do not hash to the requested piece CID.
var errInvalidPiece = errors.New("origin bytes do not match the piece CID")

// ErrBadRange is a Range header the edge cannot satisfy.
var ErrBadRange = errors.New("beam: unsatisfiable or malformed Range")

const (
	pieceCacheControl = "public, max-age=31536000, immutable"
	copyChunk         = 256 << 10
)

func (e *Edge) routes() {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /stats", e.handleStats)
	mux.HandleFunc("GET /dashboard", e.handleDashboard)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok cursor=%d\n", e.cat.cursorNow())
	})
	mux.HandleFunc("/", e.handlePiece)
	e.mux = mux
}

func pieceURL(base string, p pdp.PieceCID) string {
	return strings.TrimRight(base, "/") + "/piece/" + p.String()
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, format+"\n", args...)
}

// target splits a request into payer and piece reference: /{payer}/{cid}, or {payer}.{domain}
// with path /{cid}.
func (e *Edge) target(r *http.Request) (payerStr, cidStr string, ok bool) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	if e.cfg.Domain != "" {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if sub, found := strings.CutSuffix(strings.ToLower(host), "."+strings.ToLower(e.cfg.Domain)); found && !strings.Contains(sub, ".") {
			return sub, path, !strings.Contains(path, "/") && path != ""
		}
	}
	payerStr, cidStr, found := strings.Cut(path, "/")
	return payerStr, cidStr, found && cidStr != "" && !strings.Contains(cidStr, "/")
}

func parsePayer(s string) (common.Address, bool) {
	if !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		s = "0x" + s
	}
	if !common.IsHexAddress(s) {
		return common.Address{}, false
	}
	return common.HexToAddress(s), true
}

func (e *Edge) requesterKey(r *http.Request) string {
	if e.cfg.TrustForwardedFor {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			return strings.TrimSpace(first)
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// parseRange interprets a single-range Range header against size. Several ranges are served
// as the whole piece (allowed by RFC 9110), which keeps billing exact.
func parseRange(h string, size uint64) (start, end uint64, partial bool, err error) {
	if h == "" {
		return 0, size, false, nil
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return 0, 0, false, fmt.Errorf("%w: %q is not a bytes range", ErrBadRange, h)
	}
	if strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, 0, false, fmt.Errorf("%w: %q", ErrBadRange, h)
	}
	if a == "" {
		n, err := strconv.ParseUint(b, 10, 64)
		if err != nil || n == 0 {
			return 0, 0, false, fmt.Errorf("%w: suffix %q", ErrBadRange, h)
		}
		n = min(n, size)
		return size - n, size, true, nil
	}
	s, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return 0, 0, false, fmt.Errorf("%w: start %q", ErrBadRange, a)
	}
	if s >= size {
		return 0, 0, false, fmt.Errorf("%w: start %d is past the piece's %d bytes", ErrBadRange, s, size)
	}
	if b == "" {
		return s, size, true, nil
	}
	l, err := strconv.ParseUint(b, 10, 64)
	if err != nil || l < s {
		return 0, 0, false, fmt.Errorf("%w: %q", ErrBadRange, h)
	}
	return s, min(l+1, size), true, nil
}

// statusRecorder remembers the response code for metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(c int) {
	if s.code == 0 {
		s.code = c
	}
	s.ResponseWriter.WriteHeader(c)
}
func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// ReadFrom keeps the server's sendfile path for cache hits.
func (s *statusRecorder) ReadFrom(r io.Reader) (int64, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	if rf, ok := s.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(s.ResponseWriter, r)
}

func (e *Edge) handlePiece(rw http.ResponseWriter, r *http.Request) {
	w := &statusRecorder{ResponseWriter: rw}
	cacheLabel := "none"
	defer func() {
		// Runs on http.ErrAbortHandler panics too, so aborted misses are counted.
		code := w.code
		if code == 0 {
			code = http.StatusOK
		}
		e.metrics.requests.WithLabelValues(cacheLabel, strconv.Itoa(code)).Inc()
	}()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed, "only GET and HEAD")
		return
	}
	payerStr, cidStr, ok := e.target(r)
	if !ok {
		httpError(w, http.StatusNotFound, "not found: use /{payer}/{pieceCid}")
		return
	}
	payer, ok := parsePayer(payerStr)
	if !ok {
		httpError(w, http.StatusBadRequest, "bad payer %q: want a 0x-prefixed 20-byte hex address", truncate(payerStr, 64))
		return
	}
	ref, err := pdp.ParsePieceRef(cidStr)
	if err != nil {
		httpError(w, http.StatusBadRequest, "bad piece CID %q: %v", truncate(cidStr, 120), err)
		return
	}
	now := e.now()
	key := e.requesterKey(r)
	if ok, wait := e.limits.allowRequest(key, now); !ok {
		e.metrics.rateLimited.Inc()
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((wait+time.Second-1)/time.Second))))
		httpError(w, http.StatusTooManyRequests, "rate limit: too many requests from %s", key)
		return
	}
	cands := e.cat.lookup(payer, ref)
	if len(cands) == 0 {
		httpError(w, http.StatusNotFound, "piece %s is not in a CDN-enabled data set of %s", ref, payer.Hex())
		return
	}
	piece := cands[0].Piece
	size := piece.RawSize()
	start, end, partial, err := parseRange(r.Header.Get("Range"), size)
	if err != nil {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		httpError(w, http.StatusRequestedRangeNotSatisfiable, "%v", err)
		return
	}
	etag := `"` + piece.String() + `"`
	h := w.Header()
	h.Set("Accept-Ranges", "bytes")
	h.Set("ETag", etag)
	h.Set("Cache-Control", pieceCacheControl)
	if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == etag || inm == "*") {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hit := e.cache.has(piece)
	cacheLabel = map[bool]string{true: "hit", false: "miss"}[hit]
	h.Set("X-Cache", strings.ToUpper(cacheLabel))
	if r.Method == http.MethodHead {
		// A HEAD never fetches from an origin and is not billed: probes do not drain lockups.
		setBodyHeaders(h, start, end, size, partial)
		h.Set("X-Data-Set-ID", strconv.FormatUint(cands[0].Set, 10))
		w.WriteHeader(statusFor(partial))
		return
	}
	if !hit && e.awaitFill(r.Context(), piece) && e.cache.has(piece) {
		hit, cacheLabel = true, "hit"
		h.Set("X-Cache", "HIT")
	}
	if hit {
		if f, ok := e.cache.open(piece); ok {
			defer f.Close()
			e.serveHit(w, r, f, cands, key, start, end, size, partial)
			return
		}
		cacheLabel = "miss"
		h.Set("X-Cache", "MISS")
	}
	e.serveMiss(w, r, e.board.rank(cands), piece, key, start, end, partial)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func statusFor(partial bool) int {
	if partial {
		return http.StatusPartialContent
	}
	return http.StatusOK
}

func setBodyHeaders(h http.Header, start, end, size uint64, partial bool) {
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatUint(end-start, 10))
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, size))
	}
}

// clientWriter writes a body to the client at the requester's egress rate and counts what
// was written.
type clientWriter struct {
	w       http.ResponseWriter
	ctx     context.Context
	lim     *rate.Limiter
	written uint64
	first   time.Time
	now     func() time.Time
	err     error // sticky: the client is gone
}

func (c *clientWriter) write(p []byte) error {
	for len(p) > 0 && c.err == nil {
		k := len(p)
		if c.lim != nil {
			k = min(k, c.lim.Burst())
			if err := c.lim.WaitN(c.ctx, k); err != nil {
				c.err = err
				break
			}
		}
		n, err := c.w.Write(p[:k])
		if n > 0 && c.first.IsZero() {
			c.first = c.now()
		}
		c.written += uint64(n)
		p = p[n:]
		if err != nil {
			c.err = err
		}
	}
	return c.err
}

// copyFrom sends n bytes of f (at its offset) through the writer's ReadFrom, which is
// sendfile(2) for an HTTP/1 connection, in limiter-sized steps.
func (c *clientWriter) copyFrom(f *os.File, n uint64) error {
	rf, _ := c.w.(io.ReaderFrom)
	for n > 0 && c.err == nil {
		k := n
		if c.lim != nil {
			k = min(k, uint64(c.lim.Burst()))
			if err := c.lim.WaitN(c.ctx, int(k)); err != nil {
				c.err = err
				break
			}
		}
		if c.first.IsZero() {
			c.first = c.now() // headers are out; the first body byte leaves with this call
		}
		var m int64
		var err error
		if rf != nil {
			m, err = rf.ReadFrom(io.LimitReader(f, int64(k)))
		} else {
			m, err = io.Copy(c.w, io.LimitReader(f, int64(k)))
		}
		c.written += uint64(m)
		n -= uint64(m)
		if err == nil && uint64(m) < k {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			c.err = err
		}
	}
	return c.err
}

func (c *clientWriter) flush() {
	if c.err == nil {
		_ = http.NewResponseController(c.w).Flush()
	}
}

func (e *Edge) serveHit(w http.ResponseWriter, r *http.Request, f *os.File, cands []candidate, key string, start, end, size uint64, partial bool) {
	t0 := e.now()
	n := end - start
	var set uint64
	var quotaErr error
	for _, c := range cands {
		if quotaErr = e.meter.reserve(c.Set, n, false); quotaErr == nil {
			set = c.Set
			break
		}
	}
	if quotaErr != nil {
		httpError(w, http.StatusPaymentRequired, "payment required: %v", quotaErr)
		return
	}
	h := w.Header()
	setBodyHeaders(h, start, end, size, partial)
	h.Set("X-Data-Set-ID", strconv.FormatUint(set, 10))
	w.WriteHeader(statusFor(partial))
	cw := &clientWriter{w: w, ctx: r.Context(), lim: e.limits.byteLimiter(key, t0), now: e.now}
	if _, err := f.Seek(int64(start), io.SeekStart); err != nil {
		e.log.Error("beam: seek cached piece", "err", err)
	} else {
		_ = cw.copyFrom(f, n)
	}
	if err := e.meter.settle(set, n, false, cw.written, false); err != nil {
		e.log.Error("beam: meter", "err", err)
	}
	e.metrics.egress.WithLabelValues("hit").Add(float64(cw.written))
	if !cw.first.IsZero() {
		e.metrics.serveTTFB.WithLabelValues("hit").Observe(cw.first.Sub(t0).Seconds())
	}
	if cw.written < n {
		panic(http.ErrAbortHandler) // a short body must not look complete
	}
}

// missOutcome says how one origin attempt ended.
type missOutcome struct {
	started  bool   // headers went to the client: no other origin can be tried
	abort    bool   // the client must see the transfer fail
	billable uint64 // bytes served that were verified
	quota    bool   // refused for quota before anything was fetched
}

func (e *Edge) serveMiss(w http.ResponseWriter, r *http.Request, ranked []candidate, piece pdp.PieceCID, key string, start, end uint64, partial bool) {
	n := end - start
	var quotaErr error
	var tried []string
	for _, c := range ranked {
		if c.URL == "" {
			continue
		}
		if err := e.meter.reserve(c.Set, n, true); err != nil {
			quotaErr = err
			continue
		}
		out := e.fetchMiss(w, r, c, piece, key, start, end, partial)
		if err := e.meter.settle(c.Set, n, true, out.billable, true); err != nil {
			e.log.Error("beam: meter", "err", err)
		}
		e.metrics.egress.WithLabelValues("miss").Add(float64(out.billable))
		if out.started {
			if out.abort {
				panic(http.ErrAbortHandler)
			}
			return
		}
		tried = append(tried, c.Provider.Hex())
	}
	if len(tried) == 0 && quotaErr != nil {
		httpError(w, http.StatusPaymentRequired, "payment required: %v", quotaErr)
		return
	}
	httpError(w, http.StatusBadGateway, "no provider served piece %s (tried %s)", piece, strings.Join(tried, ", "))
}

// readFirst reads into buf until it is full or the body ends, calling first when the first
// byte arrives.
func readFirst(r io.Reader, buf []byte, first func()) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		if m > 0 && n == 0 {
			first()
		}
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// fetchMiss fetches the whole piece from one origin, streaming [start, end) to the client as
// it arrives but holding back the range's last byte until commP over the whole piece equals
// the requested CID. Only then is the piece cached and the byte sent.
func (e *Edge) fetchMiss(w http.ResponseWriter, r *http.Request, c candidate, piece pdp.PieceCID, key string, start, end uint64, partial bool) (out missOutcome) {
	size := piece.RawSize()
	defer e.beginFill(piece)()
	t0 := e.now()
	smp := Sample{At: t0}
	defer func() {
		smp.TTLB = e.now().Sub(t0)
		e.board.record(c.Provider, smp)
		e.metrics.observeOrigin(c.Provider.Hex(), "miss", smp)
	}()
	fail := func(err error) {
		smp.OK = false
		smp.Error = err.Error()
		e.log.Warn("beam: origin fetch failed", "provider", c.Provider.Hex(), "piece", piece.String(), "err", err)
	}
	// The fetch outlives a client that goes away: the piece still gets verified and cached.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), e.cfg.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pieceURL(c.URL, piece), nil)
	if err != nil {
		fail(err)
		return out
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		fail(err)
		return out
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fail(fmt.Errorf("status %d", resp.StatusCode))
		return out
	}
	if resp.ContentLength >= 0 && uint64(resp.ContentLength) != size {
		fail(fmt.Errorf("%w: %d bytes announced, piece has %d", errInvalidPiece, resp.ContentLength, size))
		smp.Error = errInvalidPiece.Error()
		return out
	}
	buf := make([]byte, copyChunk)
	got, rerr := readFirst(resp.Body, buf[:min(uint64(len(buf)), size)], func() { smp.TTFB = e.now().Sub(t0) })
	if got == 0 {
		if rerr == nil {
			rerr = errors.New("empty body")
		}
		fail(rerr)
		return out
	}
	// The fill file: only for pieces the cache can hold; a failed create still serves (and
	// verifies) the piece, it just is not cached.
	var tf *os.File
	if int64(size) <= e.cache.maxBytes {
		var err error
		if tf, err = e.cache.createTemp(); err != nil {
			e.log.Error("beam: cache fill", "err", err)
			tf = nil
		}
	}
	defer func() {
		if tf != nil { // not committed
			tf.Close()
			_ = os.Remove(tf.Name())
		}
	}()
	calc := pdp.NewCalc(0)
	defer calc.Reset()

	h := w.Header()
	setBodyHeaders(h, start, end, size, partial)
	h.Set("X-Data-Set-ID", strconv.FormatUint(c.Set, 10))
	w.WriteHeader(statusFor(partial))
	out.started = true
	cw := &clientWriter{w: w, ctx: r.Context(), lim: e.limits.byteLimiter(key, t0), now: e.now}
	var off uint64 // piece offset of buf[0]
	var held byte  // the range's last byte, sent after verification
	fillFailed := false
	invalid := false
	process := func(chunk []byte) {
		if tf != nil && !fillFailed {
			if _, err := tf.Write(chunk); err != nil {
				e.log.Error("beam: cache fill", "err", err)
				fillFailed = true
			}
		}
		_, _ = calc.Write(chunk)
		cend := off + uint64(len(chunk))
		if off <= end-1 && end-1 < cend {
			held = chunk[end-1-off]
		}
		if lo, hi := max(off, start), min(cend, end-1); lo < hi && cw.err == nil {
			_ = cw.write(chunk[lo-off : hi-off])
			cw.flush()
		}
		off = cend
	}
	process(buf[:got])
	for rerr == nil && off < size {
		m, err := resp.Body.Read(buf[:min(uint64(len(buf)), size-off)])
		if m > 0 {
			process(buf[:m])
		}
		if err != nil {
			rerr = err
		}
	}
	if errors.Is(rerr, io.EOF) {
		rerr = nil
	}
	if rerr == nil && off == size {
		// The body must end exactly at the piece's size.
		var one [1]byte
		if m, _ := io.ReadFull(resp.Body, one[:]); m > 0 {
			invalid = true
		}
	} else if rerr == nil {
		invalid = true
	}
	smp.Bytes = int64(off)
	if rerr != nil {
		fail(fmt.Errorf("read after %d of %d bytes: %w", off, size, rerr))
		out.abort = true
		return out
	}
	if !invalid {
		if got, err := calc.Finish(); err != nil || got.Piece != piece {
			invalid = true
		}
	}
	if invalid {
		fail(fmt.Errorf("%w: %s from %s", errInvalidPiece, piece, c.URL))
		smp.Error = errInvalidPiece.Error()
		out.abort = true
		return out
	}
	smp.OK = true
	_ = cw.write([]byte{held})
	out.billable = cw.written
	if !cw.first.IsZero() {
		e.metrics.serveTTFB.WithLabelValues("miss").Observe(cw.first.Sub(t0).Seconds())
	}
	if tf != nil && !fillFailed {
		if err := e.cache.commit(tf, piece); err != nil {
			e.log.Error("beam: cache commit", "piece", piece.String(), "err", err)
		}
		tf = nil
	}
	if cw.written < end-start {
		out.abort = true // the client left early; it was billed for what it got
	}
	return out
}

func sortUsage(u []Usage) {
	sort.Slice(u, func(i, j int) bool { return u[i].DataSetID < u[j].DataSetID })
}
