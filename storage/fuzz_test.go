package storage

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/warmstore/warmstore/pdp"
)

func FuzzPieceRecord(f *testing.F) {
	good := pieceRecord{Created: time.Unix(1700000000, 5), LayerHeight: 11, Sections: 3,
		DataBlob: "abc.data", LayerBlob: "abc.layer", LayerSize: 200}
	f.Add(good.marshal())
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(append(good.marshal(), 0))
	f.Add(good.marshal()[:30])
	f.Fuzz(func(t *testing.T, b []byte) {
		var r pieceRecord
		if err := r.unmarshal(b); err != nil {
			if !errors.Is(err, errBadRecord) {
				t.Fatalf("error %v does not wrap errBadRecord", err)
			}
			return
		}
		if again := r.marshal(); !bytes.Equal(again, b) {
			t.Fatalf("decode/encode changed %x into %x", b, again)
		}
	})
}

type memBlob struct{ *bytes.Reader }

func (m memBlob) Close() error { return nil }

func FuzzSidecar(f *testing.F) {
	data := payload(5, 100_000)
	c := pdp.NewCalc(4)
	c.Write(data)
	com, err := c.Finish()
	if err != nil {
		f.Fatal(err)
	}
	enc, err := encodeSidecar(com.Top)
	if err != nil {
		f.Fatal(err)
	}
	side := append(bytes.Clone(enc.body), enc.trailer[:]...)
	f.Add(side, uint(0))
	f.Add(side[:len(side)-1], uint(3))
	f.Add([]byte("WSL1\x00\x00\x00\x00"), uint(0))
	f.Add([]byte{}, uint(0))
	f.Fuzz(func(t *testing.T, b []byte, flip uint) {
		err := verifySidecar(memBlob{bytes.NewReader(b)})
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v is not ErrCorrupt", err)
		}
		if bytes.Equal(b, side) {
			if err != nil {
				t.Fatalf("valid sidecar rejected: %v", err)
			}
			// Any single bit flip is caught (CRC-32C detects all 1-bit errors).
			d := bytes.Clone(b)
			d[flip%uint(len(d))] ^= 1 << (flip % 8)
			if verifySidecar(memBlob{bytes.NewReader(d)}) == nil {
				t.Fatalf("flip at %d not detected", flip%uint(len(d)))
			}
		}
	})
}
