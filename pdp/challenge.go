package pdp

import (
	"encoding/binary"
	"math/bits"

	"golang.org/x/crypto/sha3"
)

// challengeInputSize is the length of the packed keccak input that PDPVerifier hashes:
// abi.encodePacked(uint256 seed, uint256 setId, uint64 i) = 32 + 32 + 8 bytes.
const challengeInputSize = 32 + 32 + 8

// ChallengeIndex derives the i-th challenged leaf of a data set the way PDPVerifier does:
//
//	uint256(keccak256(seed ‖ uint256(setID) ‖ uint64(i))) mod challengeRange
//
// seed is the beacon value of the challenge epoch and challengeRange the data set's leaf count
// frozen when the proving period was scheduled. challengeRange must be > 0: a data set without
// leaves has nothing to challenge (on chain the modulo would revert), so 0 panics.
func ChallengeIndex(seed [32]byte, setID uint64, i uint64, challengeRange uint64) uint64 {
	if challengeRange == 0 {
		panic("pdp: ChallengeIndex with challengeRange 0")
	}
	var in [challengeInputSize]byte
	copy(in[:32], seed[:])
	// setID occupies the low 8 bytes of its 32-byte big-endian uint256 slot.
	binary.BigEndian.PutUint64(in[56:64], setID)
	binary.BigEndian.PutUint64(in[64:72], i)

	h := sha3.NewLegacyKeccak256()
	h.Write(in[:])
	var digest [32]byte
	h.Sum(digest[:0])
	return mod256(&digest, challengeRange)
}

// ChallengeIndices returns ChallengeIndex(seed, setID, i, challengeRange) for i = 0..n-1, the
// order in which a proof's elements must answer them.
func ChallengeIndices(seed [32]byte, setID uint64, n int, challengeRange uint64) []uint64 {
	if n < 0 {
		n = 0
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = ChallengeIndex(seed, setID, uint64(i), challengeRange)
	}
	return out
}

// mod256 reduces a 256-bit big-endian number modulo m without allocating: Horner's rule over
// the four 64-bit words, each step a 128-by-64 remainder (bits.Rem64 never overflows).
func mod256(x *[32]byte, m uint64) uint64 {
	var r uint64
	for w := 0; w < 4; w++ {
		r = bits.Rem64(r, binary.BigEndian.Uint64(x[w*8:w*8+8]), m)
	}
	return r
}
