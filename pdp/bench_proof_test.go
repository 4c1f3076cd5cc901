package pdp

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	sha256simd "github.com/minio/sha256-simd"
)

// sidecarTopNodes is a file-backed TopNodes the way storage reads a TreeTop sidecar: one
// 32-byte ReadAt per node at TreeTopNodeOffset, ZeroRoot for nodes past the data.
type sidecarTopNodes struct {
	f                        *os.File
	pieceHeight, layerHeight uint8
	sections                 uint64
	bytesRead                *atomic.Int64
}

func (s sidecarTopNodes) TopNode(h uint8, i uint64) (Node, error) {
	if h < s.layerHeight || h > s.pieceHeight || i >= 1<<(s.pieceHeight-h) {
		return Node{}, fmt.Errorf("node (%d,%d) outside the cached tree", h, i)
	}
	off, ok := TreeTopNodeOffset(s.pieceHeight, s.layerHeight, s.sections, h, i)
	if !ok {
		return ZeroRoot(int(h)), nil
	}
	var n Node
	if _, err := s.f.ReadAt(n[:], off); err != nil {
		return Node{}, err
	}
	s.bytesRead.Add(NodeSize)
	return n, nil
}

// bench32GiB is a genuine 32 GiB piece (padded; 127<<28 raw bytes) in a sparse file: all zero
// except a few sections of random data, its TreeTop built from ZeroRoot for the empty
// sections and SectionRoot for the written ones, and the TreeTop in a sidecar file.
type bench32GiB struct {
	piece      PieceCID
	top        *TreeTop
	data       *os.File
	sidecar    *os.File
	written    []uint64 // sections holding random data
	layer      uint8
	sectionRaw uint64
}

func newBench32GiB(b *testing.B) *bench32GiB {
	b.Helper()
	const pieceHeight = 30 // 2^30 leaves = 32 GiB padded
	layer := DefaultLayerHeight
	raw := rawCapacity(pieceHeight)
	dir := b.TempDir()
	data, err := os.Create(filepath.Join(dir, "piece"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { data.Close() })
	if err := data.Truncate(int64(raw)); err != nil {
		b.Fatal(err)
	}
	nSections := uint64(1) << (pieceHeight - layer)
	roots := make([]Node, nSections)
	for i := range roots {
		roots[i] = ZeroRoot(int(layer))
	}
	sr := SectionRawSize(layer)
	rng := rand.New(rand.NewPCG(1, 1))
	buf := make([]byte, sr)
	var written []uint64
	for k := uint64(0); k < 64; k++ {
		s := k*(nSections/64) + rng.Uint64N(nSections/64)
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		if _, err := data.WriteAt(buf, int64(s*sr)); err != nil {
			b.Fatal(err)
		}
		roots[s] = SectionRoot(buf, layer)
		written = append(written, s)
	}
	levels := [][]Node{roots}
	for cur := roots; len(cur) > 1; {
		next := make([]Node, len(cur)/2)
		for i := range next {
			next[i] = HashNode(&cur[2*i], &cur[2*i+1])
		}
		levels = append(levels, next)
		cur = next
	}
	top := &TreeTop{LayerHeight: layer, PieceHeight: pieceHeight, Levels: levels}
	p, err := NewPieceCID(top.Root(), raw)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := top.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	sidecar, err := os.Create(filepath.Join(dir, "piece.top"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sidecar.Close() })
	if _, err := sidecar.Write(enc); err != nil {
		b.Fatal(err)
	}
	return &bench32GiB{piece: p, top: top, data: data, sidecar: sidecar, written: written, layer: layer, sectionRaw: sr}
}

// BenchmarkProve5Challenges32GiB answers one proving period (5 challenges) on a 32 GiB piece:
// per challenge, read the section from the piece file, read the ~20 upper siblings from the
// TreeTop sidecar, rebuild the section subtree and assemble the proof. Challenged leaves fall
// in the sections holding random data. Reports piece+sidecar bytes read per 5-proof op.
//
// The "read+SectionRoot" sub-benchmark is the peer: the same 5 section reads plus SectionRoot
// only (the work any prover that checks the data must do), to express ProveLeaf's overhead
// (path assembly, sidecar reads, the final self-check) as a ratio.
func BenchmarkProve5Challenges32GiB(b *testing.B) {
	bp := newBench32GiB(b)
	var read atomic.Int64
	top := sidecarTopNodes{f: bp.sidecar, pieceHeight: bp.top.PieceHeight, layerHeight: bp.layer, sections: bp.top.Sections(), bytesRead: &read}
	secBuf := make([]byte, bp.sectionRaw)
	leavesPerSection := uint64(1) << bp.layer
	rng := rand.New(rand.NewPCG(2, 2))
	pickLeaf := func() uint64 {
		s := bp.written[rng.IntN(len(bp.written))]
		return s*leavesPerSection + rng.Uint64N(leavesPerSection)
	}
	readSection := func(leaf uint64) []byte {
		off, n := SectionRange(bp.piece, bp.layer, leaf>>bp.layer)
		if _, err := bp.data.ReadAt(secBuf[:n], int64(off)); err != nil {
			b.Fatal(err)
		}
		read.Add(int64(n))
		return secBuf[:n]
	}

	b.Run("prove", func(b *testing.B) {
		read.Store(0)
		b.ReportAllocs()
		for b.Loop() {
			for c := 0; c < NumChallenges; c++ {
				leaf := pickLeaf()
				pr, err := ProveLeaf(bp.piece, top, bp.layer, readSection(leaf), leaf)
				if err != nil {
					b.Fatal(err)
				}
				if len(pr.Path) != 30 {
					b.Fatal("short path")
				}
			}
		}
		b.ReportMetric(float64(read.Load())/float64(b.N), "bytes-read/op")
	})
	b.Run("read+SectionRoot", func(b *testing.B) {
		read.Store(0)
		for b.Loop() {
			for c := 0; c < NumChallenges; c++ {
				leaf := pickLeaf()
				_ = SectionRoot(readSection(leaf), bp.layer)
			}
		}
		b.ReportMetric(float64(read.Load())/float64(b.N), "bytes-read/op")
	})
}

// BenchmarkVerify5Challenges verifies 5 proofs of a 32 GiB piece (height 30). The peer,
// "sha256simd-150", is 150 bare sha256-simd hashes of 64-byte inputs: the node hashes any
// verifier must do, with a general-purpose SHA-256.
func BenchmarkVerify5Challenges(b *testing.B) {
	bp := newBench32GiB(b)
	leaves := make([]uint64, NumChallenges)
	proofs := make([]Proof, NumChallenges)
	buf := make([]byte, bp.sectionRaw)
	for i := range leaves {
		leaves[i] = bp.written[i]<<bp.layer + uint64(i*97)
		off, n := SectionRange(bp.piece, bp.layer, bp.written[i])
		if _, err := bp.data.ReadAt(buf[:n], int64(off)); err != nil {
			b.Fatal(err)
		}
		pr, err := ProveLeaf(bp.piece, bp.top, bp.layer, buf[:n], leaves[i])
		if err != nil {
			b.Fatal(err)
		}
		proofs[i] = pr
	}
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range proofs {
				if err := VerifyProof(bp.piece.Root, bp.piece.Height, leaves[i], proofs[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("sha256simd-150", func(b *testing.B) {
		var block [64]byte
		for b.Loop() {
			for i := 0; i < NumChallenges*30; i++ {
				s := sha256simd.Sum256(block[:])
				copy(block[:32], s[:])
			}
		}
	})
}
