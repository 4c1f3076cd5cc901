package sdk

import (
	"bytes"
	"errors"
	"testing"

	"pgregory.net/rapid"

	"github.com/warmstore/warmstore/pdp"
)

// proveInMemory builds the range proof for [rawStart, rawEnd) of data the way the provider
// does, from the tree top of a Calc and pdp.ProveLeaf.
func proveInMemory(t *rapid.T, data []byte, layer uint8, rawStart, rawEnd uint64) (pdp.PieceCID, *RangeProof) {
	calc := pdp.NewCalc(layer)
	calc.Write(data)
	cm, err := calc.Finish()
	if err != nil {
		t.Fatal(err)
	}
	p := cm.Piece
	_, _, l, r, err := rangeSpan(p, rawStart, rawEnd)
	if err != nil {
		t.Fatal(err)
	}
	rp := &RangeProof{PieceCID: p, RawStart: rawStart, RawEnd: rawEnd, LeafStart: l, LeafEnd: r}
	lh := min(layer, p.Height)
	for _, leaf := range []uint64{l, r} {
		off, n := pdp.SectionRange(p, lh, leaf>>lh)
		pr, err := pdp.ProveLeaf(p, cm.Top, lh, data[off:off+n], leaf)
		if err != nil {
			t.Fatal(err)
		}
		rp.Proofs = append(rp.Proofs, pr)
	}
	return p, rp
}

// TestVerifySpanProperty: for random payloads, layer heights and ranges, the true bytes verify
// and any single flipped bit or bytes from elsewhere in the piece are refused.
func TestVerifySpanProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		size := rapid.IntRange(1, 40_000).Draw(t, "size")
		seed := rapid.Uint64().Draw(t, "seed")
		data := randomBytes(seed, size)
		layer := uint8(rapid.IntRange(2, 8).Draw(t, "layer"))
		a := rapid.IntRange(0, size-1).Draw(t, "a")
		b := rapid.IntRange(a+1, size).Draw(t, "b")
		rs, re, _, _, err := rangeSpan(mustPieceOf(t, data), uint64(a), uint64(b))
		if err != nil {
			t.Fatal(err)
		}
		p, rp := proveInMemory(t, data, layer, rs, re)
		if err := checkRangeProof(p, rp, rs, re); err != nil {
			t.Fatalf("honest proof refused: %v", err)
		}
		span := bytes.Clone(data[rs:re])
		if err := verifySpan(p, rs, span, rp); err != nil {
			t.Fatalf("true bytes refused: %v", err)
		}
		i := rapid.IntRange(0, len(span)-1).Draw(t, "flip")
		bit := byte(1) << rapid.IntRange(0, 7).Draw(t, "bit")
		span[i] ^= bit
		if err := verifySpan(p, rs, span, rp); !errors.Is(err, ErrVerification) {
			t.Fatalf("flipped bit at %d accepted: %v", i, err)
		}
		span[i] ^= bit
		// Bytes of another place in the piece do not verify as these, unless they are equal.
		if rs >= 127 {
			other := data[rs-127 : rs-127+uint64(len(span))]
			if err := verifySpan(p, rs, other, rp); err == nil && !bytes.Equal(other, span) {
				t.Fatalf("bytes from offset %d accepted for offset %d", rs-127, rs)
			}
		}
	})
}

func mustPieceOf(t *rapid.T, data []byte) pdp.PieceCID {
	p, err := pdp.CommP(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FuzzParseUSDFC: parsing never panics, and what parses formats back to an equal amount.
func FuzzParseUSDFC(f *testing.F) {
	for _, s := range []string{"0", "1", "1.5", "0.000000000000000001", ".5", "10.", "-1", "1e3", "1.0000000000000000001", "", "abc", "99999999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseUSDFC(s)
		if err != nil {
			return
		}
		if a.Sign() < 0 {
			t.Fatalf("%q parsed negative", s)
		}
		back, err := ParseUSDFC(FormatUSDFC(a))
		if err != nil || !back.Equals(a) {
			t.Fatalf("%q → %s → %v (%v)", s, FormatUSDFC(a), back, err)
		}
	})
}
