package pdp

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"

	commp "github.com/filecoin-project/go-fil-commp-hashhash"
	sha256simd "github.com/minio/sha256-simd"
)

var bench256MiB = sync.OnceValue(func() []byte { return randomBytes(256, 256<<20) })

// BenchmarkCommP256MiB compares this package's Calc with go-fil-commp-hashhash on the same
// 256 MiB of random bytes, written in one call.
func BenchmarkCommP256MiB(b *testing.B) {
	data := bench256MiB()
	b.Run("warmstore", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		c := NewCalc(0)
		for b.Loop() {
			c.Reset()
			c.Write(data)
			if _, err := c.Finish(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warmstore-layer11", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		c := NewCalc(11)
		for b.Loop() {
			c.Reset()
			c.Write(data)
			if _, err := c.Finish(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hashhash", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var c commp.Calc
		for b.Loop() {
			c.Reset()
			c.Write(data)
			if _, _, err := c.Digest(); err != nil {
				b.Fatal(err)
			}
		}
		c.Reset()
	})
}

// BenchmarkSectionRoot measures rebuilding one section from raw bytes, the per-challenge
// hashing cost of a proof, for each candidate layer height.
func BenchmarkSectionRoot(b *testing.B) {
	for h := uint8(8); h <= 12; h++ {
		data := randomBytes(uint64(h), int(SectionRawSize(h)))
		b.Run(fmt.Sprintf("h=%d", h), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				SectionRoot(data, h)
			}
		})
	}
}

// BenchmarkNodeHash compares ways to hash one 64-byte node.
func BenchmarkNodeHash(b *testing.B) {
	var pair [2]Node
	pair[0][0], pair[1][0] = 1, 2
	var dst [1]Node
	b.Run("stdlib-Sum256", func(b *testing.B) {
		for b.Loop() {
			dst[0] = sha256.Sum256(nodeBytes(pair[:]))
		}
	})
	b.Run("simd-Sum256", func(b *testing.B) {
		for b.Loop() {
			dst[0] = sha256simd.Sum256(nodeBytes(pair[:]))
		}
	})
	b.Run("hashPairs", func(b *testing.B) {
		for b.Loop() {
			hashPairs(dst[:], pair[:])
		}
	})
	var many [2 * 256]Node
	out := make([]Node, 256)
	b.Run("hashPairs-256", func(b *testing.B) {
		b.SetBytes(64 * 256)
		for b.Loop() {
			hashPairs(out, many[:])
		}
	})
}
