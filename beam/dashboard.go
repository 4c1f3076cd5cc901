package beam

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Stats is the JSON document at /stats.
type Stats struct {
	Edge        common.Address                   `json:"edge"`
	Now         time.Time                        `json:"now"`
	Cursor      uint64                           `json:"chainCursor"`
	CacheBytes  int64                            `json:"cacheBytes"`
	CachePieces int                              `json:"cachePieces"`
	Providers   []ProviderStats                  `json:"providers"`
	Series      map[common.Address][]SeriesPoint `json:"series"`
	Usage       []Usage                          `json:"usage"`
}

// Stats returns the edge's current statistics.
func (e *Edge) Stats() Stats {
	b, n := e.cache.usage()
	return Stats{Edge: e.addr, Now: e.now(), Cursor: e.cat.cursorNow(), CacheBytes: b, CachePieces: n,
		Providers: e.ProviderStats(), Series: e.board.series(), Usage: e.Usage()}
}

func (e *Edge) handleStats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(e.Stats())
}

// chartLine is one provider's polyline in the TTFB-over-time chart.
type chartLine struct {
	Label  string
	Color  string
	Points string
}

var chartColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// Charts are drawn server-side, so the page works without JavaScript.
// value picks what a chart plots from a bucket; ok=false leaves the bucket out.
type value func(SeriesPoint) (v float64, ok bool)

func p50TTFB(p SeriesPoint) (float64, bool) { return p.TTFBp50Ms, p.Samples > 0 && p.SuccessRate > 0 }
func successRate(p SeriesPoint) (float64, bool) {
	return p.SuccessRate, p.Samples > 0
}

// chart lays out one value per bucket for every provider as SVG polylines; fixedMax > 0 fixes
// the top of the scale (1 for rates).
func chart(series map[common.Address][]SeriesPoint, names map[common.Address]string, pick value, fixedMax float64) (lines []chartLine, maxV float64) {
	const w, h = 760.0, 220.0
	var from, to time.Time
	for _, pts := range series {
		for _, p := range pts {
			if from.IsZero() || p.Start.Before(from) {
				from = p.Start
			}
			if p.Start.After(to) {
				to = p.Start
			}
			if v, ok := pick(p); ok {
				maxV = max(maxV, v)
			}
		}
	}
	if fixedMax > 0 {
		maxV = fixedMax
	}
	if maxV == 0 {
		maxV = 1
	}
	span := to.Sub(from).Seconds()
	addrs := make([]common.Address, 0, len(series))
	for a := range series {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].Hex() < addrs[j].Hex() })
	for i, a := range addrs {
		var sb strings.Builder
		for _, p := range series[a] {
			v, ok := pick(p)
			if !ok {
				continue
			}
			x := 20.0
			if span > 0 {
				x += (w - 40) * p.Start.Sub(from).Seconds() / span
			}
			y := h - 20 - (h-40)*v/maxV
			fmt.Fprintf(&sb, "%.1f,%.1f ", x, y)
		}
		lines = append(lines, chartLine{Label: names[a], Color: chartColors[i%len(chartColors)], Points: strings.TrimSpace(sb.String())})
	}
	return lines, maxV
}

var dashboardTmpl = template.Must(template.New("dashboard").Funcs(template.FuncMap{
	"pct": func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"ms":  func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"mbs": func(f float64) string { return fmt.Sprintf("%.2f", f) },
	"short": func(a common.Address) string {
		h := a.Hex()
		return h[:8] + "…" + h[len(h)-4:]
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>warmstore beam — providers</title>
<meta http-equiv="refresh" content="30">
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:right}
td.l,th.l{text-align:left}caption{text-align:left;font-weight:bold;margin-bottom:.5em}
.bad{color:#b00}
</style></head><body>
<h1>warmstore beam edge</h1>
<p>Edge <code>{{.S.Edge.Hex}}</code> · chain cursor {{.S.Cursor}} · cache {{.S.CachePieces}} pieces, {{.S.CacheBytes}} bytes · {{.S.Now.UTC.Format "2006-01-02 15:04:05"}} UTC</p>
<table id="providers">
<caption>Providers ranked by p50 then p95 time to first byte, then success rate</caption>
<thead><tr><th>rank</th><th class="l">provider</th><th class="l">URL</th><th>TTFB p50 ms</th><th>TTFB p95 ms</th><th>TTLB p50 ms</th><th>TTLB p95 ms</th><th>success</th><th>samples</th><th>MB/s p50</th></tr></thead>
<tbody>
{{range .S.Providers}}<tr class="provider" data-provider="{{.Provider.Hex}}"><td>{{.Rank}}</td><td class="l"><code title="{{.Provider.Hex}}">{{.Provider.Hex}}</code></td><td class="l">{{.URL}}</td><td>{{ms .TTFBp50Ms}}</td><td>{{ms .TTFBp95Ms}}</td><td>{{ms .TTLBp50Ms}}</td><td>{{ms .TTLBp95Ms}}</td><td{{if lt .SuccessRate 0.95}} class="bad"{{end}}>{{pct .SuccessRate}}</td><td>{{.Samples}}</td><td>{{mbs .ThroughputMBps}}</td></tr>
{{else}}<tr><td colspan="10" class="l">no providers known yet</td></tr>{{end}}
</tbody></table>
<h2>p50 time to first byte over time (per minute, max {{ms .MaxMs}} ms)</h2>
<svg id="ttfb-chart" width="760" height="220" viewBox="0 0 760 220" role="img" aria-label="p50 TTFB per provider over time">
<rect x="0" y="0" width="760" height="220" fill="#fafafa" stroke="#ccc"/>
{{range .Lines}}<polyline fill="none" stroke="{{.Color}}" stroke-width="2" points="{{.Points}}"><title>{{.Label}}</title></polyline>
{{end}}</svg>
<h2>Success rate over time (per minute, 0–100%)</h2>
<svg id="success-chart" width="760" height="220" viewBox="0 0 760 220" role="img" aria-label="success rate per provider over time">
<rect x="0" y="0" width="760" height="220" fill="#fafafa" stroke="#ccc"/>
{{range .OKLines}}<polyline fill="none" stroke="{{.Color}}" stroke-width="2" points="{{.Points}}"><title>{{.Label}}</title></polyline>
{{end}}</svg>
<ul>{{range .Lines}}<li style="color:{{.Color}}">{{.Label}}</li>{{end}}</ul>
<h2>Metered egress per data set</h2>
<table id="usage"><thead><tr><th>data set</th><th>served bytes</th><th>of which misses</th><th>reported</th><th>reported misses</th></tr></thead><tbody>
{{range .S.Usage}}<tr><td>{{.DataSetID}}</td><td>{{.ServedBytes}}</td><td>{{.ServedMissBytes}}</td><td>{{.ReportedBytes}}</td><td>{{.ReportedMissBytes}}</td></tr>
{{end}}</tbody></table>
<p>JSON: <a href="/stats">/stats</a> · Prometheus: <a href="/metrics">/metrics</a></p>
</body></html>
`))

func (e *Edge) handleDashboard(w http.ResponseWriter, r *http.Request) {
	s := e.Stats()
	names := map[common.Address]string{}
	for _, p := range s.Providers {
		names[p.Provider] = p.Provider.Hex() + " " + p.URL
	}
	lines, maxMs := chart(s.Series, names, p50TTFB, 0)
	okLines, _ := chart(s.Series, names, successRate, 1)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := dashboardTmpl.Execute(w, struct {
		S       Stats
		Lines   []chartLine
		OKLines []chartLine
		MaxMs   float64
	}{s, lines, okLines, maxMs}); err != nil {
		e.log.Error("beam: dashboard", "err", err)
	}
}
