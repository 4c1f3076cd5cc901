package pdp

import (
	"errors"
	"fmt"
	"math/bits"
)

// ErrUnknownPiece is returned by SumTree when a piece id was never handed out or is no longer
// live.
var ErrUnknownPiece = errors.New("pdp: unknown piece")

// ErrLeafOutOfRange is returned by SumTree.Find for a leaf index at or past the live total.
var ErrLeafOutOfRange = errors.New("pdp: leaf index out of range")

// SumTree maps a data-set leaf index to (piece id, leaf offset within that piece), with the
// semantics of PDPVerifier's sum tree: piece ids are assigned sequentially from 0 and never
// reused, a removed piece counts 0 leaves and so can never be selected, and a piece is live
// while its leaf count is > 0.
//
// It is a Fenwick (binary indexed) tree: node j holds the sum of the counts of pieces
// [j+1-2^h, j] where h = ctz(j+1), so Add, Remove and Find are O(log n).
// A SumTree is not safe for concurrent mutation.
type SumTree struct {
	node   []uint64 // Fenwick partial sums, indexed by piece id
	counts []uint64 // current leaf count of each piece (0 = removed)
	total  uint64
}

// NewSumTree rebuilds a sum tree from persisted per-piece leaf counts (index = piece id; 0 for
// removed pieces) in O(n).
func NewSumTree(leafCounts []uint64) *SumTree {
	t := &SumTree{
		node:   make([]uint64, len(leafCounts)),
		counts: make([]uint64, len(leafCounts)),
	}
	copy(t.counts, leafCounts)
	copy(t.node, leafCounts)
	n := len(leafCounts)
	for j := 0; j < n; j++ {
		t.total += leafCounts[j]
		// j|(j+1) = j + lowbit(j+1): the next node whose range covers node j's range.
		if p := j | (j + 1); p < n {
			t.node[p] += t.node[j]
		}
	}
	return t
}

// Add appends a piece with the given leaf count and returns its id.
func (t *SumTree) Add(leafCount uint64) (pieceID uint64) {
	j := uint64(len(t.node))
	sum := leafCount
	// Node j covers [j+1-lowbit(j+1), j]: add the child nodes j-1, j-2, j-4, ... that tile the
	// part of that range before j.
	low := (j + 1) & -(j + 1)
	for step := uint64(1); step < low; step <<= 1 {
		sum += t.node[j-step]
	}
	t.node = append(t.node, sum)
	t.counts = append(t.counts, leafCount)
	t.total += leafCount
	return j
}

// Remove marks a live piece as removed: it keeps its id and counts 0 leaves from now on.
// Removing an id never handed out, or one already removed (or added with 0 leaves), is an error
// wrapping ErrUnknownPiece.
func (t *SumTree) Remove(pieceID uint64) error {
	n := uint64(len(t.node))
	if pieceID >= n {
		return fmt.Errorf("%w: piece id %d not handed out (%d pieces)", ErrUnknownPiece, pieceID, n)
	}
	d := t.counts[pieceID]
	if d == 0 {
		return fmt.Errorf("%w: piece id %d is not live (already removed)", ErrUnknownPiece, pieceID)
	}
	for j := pieceID; j < n; j |= j + 1 {
		t.node[j] -= d
	}
	t.counts[pieceID] = 0
	t.total -= d
	return nil
}

// LeafCount returns the current leaf count of a piece: 0 when removed or never handed out.
func (t *SumTree) LeafCount(pieceID uint64) uint64 {
	if pieceID >= uint64(len(t.counts)) {
		return 0
	}
	return t.counts[pieceID]
}

// Len returns how many piece ids have been handed out (live or removed).
func (t *SumTree) Len() uint64 { return uint64(len(t.node)) }

// Total returns the sum of the live pieces' leaf counts.
func (t *SumTree) Total() uint64 { return t.total }

// Find maps a data-set leaf index to the piece whose cumulative range holds it and the offset
// inside that piece. Pieces with 0 leaves are never returned. leafIndex >= Total() is an error
// wrapping ErrLeafOutOfRange.
func (t *SumTree) Find(leafIndex uint64) (pieceID, offset uint64, err error) {
	if leafIndex >= t.total {
		return 0, 0, fmt.Errorf("%w: leaf %d, data set has %d leaves", ErrLeafOutOfRange, leafIndex, t.total)
	}
	n := uint64(len(t.node))
	// Binary descent: pos counts the pieces known to end at or before leafIndex; every node
	// stepped over covers pieces [pos, pos+step).
	var pos uint64
	rem := leafIndex
	for step := uint64(1) << (bits.Len64(n) - 1); step > 0; step >>= 1 {
		if next := pos + step; next <= n && t.node[next-1] <= rem {
			pos = next
			rem -= t.node[next-1]
		}
	}
	return pos, rem, nil
}
