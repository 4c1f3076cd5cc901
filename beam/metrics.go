package beam

import (
	"github.com/prometheus/client_golang/prometheus"
)

// edgeMetrics are the edge's Prometheus collectors, on a registry of its own.
type edgeMetrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec   // by cache (hit, miss, none) and status code
	egress      *prometheus.CounterVec   // bytes by cache
	serveTTFB   *prometheus.HistogramVec // edge start → first byte written, by cache
	originTTFB  *prometheus.HistogramVec // by provider, source
	originTTLB  *prometheus.HistogramVec // by provider, source
	originFetch *prometheus.CounterVec   // by provider, source, result
	originBytes *prometheus.CounterVec   // by provider
	rateLimited prometheus.Counter
	reports     *prometheus.CounterVec // usage reports by result
	cacheBytes  prometheus.GaugeFunc
	cachePieces prometheus.GaugeFunc
}

var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

func newEdgeMetrics(cache *pieceCache) *edgeMetrics {
	m := &edgeMetrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "beam_requests_total", Help: "Piece requests by cache outcome and HTTP status."}, []string{"cache", "code"})
	m.egress = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "beam_egress_bytes_total", Help: "Body bytes served to clients, by cache outcome."}, []string{"cache"})
	m.serveTTFB = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "beam_serve_ttfb_seconds", Help: "Edge time to first body byte written to the client.", Buckets: latencyBuckets}, []string{"cache"})
	m.originTTFB = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "beam_origin_ttfb_seconds", Help: "Provider time to first byte, from the edge.", Buckets: latencyBuckets}, []string{"provider", "source"})
	m.originTTLB = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "beam_origin_ttlb_seconds", Help: "Provider time to last byte, from the edge.", Buckets: latencyBuckets}, []string{"provider", "source"})
	m.originFetch = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "beam_origin_fetches_total", Help: "Fetches from providers by result (ok, error, invalid)."}, []string{"provider", "source", "result"})
	m.originBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "beam_origin_bytes_total", Help: "Bytes received from providers."}, []string{"provider"})
	m.rateLimited = prometheus.NewCounter(prometheus.CounterOpts{Name: "beam_rate_limited_total", Help: "Requests refused by the per-requester rate limit."})
	m.reports = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "beam_usage_reports_total", Help: "Usage reports sent to the chain, by result."}, []string{"result"})
	m.cacheBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "beam_cache_bytes", Help: "Bytes in the piece cache."}, func() float64 { b, _ := cache.usage(); return float64(b) })
	m.cachePieces = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "beam_cache_pieces", Help: "Pieces in the piece cache."}, func() float64 { _, n := cache.usage(); return float64(n) })
	for _, r := range []string{"ok", "error"} {
		m.reports.WithLabelValues(r) // exported at 0 before the first report
	}
	m.reg.MustRegister(m.requests, m.egress, m.serveTTFB, m.originTTFB, m.originTTLB, m.originFetch, m.originBytes, m.rateLimited, m.reports, m.cacheBytes, m.cachePieces)
	return m
}

func (m *edgeMetrics) observeOrigin(provider, source string, s Sample) {
	result := "ok"
	switch {
	case s.OK:
	case s.Error == errInvalidPiece.Error():
		result = "invalid"
	default:
		result = "error"
	}
	m.originFetch.WithLabelValues(provider, source, result).Inc()
	if s.TTFB > 0 {
		m.originTTFB.WithLabelValues(provider, source).Observe(s.TTFB.Seconds())
	}
	if s.OK {
		m.originTTLB.WithLabelValues(provider, source).Observe(s.TTLB.Seconds())
	}
	if s.Bytes > 0 {
		m.originBytes.WithLabelValues(provider).Add(float64(s.Bytes))
	}
}
