package pdp

import (
	"encoding/binary"
	"fmt"
)

// fr32 padding spreads every 127 raw bytes (1016 bits) over four 32-byte leaves of 254 data
// bits each, leaving the top two bits of every leaf zero so the leaf is a valid field element.
// The raw bit stream is read little-endian (bit 0 = least significant bit of byte 0); leaf k
// holds stream bits [254k, 254k+254), which starts at byte 254k/8 with shift 254k%8: for
// k = 0..3 that is (byte 0, shift 0), (31, 6), (63, 4), (95, 2).

const (
	fr32RawChunk    = 127
	fr32PaddedChunk = 128
)

// Pad fr32-pads src into dst. len(src) must be a multiple of 127 and len(dst) must be
// len(src)/127*128; Pad panics otherwise (a caller bug, not bad input).
func Pad(dst, src []byte) {
	if len(src)%fr32RawChunk != 0 || len(dst) != len(src)/fr32RawChunk*fr32PaddedChunk {
		panic(fmt.Sprintf("pdp: Pad needs len(src)%%127 == 0 and len(dst) == len(src)/127*128, got src %d dst %d", len(src), len(dst)))
	}
	for len(src) >= fr32RawChunk {
		padChunk((*[fr32PaddedChunk]byte)(dst), (*[fr32RawChunk]byte)(src))
		src = src[fr32RawChunk:]
		dst = dst[fr32PaddedChunk:]
	}
}

// padZeroExtended fr32-pads raw, of any length, into the front of dst, zero-extending a
// final partial 127-byte chunk, and returns the padded bytes written: ceil(len(raw)/127)*128.
// The short-tail case of every hasher (last block of a stream, last section of a piece).
func padZeroExtended(dst, raw []byte) int {
	full := len(raw) / fr32RawChunk * fr32RawChunk
	n := full / fr32RawChunk * fr32PaddedChunk
	Pad(dst[:n], raw[:full])
	if full < len(raw) {
		var last [fr32RawChunk]byte
		copy(last[:], raw[full:])
		padChunk((*[fr32PaddedChunk]byte)(dst[n:n+fr32PaddedChunk]), &last)
		n += fr32PaddedChunk
	}
	return n
}

// padChunk pads one 127-byte chunk into four leaves using 64-bit words: each output word is
// the raw stream shifted right by the lane's bit offset.
func padChunk(out *[fr32PaddedChunk]byte, in *[fr32RawChunk]byte) {
	le := binary.LittleEndian
	// Lane 0: bytes 0..31, no shift.
	copy(out[0:31], in[0:31])
	out[31] = in[31] & 0x3F

	// Lane 1: starts at byte 31, shift 6. Reads bytes 31..63.
	for j := 0; j < 3; j++ {
		w := le.Uint64(in[31+8*j:]) >> 6
		w |= le.Uint64(in[39+8*j:]) << 58
		le.PutUint64(out[32+8*j:], w)
	}
	le.PutUint64(out[56:], (le.Uint64(in[55:])>>6|uint64(in[63])<<58)&0x3FFFFFFFFFFFFFFF)

	// Lane 2: starts at byte 63, shift 4. Reads bytes 63..95.
	for j := 0; j < 3; j++ {
		w := le.Uint64(in[63+8*j:]) >> 4
		w |= le.Uint64(in[71+8*j:]) << 60
		le.PutUint64(out[64+8*j:], w)
	}
	le.PutUint64(out[88:], (le.Uint64(in[87:])>>4|uint64(in[95])<<60)&0x3FFFFFFFFFFFFFFF)

	// Lane 3: starts at byte 95, shift 2. Reads bytes 95..126; the last word has no byte 127,
	// and the two bits it would supply are the cleared top bits anyway.
	for j := 0; j < 3; j++ {
		w := le.Uint64(in[95+8*j:]) >> 2
		w |= le.Uint64(in[103+8*j:]) << 62
		le.PutUint64(out[96+8*j:], w)
	}
	le.PutUint64(out[120:], le.Uint64(in[119:])>>2)
}

// Unpad reverses Pad: len(src) must be a multiple of 128 and len(dst) must be
// len(src)/128*127; Unpad panics otherwise. The top two bits of every leaf are ignored.
func Unpad(dst, src []byte) {
	if len(src)%fr32PaddedChunk != 0 || len(dst) != len(src)/fr32PaddedChunk*fr32RawChunk {
		panic(fmt.Sprintf("pdp: Unpad needs len(src)%%128 == 0 and len(dst) == len(src)/128*127, got src %d dst %d", len(src), len(dst)))
	}
	for len(src) >= fr32PaddedChunk {
		unpadChunk((*[fr32RawChunk]byte)(dst), (*[fr32PaddedChunk]byte)(src))
		src = src[fr32PaddedChunk:]
		dst = dst[fr32RawChunk:]
	}
}

// unpadChunk concatenates the 254 data bits of each of the four leaves into 127 bytes,
// working in 64-bit words: lane k's bits go to stream offset 254k (byte 0/31/63/95, shift
// 0/6/4/2). Words are ORed into a slightly larger scratch array so the last one may spill.
func unpadChunk(out *[fr32RawChunk]byte, in *[fr32PaddedChunk]byte) {
	le := binary.LittleEndian
	var buf [fr32PaddedChunk + 8]byte
	for lane, start := range [4]int{0, 31, 63, 95} {
		shift := uint(8-2*lane) % 8
		for j := 0; j < 4; j++ {
			w := le.Uint64(in[32*lane+8*j:])
			if j == 3 {
				w &= 0x3FFFFFFFFFFFFFFF // the two unused top bits of the leaf
			}
			at := start + 8*j
			le.PutUint64(buf[at:], le.Uint64(buf[at:])|w<<shift)
			if shift != 0 {
				buf[at+8] |= byte(w >> (64 - shift))
			}
		}
	}
	copy(out[:], buf[:fr32RawChunk])
}
