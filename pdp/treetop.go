package pdp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrInvalidTreeTop is wrapped by every error about a malformed or inconsistent TreeTop.
var ErrInvalidTreeTop = errors.New("pdp: invalid tree top")

// ErrNodeOutOfTree is returned for a node position outside the tree or below the cached layer.
var ErrNodeOutOfTree = errors.New("pdp: node outside the cached tree")

// TreeTop is the cached upper part of a piece's tree: every level from LayerHeight up to the
// root, holding only the nodes that cover data (nodes past the end are ZeroRoot of their
// level). Levels[0] are the section roots; Levels[PieceHeight-LayerHeight] is [root]. When the
// piece is no taller than the requested layer, LayerHeight == PieceHeight and the whole piece
// is one section.
type TreeTop struct {
	LayerHeight uint8
	PieceHeight uint8
	Levels      [][]Node
}

// TopNodes is what a proof needs from the cached upper tree. *TreeTop implements it; storage
// may implement a file-backed one that reads single nodes at TreeTopNodeOffset.
type TopNodes interface {
	TopNode(height uint8, index uint64) (Node, error)
}

// Root returns the piece root (the single node of the top level).
func (t *TreeTop) Root() Node { return t.Levels[len(t.Levels)-1][0] }

// Sections returns the number of section roots held (sections covering data, at least one).
func (t *TreeTop) Sections() uint64 { return uint64(len(t.Levels[0])) }

// TopNode returns the node at (height, index): a stored node, or the zero root of that height
// when the node lies past the data. It fails with ErrNodeOutOfTree when the position is below
// the layer, above the root or beyond the tree's width.
func (t *TreeTop) TopNode(height uint8, index uint64) (Node, error) {
	if height < t.LayerHeight || height > t.PieceHeight || index >= uint64(1)<<(t.PieceHeight-height) {
		return Node{}, fmt.Errorf("%w: node (height %d, index %d) in a tree of height %d cached from height %d", ErrNodeOutOfTree, height, index, t.PieceHeight, t.LayerHeight)
	}
	level := t.Levels[height-t.LayerHeight]
	if index >= uint64(len(level)) {
		return zeroRoots[height], nil
	}
	return level[index], nil
}

// levelWidth returns the stored nodes of the level i steps above the layer: ceil(sections/2^i).
func levelWidth(sections uint64, i uint8) uint64 {
	return (sections-1)>>i + 1
}

// hashLevelUp returns the data-covering nodes of the level above below, whose nodes have
// height h; an odd last node pairs with the zero root.
func hashLevelUp(below []Node, h uint8) []Node {
	up := make([]Node, (len(below)+1)/2)
	hashLevelInto(up, below, h)
	return up
}

// hashLevelInto fills up, which must hold (len(below)+1)/2 nodes, with the level above
// below, as hashLevelUp does, with the package's batched node hasher.
func hashLevelInto(up, below []Node, h uint8) {
	hashPairs(up[:len(below)/2], below)
	if len(below)%2 == 1 {
		up[len(up)-1] = HashNode(&below[len(below)-1], &zeroRoots[h])
	}
}

// buildTreeTop builds every level above the section roots; the TreeTop takes ownership of
// sections (a 64 GiB piece has a million of them: no copy).
func buildTreeTop(sections []Node, layer, piece uint8) *TreeTop {
	t := &TreeTop{LayerHeight: layer, PieceHeight: piece, Levels: make([][]Node, piece-layer+1)}
	t.Levels[0] = sections[:len(sections):len(sections)]
	for i := 1; i < len(t.Levels); i++ {
		t.Levels[i] = hashLevelUp(t.Levels[i-1], layer+uint8(i)-1)
	}
	return t
}

// checkTreeTopShape validates the geometry shared by TreeTop, its encoding and
// TreeTopNodeOffset.
func checkTreeTopShape(pieceHeight, layerHeight uint8, sections uint64) error {
	switch {
	case pieceHeight < 2 || pieceHeight > MaxHeight:
		return fmt.Errorf("%w: piece height %d outside 2..%d", ErrInvalidTreeTop, pieceHeight, MaxHeight)
	case layerHeight < 2 || layerHeight > pieceHeight:
		return fmt.Errorf("%w: layer height %d outside 2..%d (the piece height)", ErrInvalidTreeTop, layerHeight, pieceHeight)
	case sections == 0 || sections > uint64(1)<<(pieceHeight-layerHeight):
		return fmt.Errorf("%w: %d sections, want 1..%d for a height-%d piece cached from height %d", ErrInvalidTreeTop, sections, uint64(1)<<(pieceHeight-layerHeight), pieceHeight, layerHeight)
	}
	return nil
}

// checkLevels checks that the heights, the number of levels and every level's width fit
// together, and returns the number of section roots. Errors wrap ErrInvalidTreeTop.
func (t *TreeTop) checkLevels() (sections uint64, err error) {
	if len(t.Levels) == 0 || len(t.Levels[0]) == 0 {
		return 0, fmt.Errorf("%w: no section roots", ErrInvalidTreeTop)
	}
	sections = uint64(len(t.Levels[0]))
	if err := checkTreeTopShape(t.PieceHeight, t.LayerHeight, sections); err != nil {
		return 0, err
	}
	if len(t.Levels) != int(t.PieceHeight-t.LayerHeight)+1 {
		return 0, fmt.Errorf("%w: %d levels for heights %d..%d", ErrInvalidTreeTop, len(t.Levels), t.LayerHeight, t.PieceHeight)
	}
	for i, l := range t.Levels {
		if want := levelWidth(sections, uint8(i)); uint64(len(l)) != want {
			return 0, fmt.Errorf("%w: level at height %d holds %d nodes, want %d", ErrInvalidTreeTop, t.LayerHeight+uint8(i), len(l), want)
		}
	}
	return sections, nil
}

// Verify checks the tree's shape, that every level hashes to the next and that the top is
// root. Errors wrap ErrInvalidTreeTop.
func (t *TreeTop) Verify(root Node) error {
	if _, err := t.checkLevels(); err != nil {
		return err
	}
	// Rehash each level into one scratch buffer (the widest level above the sections) with
	// the batched hasher, then compare: the same construction buildTreeTop uses.
	var scratch []Node
	if len(t.Levels) > 1 {
		scratch = make([]Node, len(t.Levels[1]))
	}
	for i := 1; i < len(t.Levels); i++ {
		below, level, h := t.Levels[i-1], t.Levels[i], t.LayerHeight+uint8(i)-1
		want := scratch[:len(level)]
		hashLevelInto(want, below, h)
		for k := range level {
			if want[k] != level[k] {
				return fmt.Errorf("%w: node %d at height %d is not the hash of its children", ErrInvalidTreeTop, k, h+1)
			}
		}
	}
	if got := t.Root(); got != root {
		return fmt.Errorf("%w: root %x, want %x", ErrInvalidTreeTop, got, root)
	}
	return nil
}

// Encoding of a TreeTop (all integers big-endian):
//
//	magic "wsTT" | version 1 | piece height | layer height | reserved 0 | sections uint64
//	then every level's nodes, bottom-up, 32 bytes each.
//
// The shape follows from the header, so a node's offset is computable without reading the
// rest (TreeTopNodeOffset).
const (
	treeTopMagic      = "wsTT"
	treeTopVersion    = 1
	treeTopHeaderSize = 16
)

// MarshalBinary encodes the tree. It does not add a checksum; storage adds its own.
func (t *TreeTop) MarshalBinary() ([]byte, error) {
	sections, err := t.checkLevels()
	if err != nil {
		return nil, err
	}
	nodes := treeTopNodes(t.PieceHeight, t.LayerHeight, sections)
	b := make([]byte, treeTopHeaderSize, treeTopHeaderSize+nodes*NodeSize)
	copy(b, treeTopMagic)
	b[4], b[5], b[6] = treeTopVersion, t.PieceHeight, t.LayerHeight
	binary.BigEndian.PutUint64(b[8:], sections)
	for _, l := range t.Levels {
		b = append(b, nodeBytes(l)...)
	}
	return b, nil
}

// treeTopNodes returns the total nodes stored for a valid shape.
func treeTopNodes(pieceHeight, layerHeight uint8, sections uint64) uint64 {
	return nodesInLevels(sections, pieceHeight-layerHeight+1)
}

// nodesInLevels returns the nodes stored in the lowest levels levels of a TreeTop with the
// given number of sections: the encoded offset, in nodes, of the level above them.
func nodesInLevels(sections uint64, levels uint8) uint64 {
	total := uint64(0)
	for i := uint8(0); i < levels; i++ {
		total += levelWidth(sections, i)
	}
	return total
}

// UnmarshalBinary decodes an encoding made by MarshalBinary, checking the header, the length
// and that every level hashes to the next. Errors wrap ErrInvalidTreeTop; t is unchanged on
// error.
func (t *TreeTop) UnmarshalBinary(b []byte) error {
	if len(b) < treeTopHeaderSize {
		return fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrInvalidTreeTop, len(b), treeTopHeaderSize)
	}
	if string(b[:4]) != treeTopMagic {
		return fmt.Errorf("%w: bad magic %q", ErrInvalidTreeTop, b[:4])
	}
	if b[4] != treeTopVersion {
		return fmt.Errorf("%w: unsupported version %d", ErrInvalidTreeTop, b[4])
	}
	if b[7] != 0 {
		return fmt.Errorf("%w: reserved byte is %d", ErrInvalidTreeTop, b[7])
	}
	piece, layer, sections := b[5], b[6], binary.BigEndian.Uint64(b[8:])
	if err := checkTreeTopShape(piece, layer, sections); err != nil {
		return err
	}
	nodes := treeTopNodes(piece, layer, sections)
	if want := treeTopHeaderSize + nodes*NodeSize; uint64(len(b)) != want {
		return fmt.Errorf("%w: %d bytes, want %d for %d sections of a height-%d piece cached from height %d", ErrInvalidTreeTop, len(b), want, sections, piece, layer)
	}
	all := make([]Node, nodes)
	copy(nodeBytes(all), b[treeTopHeaderSize:])
	dec := TreeTop{LayerHeight: layer, PieceHeight: piece, Levels: make([][]Node, piece-layer+1)}
	for i := range dec.Levels {
		w := levelWidth(sections, uint8(i))
		dec.Levels[i], all = all[:w:w], all[w:]
	}
	if err := dec.Verify(dec.Root()); err != nil {
		return err
	}
	*t = dec
	return nil
}

// TreeTopNodeOffset returns the byte offset of node (height, index) inside the MarshalBinary
// encoding of a TreeTop with the given shape, so storage can read single nodes from a sidecar
// file. ok is false when the node is not stored: it lies past the data (its value is then
// ZeroRoot(height)), or the position or shape is invalid (below the layer, above the root,
// beyond the tree's width); callers that need to tell these apart check the position first.
func TreeTopNodeOffset(pieceHeight, layerHeight uint8, sections uint64, height uint8, index uint64) (off int64, ok bool) {
	if checkTreeTopShape(pieceHeight, layerHeight, sections) != nil || height < layerHeight || height > pieceHeight {
		return 0, false
	}
	i := height - layerHeight
	if index >= levelWidth(sections, i) {
		return 0, false
	}
	return int64(treeTopHeaderSize + (nodesInLevels(sections, i)+index)*NodeSize), true
}
