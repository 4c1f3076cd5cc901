//go:build !race

package pdp

// proofLargePieceRaw is the payload of the large-piece proof test (multi-MiB, so the piece has
// many sections and a deep TreeTop).
const proofLargePieceRaw = 24<<20 + 12345
