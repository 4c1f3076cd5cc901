package pdp

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

func TestHashNodeIsMaskedSHA256(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100; i++ {
		var l, r Node
		for j := range l {
			l[j] = byte(rng.Uint32())
			r[j] = byte(rng.Uint32())
		}
		want := sha256.Sum256(append(l[:], r[:]...))
		want[31] &= 0x3F
		if got := HashNode(&l, &r); got != Node(want) {
			t.Fatalf("HashNode(%x, %x) = %x, want %x", l, r, got, want)
		}
		var pair [2]Node
		pair[0], pair[1] = l, r
		var dst [1]Node
		hashPairs(dst[:], pair[:])
		if dst[0] != Node(want) {
			t.Fatalf("hashPairs = %x, want %x", dst[0], want)
		}
	}
}

func TestZeroRoot(t *testing.T) {
	if ZeroRoot(0) != (Node{}) {
		t.Fatalf("ZeroRoot(0) = %x, want the zero leaf", ZeroRoot(0))
	}
	z1 := ZeroRoot(1)
	got := hex.EncodeToString(z1[:])
	// Published zero-comm for a 64-byte zero subtree: f5a5fd42...59fb0b.
	if got[:8] != "f5a5fd42" || got[len(got)-6:] != "59fb0b" {
		t.Fatalf("ZeroRoot(1) = %s, want f5a5fd42…59fb0b", got)
	}
	for h := 1; h <= MaxHeight; h++ {
		below := ZeroRoot(h - 1)
		if ZeroRoot(h) != HashNode(&below, &below) {
			t.Fatalf("ZeroRoot(%d) is not the hash of two ZeroRoot(%d)", h, h-1)
		}
	}
	for _, bad := range []int{-1, MaxHeight + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("ZeroRoot(%d) did not panic", bad)
				}
			}()
			ZeroRoot(bad)
		}()
	}
}
