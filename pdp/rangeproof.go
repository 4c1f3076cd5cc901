package pdp

import (
	"errors"
	"fmt"
)

// ErrInvalidRange is wrapped by RangeSpan when a byte range is empty or outside the piece.
var ErrInvalidRange = errors.New("pdp: invalid byte range")

// RangeSpan returns the raw range [rawStart, rawEnd) and the leaf range [leafStart, leafEnd]
// (inclusive) that cover the raw bytes [start, end) of piece p. A raw byte range touches whole
// fr32 chunks (127 raw bytes = 4 leaves), so the covering raw range is chunk-aligned, clipped
// to the piece's raw size. It is the geometry a provider proves and a client verifies.
func RangeSpan(p PieceCID, start, end uint64) (rawStart, rawEnd, leafStart, leafEnd uint64, err error) {
	raw := p.RawSize()
	if start >= end || end > raw {
		return 0, 0, 0, 0, fmt.Errorf("%w: [%d, %d) is empty or outside the piece's %d raw bytes", ErrInvalidRange, start, end, raw)
	}
	const leavesPerChunk = fr32PaddedChunk / NodeSize
	c0, c1 := start/fr32RawChunk, (end+fr32RawChunk-1)/fr32RawChunk // chunks [c0, c1)
	return c0 * fr32RawChunk, min(c1*fr32RawChunk, raw), leavesPerChunk * c0, leavesPerChunk*c1 - 1, nil
}

// RangeProof is what a client needs to verify the raw bytes [Start, End) of a piece without
// the rest of it (the JSON answer of a provider's GET /pdp/piece/{pieceCid}/proof).
//
// The client fetches [RawStart, RawEnd), fr32-pads it and so knows every leaf in
// [LeafStart, LeafEnd]. To hash those up to the piece root it needs, at each level, at most
// one node left of the range and one right of it: exactly the siblings on the paths of the
// first and the last leaf. So Proofs holds two ordinary single-leaf proofs, for LeafStart and
// LeafEnd, whatever the size of the range: about 2·height·32 bytes.
type RangeProof struct {
	PieceCID  PieceCID `json:"pieceCid"`
	Start     uint64   `json:"start"` // the asked range, raw bytes, end exclusive
	End       uint64   `json:"end"`
	RawStart  uint64   `json:"rawStart"` // the chunk-aligned raw range the client hashes
	RawEnd    uint64   `json:"rawEnd"`
	LeafStart uint64   `json:"leafStart"`
	LeafEnd   uint64   `json:"leafEnd"` // inclusive
	Proofs    []Proof  `json:"proofs"`
}
