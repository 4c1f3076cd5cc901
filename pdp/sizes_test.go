package pdp

import "testing"

func TestTreeHeightAndPaddedSize(t *testing.T) {
	cases := []struct {
		raw    uint64
		height uint8
		padded uint64
		leaves uint64
	}{
		{0, 2, 128, 0},
		{1, 2, 128, 1},
		{31, 2, 128, 1},
		{32, 2, 128, 2},
		{126, 2, 128, 4},
		{127, 2, 128, 4},
		{128, 3, 256, 5},
		{254, 3, 256, 8},
		{255, 4, 512, 9},
		{1000, 5, 1024, 32},
		{1 << 20, 16, 2 << 20, 33027},
		{1040384, 15, 1 << 20, 32768},
		{1040385, 16, 2 << 20, 32769},
		{MaxRawSize, 31, MaxPaddedSize, 1 << 31},
		{MaxRawSize + 1, 32, 2 * MaxPaddedSize, 1<<31 + 1},
	}
	for _, c := range cases {
		if h := TreeHeight(c.raw); h != c.height {
			t.Errorf("TreeHeight(%d) = %d, want %d", c.raw, h, c.height)
		}
		if p := PaddedSize(c.raw); p != c.padded {
			t.Errorf("PaddedSize(%d) = %d, want %d", c.raw, p, c.padded)
		}
		p := PieceCID{Height: c.height, Padding: rawCapacity(c.height) - c.raw}
		if l := p.LeafCount(); l != c.leaves {
			t.Errorf("LeafCount of a %d-byte payload = %d, want %d", c.raw, l, c.leaves)
		}
		// FRC-0069 leaf count: 2^h - floor(floor(128*padding/127)/32).
		padding := rawCapacity(c.height) - c.raw
		if frc := uint64(1)<<c.height - 128*padding/127/32; frc != c.leaves {
			t.Errorf("FRC-0069 leaf count of %d = %d, want %d", c.raw, frc, c.leaves)
		}
	}
}
