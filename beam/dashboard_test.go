package beam

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warmstore/warmstore/pdp"
)

// statsRig serves two pieces from two providers (one slow), so every provider has samples.
func statsRig(t *testing.T, tune func(*Config)) (*rig, []pdp.PieceCID) {
	r := newRig(t, 2)
	r.origins[0].delay.Store(int64(20 * time.Millisecond))
	var ps []pdp.PieceCID
	for i := 0; i < 4; i++ {
		data, p := makePiece(t, uint64(200+i), 4000)
		r.store(r.origins[0], data, p)
		r.store(r.origins[1], data, p)
		ps = append(ps, p)
	}
	r.dataSet(r.origins[0], true, ps...)
	r.dataSet(r.origins[1], true, ps...)
	r.startEdge(tune)
	for _, p := range ps {
		if resp, _, err := r.get(p, ""); err != nil || resp.StatusCode != 200 {
			t.Fatalf("get: %v %v", err, resp)
		}
	}
	return r, ps
}

func TestMetricsAndStatsAPI(t *testing.T) {
	r, _ := statsRig(t, nil)
	resp, err := http.Get(r.edgeSv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`beam_origin_ttfb_seconds_bucket{provider="` + r.origins[1].addr().Hex() + `",source="miss"`,
		`beam_origin_ttlb_seconds_count{provider="`,
		`beam_origin_fetches_total{provider="`,
		`beam_egress_bytes_total{cache="miss"} 16000`,
		`beam_requests_total{cache="miss",code="200"} 4`,
		`beam_cache_pieces 4`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	resp, err = http.Get(r.edgeSv.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(st.Providers) != 2 || st.Providers[0].Provider != r.origins[1].addr() {
		t.Fatalf("stats providers %+v: want 2, the fast one first", st.Providers)
	}
	for _, p := range st.Providers {
		if p.Samples == 0 || p.SuccessRate != 1 || p.TTFBp50Ms <= 0 || p.TTLBp95Ms < p.TTFBp50Ms || p.ThroughputMBps <= 0 {
			t.Errorf("provider stats %+v", p)
		}
	}
	if st.Providers[1].TTFBp50Ms < 20 {
		t.Errorf("slow provider p50 TTFB %.1f ms, want ≥ 20 (its injected delay)", st.Providers[1].TTFBp50Ms)
	}
	if len(st.Series[r.origins[0].addr()]) == 0 {
		t.Error("no time series")
	}
	// Every metric the Grafana dashboard queries is one the edge exports.
	raw, err := os.ReadFile("grafana/warmstore-beam.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana dashboard is not JSON: %v", err)
	}
	names := regexp.MustCompile(`beam_[a-z_]+`).FindAllString(string(raw), -1)
	if len(names) < 8 {
		t.Fatalf("grafana dashboard queries only %v", names)
	}
	for _, n := range names {
		if !strings.Contains(string(body), "\n"+n) && !strings.Contains(string(body), n+"{") && !strings.Contains(string(body), n+" ") {
			t.Errorf("grafana dashboard queries %s, which /metrics does not export", n)
		}
	}
}

func TestProberMeasuresEveryProvider(t *testing.T) {
	r, _ := statsRig(t, func(c *Config) { c.ProbeInterval = 20 * time.Millisecond })
	deadline := time.Now().Add(10 * time.Second)
	for {
		probes := map[string]int{}
		for _, o := range r.origins {
			probes[o.addr().Hex()] = 0
		}
		r.edge.board.mu.Lock()
		for a, rec := range r.edge.board.provs {
			for _, s := range rec.samples {
				if s.Probe && s.OK && s.Bytes == 1024 {
					probes[a.Hex()]++
				}
			}
		}
		r.edge.board.mu.Unlock()
		ok := true
		for _, n := range probes {
			ok = ok && n >= 2
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe samples per provider: %v", probes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Probes are never billed: only the four 4000-byte misses are.
	if _, total := r.meteredAtLeast(16000); total != 16000 {
		t.Fatalf("billed %d bytes, want 16000 (probes must not be billed)", total)
	}
}

func chromiumBinary() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// The dashboard, loaded in headless Chromium, lists every provider ranked, with the chart.
func TestDashboardInHeadlessChromium(t *testing.T) {
	bin := chromiumBinary()
	if bin == "" {
		t.Skip("no chromium binary installed (apt-get install -y chromium); skipping the headless dashboard test")
	}
	r, _ := statsRig(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--dump-dom", r.edgeSv.URL+"/dashboard")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("chromium: %v\n%s", err, stderr)
	}
	dom := string(out)
	fast, slow := r.origins[1].addr().Hex(), r.origins[0].addr().Hex()
	iFast, iSlow := strings.Index(dom, `data-provider="`+fast), strings.Index(dom, `data-provider="`+slow)
	if iFast < 0 || iSlow < 0 {
		t.Fatalf("dashboard DOM does not show both providers:\n%s", dom)
	}
	if iFast > iSlow {
		t.Error("the faster provider is not ranked first")
	}
	if strings.Count(dom, "<polyline") != 4 || !strings.Contains(dom, `id="ttfb-chart"`) || !strings.Contains(dom, `id="success-chart"`) {
		t.Error("charts missing or not one line per provider in each")
	}
	if !strings.Contains(dom, "100.0%") {
		t.Error("success rates missing")
	}
}

// Start is the one-call form a devnet uses: it serves, follows the chain, and on Close sends
// the last usage report.
func TestStartServesAndReportsOnClose(t *testing.T) {
	r := newRig(t, 1)
	data, p := makePiece(t, 300, 9000)
	r.store(r.origins[0], data, p)
	ds := r.dataSet(r.origins[0], true, p)
	ctx := context.Background()
	s, err := Start(ctx, "127.0.0.1:0", Config{ChainURL: r.chainSv.URL, Key: r.edgeKey, Dir: t.TempDir(), ReportInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Edge.CheckAuthorized(ctx); err != nil {
		t.Fatal(err)
	}
	stranger, err := New(Config{ChainURL: r.chainSv.URL, Key: testKey(t, 77), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := stranger.CheckAuthorized(ctx); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("unlisted edge: %v, want ErrNotAuthorized", err)
	}
	stranger.Close()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := s.Edge.Sync(sctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.URL() + "/" + r.addr(r.payer).Hex() + "/" + p.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(body) != len(data) {
		t.Fatalf("got %d bytes", len(body))
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.usageEvents(r.addr(r.edgeKey))[ds]; got.CDN != 9000 || got.Miss != 9000 {
		t.Fatalf("billed on close: %+v, want 9000/9000", got)
	}
}
