package pdp

import "fmt"

// DefaultLayerHeight is the height of the cached tree layer (the section roots) kept for
// every piece: a proof rehashes one section of 2^h leaves per challenge from the piece file
// and takes the path above it from the TreeTop.
//
// Chosen by measurement (BenchmarkSectionRoot, AMD EPYC, 2 shared vCPUs, best of 4 runs; the
// SHA-NI kernel, and in brackets the portable per-node path measured with -tags purego):
//
//	h   section  SectionRoot       5-challenge proof   piece bytes read   TreeTop of a 32 GiB piece
//	 8   8 KiB    13 µs  ( 35 µs)    0.06 ms (0.17 ms)   40 KiB             256 MiB
//	 9  16 KiB    27 µs  ( 68 µs)    0.14 ms (0.34 ms)   79 KiB             128 MiB
//	10  32 KiB    54 µs  (142 µs)    0.27 ms (0.71 ms)  159 KiB              64 MiB
//	11  64 KiB   106 µs  (309 µs)    0.53 ms (1.5 ms)   318 KiB              32 MiB
//	12 128 KiB   213 µs  (984 µs)    1.1 ms  (4.9 ms)   635 KiB              16 MiB
//
// (section = raw bytes 127<<(h-2); TreeTop ≈ 2 · 2^(30-h) nodes · 32 bytes.) Every row meets
// the < 1 MiB read bound. 11 keeps a proof well under 5 ms even without SHA extensions (12
// reaches ~5 ms there) while the sidecar stays at 0.1% of the padded piece; 10 and below
// double the sidecar again for savings of a fraction of a millisecond.
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
	leaves := p.LeafCount()
	if leaves == 0 {
		// An empty payload still has one (all-zero) section root.
		return 1
	}
	return levelWidth(leaves, sectionLayer(p, layerHeight))
}
