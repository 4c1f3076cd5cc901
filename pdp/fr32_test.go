package pdp

import (
	"bytes"
	"testing"

	"pgregory.net/rapid"
)

// padBits is a bit-by-bit statement of fr32: leaf k holds raw stream bits [254k, 254k+254).
func padBits(src []byte) []byte {
	dst := make([]byte, len(src)/127*128)
	for c := 0; c < len(src)/127; c++ {
		in, out := src[c*127:c*127+127], dst[c*128:c*128+128]
		for k := 0; k < 4; k++ {
			for b := 0; b < 254; b++ {
				bit := 254*k + b
				if in[bit/8]>>(bit%8)&1 == 1 {
					out[32*k+b/8] |= 1 << (b % 8)
				}
			}
		}
	}
	return dst
}

func TestPadMatchesBitDefinition(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 8).Draw(t, "chunks") * 127
		src := rapid.SliceOfN(rapid.Byte(), n, n).Draw(t, "src")
		dst := make([]byte, n/127*128)
		Pad(dst, src)
		if want := padBits(src); !bytes.Equal(dst, want) {
			t.Fatalf("Pad(%x) = %x, want %x", src, dst, want)
		}
		for k := 31; k < len(dst); k += 32 {
			if dst[k]&0xC0 != 0 {
				t.Fatalf("leaf ending at %d has top bits set", k)
			}
		}
		back := make([]byte, n)
		Unpad(back, dst)
		if !bytes.Equal(back, src) {
			t.Fatalf("Unpad(Pad(x)) = %x, want %x", back, src)
		}
		// The two spare bits of every leaf carry nothing: setting them changes no output.
		for k := 31; k < len(dst); k += 32 {
			dst[k] |= rapid.Byte().Draw(t, "spare") & 0xC0
		}
		Unpad(back, dst)
		if !bytes.Equal(back, src) {
			t.Fatalf("Unpad read the spare top bits")
		}
	})
}

func TestPadAllOnes(t *testing.T) {
	src := bytes.Repeat([]byte{0xFF}, 127)
	dst := make([]byte, 128)
	Pad(dst, src)
	for k := 0; k < 128; k++ {
		want := byte(0xFF)
		if k%32 == 31 {
			want = 0x3F
		}
		if dst[k] != want {
			t.Fatalf("byte %d = %#x, want %#x", k, dst[k], want)
		}
	}
}

func TestPadUnpadPanicOnBadLengths(t *testing.T) {
	for _, f := range []func(){
		func() { Pad(make([]byte, 128), make([]byte, 126)) },
		func() { Pad(make([]byte, 127), make([]byte, 127)) },
		func() { Unpad(make([]byte, 127), make([]byte, 127)) },
		func() { Unpad(make([]byte, 128), make([]byte, 128)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic on mismatched lengths")
				}
			}()
			f()
		}()
	}
}
