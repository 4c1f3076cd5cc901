package pdp

import (
	"errors"
	"testing"
)

// TestRangeSpan: the covering range is the whole fr32 chunks the bytes touch, clipped to the
// piece, and its leaves are those chunks' leaves; empty and out-of-piece ranges are refused.
func TestRangeSpan(t *testing.T) {
	p, err := NewPieceCID(Node{}, 1000) // 7 full chunks + 111 bytes
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ start, end, rs, re, ls, le uint64 }{
		{0, 1, 0, 127, 0, 3},
		{126, 128, 0, 254, 0, 7},
		{127, 254, 127, 254, 4, 7},
		{990, 1000, 889, 1000, 28, 31},
		{0, 1000, 0, 1000, 0, 31},
	} {
		rs, re, ls, le, err := RangeSpan(p, tc.start, tc.end)
		if err != nil || rs != tc.rs || re != tc.re || ls != tc.ls || le != tc.le {
			t.Errorf("RangeSpan(%d, %d) = %d %d %d %d %v, want %d %d %d %d", tc.start, tc.end, rs, re, ls, le, err, tc.rs, tc.re, tc.ls, tc.le)
		}
	}
	for _, bad := range [][2]uint64{{5, 5}, {6, 5}, {0, 1001}, {1000, 1001}} {
		if _, _, _, _, err := RangeSpan(p, bad[0], bad[1]); !errors.Is(err, ErrInvalidRange) {
			t.Errorf("RangeSpan(%d, %d): %v, want ErrInvalidRange", bad[0], bad[1], err)
		}
	}
}
