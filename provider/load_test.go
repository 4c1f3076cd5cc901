package provider

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// 1,000 range requests in flight at once against one stored piece all succeed with the
// default limits (256 served at a time, the rest queued).
func TestLoadThousandConcurrentRanges(t *testing.T) {
	r := newAPIRig(t, nil, 1, nil)
	piece := r.upload(apiPayload(30, 8<<20))
	res, err := LoadTest(t.Context(), r.srv.URL+"/piece/"+piece.String(), 1000, LoadOptions{RangeSize: loadRangeSize, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	if res.Succeeded != 1000 || res.SuccessRate != 1 || res.Bytes != 1000*loadRangeSize {
		t.Fatalf("load: %v; errors %v", res, res.Errors)
	}
	if res.TTFBP50 <= 0 || res.TTFBP99 < res.TTFBP50 {
		t.Fatalf("ttfb percentiles %v %v", res.TTFBP50, res.TTFBP99)
	}
}

// Past MaxPieceReads the provider answers 429 rather than queueing without bound.
func TestPieceReadsAreCapped(t *testing.T) {
	r := newAPIRig(t, nil, 1, func(c *Config) { c.MaxPieceReads = 1; c.PieceReadWait = 100 * time.Millisecond })
	piece := r.upload(apiPayload(31, 1<<20))
	r.p.pieceReads <- struct{}{} // one request in flight
	start := time.Now()
	r.do("GET", "/piece/"+piece.String(), nil).wantError(t, http.StatusTooManyRequests, "too_many_requests")
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Fatalf("refused after %v, before the queue wait", waited)
	}
	// A slot freed while a request waits serves it.
	go func() {
		time.Sleep(20 * time.Millisecond)
		<-r.p.pieceReads
	}()
	r.do("GET", "/piece/"+piece.String(), nil).want(t, http.StatusOK)
	// With no wait configured the refusal is immediate.
	r2 := newAPIRig(t, nil, 2, func(c *Config) { c.MaxPieceReads = 1; c.PieceReadWait = -1 })
	r2.upload(apiPayload(31, 1<<20))
	r2.p.pieceReads <- struct{}{}
	r2.do("GET", "/piece/"+piece.String(), nil).wantError(t, http.StatusTooManyRequests, "too_many_requests")
}

// BenchmarkLoadRanges runs LoadTest against the provider's /piece and, as the peer in the same
// run, against net/http's file server over the same bytes in a plain file. Reported: p50/p99
// time to first byte (µs) and the success rate.
//
//	go test -run '^$' -bench BenchmarkLoadRanges -benchtime 3x ./provider/
func BenchmarkLoadRanges(b *testing.B) {
	data := apiPayload(32, 64<<20)
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "piece"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	peer := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer peer.Close()

	rig := newAPIRig(b, nil, 1, nil)
	piece := rig.upload(data)
	// The same store behind a provider without the 256-request cap: what the cap costs.
	uncapped, err := New(Config{Store: rig.store, SweepInterval: -1, MaxPieceReads: 2000})
	if err != nil {
		b.Fatal(err)
	}
	defer uncapped.Close()
	usrv := httptest.NewServer(uncapped.Handler())
	defer usrv.Close()
	for _, tc := range []struct{ name, url string }{
		{"provider", rig.srv.URL + "/piece/" + piece.String()},
		{"provider-uncapped", usrv.URL + "/piece/" + piece.String()},
		{"peer=net-http-fileserver", peer.URL + "/piece"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var p50, p99 time.Duration
			ok := 0.0
			for i := 0; b.Loop(); i++ {
				res, err := LoadTest(context.Background(), tc.url, 1000, LoadOptions{RangeSize: 1 << 20, Seed: uint64(i)})
				if err != nil {
					b.Fatal(err)
				}
				p50 += res.TTFBP50
				p99 += res.TTFBP99
				ok += res.SuccessRate
			}
			n := float64(b.N)
			b.ReportMetric(float64(p50.Microseconds())/n, "p50-ttfb-µs")
			b.ReportMetric(float64(p99.Microseconds())/n, "p99-ttfb-µs")
			b.ReportMetric(ok/n, "success-rate")
		})
	}
}
