package pdp

import (
	"unsafe"

	sha256simd "github.com/minio/sha256-simd"
)

// Node is one 32-byte tree node or leaf.
type Node [32]byte

// NodeSize is the size of a Node in bytes.
const NodeSize = 32

// MaxHeight is the largest tree height the PDPVerifier contract accepts.
const MaxHeight = 50

// HashNode returns sha254(left || right): SHA-256 of the 64-byte concatenation with the top
// two bits of the last byte cleared, so every node is a valid BLS12-381 field element the way
// Filecoin's proofs and the PDPVerifier contract expect.
func HashNode(left, right *Node) Node {
	var pair [2]Node
	pair[0], pair[1] = *left, *right
	var out [1]Node
	hashPairs(out[:], pair[:])
	return out[0]
}

// zeroRoots[h] is the root of an all-zero subtree of 2^h leaves.
var zeroRoots = func() (z [MaxHeight + 1]Node) {
	for h := 1; h <= MaxHeight; h++ {
		z[h] = HashNode(&z[h-1], &z[h-1])
	}
	return z
}()

// ZeroRoot returns the root of an all-zero subtree of 2^height leaves (the zero leaf for
// height 0). It panics when height is outside 0..MaxHeight.
func ZeroRoot(height int) Node {
	if height < 0 || height > MaxHeight {
		panic("pdp: ZeroRoot height out of range 0..MaxHeight")
	}
	return zeroRoots[height]
}

// nodeBytes views nodes as their contiguous bytes.
func nodeBytes(nodes []Node) []byte {
	if len(nodes) == 0 {
		return nil
	}
	return unsafe.Slice(&nodes[0][0], len(nodes)*NodeSize)
}

// hashPairsGeneric sets dst[i] = HashNode(src[2i], src[2i+1]) for every i in dst, portably.
// dst may alias the front of src: dst[i] is written only after src[2i] and src[2i+1] were
// read, and later reads are at indices above i.
func hashPairsGeneric(dst, src []Node) {
	src = src[:2*len(dst)]
	for i := range dst {
		// src[2i] and src[2i+1] are adjacent in memory: hash them without copying.
		pair := (*[2 * NodeSize]byte)(unsafe.Pointer(&src[2*i]))
		dst[i] = sha256simd.Sum256(pair[:])
		dst[i][31] &= 0x3F
	}
}
