package ipfs_test

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/warmstore/warmstore/ipfs"
)

const benchSize = 32 << 20

func benchFile(b *testing.B) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "bench.bin")
	if err := os.WriteFile(p, randomBytes(42, benchSize), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkSHA256File is the peer: one read of the file through SHA-256, the floor for any
// content addressing of the same bytes.
func BenchmarkSHA256File(b *testing.B) {
	p := benchFile(b)
	b.SetBytes(benchSize)
	for b.Loop() {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkRootOf is the hash-only pass alone.
func BenchmarkRootOf(b *testing.B) {
	p := benchFile(b)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ipfs.RootOf(context.Background(), p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildCAR is both passes, the CAR streamed to io.Discard.
func BenchmarkBuildCAR(b *testing.B) {
	p := benchFile(b)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ipfs.BuildCAR(context.Background(), p, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetch is a verified fetch of the file through the gateway on loopback (index
// lookups, piece reads with verification, CAR over HTTP, client verification, spool, walk).
func BenchmarkFetch(b *testing.B) {
	r := newRig(b)
	root, _ := r.add(b, benchFile(b))
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		out := filepath.Join(b.TempDir(), "out")
		if _, err := ipfs.Fetch(context.Background(), nil, r.srv.URL, root, out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIndexPiece indexes a stored CAR piece of the file (after a removal, so each round
// reads the CAR again).
func BenchmarkIndexPiece(b *testing.B) {
	r := newRig(b)
	_, piece := r.add(b, benchFile(b))
	b.SetBytes(benchSize)
	for b.Loop() {
		if _, err := r.index.RemovePiece(piece, 1); err != nil {
			b.Fatal(err)
		}
		if _, err := r.index.AddPiece(context.Background(), piece, 1); err != nil {
			b.Fatal(err)
		}
	}
}
