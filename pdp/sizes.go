package pdp

import "math/bits"

// MaxPaddedSize is the largest piece this implementation accepts: 64 GiB of padded data.
const MaxPaddedSize uint64 = 64 << 30

// MaxRawSize is the largest raw payload whose padded tree fits MaxPaddedSize.
const MaxRawSize = MaxPaddedSize / 128 * 127

// NumChallenges is the number of challenges a data set answers each proving period.
const NumChallenges = 5

// chunks127 returns ceil(raw/127) without overflowing.
func chunks127(raw uint64) uint64 {
	q := raw / fr32RawChunk
	if raw%fr32RawChunk != 0 {
		q++
	}
	return q
}

// TreeHeight returns log2 of the leaf count of the padded tree of a rawSize-byte payload.
// Payloads of 0..127 bytes have height 2 (one 128-byte fr32 chunk, four leaves), as FRC-0069
// specifies for small payloads.
func TreeHeight(rawSize uint64) uint8 {
	q := chunks127(rawSize)
	if q <= 1 {
		return 2
	}
	return uint8(2 + bits.Len64(q-1))
}

// PaddedSize returns the padded tree size of a rawSize-byte payload: the next power of two at
// or above ceil(rawSize*128/127), at least 128. It is only meaningful for rawSize up to 2^56
// (far above MaxRawSize); callers check MaxRawSize first.
func PaddedSize(rawSize uint64) uint64 {
	return uint64(NodeSize) << TreeHeight(rawSize)
}

// rawCapacity returns the raw bytes that fill a tree of the given height (>= 2) exactly.
func rawCapacity(height uint8) uint64 {
	return fr32RawChunk << (height - 2)
}
