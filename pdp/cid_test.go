package pdp

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	commcid "github.com/filecoin-project/go-fil-commcid"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"
)

// frc69Data127Each0123 is the FRC-0069 base payload: 127 bytes each of 0, 1, 2, 3.
func frc69Data127Each0123() []byte {
	var b []byte
	for v := byte(0); v < 4; v++ {
		b = append(b, bytes.Repeat([]byte{v}, 127)...)
	}
	return b
}

// TestFRC0069Vectors checks the piece CID strings of the FRC-0069 / go-fil-commcid test vectors,
// with roots computed by the test's own full-tree builder.
func TestFRC0069Vectors(t *testing.T) {
	base := frc69Data127Each0123()
	with := func(zeros int) []byte { return append(append([]byte{}, base...), make([]byte, zeros)...) }
	cases := []struct {
		name   string
		data   []byte
		v2, v1 string
	}{
		{"127 each of 0,1,2,3", base, "bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi", "baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi"},
		{"then 127*4 zeros", with(127 * 4), "bafkzcibcaac542av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa", "baga6ea4seaqn42av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa"},
		{"then 4 zeros (128*4)", with(4), "bafkzcibd7abqlxticxolgseegik2stpfgkkuwyf6kufex3doorkvmzpjuxwe4dz4", ""},
		{"then 5 zeros (128*4+1)", with(5), "bafkzcibd64bqlxticxolgseegik2stpfgkkuwyf6kufex3doorkvmzpjuxwe4dz4", ""},
		{"0 bytes", nil, "bafkzcibcp4bdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPieceCID(fullTreeRoot(tc.data), uint64(len(tc.data)))
			if err != nil {
				t.Fatal(err)
			}
			if got := p.String(); got != tc.v2 {
				t.Fatalf("v2 = %s, want %s", got, tc.v2)
			}
			if tc.v1 != "" && p.V1().String() != tc.v1 {
				t.Fatalf("v1 = %s, want %s", p.V1(), tc.v1)
			}
			if p.RawSize() != uint64(len(tc.data)) {
				t.Fatalf("RawSize %d, want %d", p.RawSize(), len(tc.data))
			}
			back, err := ParsePieceCID(tc.v2)
			if err != nil || back != p {
				t.Fatalf("ParsePieceCID = %+v, %v; want %+v", back, err, p)
			}
			if len(tc.data) == 0 {
				// FRC-0069 defines this CID and it parses, but PDPVerifier refuses to add a
				// piece without data.
				if err := back.Validate(); !errors.Is(err, ErrInvalidPieceCID) || !strings.Contains(err.Error(), "padding too large") {
					t.Fatalf("Validate of the empty piece: %v, want padding too large", err)
				}
			}
		})
	}
}

// TestEmpty32GiBVector: a 32 GiB piece of zeros has root ZeroRoot(30) and padding 0.
func TestEmpty32GiBVector(t *testing.T) {
	p, err := NewPieceCID(ZeroRoot(30), 127<<28)
	if err != nil {
		t.Fatal(err)
	}
	if p.Height != 30 || p.Padding != 0 || p.PaddedSize() != 32<<30 || p.LeafCount() != 1<<30 {
		t.Fatalf("got %+v padded %d leaves %d", p, p.PaddedSize(), p.LeafCount())
	}
	if got, want := p.String(), "bafkzcibcaapao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"; got != want {
		t.Fatalf("v2 = %s, want %s", got, want)
	}
	if got, want := p.V1().String(), "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"; got != want {
		t.Fatalf("v1 = %s, want %s", got, want)
	}
}

func randomNode(rng *rand.Rand) Node {
	var n Node
	for i := range n {
		n[i] = byte(rng.Uint32())
	}
	n[31] &= 0x3F
	return n
}

// TestPieceCIDAgainstCommcid cross-checks random roots and sizes with go-fil-commcid (a test-only
// oracle), in both directions and through v1 <-> v2 conversion.
func TestPieceCIDAgainstCommcid(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for k := 0; k < 3000; k++ {
		root := randomNode(rng)
		var size uint64
		switch k % 4 {
		case 0:
			size = 127 + rng.Uint64N(1<<12)
		case 1:
			size = 127 << rng.UintN(40) // exactly full trees
		case 2:
			size = (127 << rng.UintN(40)) + 1 // one byte into a bigger tree
		default:
			size = 127 + rng.Uint64N(MaxRawSize)
		}
		p, err := NewPieceCID(root, size)
		if err != nil {
			t.Fatal(err)
		}
		want, err := commcid.DataCommitmentToPieceCidv2(root[:], size)
		if err != nil {
			t.Fatalf("commcid(%d): %v", size, err)
		}
		if !p.CID().Equals(want) || p.String() != want.String() {
			t.Fatalf("size %d: ours %s, commcid %s", size, p, want)
		}
		gotRoot, gotSize, err := commcid.PieceCidV2ToDataCommitment(p.CID())
		if err != nil || !bytes.Equal(gotRoot, root[:]) || gotSize != size {
			t.Fatalf("commcid decode of ours: %x %d %v", gotRoot, gotSize, err)
		}
		back, err := PieceCIDFromCID(want)
		if err != nil || back != p {
			t.Fatalf("ours decode of commcid %s: %+v %v", want, back, err)
		}
		if !back.Canonical() {
			t.Fatalf("size %d: NewPieceCID result not canonical", size)
		}
		if back.RawSize() != size {
			t.Fatalf("RawSize %d, want %d", back.RawSize(), size)
		}
		h, pad, err := commcid.PayloadSizeToV1TreeHeightAndPadding(size)
		if err != nil || h != p.Height || pad != p.Padding {
			t.Fatalf("size %d: height/padding %d/%d, commcid %d/%d (%v)", size, p.Height, p.Padding, h, pad, err)
		}
		v1, err := commcid.DataCommitmentV1ToCID(root[:])
		if err != nil || !p.V1().Equals(v1) {
			t.Fatalf("v1 %s, commcid %s (%v)", p.V1(), v1, err)
		}
		v1conv, v1size, err := commcid.PieceCidV1FromV2(p.CID())
		if err != nil || !v1conv.Equals(p.V1()) || v1size != size {
			t.Fatalf("commcid v2->v1: %s %d %v", v1conv, v1size, err)
		}
		v2conv, err := commcid.PieceCidV2FromV1(p.V1(), size)
		if err != nil || !v2conv.Equals(p.CID()) {
			t.Fatalf("commcid v1->v2: %s %v", v2conv, err)
		}
		ref, err := ParsePieceRef(p.V1().String())
		if err != nil || ref.Sized || ref.Root != root {
			t.Fatalf("ParsePieceRef(v1) = %+v, %v", ref, err)
		}
		if ref.String() != p.V1().String() {
			t.Fatalf("PieceRef.String %s", ref)
		}
		ref, err = ParsePieceRef(p.String())
		if err != nil || !ref.Sized || ref.Piece != p || ref.Root != root || ref.String() != p.String() {
			t.Fatalf("ParsePieceRef(v2) = %+v, %v", ref, err)
		}
	}
}

// TestLeafCountFormula checks LeafCount against the verifier formula evaluated with big.Int, and
// RawSize/PaddedSize against their definitions, for every size around tree boundaries.
func TestLeafCountFormula(t *testing.T) {
	check := func(size uint64) {
		p, err := NewPieceCID(Node{1}, size)
		if err != nil {
			t.Fatal(err)
		}
		pad := new(big.Int).SetUint64(p.Padding)
		pad.Mul(pad, big.NewInt(128)).Quo(pad, big.NewInt(127)).Quo(pad, big.NewInt(32))
		want := new(big.Int).Lsh(big.NewInt(1), uint(p.Height))
		want.Sub(want, pad)
		if p.LeafCount() != want.Uint64() {
			t.Fatalf("size %d: LeafCount %d, want %s", size, p.LeafCount(), want)
		}
		if p.RawSize() != size || p.PaddedSize() != PaddedSize(size) {
			t.Fatalf("size %d: RawSize %d PaddedSize %d", size, p.RawSize(), p.PaddedSize())
		}
		// Every leaf holding a raw bit is counted: ceil(size*8/254) leaves.
		if size > 0 {
			if dl := (size*8 + 253) / 254; p.LeafCount() != dl {
				t.Fatalf("size %d: LeafCount %d, data leaves %d", size, p.LeafCount(), dl)
			}
		}
	}
	for s := uint64(0); s < 5000; s++ {
		check(s)
	}
	for h := uint8(3); h <= MaxHeight; h++ {
		c := rawCapacity(h)
		for _, s := range []uint64{c - 1, c, c + 1, c/2 + 1} {
			if s <= rawCapacity(MaxHeight) && s < 1<<55 {
				check(s)
			}
		}
	}
}

// mustCID builds a CID from raw parts for the error tests.
func mustCID(t *testing.T, codec, mhCode uint64, digest []byte) string {
	t.Helper()
	mh, err := multihash.Encode(digest, mhCode)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(codec, mh).String()
}

func digestOf(padding uint64, height uint8, root Node) []byte {
	d := varint.ToUvarint(padding)
	d = append(d, height)
	return append(d, root[:]...)
}

func TestParsePieceCIDErrors(t *testing.T) {
	root := Node{0xaa, 0xbb}
	good := digestOf(10, 5, root)
	nonMinimal := append([]byte{0x8a, 0x00}, good[1:]...) // padding 10 encoded in two bytes
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", "empty"},
		{"garbage", "not-a-cid", "not a CID"},
		{"garbage base32", "bafkzcibzzzz", "not a CID"},
		{"whitespace", " " + mustCID(t, codecRaw, mhPieceV2, good), "not a CID"},
		{"wrong codec", mustCID(t, 0x70, mhPieceV2, good), "codec 0x70"},
		{"wrong multihash", mustCID(t, codecRaw, multihash.SHA2_256, good[:32]), "multihash 0x12"},
		{"v1 where v2 needed", pieceCIDV1(root).String(), "v1 piece CID"},
		{"CIDv0", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "version 0"},
		{"truncated digest", mustCID(t, codecRaw, mhPieceV2, good[:len(good)-1]), "digest is 33 bytes, want 34"},
		{"digest too long", mustCID(t, codecRaw, mhPieceV2, append(append([]byte{}, good...), 0)), "digest is 35 bytes, want 34"},
		{"digest only varint", mustCID(t, codecRaw, mhPieceV2, []byte{0x05}), "want 34"},
		{"empty digest", mustCID(t, codecRaw, mhPieceV2, nil), "padding varint"},
		{"non-minimal varint", mustCID(t, codecRaw, mhPieceV2, nonMinimal), "padding varint"},
		{"height 51", mustCID(t, codecRaw, mhPieceV2, digestOf(0, 51, root)), "height 51 exceeds the maximum 50"},
		{"height 255", mustCID(t, codecRaw, mhPieceV2, digestOf(0, 255, root)), "height 255"},
		{"height 1", mustCID(t, codecRaw, mhPieceV2, digestOf(0, 1, root)), "height 1 below"},
		{"padding = capacity", mustCID(t, codecRaw, mhPieceV2, digestOf(127<<3, 5, root)), "padding too large"},
		{"empty payload in a tree above height 2", mustCID(t, codecRaw, mhPieceV2, digestOf(127<<1, 3, root)), "padding too large"},
		{"padding above height-2 capacity", mustCID(t, codecRaw, mhPieceV2, digestOf(128, 2, root)), "padding too large"},
		{"padding huge", mustCID(t, codecRaw, mhPieceV2, digestOf(1<<62, 50, root)), "padding too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePieceCID(tc.in)
			if err == nil {
				t.Fatalf("accepted %q as %+v", tc.in, p)
			}
			if !errors.Is(err, ErrInvalidPieceCID) {
				t.Fatalf("error %v does not wrap ErrInvalidPieceCID", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			if _, err := ParsePieceRef(tc.in); err == nil && tc.name != "v1 where v2 needed" {
				t.Fatalf("ParsePieceRef accepted %q", tc.in)
			}
		})
	}
	// go-fil-commcid's "excessive padding" vector: 208 raw bytes in a height-4 tree (300 bytes
	// of padding, more than half). PDPVerifier accepts it, so ParsePieceCID does too, but it is
	// not the CID any payload hashes to, and Canonical says so.
	const excessive = "bafkzcibdvqbaislnvygmtytf57s2abxiaytklxc4icpf2mkvye4yjsxwzdk47vqf"
	ex, err := ParsePieceCID(excessive)
	if err != nil || ex.Height != 4 || ex.Padding != 300 || ex.RawSize() != 208 || ex.Canonical() {
		t.Fatalf("excessive-padding vector: %+v canonical=%v %v", ex, ex.Canonical(), err)
	}
	if c, _ := cid.Decode(excessive); c.Defined() {
		if _, _, err := commcid.PieceCidV2ToDataCommitment(c); err == nil {
			t.Fatal("commcid accepted the excessive-padding vector; its rule changed")
		}
	}
	// The largest padding that still leaves one raw byte is valid.
	p, err := ParsePieceCID(mustCID(t, codecRaw, mhPieceV2, digestOf(127<<3-1, 5, root)))
	if p.Canonical() {
		t.Fatal("one byte in a height-5 tree reported canonical")
	}
	if err != nil || p.RawSize() != 1 || p.LeafCount() != 1 {
		t.Fatalf("one-byte piece: %+v raw %d leaves %d, %v", p, p.RawSize(), p.LeafCount(), err)
	}
	// The padding rule in the verifier's own form: floor(128·padding/127) < 2^(height+5).
	for h := uint8(2); h <= 12; h++ {
		for pad := uint64(0); pad < rawCapacity(h)+300; pad += 1 + pad/64 {
			err := PieceCID{Height: h, Padding: pad}.Validate()
			ok := pad*128/127 < 1<<(h+5)
			if ok != (err == nil) {
				t.Fatalf("height %d padding %d: Validate %v, verifier rule ok=%v", h, pad, err, ok)
			}
		}
	}
}

func TestParsePieceRefV1Errors(t *testing.T) {
	bad := []string{
		mustCID(t, codecFilCommitmentUnsealed, mhPieceV1, make([]byte, 31)),
		mustCID(t, codecFilCommitmentUnsealed, multihash.SHA2_256, make([]byte, 32)),
	}
	for _, s := range bad {
		if _, err := ParsePieceRef(s); !errors.Is(err, ErrInvalidPieceCID) {
			t.Fatalf("ParsePieceRef(%s) = %v", s, err)
		}
	}
}

func TestPieceCIDTextAndJSON(t *testing.T) {
	p, err := NewPieceCID(Node{9, 8, 7}, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if p.Height != 15 || p.PaddedSize() != 1<<20 || p.RawSize() != 1_000_000 {
		t.Fatalf("1 MB payload: %+v", p)
	}
	type wrapper struct {
		Piece PieceCID          `json:"piece"`
		Map   map[PieceCID]bool `json:"map"`
	}
	in := wrapper{Piece: p, Map: map[PieceCID]bool{p: true}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"piece":"` + p.String() + `","map":{"` + p.String() + `":true}}`; string(b) != want {
		t.Fatalf("JSON %s, want %s", b, want)
	}
	var out wrapper
	if err := json.Unmarshal(b, &out); err != nil || out.Piece != p || !out.Map[p] {
		t.Fatalf("round trip %+v %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"piece":"bafy"}`), &out); !errors.Is(err, ErrInvalidPieceCID) {
		t.Fatalf("bad JSON piece: %v", err)
	}
	if _, err := (PieceCID{}).MarshalText(); !errors.Is(err, ErrInvalidPieceCID) {
		t.Fatalf("zero PieceCID marshalled: %v", err)
	}
	if _, err := NewPieceCID(Node{}, rawCapacity(MaxHeight)+1); !errors.Is(err, ErrInvalidPieceCID) {
		t.Fatalf("oversized NewPieceCID: %v", err)
	}
	big, err := NewPieceCID(Node{}, rawCapacity(MaxHeight))
	if err != nil || big.Height != MaxHeight || big.Padding != 0 {
		t.Fatalf("largest piece: %+v %v", big, err)
	}
}

// FuzzParsePieceCID: whatever ParsePieceCID accepts is valid, canonical in its string form,
// and survives String/Parse, MarshalText/UnmarshalText and PieceRef unchanged; whatever it
// refuses is refused with ErrInvalidPieceCID. The one accepted CID that Validate refuses is
// FRC-0069's 0-byte piece.
func FuzzParsePieceCID(f *testing.F) {
	seeds := []string{
		"bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi",
		"bafkzcibcaac542av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa",
		"bafkzcibd7abqlxticxolgseegik2stpfgkkuwyf6kufex3doorkvmzpjuxwe4dz4",
		"bafkzcibd64bqlxticxolgseegik2stpfgkkuwyf6kufex3doorkvmzpjuxwe4dz4",
		"bafkzcibcp4bdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy",
		"bafkzcibcaapao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq",
		"bafkzcibdvqbaislnvygmtytf57s2abxiaytklxc4icpf2mkvye4yjsxwzdk47vqf",
		"baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi",
		"QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
		"bafybeihkqv2ukwgpgzkwsuz7whmvneztvxglkljbs3zosewgku2cfluvba",
		"", "b", "bafkzcib", "zzzz", "\x00\xff",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePieceCID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPieceCID) {
				t.Fatalf("error %v does not wrap ErrInvalidPieceCID", err)
			}
			return
		}
		if err := p.Validate(); err != nil && !p.isEmptyPiece() {
			t.Fatalf("accepted %q but Validate: %v", s, err)
		}
		str := p.String()
		if !strings.HasPrefix(str, pieceV2Prefix) {
			t.Fatalf("String %s lacks prefix %s", str, pieceV2Prefix)
		}
		back, err := ParsePieceCID(str)
		if err != nil || back != p {
			t.Fatalf("reparse of %s: %+v %v", str, back, err)
		}
		txt, err := p.MarshalText()
		if err != nil || string(txt) != str {
			t.Fatalf("MarshalText %s %v", txt, err)
		}
		var u PieceCID
		if err := u.UnmarshalText(txt); err != nil || u != p {
			t.Fatalf("UnmarshalText %+v %v", u, err)
		}
		ref, err := ParsePieceRef(s)
		if err != nil || !ref.Sized || ref.Piece != p || ref.Root != p.Root {
			t.Fatalf("ParsePieceRef %+v %v", ref, err)
		}
		if empty := p.isEmptyPiece(); empty != (p.RawSize() == 0) || empty != (p.LeafCount() == 0) || p.RawSize() > rawCapacity(p.Height) || p.LeafCount() > 1<<p.Height {
			t.Fatalf("sizes of %+v: raw %d leaves %d", p, p.RawSize(), p.LeafCount())
		}
		v1ref, err := ParsePieceRef(p.V1().String())
		if err != nil || v1ref.Sized || v1ref.Root != p.Root {
			t.Fatalf("v1 of %s: %+v %v", str, v1ref, err)
		}
	})
}
