package pdp

import "fmt"

// DefaultLayerHeight is the height of the cached tree layer (the section roots) kept for
// every piece. Provisional; chosen by measurement below.
const DefaultLayerHeight uint8 = 11

// SectionRawSize returns the raw bytes covered by one section at layer height layerHeight
// (>= 2): 127 << (layerHeight-2). It panics for layerHeight outside 2..MaxHeight.
func SectionRawSize(layerHeight uint8) uint64 {
	if layerHeight < 2 || layerHeight > MaxHeight {
		panic(fmt.Sprintf("pdp: layer height %d outside 2..%d", layerHeight, MaxHeight))
	}
	return rawCapacity(layerHeight)
}

// SectionRoot returns the root of the subtree of 2^layerHeight leaves over section, the raw
// bytes of one section zero-extended to SectionRawSize(layerHeight) (the last section of a
// piece is usually short). It panics when section is longer than a section.
func SectionRoot(section []byte, layerHeight uint8) Node {
	if uint64(len(section)) > SectionRawSize(layerHeight) {
		panic(fmt.Sprintf("pdp: SectionRoot got %d bytes, more than a section of height %d (%d bytes)", len(section), layerHeight, SectionRawSize(layerHeight)))
	}
	var t subtreeHasher
	t.stack.reset(-1, nil)
	full := len(section) / blockRaw * blockRaw
	t.writeBlocks(section[:full])
	return t.finish(section[full:], int(layerHeight))
}

// sectionLayer is the layer height actually used for a piece: the requested one, or the piece
// height when the piece is smaller (then the whole piece is one section).
func sectionLayer(p PieceCID, layerHeight uint8) uint8 {
	return min(layerHeight, p.Height)
}

// SectionRange returns the raw byte range [off, off+n) of section number section of piece p at
// layer height layerHeight (>= 2), clipped to the piece's raw size: the last section is
// usually short, and sections past the data are empty (n = 0).
func SectionRange(p PieceCID, layerHeight uint8, section uint64) (off, n uint64) {
	size := SectionRawSize(sectionLayer(p, layerHeight))
	raw := p.RawSize()
	if section >= (raw+size-1)/size {
		return raw, 0
	}
	off = section * size
	return off, min(size, raw-off)
}

// SectionCount returns how many sections of piece p at layer height layerHeight hold data,
// at least one: the number of section roots in the piece's TreeTop.
func SectionCount(p PieceCID, layerHeight uint8) uint64 {
	l := sectionLayer(p, layerHeight)
	return max(1, levelWidthOrZero(p.LeafCount(), l))
}

// levelWidthOrZero is ceil(leaves/2^h).
func levelWidthOrZero(leaves uint64, h uint8) uint64 {
	if leaves == 0 {
		return 0
	}
	return (leaves-1)>>h + 1
}
