package sdk

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/warmstore/warmstore/pdp"
)

// maxBlockHeight caps the subtrees hashed in one pdp.SectionRoot call, so a large verified
// range is split into blocks that the workers of verifySpan hash in parallel.
const maxBlockHeight = 16

// RangeProof is the answer of the provider route GET /pdp/piece/{pieceCid}/proof?start=A&end=B
// (served by provider.RangeProofHandler); see pdp.RangeProof.
type RangeProof = pdp.RangeProof

// ErrBadProof: a provider's range proof does not verify against the piece CID. The bytes were
// not judged; the proof's source is at fault.
var ErrBadProof = errors.New("sdk: range proof does not verify against the piece CID")

// rangeSpan is pdp.RangeSpan with a bad range reported as ErrBadRange, the SDK's error for it.
func rangeSpan(p pdp.PieceCID, start, end uint64) (rawStart, rawEnd, leafStart, leafEnd uint64, err error) {
	rawStart, rawEnd, leafStart, leafEnd, err = pdp.RangeSpan(p, start, end)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrBadRange, err)
	}
	return rawStart, rawEnd, leafStart, leafEnd, err
}

// needsProof reports whether verifying raw bytes [rawStart, rawEnd) of p needs a range proof:
// not when the range reaches both ends of the piece's data, because the nodes left of leaf 0
// do not exist and the nodes right of the data are zero subtrees.
func needsProof(p pdp.PieceCID, rawStart, rawEnd uint64) bool {
	return rawStart != 0 || rawEnd != p.RawSize()
}

// checkRangeProof checks that rp answers [rawStart, rawEnd) of p and that both leaf proofs
// verify against p's root. Errors wrap ErrBadProof.
func checkRangeProof(p pdp.PieceCID, rp *RangeProof, rawStart, rawEnd uint64) error {
	_, _, l, r, err := rangeSpan(p, rawStart, rawEnd)
	if err != nil {
		return err
	}
	if rp.PieceCID != p || rp.LeafStart != l || rp.LeafEnd != r || len(rp.Proofs) != 2 {
		return fmt.Errorf("%w: it answers piece %v leaves [%d, %d] with %d proofs, want leaves [%d, %d] with 2", ErrBadProof, rp.PieceCID, rp.LeafStart, rp.LeafEnd, len(rp.Proofs), l, r)
	}
	if err := pdp.VerifyProof(p.Root, p.Height, l, rp.Proofs[0]); err != nil {
		return fmt.Errorf("%w: first leaf %d: %w", ErrBadProof, l, err)
	}
	if err := pdp.VerifyProof(p.Root, p.Height, r, rp.Proofs[1]); err != nil {
		return fmt.Errorf("%w: last leaf %d: %w", ErrBadProof, r, err)
	}
	return nil
}

// verifySpan checks that data, the raw bytes of piece p starting at rawStart (a multiple of
// 127) and ending at a chunk boundary or at the end of the piece's data, are the piece's bytes.
// It hashes the leaves the data covers up to the root, taking the nodes outside the range from
// the sibling paths of the two proofs in rp (already checked by checkRangeProof), or knowing
// them to be zero subtrees when they lie past the data. rp may be nil when the range covers the
// whole piece. Errors wrap ErrVerification (the bytes are wrong) or ErrBadProof.
func verifySpan(p pdp.PieceCID, rawStart uint64, data []byte, rp *RangeProof) error {
	if rawStart%127 != 0 {
		return fmt.Errorf("%w: range start %d is not chunk-aligned", ErrBadRange, rawStart)
	}
	raw := p.RawSize()
	end := rawStart + uint64(len(data))
	if len(data) == 0 || end > raw || (end%127 != 0 && end != raw) {
		return fmt.Errorf("%w: %d bytes at %d do not end at a chunk boundary of a %d-byte piece", ErrBadRange, len(data), rawStart, raw)
	}
	v := spanVerifier{p: p, data: data, rawStart: rawStart, l: rawStart / 127 * 4, r: (end+126)/127*4 - 1,
		dataLeaves: (raw + 126) / 127 * 4, roots: map[nodePos]pdp.Node{}}
	if rp != nil && len(rp.Proofs) == 2 {
		v.left, v.right = &rp.Proofs[0], &rp.Proofs[1]
	}
	// Hash the blocks that lie wholly inside the range in parallel, then fold.
	v.collect(p.Height, 0)
	v.hashBlocks()
	root, err := v.node(p.Height, 0)
	if err != nil {
		return err
	}
	if root != p.Root {
		return fmt.Errorf("%w: bytes [%d, %d) of %v hash to a different root", ErrVerification, rawStart, end, p)
	}
	return nil
}

type nodePos struct {
	h   uint8
	idx uint64
}

type spanVerifier struct {
	p           pdp.PieceCID
	data        []byte
	rawStart    uint64
	l, r        uint64 // leaves covered by data, inclusive
	dataLeaves  uint64 // leaves of all chunks holding data; nodes wholly past them are zero
	left, right *pdp.Proof
	blocks      []nodePos
	roots       map[nodePos]pdp.Node
}

func (v *spanVerifier) span(h uint8, idx uint64) (lo, hi uint64) {
	return idx << h, (idx+1)<<h - 1
}

// collect lists the largest blocks (capped at maxBlockHeight) wholly inside [l, r].
func (v *spanVerifier) collect(h uint8, idx uint64) {
	lo, hi := v.span(h, idx)
	switch {
	case hi < v.l || lo > v.r:
		return
	case lo >= v.l && hi <= v.r && h <= maxBlockHeight:
		v.blocks = append(v.blocks, nodePos{h, idx})
	default:
		v.collect(h-1, 2*idx)
		v.collect(h-1, 2*idx+1)
	}
}

func (v *spanVerifier) blockBytes(b nodePos) []byte {
	// A block of height h >= 2 covers chunks [idx<<(h-2), (idx+1)<<(h-2)).
	off := (b.idx<<(b.h-2))*127 - v.rawStart
	n := uint64(127) << (b.h - 2)
	if off >= uint64(len(v.data)) {
		return nil
	}
	return v.data[off:min(off+n, uint64(len(v.data)))]
}

func (v *spanVerifier) hashBlocks() {
	out := make([]pdp.Node, len(v.blocks))
	workers := min(runtime.GOMAXPROCS(0), len(v.blocks))
	var wg sync.WaitGroup
	next := make(chan int, len(v.blocks))
	for i := range v.blocks {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				b := v.blocks[i]
				out[i] = pdp.SectionRoot(v.blockBytes(b), b.h)
			}
		}()
	}
	wg.Wait()
	for i, b := range v.blocks {
		v.roots[b] = out[i]
	}
}

// node returns the node at (h, idx): hashed from data inside the range, a zero subtree past the
// data, or a sibling from the boundary proofs.
func (v *spanVerifier) node(h uint8, idx uint64) (pdp.Node, error) {
	if n, ok := v.roots[nodePos{h, idx}]; ok {
		return n, nil
	}
	lo, hi := v.span(h, idx)
	if lo >= v.dataLeaves {
		return pdp.ZeroRoot(int(h)), nil
	}
	if hi < v.l || lo > v.r {
		// Outside the range: the sibling of an ancestor of the first or the last leaf.
		if hi < v.l && v.left != nil && idx == (v.l>>h)^1 && int(h) < len(v.left.Path) {
			return v.left.Path[h], nil
		}
		if lo > v.r && v.right != nil && idx == (v.r>>h)^1 && int(h) < len(v.right.Path) {
			return v.right.Path[h], nil
		}
		return pdp.Node{}, fmt.Errorf("%w: no proof node for (height %d, index %d)", ErrBadProof, h, idx)
	}
	if h == 0 {
		return pdp.Node{}, fmt.Errorf("%w: leaf %d straddles the range", ErrBadRange, idx)
	}
	a, err := v.node(h-1, 2*idx)
	if err != nil {
		return pdp.Node{}, err
	}
	b, err := v.node(h-1, 2*idx+1)
	if err != nil {
		return pdp.Node{}, err
	}
	return pdp.HashNode(&a, &b), nil
}
