package pdp

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

var (
	// ErrProofLength: a proof's path length differs from the piece height (or the height is out
	// of range). PDPVerifier requires len(path) == height, which is what makes a root
	// presented as a leaf fail.
	ErrProofLength = errors.New("pdp: proof length does not match the tree height")
	// ErrProofMismatch: the proof does not hash up to the root at the given leaf index.
	ErrProofMismatch = errors.New("pdp: proof does not verify against the root")
	// ErrSectionMismatch: the piece's data or its cached upper tree is damaged. The section read
	// from storage does not hash to the cached section root, or the cached nodes above it do not
	// lead to the piece root. Damaged data is detected, never proven.
	ErrSectionMismatch = errors.New("pdp: piece data does not match its commitment")
	// ErrSectionSize: the section bytes handed to ProveLeaf are not the length the piece's
	// geometry says that section has.
	ErrSectionSize = errors.New("pdp: wrong section length")
	// ErrInvalidProof: a proof encoding (binary or JSON) is malformed.
	ErrInvalidProof = errors.New("pdp: invalid proof encoding")
)

// Proof proves one leaf of a piece: the 32-byte leaf and its sibling path, bottom up. Its
// wire shapes are MarshalBinary (leaf then path, 32 bytes each) and JSON
// {"leaf":"0x…","path":["0x…",…]}, the Solidity IPDPTypes.Proof{leaf, proof}.
type Proof struct {
	Leaf Node
	Path []Node // siblings bottom-up; len must equal the piece height
}

// VerifyProof checks pr as the proof of leaf index leaf in a tree of the given height and
// root, by PDPVerifier's rule: at each level an even position hashes (node, sibling), an odd
// one (sibling, node). len(pr.Path) must equal height and height must be 1..MaxHeight, so a
// root presented as a leaf with an empty path never verifies. Errors wrap ErrProofLength or
// ErrProofMismatch.
func VerifyProof(root Node, height uint8, leaf uint64, pr Proof) error {
	if height == 0 || height > MaxHeight {
		return fmt.Errorf("%w: height %d outside 1..%d", ErrProofLength, height, MaxHeight)
	}
	if len(pr.Path) != int(height) {
		return fmt.Errorf("%w: path has %d nodes, tree height is %d", ErrProofLength, len(pr.Path), height)
	}
	if leaf>>height != 0 {
		return fmt.Errorf("%w: %w: leaf %d in a tree of 2^%d leaves", ErrProofMismatch, ErrLeafOutOfRange, leaf, height)
	}
	h := pr.Leaf
	pos := leaf
	for i := range pr.Path {
		if pos&1 == 0 {
			h = HashNode(&h, &pr.Path[i])
		} else {
			h = HashNode(&pr.Path[i], &h)
		}
		pos >>= 1
	}
	if h != root {
		return fmt.Errorf("%w: leaf %d of a height-%d tree", ErrProofMismatch, leaf, height)
	}
	return nil
}

// maxProveLayerHeight bounds the section a proof rebuilds (2^20 leaves, 32 MiB padded): the
// section is hashed in memory, so an absurd layer height must fail, not allocate gigabytes.
const maxProveLayerHeight = 20

// sectionBuffers holds, per layer height, reusable padded-section buffers: a prover answers
// five challenges per period per data set, and a 2^12-leaf section is 128 KiB.
var sectionBuffers [MaxHeight + 1]sync.Pool

type sectionBuffer struct {
	leaves []Node // 2^layerHeight: the fr32-padded section
	nodes  []Node // 2^(layerHeight-1): the level above the leaves, then hashed in place
}

func getSectionBuffer(lh uint8) *sectionBuffer {
	if b, ok := sectionBuffers[lh].Get().(*sectionBuffer); ok {
		return b
	}
	return &sectionBuffer{
		leaves: make([]Node, 1<<lh),
		nodes:  make([]Node, 1<<(lh-1)),
	}
}

// ProveLeaf builds the proof of leaf `leaf` of piece p from the raw bytes of the section that
// holds it, exactly as read from the piece file (the section's byte range clipped to the
// piece's raw size, so the last section may be short and sections wholly past the data are
// empty), and the cached upper tree top, whose level layerHeight holds the section roots. When
// the piece is no taller than layerHeight, the whole piece is one section.
//
// The section is fr32-padded, zero-extended and hashed up to its root, which must equal
// top's node: otherwise, or if top's nodes above do not lead to p.Root, the error wraps
// ErrSectionMismatch, so damaged data is never proven.
func ProveLeaf(p PieceCID, top TopNodes, layerHeight uint8, section []byte, leaf uint64) (Proof, error) {
	if err := p.Validate(); err != nil {
		return Proof{}, err
	}
	if top == nil {
		return Proof{}, errors.New("pdp: ProveLeaf needs the piece's cached tree top")
	}
	if layerHeight < 2 || layerHeight > MaxHeight {
		return Proof{}, fmt.Errorf("pdp: layer height %d outside 2..%d", layerHeight, MaxHeight)
	}
	if leaf>>p.Height != 0 {
		return Proof{}, fmt.Errorf("%w: leaf %d in a piece of 2^%d leaves", ErrLeafOutOfRange, leaf, p.Height)
	}
	lh := min(layerHeight, p.Height)
	if lh > maxProveLayerHeight {
		return Proof{}, fmt.Errorf("pdp: section layer height %d above %d: sections that large are not proven from memory", lh, maxProveLayerHeight)
	}
	secIndex := leaf >> lh
	if _, want := SectionRange(p, layerHeight, secIndex); uint64(len(section)) != want {
		return Proof{}, fmt.Errorf("%w: section %d (layer height %d) of %s is %d bytes, got %d", ErrSectionSize, secIndex, lh, p, want, len(section))
	}

	pr := Proof{Path: make([]Node, 0, p.Height)}
	buf := getSectionBuffer(lh)
	defer sectionBuffers[lh].Put(buf)

	// Leaves: fr32 of the section, zero-extended (zero raw bytes pad to zero leaves).
	padded := nodeBytes(buf.leaves)
	clear(padded[padZeroExtended(padded, section):])

	in := leaf & (1<<lh - 1)
	pr.Leaf = buf.leaves[in]
	pr.Path = append(pr.Path, buf.leaves[in^1])
	// Hash level by level with the package's batched node hasher; every level after the first
	// is computed in place at the front of nodes.
	level := buf.nodes
	hashPairs(level, buf.leaves)
	for h := uint8(1); h < lh; h++ {
		in >>= 1
		pr.Path = append(pr.Path, level[in^1])
		next := level[:len(level)/2]
		hashPairs(next, level)
		level = next
	}
	secRoot := level[0]

	cached, err := top.TopNode(lh, secIndex)
	if err != nil {
		return Proof{}, fmt.Errorf("pdp: cached section root %d of %s: %w", secIndex, p, err)
	}
	if cached != secRoot {
		return Proof{}, fmt.Errorf("%w: section %d of %s hashes to %x, cached section root is %x", ErrSectionMismatch, secIndex, p, secRoot, cached)
	}
	for h := lh; h < p.Height; h++ {
		n, err := top.TopNode(h, (leaf>>h)^1)
		if err != nil {
			return Proof{}, fmt.Errorf("pdp: cached node (height %d, index %d) of %s: %w", h, (leaf>>h)^1, p, err)
		}
		pr.Path = append(pr.Path, n)
	}
	// ~30 hashes: proves the cached upper nodes too, so a damaged tree-top file is caught here
	// rather than as a fault on chain.
	if err := VerifyProof(p.Root, p.Height, leaf, pr); err != nil {
		return Proof{}, fmt.Errorf("%w: cached upper tree of %s does not lead to its root: %v", ErrSectionMismatch, p, err)
	}
	return pr, nil
}

// MarshalBinary encodes the proof as 32·(len(Path)+1) bytes: the leaf, then the path.
func (pr Proof) MarshalBinary() ([]byte, error) {
	if len(pr.Path) > MaxHeight {
		return nil, fmt.Errorf("%w: path of %d nodes exceeds MaxHeight %d", ErrInvalidProof, len(pr.Path), MaxHeight)
	}
	b := make([]byte, 0, NodeSize*(len(pr.Path)+1))
	b = append(b, pr.Leaf[:]...)
	for i := range pr.Path {
		b = append(b, pr.Path[i][:]...)
	}
	return b, nil
}

// UnmarshalBinary decodes MarshalBinary's output. It rejects lengths that are not a positive
// multiple of 32 or that hold more than MaxHeight+1 nodes.
func (pr *Proof) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || len(b)%NodeSize != 0 {
		return fmt.Errorf("%w: %d bytes is not a positive multiple of 32", ErrInvalidProof, len(b))
	}
	if n := len(b) / NodeSize; n > MaxHeight+1 {
		return fmt.Errorf("%w: %d nodes, at most %d (leaf + MaxHeight siblings)", ErrInvalidProof, n, MaxHeight+1)
	}
	pr.Leaf = Node(b[:NodeSize])
	pr.Path = make([]Node, len(b)/NodeSize-1)
	for i := range pr.Path {
		pr.Path[i] = Node(b[(i+1)*NodeSize:])
	}
	return nil
}

type proofJSON struct {
	Leaf *string  `json:"leaf"`
	Path []string `json:"path"`
}

func hexNode(n *Node) string { return "0x" + hex.EncodeToString(n[:]) }

func parseHexNode(s string) (Node, error) {
	var n Node
	if len(s) != 2+2*NodeSize || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return n, fmt.Errorf("%q is not 0x followed by 64 hex digits", clip(s))
	}
	if _, err := hex.Decode(n[:], []byte(s[2:])); err != nil {
		return n, fmt.Errorf("%q: %v", clip(s), err)
	}
	return n, nil
}

// MarshalJSON encodes {"leaf":"0x<64 hex>","path":["0x…",…]}; an empty path is [].
func (pr Proof) MarshalJSON() ([]byte, error) {
	if len(pr.Path) > MaxHeight {
		return nil, fmt.Errorf("%w: path of %d nodes exceeds MaxHeight %d", ErrInvalidProof, len(pr.Path), MaxHeight)
	}
	leaf := hexNode(&pr.Leaf)
	j := proofJSON{Leaf: &leaf, Path: make([]string, len(pr.Path))}
	for i := range pr.Path {
		j.Path[i] = hexNode(&pr.Path[i])
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes MarshalJSON's form. The leaf is required, every node must be 0x and
// 64 hex digits, and the path may hold at most MaxHeight nodes.
func (pr *Proof) UnmarshalJSON(b []byte) error {
	var j proofJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidProof, err)
	}
	if j.Leaf == nil {
		return fmt.Errorf("%w: missing leaf", ErrInvalidProof)
	}
	if len(j.Path) > MaxHeight {
		return fmt.Errorf("%w: path of %d nodes exceeds MaxHeight %d", ErrInvalidProof, len(j.Path), MaxHeight)
	}
	leaf, err := parseHexNode(*j.Leaf)
	if err != nil {
		return fmt.Errorf("%w: leaf: %v", ErrInvalidProof, err)
	}
	path := make([]Node, len(j.Path))
	for i, s := range j.Path {
		if path[i], err = parseHexNode(s); err != nil {
			return fmt.Errorf("%w: path[%d]: %v", ErrInvalidProof, i, err)
		}
	}
	pr.Leaf, pr.Path = leaf, path
	return nil
}
