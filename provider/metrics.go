package provider

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/felixge/httpsnoop"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warmstore/warmstore/storage"
)

// metrics are the provider's HTTP-side Prometheus collectors.
type metrics struct {
	inFlight        prometheus.Gauge
	requests        *prometheus.CounterVec   // route, code
	requestDuration *prometheus.HistogramVec // route
	uploadBytes     *prometheus.CounterVec   // kind
	uploadDuration  *prometheus.HistogramVec // kind, result
	pieceTTFB       prometheus.Histogram
	pieceBytes      prometheus.Counter
	sessionsExpired prometheus.Counter
	pullPieces      *prometheus.CounterVec // result
	chainTxs        *prometheus.CounterVec // kind, result
}

// newMetrics registers the collectors. storedAtStart is the raw size of the pieces in the store
// when the provider started (the store's own counters start at zero on every Open).
func newMetrics(reg prometheus.Registerer, st *storage.Store, storedAtStart uint64) (*metrics, error) {
	const ns = "warmstore_provider"
	base := st.Metrics()
	m := &metrics{
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "http_requests_in_flight",
			Help: "HTTP requests being served."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "http_requests_total",
			Help: "HTTP requests by route pattern and status code."}, []string{"route", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "http_request_duration_seconds",
			Help: "HTTP request durations by route pattern.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"route"}),
		uploadBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "upload_bytes_total",
			Help: "Piece bytes received, by upload kind (oneshot, streaming, pull)."}, []string{"kind"}),
		uploadDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "upload_duration_seconds",
			Help:    "Time to receive, hash and durably store a piece, by kind and result.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12)}, []string{"kind", "result"}),
		pieceTTFB: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "piece_ttfb_seconds",
			Help:    "Time from a /piece request's arrival to the first body byte written.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18)}),
		pieceBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "piece_bytes_served_total",
			Help: "Body bytes written by /piece responses."}),
		sessionsExpired: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "upload_sessions_expired_total",
			Help: "Upload sessions deleted because they sat unfinished past the session TTL."}),
		pullPieces: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "pull_pieces_total",
			Help: "Pieces pulled from other providers, by result."}, []string{"result"}),
		chainTxs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "chain_transactions_total",
			Help: "Chain transactions sent on behalf of clients, by kind and result."}, []string{"kind", "result"}),
	}
	stored := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "stored_bytes",
		Help: "Raw bytes of pieces in the store."}, func() float64 {
		sm := st.Metrics()
		return float64(storedAtStart) + float64(sm.IngestedBytes-base.IngestedBytes) - float64(sm.GCRemovedBytes-base.GCRemovedBytes)
	})
	ingested := prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "store_ingested_pieces_total",
		Help: "New pieces stored since the store was opened."}, func() float64 { return float64(st.Metrics().IngestedPieces) })
	rejects := prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "store_mismatch_rejects_total",
		Help: "Uploads rejected because the bytes did not hash to the declared piece CID."}, func() float64 { return float64(st.Metrics().MismatchRejects) })
	for _, c := range []prometheus.Collector{m.inFlight, m.requests, m.requestDuration, m.uploadBytes, m.uploadDuration,
		m.pieceTTFB, m.pieceBytes, m.sessionsExpired, m.pullPieces, m.chainTxs, stored, ingested, rejects} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("provider: register metrics: %w", err)
		}
	}
	return m, nil
}

// instrument counts, times and logs every request under its route pattern.
func (p *Provider) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.metrics.inFlight.Inc()
		defer p.metrics.inFlight.Dec()
		start := time.Now()
		snoop := httpsnoop.CaptureMetrics(h, w, r)
		p.metrics.requests.WithLabelValues(route, strconv.Itoa(snoop.Code)).Inc()
		p.metrics.requestDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		level := slogLevelFor(snoop.Code)
		p.log.Log(r.Context(), level, "http request", "method", r.Method, "route", route, "path", r.URL.Path,
			"status", snoop.Code, "bytes", snoop.Written, "duration", snoop.Duration, "remote", r.RemoteAddr)
	})
}

// firstByteWriter wraps w so that the first body write (Write or ReadFrom, which
// http.ServeContent uses for large bodies) calls onFirst once.
func firstByteWriter(w http.ResponseWriter, onFirst func(), count func(int64)) http.ResponseWriter {
	var done bool
	first := func() {
		if !done {
			done = true
			onFirst()
		}
	}
	return httpsnoop.Wrap(w, httpsnoop.Hooks{
		Write: func(next httpsnoop.WriteFunc) httpsnoop.WriteFunc {
			return func(b []byte) (int, error) {
				if len(b) > 0 {
					first()
				}
				n, err := next(b)
				count(int64(n))
				return n, err
			}
		},
		ReadFrom: func(next httpsnoop.ReadFromFunc) httpsnoop.ReadFromFunc {
			return func(src io.Reader) (int64, error) {
				n, err := next(&firstReadReader{r: src, first: first})
				count(n)
				return n, err
			}
		},
	})
}

// firstReadReader calls first when the first bytes are read for copying to the client, i.e.
// just before they are written.
type firstReadReader struct {
	r     io.Reader
	first func()
}

// copyBufs hold the buffers /piece bodies are copied through: larger than io.Copy's 32 KiB,
// so a big range costs fewer read and write system calls.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// WriteTo copies the body to the connection through a pooled 256 KiB buffer (net/http hands
// the body to the connection with io.Copy, which prefers WriterTo).
func (f *firstReadReader) WriteTo(w io.Writer) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, rerr := f.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
			if m != n {
				return total, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

func (f *firstReadReader) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if n > 0 {
		f.first()
	}
	return n, err
}

func slogLevelFor(code int) slog.Level {
	switch {
	case code >= 500:
		return slog.LevelWarn
	case code >= 400:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}
