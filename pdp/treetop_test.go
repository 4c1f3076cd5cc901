package pdp

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	commp "github.com/filecoin-project/go-fil-commp-hashhash"
)

func finishWithTop(t testing.TB, data []byte, layer uint8) Commitment {
	t.Helper()
	c := NewCalc(layer)
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	res, err := c.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if res.Top == nil {
		t.Fatal("no TreeTop")
	}
	return res
}

// TestTreeTopMatchesHashhashSnapshot compares the section roots with go-fil-commp-hashhash's
// snapshot layer, which holds the same nodes padded with zero roots to the full tree width.
func TestTreeTopMatchesHashhashSnapshot(t *testing.T) {
	sizes := []int{200, 127 << 9, 127<<9 + 1, 100000, chunkRaw + 17, 2*chunkRaw + 3*blockRaw + 1}
	for i, n := range sizes {
		data := randomBytes(uint64(200+i), n)
		for _, layer := range []uint8{4, 8, 11, 16, 17} {
			res := finishWithTop(t, data, layer)
			h := res.Piece.Height
			if layer >= h {
				continue // hashhash cannot snapshot the root layer
			}
			oc := commp.NewCalcWithSnapshot(int(layer))
			oc.Write(data)
			root, _, snap, err := oc.DigestWithSnapshot()
			oc.Reset()
			if err != nil {
				t.Fatal(err)
			}
			if Node(root) != res.Piece.Root {
				t.Fatalf("size %d: root differs from hashhash", n)
			}
			top := res.Top
			if top.LayerHeight != layer || top.PieceHeight != h {
				t.Fatalf("size %d layer %d: TreeTop heights %d/%d", n, layer, top.LayerHeight, top.PieceHeight)
			}
			if uint64(len(snap.Nodes)) != uint64(1)<<(h-layer) {
				t.Fatalf("snapshot has %d nodes, want %d", len(snap.Nodes), 1<<(h-layer))
			}
			if want := SectionCount(res.Piece, layer); top.Sections() != want {
				t.Fatalf("size %d layer %d: %d sections, SectionCount says %d", n, layer, top.Sections(), want)
			}
			for k, want := range snap.Nodes {
				got, err := top.TopNode(layer, uint64(k))
				if err != nil {
					t.Fatal(err)
				}
				if got != Node(want) {
					t.Fatalf("size %d layer %d: section %d root %x, hashhash %x", n, layer, k, got, want)
				}
			}
		}
	}
}

func TestSectionRootEqualsLayerNode(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for _, n := range []int{1, 126, 127 << 9, 127<<9 + 1, 3*chunkRaw + 999} {
		data := randomBytes(uint64(n), n)
		for _, layer := range []uint8{2, 5, 8, 11, 12, 20, 40} {
			res := finishWithTop(t, data, layer)
			top := res.Top
			if err := top.Verify(res.Piece.Root); err != nil {
				t.Fatal(err)
			}
			if top.Sections() != SectionCount(res.Piece, layer) {
				t.Fatalf("size %d layer %d: %d sections, SectionCount %d", n, layer, top.Sections(), SectionCount(res.Piece, layer))
			}
			step := max(1, int(top.Sections())/50) // sample large layers
			for k := uint64(0); k < top.Sections(); k += uint64(step) + uint64(rng.IntN(2)) {
				off, m := SectionRange(res.Piece, layer, k)
				if m == 0 {
					t.Fatalf("size %d layer %d: section %d holds no data", n, layer, k)
				}
				if got := SectionRoot(data[off:off+m], top.LayerHeight); got != top.Levels[0][k] {
					t.Fatalf("size %d layer %d: SectionRoot(section %d) differs from the layer node", n, layer, k)
				}
			}
			if _, m := SectionRange(res.Piece, layer, top.Sections()); m != 0 {
				t.Fatalf("section past the data has %d bytes", m)
			}
		}
	}
}

func TestTreeTopMarshalRoundTripAndOffsets(t *testing.T) {
	for _, n := range []int{0, 100, 127 << 11, 127<<11 + 1, 5*127<<11 + 3, chunkRaw + 1} {
		data := randomBytes(uint64(n), n)
		for _, layer := range []uint8{2, 6, 11} {
			res := finishWithTop(t, data, layer)
			top := res.Top
			b, err := top.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var dec TreeTop
			if err := dec.UnmarshalBinary(b); err != nil {
				t.Fatalf("size %d layer %d: %v", n, layer, err)
			}
			if err := dec.Verify(res.Piece.Root); err != nil {
				t.Fatal(err)
			}
			b2, _ := dec.MarshalBinary()
			if !bytes.Equal(b, b2) {
				t.Fatal("re-marshal differs")
			}
			// Every position of every cached level, including zero roots past the data.
			for h := top.LayerHeight; h <= top.PieceHeight; h++ {
				width := uint64(1) << (top.PieceHeight - h)
				for idx := uint64(0); idx < min(width, 300); idx++ {
					want, err := dec.TopNode(h, idx)
					if err != nil {
						t.Fatal(err)
					}
					off, ok := TreeTopNodeOffset(top.PieceHeight, top.LayerHeight, top.Sections(), h, idx)
					if !ok {
						if want != ZeroRoot(int(h)) {
							t.Fatalf("node (%d,%d) not stored but is not a zero root", h, idx)
						}
						continue
					}
					if got := Node(b[off : off+NodeSize]); got != want {
						t.Fatalf("node (%d,%d) at offset %d = %x, TopNode %x", h, idx, off, got, want)
					}
				}
				if _, err := dec.TopNode(h, width); !errors.Is(err, ErrNodeOutOfTree) {
					t.Fatalf("TopNode beyond the width: %v", err)
				}
			}
			if top.LayerHeight > 2 {
				if _, err := dec.TopNode(top.LayerHeight-1, 0); !errors.Is(err, ErrNodeOutOfTree) {
					t.Fatalf("TopNode below the layer: %v", err)
				}
			}
			if _, err := dec.TopNode(top.PieceHeight+1, 0); !errors.Is(err, ErrNodeOutOfTree) {
				t.Fatalf("TopNode above the root: %v", err)
			}
		}
	}
}

func TestTreeTopRejectsCorruption(t *testing.T) {
	data := randomBytes(42, 9*127<<11+77)
	res := finishWithTop(t, data, 11)
	b, err := res.Top.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	mutations := map[string]func([]byte) []byte{
		"magic":         func(b []byte) []byte { b[0] ^= 1; return b },
		"version":       func(b []byte) []byte { b[4] = 2; return b },
		"piece height":  func(b []byte) []byte { b[5]++; return b },
		"layer height":  func(b []byte) []byte { b[6]--; return b },
		"reserved":      func(b []byte) []byte { b[7] = 1; return b },
		"sections":      func(b []byte) []byte { b[15]--; return b },
		"zero sections": func(b []byte) []byte { copy(b[8:16], make([]byte, 8)); return b },
		"truncated":     func(b []byte) []byte { return b[:len(b)-1] },
		"extended":      func(b []byte) []byte { return append(b, 0) },
		"header only":   func(b []byte) []byte { return b[:treeTopHeaderSize] },
		"empty":         func(b []byte) []byte { return nil },
		"section bit":   func(b []byte) []byte { b[treeTopHeaderSize+40] ^= 0x10; return b },
		"root bit":      func(b []byte) []byte { b[len(b)-1] ^= 0x01; return b },
	}
	for name, mutate := range mutations {
		bad := mutate(append([]byte(nil), b...))
		var dec TreeTop
		if err := dec.UnmarshalBinary(bad); !errors.Is(err, ErrInvalidTreeTop) {
			t.Errorf("%s: UnmarshalBinary = %v, want ErrInvalidTreeTop", name, err)
		}
		if dec.Levels != nil {
			t.Errorf("%s: failed decode changed the TreeTop", name)
		}
	}
	// A malformed in-memory tree is not encoded.
	short := &TreeTop{LayerHeight: res.Top.LayerHeight, PieceHeight: res.Top.PieceHeight, Levels: res.Top.Levels[:1]}
	if _, err := short.MarshalBinary(); !errors.Is(err, ErrInvalidTreeTop) {
		t.Fatalf("MarshalBinary with missing levels: %v", err)
	}
	narrow := &TreeTop{LayerHeight: res.Top.LayerHeight, PieceHeight: res.Top.PieceHeight, Levels: append([][]Node{res.Top.Levels[0][:2]}, res.Top.Levels[1:]...)}
	if _, err := narrow.MarshalBinary(); !errors.Is(err, ErrInvalidTreeTop) {
		t.Fatalf("MarshalBinary with a level of the wrong width: %v", err)
	}
	// A valid tree for another piece fails Verify against this root.
	other := finishWithTop(t, randomBytes(43, 100), 11)
	if err := other.Top.Verify(res.Piece.Root); !errors.Is(err, ErrInvalidTreeTop) {
		t.Fatalf("Verify with the wrong root: %v", err)
	}
	// A tampered in-memory level fails Verify.
	res.Top.Levels[0][1][0] ^= 1
	if err := res.Top.Verify(res.Piece.Root); !errors.Is(err, ErrInvalidTreeTop) {
		t.Fatalf("Verify of a tampered level: %v", err)
	}
}

func TestTreeTopNodeOffsetRejectsBadShape(t *testing.T) {
	cases := []struct {
		piece, layer uint8
		sections     uint64
		h            uint8
		idx          uint64
	}{
		{10, 11, 1, 11, 0},   // layer above piece
		{10, 1, 1, 10, 0},    // layer below 2
		{51, 11, 1, 51, 0},   // piece above MaxHeight
		{20, 11, 0, 11, 0},   // no sections
		{20, 11, 513, 11, 0}, // more sections than the tree is wide
		{20, 11, 5, 10, 0},   // below the layer
		{20, 11, 5, 21, 0},   // above the root
		{20, 11, 5, 11, 5},   // past the data
		{20, 11, 5, 12, 3},   // past the data one level up
	}
	for _, c := range cases {
		if off, ok := TreeTopNodeOffset(c.piece, c.layer, c.sections, c.h, c.idx); ok {
			t.Errorf("TreeTopNodeOffset%+v = %d, true; want not stored", c, off)
		}
	}
	if off, ok := TreeTopNodeOffset(20, 11, 5, 12, 2); !ok || off != treeTopHeaderSize+(5+2)*NodeSize {
		t.Errorf("TreeTopNodeOffset(20,11,5,12,2) = %d, %v", off, ok)
	}
}

func FuzzTreeTopUnmarshal(f *testing.F) {
	for _, n := range []int{0, 300, 127<<11 + 5, 3 * 127 << 11} {
		c := NewCalc(11)
		c.Write(randomBytes(uint64(n), n))
		res, err := c.Finish()
		if err != nil {
			f.Fatal(err)
		}
		b, _ := res.Top.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte("wsTT"))
	f.Add([]byte{'w', 's', 'T', 'T', 1, 50, 2, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var top TreeTop
		if err := top.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrInvalidTreeTop) {
				t.Fatalf("error not wrapping ErrInvalidTreeTop: %v", err)
			}
			return
		}
		if err := top.Verify(top.Root()); err != nil {
			t.Fatalf("decoded tree does not verify: %v", err)
		}
		again, err := top.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("round trip changed the encoding: %v", err)
		}
	})
}

// ExampleTreeTopNodeOffset reads one node of an encoded TreeTop the way storage reads a
// sidecar file: compute the offset from the shape, read 32 bytes.
func ExampleTreeTopNodeOffset() {
	c := NewCalc(4)
	c.Write(bytes.Repeat([]byte{7}, 5000))
	res, _ := c.Finish()
	sidecar, _ := res.Top.MarshalBinary()

	top := res.Top
	off, ok := TreeTopNodeOffset(top.PieceHeight, top.LayerHeight, top.Sections(), top.LayerHeight+1, 2)
	fmt.Println(top.PieceHeight, top.LayerHeight, top.Sections(), off, ok)
	var node Node
	copy(node[:], sidecar[off:])
	want, _ := top.TopNode(top.LayerHeight+1, 2)
	fmt.Println(node == want)
	// Output:
	// 8 4 10 400 true
	// true
}
