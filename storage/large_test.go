package storage

import (
	"context"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmstore/warmstore/pdp"
)

// streamReader yields n pseudo-random bytes without holding them.
type streamReader struct {
	rng  *rand.ChaCha8
	left int64
}

func newStreamReader(seed byte, n int64) *streamReader {
	return &streamReader{rng: rand.NewChaCha8([32]byte{seed}), left: n}
}

func (r *streamReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	r.rng.Read(p)
	r.left -= int64(len(p))
	return len(p), nil
}

// heapWatcher samples the live heap and keeps its peak.
type heapWatcher struct {
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func watchHeap() *heapWatcher {
	w := &heapWatcher{stop: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > w.peak.Load() {
				w.peak.Store(ms.HeapInuse)
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *heapWatcher) Stop() uint64 {
	close(w.stop)
	w.wg.Wait()
	return w.peak.Load()
}

// TestLargeIngestBoundedMemory ingests a large piece (1 GiB; less under -race) streamed from
// a generator and checks that the heap never grows by more than a few MiB, and that the piece
// is stored with the expected CID and provable at both ends.
func TestLargeIngestBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("large ingest")
	}
	want, err := pdp.CommP(newStreamReader(7, largeIngestSize))
	if err != nil {
		t.Fatal(err)
	}
	s := openTest(t, t.TempDir(), Options{})
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	w := watchHeap()
	info, err := s.Ingest(context.Background(), newStreamReader(7, largeIngestSize), &want)
	peak := w.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if info.Piece != want || info.RawSize != largeIngestSize {
		t.Fatalf("info %+v, want %v", info, want)
	}
	grew := int64(peak) - int64(base)
	t.Logf("ingested %d MiB; heap in use grew by at most %.1f MiB", largeIngestSize>>20, float64(grew)/(1<<20))
	// 4 MiB of pipeline buffers + the commP workers' chunks (~2 MiB per core) + slack.
	if limit := int64(24 << 20); grew > limit {
		t.Fatalf("heap grew by %d bytes during ingest, limit %d", grew, limit)
	}
	leaves := []uint64{0, want.LeafCount() - 1, want.LeafCount() / 3}
	proofs, err := s.ProveLeaves(context.Background(), want, leaves)
	if err != nil {
		t.Fatal(err)
	}
	for i, pr := range proofs {
		if err := pdp.VerifyProof(want.Root, want.Height, leaves[i], pr); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMaxSizePieceProofs stores a 64 GiB (padded) piece as a sparse file with a few filled
// sections and proves leaves in them: node offsets in the sidecar and section ranges hold at
// the largest size we accept. Reopening verifies the ~64 MiB sidecar's checksum.
func TestMaxSizePieceProofs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 64 MiB sidecar")
	}
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	p, _, sections := buildSparsePiece(t, s, 31, 4)
	if p.PaddedSize() != pdp.MaxPaddedSize {
		t.Fatalf("padded size %d", p.PaddedSize())
	}
	s.Close()
	s = openTest(t, dir, Options{})
	if rep := s.StartupReport(); rep.Pieces != 1 || len(rep.Missing)+len(rep.LayersRebuilt)+len(rep.Damaged) != 0 {
		t.Fatalf("startup %+v", rep)
	}
	lh := s.layer
	leaves := []uint64{sections[0] << lh, sections[1]<<lh + 77, sections[2]<<lh + 1<<lh - 1, sections[3]<<lh + 5, 12345}
	before := s.Metrics().ProofBytesRead
	proofs, err := s.ProveLeaves(context.Background(), p, leaves)
	if err != nil {
		t.Fatal(err)
	}
	for i, pr := range proofs {
		if err := pdp.VerifyProof(p.Root, p.Height, leaves[i], pr); err != nil || len(pr.Path) != 31 {
			t.Fatalf("proof %d: %v (path %d)", i, err, len(pr.Path))
		}
	}
	if read := s.Metrics().ProofBytesRead - before; read > 1<<20 {
		t.Fatalf("5 proofs read %d bytes", read)
	}
}
