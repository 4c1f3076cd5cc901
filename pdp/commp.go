package pdp

import (
	"math/bits"
	"unsafe"

	sha256simd "github.com/minio/sha256-simd"
)

// Leaves are hashed in blocks of 2^blockHeight leaves: small enough to stay in L1/L2 cache,
// large enough that the per-block bookkeeping is negligible.
const (
	blockHeight = 8
	blockLeaves = 1 << blockHeight
	blockRaw    = fr32RawChunk << (blockHeight - 2) // raw bytes that fill one block
)

// nodeBytes views nodes as their contiguous bytes.
func nodeBytes(nodes []Node) []byte {
	if len(nodes) == 0 {
		return nil
	}
	return unsafe.Slice(&nodes[0][0], len(nodes)*NodeSize)
}

// hashPairs sets dst[i] = HashNode(src[2i], src[2i+1]) for every i in dst. dst may alias the
// front of src: dst[i] is written only after src[2i] and src[2i+1] were read, and later reads
// are at indices above i.
func hashPairs(dst, src []Node) {
	src = src[:2*len(dst)]
	for i := range dst {
		// src[2i] and src[2i+1] are adjacent in memory: hash them without copying.
		pair := (*[2 * NodeSize]byte)(unsafe.Pointer(&src[2*i]))
		dst[i] = sha256simd.Sum256(pair[:])
		dst[i][31] &= 0x3F
	}
}

// subtreeStack folds aligned subtree roots, pushed left to right, into the root of a larger
// tree. It works like a binary counter over leaves: bit h of leaves is set exactly when
// nodes[h] holds a complete left subtree still waiting for its right sibling.
type subtreeStack struct {
	nodes  [MaxHeight + 1]Node
	leaves uint64 // leaves covered so far

	// recordHeight >= 0 makes the stack append every node of that height it sees, in order,
	// to record (the TreeTop's section roots).
	recordHeight int
	record       []Node
}

// push adds the root n of a complete subtree of 2^h leaves. The leaves covered so far must be
// a multiple of 2^h, which holds whenever pushes never grow in height except by carrying.
func (s *subtreeStack) push(n Node, h int) {
	for {
		if h == s.recordHeight {
			s.record = append(s.record, n)
		}
		bit := uint64(1) << h
		if s.leaves&bit == 0 {
			s.leaves |= bit
			s.nodes[h] = n
			return
		}
		s.leaves &^= bit
		n = HashNode(&s.nodes[h], &n)
		h++
	}
}

// root returns the root of the tree of height H over everything pushed, with zero subtrees
// after the data. It records the partial (data-covering) node at recordHeight, if any, so it
// must be called once, at the end. The leaves pushed must not exceed 2^H.
func (s *subtreeStack) root(H int) Node {
	if s.leaves == 0 {
		return zeroRoots[H]
	}
	h0 := bits.TrailingZeros64(s.leaves)
	if h0 >= H {
		return s.nodes[H]
	}
	cur := s.nodes[h0]
	for h := h0; h < H; h++ {
		if h > h0 && s.leaves&(uint64(1)<<h) != 0 {
			cur = HashNode(&s.nodes[h], &cur)
		} else {
			cur = HashNode(&cur, &zeroRoots[h])
		}
		if h+1 == s.recordHeight {
			s.record = append(s.record, cur)
		}
	}
	return cur
}

func (s *subtreeStack) reset(recordHeight int, record []Node) {
	s.leaves = 0
	s.recordHeight = recordHeight
	s.record = record
}

// subtreeHasher computes the root of a subtree from raw bytes, block by block, with a fixed
// scratch buffer: no allocation per block.
type subtreeHasher struct {
	stack  subtreeStack
	leaves [blockLeaves]Node
}

// writeBlocks hashes raw, whose length must be a multiple of blockRaw.
func (t *subtreeHasher) writeBlocks(raw []byte) {
	rec := t.stack.recordHeight
	for len(raw) >= blockRaw {
		Pad(nodeBytes(t.leaves[:]), raw[:blockRaw])
		nodes := t.leaves[:]
		for l := 0; l < blockHeight; l++ {
			if l == rec {
				t.stack.record = append(t.stack.record, nodes...)
			}
			hashPairs(nodes[:len(nodes)/2], nodes)
			nodes = nodes[:len(nodes)/2]
		}
		t.stack.push(nodes[0], blockHeight)
		raw = raw[blockRaw:]
	}
}

// finish hashes the final partial block tail (shorter than blockRaw) and returns the root of
// the tree of height H (>= 2) over everything written, zero-extended.
func (t *subtreeHasher) finish(tail []byte, H int) Node {
	if len(tail) == 0 {
		return t.stack.root(H)
	}
	full := len(tail) / fr32RawChunk * fr32RawChunk
	Pad(nodeBytes(t.leaves[:full/fr32RawChunk*4]), tail[:full])
	n := full / fr32RawChunk * 4
	if full < len(tail) {
		var last [fr32RawChunk]byte
		copy(last[:], tail[full:])
		padChunk((*[fr32PaddedChunk]byte)(nodeBytes(t.leaves[n:n+4])), &last)
		n += 4
	}
	top := min(blockHeight, H)
	rec := t.stack.recordHeight
	nodes := t.leaves[:n]
	for l := 0; l < top; l++ {
		if l == rec {
			t.stack.record = append(t.stack.record, nodes...)
		}
		if len(nodes)%2 == 1 {
			nodes = t.leaves[:len(nodes)+1]
			nodes[len(nodes)-1] = zeroRoots[l]
		}
		hashPairs(nodes[:len(nodes)/2], nodes)
		nodes = nodes[:len(nodes)/2]
	}
	if top < blockHeight {
		// The whole tree is smaller than one block, so nothing was pushed before.
		return nodes[0]
	}
	t.stack.push(nodes[0], blockHeight)
	return t.stack.root(H)
}
