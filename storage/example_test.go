package storage_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage"
)

func Example() {
	dir, err := os.MkdirTemp("", "warmstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := storage.Open(dir, storage.Options{GCGrace: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	// Ingest: one pass, durable before it returns.
	payload := strings.Repeat("warm storage keeps pieces provable. ", 5000)
	info, err := s.Ingest(ctx, strings.NewReader(payload), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored", info.RawSize, "raw bytes,", info.PaddedSize, "padded")

	// A data set references it; prove two challenged leaves.
	if err := s.AddRef(info.Piece, 42); err != nil {
		log.Fatal(err)
	}
	leaves := []uint64{0, info.Piece.LeafCount() - 1}
	proofs, err := s.ProveLeaves(ctx, info.Piece, leaves)
	if err != nil {
		log.Fatal(err)
	}
	for i, pr := range proofs {
		fmt.Println("proof", i, "verifies:", pdp.VerifyProof(info.Piece.Root, info.Piece.Height, leaves[i], pr) == nil)
	}

	// Ranged read, as http.ServeContent would do.
	r, err := s.OpenPiece(ctx, info.Piece)
	if err != nil {
		log.Fatal(err)
	}
	r.Seek(5, io.SeekStart)
	word := make([]byte, 7)
	io.ReadFull(r, word)
	r.Close()
	fmt.Printf("bytes 5..12: %q\n", word)

	// Unreferenced pieces are collected after the grace period.
	s.RemoveRef(info.Piece, 42)
	rep, _ := s.GC(ctx, now.Add(2*time.Hour))
	fmt.Println("collected:", len(rep.Removed))
	// Output:
	// stored 180000 raw bytes, 262144 padded
	// proof 0 verifies: true
	// proof 1 verifies: true
	// bytes 5..12: "storage"
	// collected: 1
}
