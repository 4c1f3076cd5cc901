//go:build amd64 && !purego

package pdp

import (
	"math/big"
	"math/bits"
)

// On amd64 CPUs with the SHA extensions, nodes are hashed by an assembly kernel that works on
// two nodes at once (the SHA256RNDS2 dependency chain of one message leaves the unit idle half
// the time) and skips the second compression's message schedule: a node is always exactly one
// 64-byte block, so the padding block and its schedule are constants.

// shaniTables is the constant data of the kernel; the assembly reads it at fixed offsets.
type shaniTables struct {
	k     [64]uint32 // offset 0: SHA-256 round constants
	padWK [64]uint32 // offset 256: W[t]+K[t] of the padding block of a 64-byte message
	iv    [8]uint32  // offset 512: initial state as the SHA256RNDS2 register pair ABEF, CDGH
	bswap [16]byte   // offset 544: PSHUFB mask reversing the bytes of each 32-bit word
	mask  [16]byte   // offset 560: clears the top two bits of the digest's last byte
}

// hasSHANI reports SHA, SSSE3 and SSE4.1 support (CPUID).
func hasSHANI() bool

// hashPairsSHANI hashes n nodes: dst[i] = sha254(src[2i] || src[2i+1]).
//
//go:noescape
func hashPairsSHANI(dst, src *Node, n int, t *shaniTables)

var (
	useSHANI = hasSHANI()
	shani    = newSHANITables()
)

// nodeHashKernel names the implementation in use, for benchmarks and reports.
var nodeHashKernel = map[bool]string{true: "sha-ni-2way", false: "generic"}[useSHANI]

// hashPairs sets dst[i] = HashNode(src[2i], src[2i+1]); see hashPairsGeneric for aliasing.
func hashPairs(dst, src []Node) {
	if len(dst) == 0 {
		return
	}
	if !useSHANI {
		hashPairsGeneric(dst, src)
		return
	}
	_ = src[2*len(dst)-1] // bounds check before handing raw pointers to assembly
	hashPairsSHANI(&dst[0], &src[0], len(dst), shani)
}

func newSHANITables() *shaniTables {
	t := new(shaniTables)
	// K[i]: the first 32 bits of the fractional part of the cube root of the i-th prime;
	// H[i]: the same for the square roots of the first 8 primes (FIPS 180-4 §4.2.2, §5.3.3).
	primes := firstPrimes(64)
	for i, p := range primes {
		t.k[i] = uint32(intRoot(new(big.Int).Lsh(big.NewInt(int64(p)), 96), 3).Uint64())
	}
	var h [8]uint32
	for i, p := range primes[:8] {
		h[i] = uint32(new(big.Int).Sqrt(new(big.Int).Lsh(big.NewInt(int64(p)), 64)).Uint64())
	}
	// Register layout of SHA256RNDS2: ABEF holds (from dword 0) F, E, B, A; CDGH holds H, G, D, C.
	t.iv = [8]uint32{h[5], h[4], h[1], h[0], h[7], h[6], h[3], h[2]}

	// The padding block after a 64-byte message: 0x80, zeros, then the bit length 512.
	var w [64]uint32
	w[0], w[15] = 0x80000000, 512
	for i := 16; i < 64; i++ {
		s0 := bits.RotateLeft32(w[i-15], -7) ^ bits.RotateLeft32(w[i-15], -18) ^ w[i-15]>>3
		s1 := bits.RotateLeft32(w[i-2], -17) ^ bits.RotateLeft32(w[i-2], -19) ^ w[i-2]>>10
		w[i] = w[i-16] + s0 + w[i-7] + s1
	}
	for i := range w {
		t.padWK[i] = w[i] + t.k[i]
	}
	for i := range t.bswap {
		t.bswap[i] = byte(i/4*4 + 3 - i%4)
	}
	for i := range t.mask {
		t.mask[i] = 0xFF
	}
	t.mask[15] = 0x3F
	return t
}

func firstPrimes(n int) []int {
	var ps []int
	for c := 2; len(ps) < n; c++ {
		prime := true
		for _, p := range ps {
			if c%p == 0 {
				prime = false
				break
			}
		}
		if prime {
			ps = append(ps, c)
		}
	}
	return ps
}

// intRoot returns floor(x^(1/k)) by bisection.
func intRoot(x *big.Int, k int) *big.Int {
	lo, hi := big.NewInt(0), new(big.Int).Lsh(big.NewInt(1), uint(x.BitLen()/k+1))
	one, pow := big.NewInt(1), new(big.Int)
	for new(big.Int).Sub(hi, lo).Cmp(one) > 0 {
		mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
		if pow.Exp(mid, big.NewInt(int64(k)), nil).Cmp(x) <= 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}
