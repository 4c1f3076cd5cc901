package beam

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkHitVsProvider compares a cache hit at the edge with fetching the same piece
// straight from the provider's /piece endpoint (real storage, real provider API), both over
// loopback HTTP: MB/s from SetBytes, and the mean time to first byte as ttfb-µs.
func BenchmarkHitVsProvider(b *testing.B) {
	const size = 4 << 20
	r := newRig(b, 1)
	o := r.origins[0]
	data, p := makePiece(b, 42, size)
	r.store(o, data, p)
	r.dataSet(o, true, p)
	r.startEdge(nil)
	if resp, _, err := r.get(p, ""); err != nil || resp.StatusCode != 200 {
		b.Fatalf("warm-up miss: %v %v", err, resp)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	buf := make([]byte, 256<<10)
	run := func(b *testing.B, url string) {
		b.SetBytes(size)
		var ttfb time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			resp, err := hc.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			n, err := resp.Body.Read(buf[:1])
			if n != 1 {
				b.Fatalf("first byte: %v", err)
			}
			ttfb += time.Since(start)
			m, err := io.CopyBuffer(io.Discard, resp.Body, buf)
			resp.Body.Close()
			if err != nil || m+1 != size {
				b.Fatalf("read %d bytes: %v", m+1, err)
			}
		}
		b.ReportMetric(float64(ttfb.Microseconds())/float64(b.N), "ttfb-µs")
	}
	b.Run("edge-hit", func(b *testing.B) { run(b, r.edgeSv.URL+"/"+r.addr(r.payer).Hex()+"/"+p.String()) })
	b.Run("provider-direct", func(b *testing.B) { run(b, o.srv.URL+"/piece/"+p.String()) })
}
