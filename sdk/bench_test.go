package sdk

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warmstore/warmstore/pdp"
)

// benchSize is the payload of the upload benchmarks: 1 GiB unless WARMSTORE_BENCH_MIB says
// otherwise (a smaller size for a quick look).
func benchSize(b *testing.B) int64 {
	if v := os.Getenv("WARMSTORE_BENCH_MIB"); v != "" {
		var mib int64
		if _, err := fmt.Sscan(v, &mib); err == nil && mib > 0 {
			return mib << 20
		}
	}
	return 1 << 30
}

func benchFile(b *testing.B, size int64) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "payload")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkUpload compares, on the same machine and file, the SDK's upload of one copy (the
// client computes the piece CID while streaming; the provider ingests; the commit goes through
// the chain) with the provider's own ingest of the file (storage.Ingest straight from disk, no
// HTTP) and with a raw HTTP upload that skips client-side hashing. The goal is sdk ≥ 0.8 ×
// provider-ingest.
func BenchmarkUpload(b *testing.B) {
	size := benchSize(b)
	path := benchFile(b, size)
	d := newDevnet(b, 1)
	c := d.newClient(1000)
	dp := d.providers[0]
	ctx := context.Background()

	b.Run("provider-ingest", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			f, _ := os.Open(path)
			// A distinct piece per iteration: prefix one byte so nothing deduplicates.
			r := io.MultiReader(bytes.NewReader([]byte{byte(i), 0xA0}), io.LimitReader(f, size-2))
			if _, err := dp.store.Ingest(ctx, r, nil); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("http-raw", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			f, _ := os.Open(path)
			r := io.MultiReader(bytes.NewReader([]byte{byte(i), 0xB0}), io.LimitReader(f, size-2))
			resp, _, err := c.call(ctx, http.MethodPost, dp.srv.URL+"/pdp/piece/uploads", "create", nil, http.StatusCreated)
			if err != nil {
				b.Fatal(err)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPut, dp.srv.URL+resp.Header.Get("Location"), r)
			req.ContentLength = size
			put, err := c.http.Do(req)
			if err != nil || put.StatusCode != http.StatusNoContent {
				b.Fatalf("put: %v %v", err, put)
			}
			put.Body.Close()
			f.Close()
		}
	})
	b.Run("sdk-known-cid", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			b.StopTimer() // the piece CID is known before the upload; time the upload only
			f, _ := os.Open(path)
			prefix := []byte{byte(i), 0xD0}
			p, err := pdp.CommP(io.MultiReader(bytes.NewReader(prefix), io.LimitReader(f, size-2)))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			r := io.MultiReader(bytes.NewReader(prefix), io.LimitReader(f, size-2))
			res, err := c.Upload(ctx, r, UploadOptions{Copies: 1, Size: size, PieceCID: &p})
			if err != nil || len(res.Copies) != 1 {
				b.Fatalf("upload: %v %+v", err, res)
			}
			f.Close()
		}
	})
	b.Run("sdk", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			f, _ := os.Open(path)
			r := io.MultiReader(bytes.NewReader([]byte{byte(i), 0xC0}), io.LimitReader(f, size-2))
			res, err := c.Upload(ctx, r, UploadOptions{Copies: 1, Size: size})
			if err != nil || len(res.Copies) != 1 {
				b.Fatalf("upload: %v %+v", err, res)
			}
			f.Close()
		}
	})
}

// BenchmarkUploadInterleaved runs the peer and the SDK alternately inside each iteration so
// both see the same background load (the machine is shared), and reports their throughputs
// and the ratio sdk/ingest as metrics.
func BenchmarkUploadInterleaved(b *testing.B) {
	size := benchSize(b)
	path := benchFile(b, size)
	d := newDevnet(b, 1)
	c := d.newClient(1000)
	dp := d.providers[0]
	ctx := context.Background()
	open := func(i int, tag byte) (io.Reader, func()) {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		return io.MultiReader(bytes.NewReader([]byte{byte(i), tag}), io.LimitReader(f, size-2)), func() { f.Close() }
	}
	var tIngest, tSDK, tKnown time.Duration
	for i := 0; b.Loop(); i++ {
		r, done := open(i, 0xE0)
		t0 := time.Now()
		if _, err := dp.store.Ingest(ctx, r, nil); err != nil {
			b.Fatal(err)
		}
		tIngest += time.Since(t0)
		done()

		r, done = open(i, 0xE1)
		t0 = time.Now()
		if res, err := c.Upload(ctx, r, UploadOptions{Copies: 1, Size: size}); err != nil || len(res.Copies) != 1 {
			b.Fatalf("upload: %v", err)
		}
		tSDK += time.Since(t0)
		done()

		r, done = open(i, 0xE2)
		p, err := pdp.CommP(r)
		done()
		if err != nil {
			b.Fatal(err)
		}
		r, done = open(i, 0xE2)
		t0 = time.Now()
		if res, err := c.Upload(ctx, r, UploadOptions{Copies: 1, Size: size, PieceCID: &p}); err != nil || len(res.Copies) != 1 {
			b.Fatalf("upload with known CID: %v", err)
		}
		tKnown += time.Since(t0)
		done()
	}
	mbps := func(t time.Duration) float64 { return float64(size) * float64(b.N) / t.Seconds() / 1e6 }
	b.ReportMetric(mbps(tIngest), "ingest-MB/s")
	b.ReportMetric(mbps(tSDK), "sdk-MB/s")
	b.ReportMetric(mbps(tKnown), "sdk-known-cid-MB/s")
	b.ReportMetric(tIngest.Seconds()/tSDK.Seconds(), "sdk/ingest")
	b.ReportMetric(tIngest.Seconds()/tKnown.Seconds(), "known-cid/ingest")
}

// BenchmarkDownload compares a verified download (windows hashed up to the piece root with
// range proofs) with a plain unverified GET of the same piece from the same provider.
func BenchmarkDownload(b *testing.B) {
	size := min(benchSize(b), 256<<20)
	d := newDevnet(b, 1)
	c := d.newClient(1000)
	ctx := context.Background()
	data := make([]byte, size)
	if _, err := io.ReadFull(rand.Reader, data); err != nil {
		b.Fatal(err)
	}
	res, err := c.Upload(ctx, bytes.NewReader(data), UploadOptions{Copies: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("plain-get", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			resp, err := c.http.Get(res.Copies[0].RetrievalURL)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if n != size {
				b.Fatalf("%d bytes", n)
			}
		}
	})
	b.Run("verified", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := c.Download(ctx, res.Piece, io.Discard, DownloadOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verified-range-4KiB", func(b *testing.B) {
		b.SetBytes(4096)
		for i := 0; b.Loop(); i++ {
			off := uint64(i*7919*4096) % uint64(size-4096)
			if _, err := c.DownloadRange(ctx, res.Piece, off, off+4096, io.Discard, DownloadOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
