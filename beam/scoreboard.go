package beam

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Sample is one fetch from a provider, as measured by the edge.
type Sample struct {
	At    time.Time
	TTFB  time.Duration // request start → first body byte (0 when none came)
	TTLB  time.Duration // request start → last body byte or failure
	Bytes int64
	OK    bool   // complete and, for whole pieces, verified
	Probe bool   // from the synthetic prober rather than a client's miss
	Error string `json:",omitempty"`
}

// ProviderStats summarizes a provider's recent samples.
type ProviderStats struct {
	Provider    common.Address `json:"provider"`
	URL         string         `json:"url"`
	Samples     int            `json:"samples"`
	Successes   int            `json:"successes"`
	SuccessRate float64        `json:"successRate"`
	TTFBp50Ms   float64        `json:"ttfbP50Ms"`
	TTFBp95Ms   float64        `json:"ttfbP95Ms"`
	TTLBp50Ms   float64        `json:"ttlbP50Ms"`
	TTLBp95Ms   float64        `json:"ttlbP95Ms"`
	// ThroughputMBps is the median of bytes/TTLB over successful samples (MB = 10^6 bytes).
	ThroughputMBps float64 `json:"throughputMBps"`
	// EWMATTFBMs and Score drive origin choice: lower score is tried first.
	EWMATTFBMs float64 `json:"ewmaTtfbMs"`
	Score      float64 `json:"score"`
	Rank       int     `json:"rank"`
}

// SeriesPoint is one bucket of a provider's time series.
type SeriesPoint struct {
	Start       time.Time `json:"start"`
	TTFBp50Ms   float64   `json:"ttfbP50Ms"`
	SuccessRate float64   `json:"successRate"`
	Samples     int       `json:"samples"`
}

// scoreboard keeps a sliding window of samples per provider and an EWMA of time-to-first-byte
// and of success, which rank the providers for origin choice.
type scoreboard struct {
	window int
	bucket time.Duration
	keep   int // buckets of history

	mu    sync.Mutex
	provs map[common.Address]*providerRecord
}

type providerRecord struct {
	samples  []Sample // ring, newest last (trimmed to window)
	ewmaTTFB float64  // ms; NaN until measured
	ewmaOK   float64  // 0..1
	series   []seriesBucket
}

type seriesBucket struct {
	start time.Time
	ttfbs []float64
	ok, n int
}

const ewmaAlpha = 0.3

func newScoreboard(window int, bucket time.Duration, keep int) *scoreboard {
	return &scoreboard{window: window, bucket: bucket, keep: keep, provs: map[common.Address]*providerRecord{}}
}

func (s *scoreboard) record(p common.Address, smp Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.provs[p]
	if r == nil {
		r = &providerRecord{ewmaTTFB: math.NaN(), ewmaOK: 1}
		s.provs[p] = r
	}
	r.samples = append(r.samples, smp)
	if len(r.samples) > s.window {
		r.samples = append(r.samples[:0], r.samples[len(r.samples)-s.window:]...)
	}
	ok := 0.0
	if smp.OK {
		ok = 1
	}
	r.ewmaOK = ewmaAlpha*ok + (1-ewmaAlpha)*r.ewmaOK
	if smp.TTFB > 0 {
		ms := float64(smp.TTFB) / float64(time.Millisecond)
		if math.IsNaN(r.ewmaTTFB) {
			r.ewmaTTFB = ms
		} else {
			r.ewmaTTFB = ewmaAlpha*ms + (1-ewmaAlpha)*r.ewmaTTFB
		}
	}
	start := smp.At.Truncate(s.bucket)
	if n := len(r.series); n == 0 || !r.series[n-1].start.Equal(start) {
		r.series = append(r.series, seriesBucket{start: start})
		if len(r.series) > s.keep {
			r.series = append(r.series[:0], r.series[len(r.series)-s.keep:]...)
		}
	}
	b := &r.series[len(r.series)-1]
	b.n++
	if smp.OK {
		b.ok++
		b.ttfbs = append(b.ttfbs, float64(smp.TTFB)/float64(time.Millisecond))
	}
}

// score is what origin choice minimizes: the EWMA time-to-first-byte inflated by recent
// failures. A provider never measured scores 0, so it is tried (and measured) first.
func (r *providerRecord) score() float64 {
	if r == nil || math.IsNaN(r.ewmaTTFB) {
		if r != nil && r.ewmaOK < 0.5 {
			return 1e9 * (1 - r.ewmaOK) // failed without ever sending a byte
		}
		return 0
	}
	fail := 1 - r.ewmaOK
	return r.ewmaTTFB*(1+8*fail) + 1e6*fail*fail
}

// rank orders candidates by score (ties keep the given order).
func (s *scoreboard) rank(cands []candidate) []candidate {
	s.mu.Lock()
	scores := make(map[common.Address]float64, len(cands))
	for _, c := range cands {
		scores[c.Provider] = s.provs[c.Provider].score()
	}
	s.mu.Unlock()
	out := append([]candidate(nil), cands...)
	sort.SliceStable(out, func(i, j int) bool { return scores[out[i].Provider] < scores[out[j].Provider] })
	return out
}

// stats summarizes every provider in urls (and any other that has samples), best first.
func (s *scoreboard) stats(urls map[common.Address]string) []ProviderStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[common.Address]bool{}
	var out []ProviderStats
	add := func(a common.Address) {
		if seen[a] {
			return
		}
		seen[a] = true
		r := s.provs[a]
		ps := ProviderStats{Provider: a, URL: urls[a], Score: r.score()}
		if r != nil {
			var ttfb, ttlb, tput []float64
			for _, smp := range r.samples {
				ps.Samples++
				if !smp.OK {
					continue
				}
				ps.Successes++
				ttfb = append(ttfb, ms(smp.TTFB))
				ttlb = append(ttlb, ms(smp.TTLB))
				if smp.TTLB > 0 {
					tput = append(tput, float64(smp.Bytes)/smp.TTLB.Seconds()/1e6)
				}
			}
			if ps.Samples > 0 {
				ps.SuccessRate = float64(ps.Successes) / float64(ps.Samples)
			}
			ps.TTFBp50Ms, ps.TTFBp95Ms = percentile(ttfb, 0.5), percentile(ttfb, 0.95)
			ps.TTLBp50Ms, ps.TTLBp95Ms = percentile(ttlb, 0.5), percentile(ttlb, 0.95)
			ps.ThroughputMBps = percentile(tput, 0.5)
			if !math.IsNaN(r.ewmaTTFB) {
				ps.EWMATTFBMs = r.ewmaTTFB
			}
		}
		out = append(out, ps)
	}
	for a := range urls {
		add(a)
	}
	for a := range s.provs {
		add(a)
	}
	// Dashboard order: providers with samples first, by p50 TTFB, then p95, then success.
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.Successes > 0) != (b.Successes > 0) {
			return a.Successes > 0
		}
		if a.TTFBp50Ms != b.TTFBp50Ms {
			return a.TTFBp50Ms < b.TTFBp50Ms
		}
		if a.TTFBp95Ms != b.TTFBp95Ms {
			return a.TTFBp95Ms < b.TTFBp95Ms
		}
		if a.SuccessRate != b.SuccessRate {
			return a.SuccessRate > b.SuccessRate
		}
		return a.Provider.Hex() < b.Provider.Hex()
	})
	for i := range out {
		out[i].Rank = i + 1
	}
	return out
}

// series returns each provider's bucketed history.
func (s *scoreboard) series() map[common.Address][]SeriesPoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[common.Address][]SeriesPoint{}
	for a, r := range s.provs {
		for _, b := range r.series {
			p := SeriesPoint{Start: b.start, Samples: b.n, TTFBp50Ms: percentile(append([]float64(nil), b.ttfbs...), 0.5)}
			if b.n > 0 {
				p.SuccessRate = float64(b.ok) / float64(b.n)
			}
			out[a] = append(out[a], p)
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile returns the nearest-rank q-quantile of v (0 for none). It sorts v.
func percentile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	i := int(math.Ceil(q*float64(len(v)))) - 1
	return v[max(0, min(i, len(v)-1))]
}
