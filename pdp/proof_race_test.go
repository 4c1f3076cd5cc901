//go:build race

package pdp

// proofLargePieceRaw is the payload of the large-piece proof test; the race detector makes
// hashing ~10x slower, so it shrinks there.
const proofLargePieceRaw = 3<<20 + 12345
