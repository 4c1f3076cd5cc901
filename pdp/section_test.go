package pdp

import (
	"math/rand/v2"
	"testing"

	commp "github.com/filecoin-project/go-fil-commp-hashhash"
)

// oracleCommP computes commP with go-fil-commp-hashhash (needs >= 65 bytes).
func oracleCommP(t testing.TB, data []byte) (Node, uint64) {
	t.Helper()
	var c commp.Calc
	defer c.Reset()
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	root, padded, err := c.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return Node(root), padded
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n / 8 * 8; i < n; i++ {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestSectionRootOfWholePieceMatchesOracle(t *testing.T) {
	sizes := []int{65, 100, 126, 127, 128, 129, 254, 255, 1000, blockRaw - 1, blockRaw, blockRaw + 1,
		127 << 9, 127<<9 + 1, 3*blockRaw + 500, 127 << 12}
	for i, n := range sizes {
		data := randomBytes(uint64(i), n)
		want, padded := oracleCommP(t, data)
		h := TreeHeight(uint64(n))
		if PaddedSize(uint64(n)) != padded {
			t.Fatalf("PaddedSize(%d) = %d, hashhash says %d", n, PaddedSize(uint64(n)), padded)
		}
		if got := SectionRoot(data, h); got != want {
			t.Fatalf("size %d: SectionRoot = %x, hashhash = %x", n, got, want)
		}
	}
}

func TestSectionRootZeroExtends(t *testing.T) {
	data := randomBytes(7, 3000)
	full := make([]byte, SectionRawSize(8))
	copy(full, data)
	if SectionRoot(data, 8) != SectionRoot(full, 8) {
		t.Fatal("short section does not hash like its zero-extended form")
	}
	if SectionRoot(nil, 11) != ZeroRoot(11) {
		t.Fatal("empty section is not the zero root")
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation behaviour")
	}
	data := randomBytes(3, int(SectionRawSize(DefaultLayerHeight)))
	var l, r Node
	if n := testing.AllocsPerRun(20, func() { HashNode(&l, &r) }); n != 0 {
		t.Errorf("HashNode allocates %.1f times", n)
	}
	if n := testing.AllocsPerRun(5, func() { SectionRoot(data, DefaultLayerHeight) }); n != 0 {
		t.Errorf("SectionRoot allocates %.1f times", n)
	}
	short := data[:len(data)-5] // a short last section: the zero-extended tail path
	if n := testing.AllocsPerRun(5, func() { SectionRoot(short, DefaultLayerHeight) }); n != 0 {
		t.Errorf("SectionRoot of a short section allocates %.1f times", n)
	}
	buf := make([]byte, len(data)/127*128)
	if n := testing.AllocsPerRun(5, func() { Pad(buf, data[:len(data)/127*127]) }); n != 0 {
		t.Errorf("Pad allocates %.1f times", n)
	}
}

// TestSectionCountEdges pins SectionCount where the leaf count is 0 (an empty payload still
// has one section root) and where the data ends exactly on, or one byte past, a section.
func TestSectionCountEdges(t *testing.T) {
	const layer = 4 // 508 raw bytes per section
	cases := []struct {
		raw  uint64
		want uint64
	}{
		{0, 1}, {1, 1}, {SectionRawSize(layer), 1}, {SectionRawSize(layer) + 1, 2}, {3 * SectionRawSize(layer), 3},
	}
	for _, c := range cases {
		h := TreeHeight(c.raw)
		p := PieceCID{Height: h, Padding: rawCapacity(h) - c.raw}
		if got := SectionCount(p, layer); got != c.want {
			t.Errorf("raw %d: SectionCount = %d, want %d", c.raw, got, c.want)
		}
		calc := NewCalc(layer)
		if _, err := calc.Write(randomBytes(c.raw, int(c.raw))); err != nil {
			t.Fatal(err)
		}
		res, err := calc.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if res.Piece.Height != p.Height || res.Piece.Padding != p.Padding {
			t.Fatalf("raw %d: Calc gave %+v, want height %d padding %d", c.raw, res.Piece, p.Height, p.Padding)
		}
		if res.Top.Sections() != c.want {
			t.Errorf("raw %d: Calc's TreeTop holds %d sections, want %d", c.raw, res.Top.Sections(), c.want)
		}
	}
}
