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

// TestHashPairsMatchesGeneric cross-checks the platform kernel (SHA-NI assembly on amd64)
// against the portable code for every batch size up to 40, in place and out of place.
func TestHashPairsMatchesGeneric(t *testing.T) {
	t.Logf("node hash kernel: %s", nodeHashKernel)
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 0; n <= 40; n++ {
		src := make([]Node, 2*n)
		for i := range src {
			for j := range src[i] {
				src[i][j] = byte(rng.Uint32())
			}
		}
		want := make([]Node, n)
		hashPairsGeneric(want, src)
		for i := range want {
			plain := sha256.Sum256(append(src[2*i][:], src[2*i+1][:]...))
			plain[31] &= 0x3F
			if want[i] != Node(plain) {
				t.Fatalf("generic node %d of %d wrong", i, n)
			}
		}
		got := make([]Node, n)
		hashPairs(got, src)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("n=%d: node %d = %x, want %x", n, i, got[i], want[i])
			}
		}
		inPlace := append([]Node(nil), src...)
		hashPairs(inPlace[:n], inPlace)
		for i := range want {
			if inPlace[i] != want[i] {
				t.Fatalf("n=%d in place: node %d = %x, want %x", n, i, inPlace[i], want[i])
			}
		}
		// Nodes past dst stay untouched.
		if n > 0 {
			guard := make([]Node, n+1)
			guard[n] = Node{0xAA}
			hashPairs(guard[:n], src)
			if guard[n] != (Node{0xAA}) {
				t.Fatalf("n=%d: wrote past dst", n)
			}
		}
	}
}
