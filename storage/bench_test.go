package storage

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage/fsbackend"
	"golang.org/x/sys/unix"
)

// BenchmarkIngest compares a full ingest (disk write, fsyncs, sidecar, index) with pdp commP
// alone over the same bytes, and prints the ratio of their throughputs. The goal is >= 0.9:
// the write hides behind the hashing.
func BenchmarkIngest(b *testing.B) {
	const size = 256 << 20
	data := payload(42, size)
	var commPns, ingestNs float64
	b.Run("commP", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := pdp.CommP(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
		commPns = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	// The disk's own limit for the same bytes: write them to a blob and commit (fsync) it,
	// without hashing. Ingest cannot beat this, since a piece is acknowledged only once durable.
	var writeNs float64
	b.Run("diskWrite", func(b *testing.B) {
		be, err := fsbackend.New(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			name := fmt.Sprintf("w%d", i)
			w, err := be.Create(context.Background(), name)
			if err != nil {
				b.Fatal(err)
			}
			for off := 0; off < size; off += ingestChunk {
				if _, err := w.Write(data[off : off+ingestChunk]); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Commit(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			be.Remove(context.Background(), name)
			b.StartTimer()
		}
		writeNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("ingest", func(b *testing.B) {
		dir := b.TempDir()
		s, err := Open(dir, Options{GCGrace: time.Nanosecond})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.SetBytes(size)
		var elapsed time.Duration
		for i := 0; b.Loop(); i++ {
			// A different piece every time, so that nothing is deduplicated.
			data[0], data[1], data[2] = byte(i), byte(i>>8), 0xA5
			start := time.Now()
			if _, err := s.Ingest(context.Background(), bytes.NewReader(data), nil); err != nil {
				b.Fatal(err)
			}
			elapsed += time.Since(start)
			b.StopTimer()
			if _, err := s.GC(context.Background(), time.Now().Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		ingestNs = float64(elapsed.Nanoseconds()) / float64(b.N)
	})
	if commPns > 0 && ingestNs > 0 && writeNs > 0 {
		fmt.Printf("BenchmarkIngest: commP %.0f MB/s, disk write+fsync %.0f MB/s, ingest %.0f MB/s; "+
			"ingest/commP = %.3f, ingest/min(commP, disk) = %.3f\n",
			size/commPns*1e3, size/writeNs*1e3, size/ingestNs*1e3, commPns/ingestNs, max(commPns, writeNs)/ingestNs)
	}
}

// BenchmarkIngestInterleaved alternates commP-alone and ingest runs over the same 128 MiB
// and reports the ratio of their total times, so that load from other processes on a shared
// machine hits both sides alike.
func BenchmarkIngestInterleaved(b *testing.B) {
	const size = 128 << 20
	data := payload(43, size)
	s, err := Open(b.TempDir(), Options{GCGrace: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var commPTime, ingestTime time.Duration
	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		data[0], data[1], data[2] = byte(i), byte(i>>8), 0x5A
		t0 := time.Now()
		if _, err := pdp.CommP(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := s.Ingest(context.Background(), bytes.NewReader(data), nil); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		commPTime += t1.Sub(t0)
		ingestTime += t2.Sub(t1)
		if _, err := s.GC(context.Background(), time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(size/(commPTime.Seconds()/n)/1e6, "commP-MB/s")
	b.ReportMetric(size/(ingestTime.Seconds()/n)/1e6, "ingest-MB/s")
	b.ReportMetric(commPTime.Seconds()/ingestTime.Seconds(), "ingest/commP")
}

// BenchmarkProveCold32GiB proves 5 challenges on a 32 GiB (padded) piece whose file and
// sidecar are dropped from the page cache before every operation. The piece file is sparse:
// the challenged sections hold random data, the rest is holes (zeros).
func BenchmarkProveCold32GiB(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const height = 30 // 2^30 leaves * 32 B = 32 GiB padded
	lh := s.layer
	p, rec, sections := buildSparsePiece(b, s, height, 64)
	be := s.backend.(*fsbackend.Backend)
	files := []string{be.Path(rec.DataBlob), be.Path(rec.LayerBlob)}
	rng := rand.New(rand.NewPCG(1, 2))
	before := s.Metrics().ProofBytesRead
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		for _, f := range files {
			dropFromPageCache(b, f)
		}
		leaves := make([]uint64, pdp.NumChallenges)
		for i := range leaves {
			leaves[i] = sections[rng.IntN(len(sections))]<<lh + rng.Uint64N(1<<lh)
		}
		b.StartTimer()
		proofs, err := s.ProveLeaves(context.Background(), p, leaves)
		if err != nil {
			b.Fatal(err)
		}
		if len(proofs) != pdp.NumChallenges {
			b.Fatal("missing proofs")
		}
	}
	b.ReportMetric(float64(s.Metrics().ProofBytesRead-before)/float64(b.N), "bytes-read/op")
}

func dropFromPageCache(b *testing.B, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatal(err)
	}
}

// buildSparsePiece stores a piece of the given height directly: a sparse data file where
// `filled` random sections hold random bytes, its tree top computed from the section roots,
// its sidecar and index record. It returns the piece, its record and the filled sections.
func buildSparsePiece(b testing.TB, s *Store, height uint8, filled int) (pdp.PieceCID, pieceRecord, []uint64) {
	lh := s.layer
	secRaw := pdp.SectionRawSize(lh)
	nsec := uint64(1) << (height - lh)
	rawSize := nsec * secRaw
	id := newBlobID()
	be := s.backend.(*fsbackend.Backend)
	path := be.Path(dataBlobName(id))
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Truncate(int64(rawSize)); err != nil {
		b.Fatal(err)
	}
	zero := pdp.ZeroRoot(int(lh))
	roots := make([]pdp.Node, nsec)
	for i := range roots {
		roots[i] = zero
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var secs []uint64
	buf := make([]byte, secRaw)
	for range filled {
		k := rng.Uint64N(nsec)
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(buf, int64(k*secRaw)); err != nil {
			b.Fatal(err)
		}
		roots[k] = pdp.SectionRoot(buf, lh)
		secs = append(secs, k)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	top := &pdp.TreeTop{LayerHeight: lh, PieceHeight: height, Levels: [][]pdp.Node{roots}}
	for lvl := roots; len(lvl) > 1; {
		next := make([]pdp.Node, len(lvl)/2)
		for i := range next {
			next[i] = pdp.HashNode(&lvl[2*i], &lvl[2*i+1])
		}
		top.Levels = append(top.Levels, next)
		lvl = next
	}
	p, err := pdp.NewPieceCID(top.Root(), rawSize)
	if err != nil {
		b.Fatal(err)
	}
	side, err := encodeSidecar(top)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.writeBlob(context.Background(), layerBlobName(id), side.body, side.trailer[:]); err != nil {
		b.Fatal(err)
	}
	rec := pieceRecord{Created: time.Now(), LayerHeight: lh, Sections: top.Sections(),
		DataBlob: dataBlobName(id), LayerBlob: layerBlobName(id), LayerSize: side.size()}
	if err := s.db.Set(key(prefixPiece, pieceKeyBytes(p)), rec.marshal(), syncWrite); err != nil {
		b.Fatal(err)
	}
	return p, rec, secs
}
