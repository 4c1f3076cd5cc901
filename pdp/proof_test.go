package pdp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// fullTreeTop serves TopNode from a fullTree: an oracle TopNodes independent of TreeTop.
type fullTreeTop struct{ levels [][]Node }

func (f fullTreeTop) TopNode(h uint8, i uint64) (Node, error) {
	if int(h) >= len(f.levels) || i >= uint64(len(f.levels[h])) {
		return Node{}, fmt.Errorf("oracle: no node (%d,%d)", h, i)
	}
	return f.levels[h][i], nil
}

// sectionBytes returns the raw bytes of the section holding leaf, as storage reads them.
func sectionBytes(raw []byte, p PieceCID, layerHeight uint8, leaf uint64) []byte {
	lh := min(layerHeight, p.Height)
	size := rawCapacity(lh)
	start := (leaf >> lh) * size
	if start >= uint64(len(raw)) {
		return raw[len(raw):]
	}
	return raw[start:min(start+size, uint64(len(raw)))]
}

func randomPayload(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestProveEveryLeafSmallTrees proves and verifies every leaf of pieces of heights 2..8, for
// full, partial and nearly empty trees and for every layer height, and checks each path against
// the full-tree oracle.
func TestProveEveryLeafSmallTrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for h := uint8(2); h <= 8; h++ {
		c := int(rawCapacity(h))
		sizes := []int{c, c - 1, c/2 + 1, c/2 + 127, 1}
		if h == 2 {
			sizes = []int{127, 126, 64, 1}
		}
		for _, n := range sizes {
			raw := randomPayload(rng, n)
			levels := fullTree(raw)
			p, err := NewPieceCID(levels[len(levels)-1][0], uint64(n))
			if err != nil {
				t.Fatal(err)
			}
			if p.Height != h && n > 1 {
				t.Fatalf("size %d: height %d, want %d", n, p.Height, h)
			}
			for lh := uint8(2); lh <= p.Height+1; lh++ {
				for leaf := uint64(0); leaf < 1<<p.Height; leaf++ {
					pr, err := ProveLeaf(p, fullTreeTop{levels}, lh, sectionBytes(raw, p, lh, leaf), leaf)
					if err != nil {
						t.Fatalf("h %d size %d layer %d leaf %d: %v", p.Height, n, lh, leaf, err)
					}
					if err := VerifyProof(p.Root, p.Height, leaf, pr); err != nil {
						t.Fatalf("h %d size %d layer %d leaf %d: verify: %v", p.Height, n, lh, leaf, err)
					}
					if pr.Leaf != levels[0][leaf] {
						t.Fatalf("leaf %d differs from oracle", leaf)
					}
					for k, s := range pr.Path {
						if s != levels[k][(leaf>>k)^1] {
							t.Fatalf("leaf %d path[%d] differs from oracle", leaf, k)
						}
					}
				}
			}
		}
	}
}

// TestVerifyRejectsEveryChange mutates each part of valid proofs of a height-6 piece: the leaf,
// every sibling, the index, the height and the root; all must be rejected.
func TestVerifyRejectsEveryChange(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	raw := randomPayload(rng, int(rawCapacity(6))-100)
	levels := fullTree(raw)
	p, _ := NewPieceCID(levels[6][0], uint64(len(raw)))
	for leaf := uint64(0); leaf < 1<<6; leaf++ {
		pr, err := ProveLeaf(p, fullTreeTop{levels}, 3, sectionBytes(raw, p, 3, leaf), leaf)
		if err != nil {
			t.Fatal(err)
		}
		mustFail := func(what string, root Node, height uint8, idx uint64, q Proof, sentinel error) {
			t.Helper()
			err := VerifyProof(root, height, idx, q)
			if !errors.Is(err, sentinel) {
				t.Fatalf("leaf %d, %s: got %v, want %v", leaf, what, err, sentinel)
			}
		}
		clone := func() Proof { return Proof{Leaf: pr.Leaf, Path: append([]Node(nil), pr.Path...)} }
		for bit := 0; bit < 256; bit += 37 {
			q := clone()
			q.Leaf[bit/8] ^= 1 << (bit % 8)
			mustFail("flipped leaf bit", p.Root, 6, leaf, q, ErrProofMismatch)
		}
		for k := range pr.Path {
			q := clone()
			q.Path[k][int(leaf+uint64(k))%32] ^= 0x01
			mustFail(fmt.Sprintf("changed sibling %d", k), p.Root, 6, leaf, q, ErrProofMismatch)
		}
		for _, other := range []uint64{leaf ^ 1, leaf ^ 2, leaf ^ 32, (leaf + 1) % 64} {
			if levels[0][other] == pr.Leaf && other == leaf^1 {
				continue // a sibling leaf equal to ours verifies at either position
			}
			mustFail(fmt.Sprintf("index %d", other), p.Root, 6, other, pr, ErrProofMismatch)
		}
		mustFail("index past tree", p.Root, 6, leaf+64, pr, ErrLeafOutOfRange)
		mustFail("height+1", p.Root, 7, leaf, pr, ErrProofLength)
		mustFail("height-1", p.Root, 5, leaf, pr, ErrProofLength)
		q := clone()
		q.Path = q.Path[:5]
		mustFail("shortened path", p.Root, 6, leaf, q, ErrProofLength)
		q = clone()
		q.Path = append(q.Path, ZeroRoot(6))
		mustFail("extended path", p.Root, 6, leaf, q, ErrProofLength)
		badRoot := p.Root
		badRoot[0] ^= 0x80
		mustFail("changed root", badRoot, 6, leaf, pr, ErrProofMismatch)
	}
}

func TestRootAsLeafFails(t *testing.T) {
	raw := bytes.Repeat([]byte{7}, 1000)
	levels := fullTree(raw)
	root := levels[len(levels)-1][0]
	h := uint8(len(levels) - 1)
	for _, height := range []uint8{0, h} {
		err := VerifyProof(root, height, 0, Proof{Leaf: root})
		if !errors.Is(err, ErrProofLength) {
			t.Fatalf("root as leaf, height %d: %v", height, err)
		}
	}
	// An interior node presented as a leaf with a correspondingly short path also fails.
	err := VerifyProof(root, h, 0, Proof{Leaf: levels[1][0], Path: []Node{levels[1][1]}})
	if !errors.Is(err, ErrProofLength) {
		t.Fatalf("interior node as leaf: %v", err)
	}
	if err := VerifyProof(root, MaxHeight+1, 0, Proof{Path: make([]Node, MaxHeight+1)}); !errors.Is(err, ErrProofLength) {
		t.Fatalf("height 51: %v", err)
	}
}

func TestProveLeafDetectsDamage(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	raw := randomPayload(rng, int(rawCapacity(7))-300)
	levels := fullTree(raw)
	p, _ := NewPieceCID(levels[7][0], uint64(len(raw)))
	const lh = 4
	leaf := uint64(37)
	sec := sectionBytes(raw, p, lh, leaf)

	damaged := append([]byte(nil), sec...)
	damaged[len(damaged)/2] ^= 0x10
	if _, err := ProveLeaf(p, fullTreeTop{levels}, lh, damaged, leaf); !errors.Is(err, ErrSectionMismatch) {
		t.Fatalf("damaged section: %v", err)
	}
	// A damaged cached node above the section layer.
	bad := make([][]Node, len(levels))
	for i := range levels {
		bad[i] = append([]Node(nil), levels[i]...)
	}
	bad[5][(leaf>>5)^1][3] ^= 1
	if _, err := ProveLeaf(p, fullTreeTop{bad}, lh, sec, leaf); !errors.Is(err, ErrSectionMismatch) {
		t.Fatalf("damaged upper node: %v", err)
	}
	if _, err := ProveLeaf(p, fullTreeTop{levels}, lh, sec[:len(sec)-1], leaf); !errors.Is(err, ErrSectionSize) {
		t.Fatalf("short section: %v", err)
	}
	if _, err := ProveLeaf(p, fullTreeTop{levels}, lh, append(sec, 0), leaf); !errors.Is(err, ErrSectionSize) {
		t.Fatalf("long section: %v", err)
	}
	if _, err := ProveLeaf(p, fullTreeTop{levels}, lh, nil, 1<<7); !errors.Is(err, ErrLeafOutOfRange) {
		t.Fatalf("leaf past tree: %v", err)
	}
	if _, err := ProveLeaf(p, fullTreeTop{levels[:5]}, lh, sec, leaf); err == nil || !strings.Contains(err.Error(), "oracle: no node") {
		t.Fatalf("TopNodes error not passed on: %v", err)
	}
	if _, err := ProveLeaf(p, nil, lh, sec, leaf); err == nil {
		t.Fatal("nil TopNodes accepted")
	}
	if _, err := ProveLeaf(p, fullTreeTop{levels}, 1, sec, leaf); err == nil {
		t.Fatal("layer height 1 accepted")
	}
	huge := PieceCID{Height: 40, Padding: rawCapacity(40) - 1}
	if _, err := ProveLeaf(huge, fullTreeTop{levels}, 40, []byte{1}, 0); err == nil || !strings.Contains(err.Error(), "layer height 40") {
		t.Fatalf("layer height 40: %v", err)
	}
	if _, err := ProveLeaf(PieceCID{Height: 60}, fullTreeTop{levels}, lh, sec, leaf); !errors.Is(err, ErrInvalidPieceCID) {
		t.Fatalf("invalid piece: %v", err)
	}
}

func TestProofEncodings(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, n := range []int{0, 1, 5, 30, MaxHeight} {
		pr := Proof{Leaf: randomNode(rng), Path: make([]Node, n)}
		for i := range pr.Path {
			pr.Path[i] = randomNode(rng)
		}
		b, err := pr.MarshalBinary()
		if err != nil || len(b) != NodeSize*(n+1) || !bytes.Equal(b[:32], pr.Leaf[:]) {
			t.Fatalf("binary %d: %d bytes %v", n, len(b), err)
		}
		var back Proof
		if err := back.UnmarshalBinary(b); err != nil || back.Leaf != pr.Leaf || len(back.Path) != n {
			t.Fatalf("binary round trip %d: %v", n, err)
		}
		for i := range pr.Path {
			if back.Path[i] != pr.Path[i] || !bytes.Equal(b[32*(i+1):32*(i+2)], pr.Path[i][:]) {
				t.Fatalf("binary path[%d]", i)
			}
		}
		j, err := json.Marshal(pr)
		if err != nil {
			t.Fatal(err)
		}
		var back2 Proof
		if err := json.Unmarshal(j, &back2); err != nil || back2.Leaf != pr.Leaf || len(back2.Path) != n {
			t.Fatalf("JSON round trip %d: %v (%s)", n, err, j)
		}
		for i := range pr.Path {
			if back2.Path[i] != pr.Path[i] {
				t.Fatalf("JSON path[%d]", i)
			}
		}
	}
	j, _ := json.Marshal(Proof{Leaf: Node{0xab, 31: 0x01}, Path: []Node{{0x01}}})
	want := `{"leaf":"0xab00000000000000000000000000000000000000000000000000000000000001","path":["0x0100000000000000000000000000000000000000000000000000000000000000"]}`
	if string(j) != want {
		t.Fatalf("JSON\n%s\nwant\n%s", j, want)
	}
	if j, _ := json.Marshal(Proof{}); !strings.Contains(string(j), `"path":[]`) {
		t.Fatalf("empty path JSON %s", j)
	}
	badBinary := [][]byte{nil, make([]byte, 31), make([]byte, 33), make([]byte, 32*(MaxHeight+2))}
	for _, b := range badBinary {
		var pr Proof
		if err := pr.UnmarshalBinary(b); !errors.Is(err, ErrInvalidProof) {
			t.Fatalf("UnmarshalBinary(%d bytes) = %v", len(b), err)
		}
	}
	zero := "0x" + strings.Repeat("00", 32)
	badJSON := []string{
		``, `null`, `[]`, `{}`, `{"path":[]}`,
		`{"leaf":"00` + strings.Repeat("00", 32) + `"}`,
		`{"leaf":"0x` + strings.Repeat("0", 63) + `"}`,
		`{"leaf":"0x` + strings.Repeat("g", 64) + `"}`,
		`{"leaf":"` + zero + `","path":["0x12"]}`,
		`{"leaf":"` + zero + `","path":[1]}`,
		`{"leaf":"` + zero + `","path":"` + zero + `"}`,
		`{"leaf":"` + zero + `","path":[` + strings.TrimSuffix(strings.Repeat(`"`+zero+`",`, MaxHeight+1), ",") + `]}`,
	}
	for _, s := range badJSON {
		var pr Proof
		if err := json.Unmarshal([]byte(s), &pr); err == nil {
			t.Fatalf("accepted JSON %s", s)
		}
		if s != "" && s != "null" {
			if err := pr.UnmarshalJSON([]byte(s)); !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("UnmarshalJSON(%s) = %v", s, err)
			}
		}
	}
	if _, err := (Proof{Path: make([]Node, MaxHeight+1)}).MarshalBinary(); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("oversized MarshalBinary: %v", err)
	}
}

// TestProveLargePieceThroughTreeTop computes a multi-MiB piece with Calc, keeps its TreeTop
// (also through MarshalBinary/UnmarshalBinary, as storage does), and proves random leaves.
func TestProveLargePieceThroughTreeTop(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	raw := randomPayload(rng, proofLargePieceRaw)
	for _, lh := range []uint8{DefaultLayerHeight, 5} {
		c := NewCalc(lh)
		if _, err := c.Write(raw); err != nil {
			t.Fatal(err)
		}
		res, err := c.Finish()
		if err != nil {
			t.Fatal(err)
		}
		p, top := res.Piece, res.Top
		if p.RawSize() != uint64(len(raw)) {
			t.Fatalf("raw size %d", p.RawSize())
		}
		enc, err := top.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var loaded TreeTop
		if err := loaded.UnmarshalBinary(enc); err != nil {
			t.Fatal(err)
		}
		leaves := []uint64{0, 1, p.LeafCount() - 1, p.LeafCount(), 1<<p.Height - 1}
		for len(leaves) < 60 {
			leaves = append(leaves, rng.Uint64N(p.LeafCount()))
		}
		for _, leaf := range leaves {
			off, n := SectionRange(p, lh, leaf>>min(lh, p.Height))
			sec := raw[off : off+n]
			pr, err := ProveLeaf(p, &loaded, top.LayerHeight, sec, leaf)
			if err != nil {
				t.Fatalf("layer %d leaf %d: %v", lh, leaf, err)
			}
			if err := VerifyProof(p.Root, p.Height, leaf, pr); err != nil {
				t.Fatalf("layer %d leaf %d: %v", lh, leaf, err)
			}
			// The leaf is the fr32 image of the raw bytes at that position.
			chunk := make([]byte, 127)
			copy(chunk, raw[min(uint64(len(raw)), leaf/4*127):min(uint64(len(raw)), leaf/4*127+127)])
			padded := make([]byte, 128)
			Pad(padded, chunk)
			if !bytes.Equal(pr.Leaf[:], padded[leaf%4*32:leaf%4*32+32]) {
				t.Fatalf("leaf %d is not the padded data", leaf)
			}
		}
	}
}

// FuzzProofUnmarshal feeds the same bytes to the binary and the JSON decoder: whatever either
// accepts must re-encode to an equal proof (the binary form byte for byte); whatever they
// refuse is refused with ErrInvalidProof.
func FuzzProofUnmarshal(f *testing.F) {
	zero := "0x" + strings.Repeat("00", 32)
	f.Add(make([]byte, 32))
	f.Add(make([]byte, 32*31))
	f.Add(make([]byte, 33))
	f.Add([]byte{})
	f.Add([]byte(`{"leaf":"` + zero + `","path":["` + zero + `"]}`))
	f.Add([]byte(`{"leaf":"` + zero + `","path":[]}`))
	f.Add([]byte(`{"leaf":"` + zero + `"}`))
	f.Add([]byte(`{"leaf":"0xAB` + strings.Repeat("cd", 31) + `","path":null}`))
	f.Add([]byte(`{"leaf":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var pr Proof
		if err := pr.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("binary error %v does not wrap ErrInvalidProof", err)
			}
		} else {
			enc, err := pr.MarshalBinary()
			if err != nil || !bytes.Equal(enc, b) {
				t.Fatalf("binary re-encode differs: %v", err)
			}
		}
		var pj Proof
		if err := pj.UnmarshalJSON(b); err != nil {
			if !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("JSON error %v does not wrap ErrInvalidProof", err)
			}
			return
		}
		if len(pj.Path) > MaxHeight {
			t.Fatalf("JSON accepted %d path nodes", len(pj.Path))
		}
		enc, err := json.Marshal(pj)
		if err != nil {
			t.Fatal(err)
		}
		var again Proof
		if err := json.Unmarshal(enc, &again); err != nil || again.Leaf != pj.Leaf || len(again.Path) != len(pj.Path) {
			t.Fatalf("JSON re-decode: %v", err)
		}
		for i := range pj.Path {
			if again.Path[i] != pj.Path[i] {
				t.Fatalf("JSON path[%d] changed", i)
			}
		}
	})
}
