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
