package extradata

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/warmstore/warmstore/chain/eip712"
)

// A hand-checked ABI encoding: abi.encode(bytes sig) for a 65-byte signature is an offset
// word (0x20), a length word (65) and 96 bytes of padded data: the 160 bytes the warm-storage
// service's comments mention.
func TestSignatureExtraLayout(t *testing.T) {
	sig := bytes.Repeat([]byte{0xab}, 65)
	b, err := EncodeSignature(sig)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 160 {
		t.Fatalf("abi.encode(bytes65) is %d bytes, want 160", len(b))
	}
	want := "0000000000000000000000000000000000000000000000000000000000000020" +
		"0000000000000000000000000000000000000000000000000000000000000041"
	if hex.EncodeToString(b[:64]) != want {
		t.Fatalf("head %x", b[:64])
	}
	got, err := DecodeSignature(b)
	if err != nil || !bytes.Equal(got, sig) {
		t.Fatalf("round trip: %x, %v", got, err)
	}
}

// A create payload as viem's encodeAbiParameters lays it out, built by hand word by word, so
// the decoder is checked against the ABI rules rather than against its own encoder.
func TestCreateExtraHandEncoded(t *testing.T) {
	word := func(v uint64) string { return strings.Repeat("0", 48) + hexU64(v) }
	str := func(s string) string {
		h := hex.EncodeToString([]byte(s))
		for len(h)%64 != 0 || len(h) == 0 {
			h += "0"
		}
		return word(uint64(len(s))) + h
	}
	payer := "000000000000000000000000" + strings.Repeat("11", 20)
	// Head: payer, id, offsets of keys, values, sig (5 words = 0xa0 bytes).
	// keys = ["k"]: length 1, offset of element 0 (0x20), then the string.
	keys := word(1) + word(0x20) + str("k")                              // 4 words
	values := word(1) + word(0x20) + str("v")                            // 4 words
	sig := word(65) + strings.Repeat("cd", 65) + strings.Repeat("0", 62) // 1 + 3 words
	offKeys := uint64(5 * 32)
	offValues := offKeys + 4*32
	offSig := offValues + 4*32
	enc := payer + word(7) + word(offKeys) + word(offValues) + word(offSig) + keys + values + sig
	b, err := hex.DecodeString(enc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeCreateDataSet(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.Payer != common.HexToAddress("0x"+strings.Repeat("11", 20)) || c.ClientDataSetID.Int64() != 7 ||
		!reflect.DeepEqual(c.Metadata, []eip712.MetadataEntry{{Key: "k", Value: "v"}}) || !bytes.Equal(c.Signature, bytes.Repeat([]byte{0xcd}, 65)) {
		t.Fatalf("decoded %+v", c)
	}
	re, err := EncodeCreateDataSet(c)
	if err != nil || !bytes.Equal(re, b) {
		t.Fatalf("re-encoding differs:\n%x\n%x", re, b)
	}
}

func hexU64(v uint64) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 16)
	for i := 15; i >= 0; i-- {
		out[i] = digits[v&0xf]
		v >>= 4
	}
	return string(out)
}

func TestExtraDataRefusals(t *testing.T) {
	add, _ := EncodeAddPieces(AddPieces{Nonce: big.NewInt(1), PieceMetadata: [][]eip712.MetadataEntry{{{Key: "a", Value: "b"}}}, Signature: []byte{1}})
	for name, fn := range map[string]func() error{
		"empty create":     func() error { _, err := DecodeCreateDataSet(nil); return err },
		"short create":     func() error { _, err := DecodeCreateDataSet(make([]byte, 64)); return err },
		"oversized create": func() error { _, err := DecodeCreateDataSet(make([]byte, MaxCreateSize+1)); return err },
		"add as create":    func() error { _, err := DecodeCreateDataSet(add); return err },
		"truncated add":    func() error { _, err := DecodeAddPieces(add[:len(add)-40]); return err },
		"garbage removal":  func() error { _, err := DecodeSignature([]byte{1, 2, 3}); return err },
		"lying length": func() error {
			b, _ := EncodeSignature(make([]byte, 65))
			b[63] = 0xff // claims 255 bytes of signature
			_, err := DecodeSignature(b)
			return err
		},
		"create-and-add with bad inner": func() error {
			b, _ := createAndAddArgs.Pack([]byte{1, 2}, add)
			_, _, err := DecodeCreateAndAdd(b)
			return err
		},
	} {
		if err := fn(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	// Unequal keys and values.
	b, _ := createArgs.Pack(common.Address{}, big.NewInt(1), []string{"a", "b"}, []string{"x"}, []byte{})
	if _, err := DecodeCreateDataSet(b); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "2 metadata keys but 1 values") {
		t.Errorf("unequal metadata: %v", err)
	}
}

func extraSeeds() [][]byte {
	meta := []eip712.MetadataEntry{{Key: "withCDN", Value: ""}, {Key: "source", Value: "app"}}
	c := CreateDataSet{Payer: common.Address{0xaa}, ClientDataSetID: new(big.Int).Lsh(big.NewInt(1), 255), Metadata: meta, Signature: bytes.Repeat([]byte{7}, 65)}
	a := AddPieces{Nonce: big.NewInt(99), PieceMetadata: [][]eip712.MetadataEntry{meta[:1], nil, meta}, Signature: bytes.Repeat([]byte{8}, 65)}
	cb, _ := EncodeCreateDataSet(c)
	ab, _ := EncodeAddPieces(a)
	cab, _ := EncodeCreateAndAdd(c, a)
	sb, _ := EncodeSignature(bytes.Repeat([]byte{9}, 65))
	return [][]byte{cb, ab, cab, sb, nil, {0}, make([]byte, 32), make([]byte, 160), bytes.Repeat([]byte{0xff}, 200), aliasBomb(3, 100)}
}

// FuzzDecodeExtraData feeds arbitrary bytes to every decoder: none may panic or allocate
// beyond the input's means, and whatever decodes re-encodes to a payload that decodes to the
// same values.
func FuzzDecodeExtraData(f *testing.F) {
	for _, s := range extraSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := DecodeCreateDataSet(b); err == nil {
			re, err := EncodeCreateDataSet(c)
			if err != nil {
				t.Fatal(err)
			}
			c2, err := DecodeCreateDataSet(re)
			if err != nil || !reflect.DeepEqual(normCreate(c), normCreate(c2)) {
				t.Fatalf("create round trip: %+v vs %+v (%v)", c, c2, err)
			}
		}
		if a, err := DecodeAddPieces(b); err == nil {
			total := len(a.Signature)
			for _, m := range a.PieceMetadata {
				for _, e := range m {
					total += len(e.Key) + len(e.Value)
				}
			}
			if total > len(b) {
				t.Fatalf("%d bytes decoded to %d: amplification", len(b), total)
			}
			re, err := EncodeAddPieces(a)
			if err != nil {
				t.Fatal(err)
			}
			a2, err := DecodeAddPieces(re)
			if err != nil || !reflect.DeepEqual(normAdd(a), normAdd(a2)) {
				t.Fatalf("add round trip: %+v vs %+v (%v)", a, a2, err)
			}
		}
		DecodeCreateAndAdd(b)
		if s, err := DecodeSignature(b); err == nil {
			re, _ := EncodeSignature(s)
			s2, err := DecodeSignature(re)
			if err != nil || !bytes.Equal(s, s2) {
				t.Fatalf("signature round trip: %x vs %x", s, s2)
			}
		}
	})
}

// norm* make nil and empty slices equal for comparison.
func normCreate(c CreateDataSet) CreateDataSet {
	if len(c.Metadata) == 0 {
		c.Metadata = nil
	}
	if len(c.Signature) == 0 {
		c.Signature = nil
	}
	return c
}

func normAdd(a AddPieces) AddPieces {
	if len(a.PieceMetadata) == 0 {
		a.PieceMetadata = nil
	}
	for i, m := range a.PieceMetadata {
		if len(m) == 0 {
			a.PieceMetadata[i] = nil
		}
	}
	if len(a.Signature) == 0 {
		a.Signature = nil
	}
	return a
}

// aliasBomb is addPieces extraData whose keys are n arrays that all point at one inner array of
// n strings that all point at one s-byte string: a few kilobytes that a plain ABI decoder
// expands to n·n·s bytes.
func aliasBomb(n, s int) []byte {
	word := func(v uint64) []byte {
		w := make([]byte, 32)
		for i := 0; i < 8; i++ {
			w[31-i] = byte(v >> (8 * i))
		}
		return w
	}
	var b []byte
	// Heads: nonce, keys offset, values offset, sig offset.
	keysOff := uint64(4 * 32)
	outerLen := uint64(32 + 32*n)
	innerOff := uint64(32 * n) // relative to the outer array's element area: right after the element heads
	innerLen := uint64(32 + 32*n)
	strOff := uint64(32 * n) // relative to the inner array's element area
	strLen := uint64(32 + (s+31)/32*32)
	valuesOff := keysOff + outerLen + innerLen + strLen
	emptyOuter := uint64(32)
	sigOff := valuesOff + emptyOuter
	b = append(b, word(1)...)
	b = append(b, word(keysOff)...)
	b = append(b, word(valuesOff)...)
	b = append(b, word(sigOff)...)
	b = append(b, word(uint64(n))...) // outer length
	for range n {
		b = append(b, word(innerOff)...)
	}
	b = append(b, word(uint64(n))...) // inner length
	for range n {
		b = append(b, word(strOff)...)
	}
	b = append(b, word(uint64(s))...)
	b = append(b, make([]byte, (s+31)/32*32)...)
	b = append(b, word(0)...) // values: empty outer array
	b = append(b, word(0)...) // sig: empty bytes
	return b
}

func TestExtraDataAliasBombIsRefused(t *testing.T) {
	b := aliasBomb(400, 20_000) // 46 KB in, 3.2 GB out for a naive decoder
	if len(b) > MaxAddSize {
		t.Fatalf("bomb of %d bytes exceeds the add limit", len(b))
	}
	_, err := DecodeAddPieces(b)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "aliased") {
		t.Fatalf("alias bomb: %v", err)
	}
	// The same shape at 1 × 1 × 10 bytes passes the size check and reaches the decoder, which
	// refuses it for its real defect (one key list, no value list).
	_, err = DecodeAddPieces(aliasBomb(1, 10))
	if !errors.Is(err, ErrMalformed) || strings.Contains(err.Error(), "aliased") || !strings.Contains(err.Error(), "metadata for 1 pieces but values for 0") {
		t.Fatalf("small payload: %v", err)
	}
}
