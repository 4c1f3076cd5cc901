package pdp_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/warmstore/warmstore/pdp"
)

// The FRC-0069 example payload: 127 bytes each of 0, 1, 2 and 3.
func frc69Payload() []byte {
	var b []byte
	for v := byte(0); v < 4; v++ {
		b = append(b, bytes.Repeat([]byte{v}, 127)...)
	}
	return b
}

// Compute a payload's piece CID and read the sizes it carries.
func ExampleCommP() {
	p, err := pdp.CommP(bytes.NewReader(frc69Payload()))
	if err != nil {
		panic(err)
	}
	fmt.Println(p)
	fmt.Println(p.V1())
	fmt.Println(p.RawSize(), p.PaddedSize(), p.LeafCount())

	back, err := pdp.ParsePieceCID(p.String())
	fmt.Println(back == p, err)
	// Output:
	// bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi
	// baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi
	// 508 512 16
	// true <nil>
}

// Prove one challenged leaf from the section of the piece that holds it plus the cached tree
// top, then verify it the way PDPVerifier does.
func ExampleProveLeaf() {
	data := bytes.Repeat([]byte("warmstore "), 100_000) // 1,000,000 bytes
	const layer = 5                                     // sections of 2^5 leaves (1016 raw bytes)

	calc := pdp.NewCalc(layer)
	if _, err := calc.Write(data); err != nil {
		panic(err)
	}
	res, err := calc.Finish()
	if err != nil {
		panic(err)
	}
	p := res.Piece

	// The chain draws challenge 0 for data set 1 from the beacon seed.
	seed := [32]byte{1, 2, 3}
	leaf := pdp.ChallengeIndex(seed, 1, 0, p.LeafCount())

	// The provider reads only that leaf's section from the piece file.
	off, n := pdp.SectionRange(p, res.Top.LayerHeight, leaf>>res.Top.LayerHeight)
	proof, err := pdp.ProveLeaf(p, res.Top, res.Top.LayerHeight, data[off:off+n], leaf)
	if err != nil {
		panic(err)
	}
	fmt.Println("path length:", len(proof.Path), "= piece height", p.Height)
	fmt.Println("verify:", pdp.VerifyProof(p.Root, p.Height, leaf, proof))

	proof.Leaf[0] ^= 1
	fmt.Println("tampered:", pdp.VerifyProof(p.Root, p.Height, leaf, proof) != nil)
	// Output:
	// path length: 15 = piece height 15
	// verify: <nil>
	// tampered: true
}

// Map challenged leaves of a data set to pieces.
func ExampleSumTree() {
	st := pdp.NewSumTree(nil)
	a := st.Add(16) // piece 0: leaves 0..15
	b := st.Add(8)  // piece 1: leaves 16..23
	st.Add(4)       // piece 2: leaves 24..27
	fmt.Println(a, b, st.Total())

	piece, offset, _ := st.Find(20)
	fmt.Println(piece, offset)

	// Piece 1 counts 0 leaves from now on; ids are not reused, so piece 2 moves down.
	if err := st.Remove(b); err != nil {
		panic(err)
	}
	piece, offset, _ = st.Find(18)
	fmt.Println(piece, offset, st.Total(), st.Len())
	_, _, err := st.Find(20)
	fmt.Println(err)
	// Output:
	// 0 1 28
	// 1 4
	// 2 2 20 3
	// pdp: leaf index out of range: leaf 20, data set has 20 leaves
}

// Accept a piece named by a v2 CID (size known) or a v1 CID (root only), and see why a bad
// one is refused.
func ExampleParsePieceRef() {
	for _, s := range []string{
		"bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi",
		"baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi",
	} {
		ref, err := pdp.ParsePieceRef(s)
		if err != nil {
			panic(err)
		}
		fmt.Println(ref.Sized, ref.Piece.RawSize())
	}
	_, err := pdp.ParsePieceCID("baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi")
	fmt.Println(errors.Is(err, pdp.ErrInvalidPieceCID))
	// Output:
	// true 508
	// false 0
	// true
}
