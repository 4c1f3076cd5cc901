package main

import "testing"

func TestParseRange(t *testing.T) {
	for _, c := range []struct {
		s          string
		size       uint64
		start, end uint64
		ok         bool
	}{
		{"0-0", 10, 0, 1, true}, {"0-9", 10, 0, 10, true}, {"3-", 10, 3, 10, true}, {"-4", 10, 6, 10, true},
		{"0-10", 10, 0, 0, false}, {"5-4", 10, 0, 0, false}, {"-0", 10, 0, 0, false}, {"-11", 10, 0, 0, false},
		{"10-", 10, 0, 0, false}, {"-", 10, 0, 0, false}, {"x-1", 10, 0, 0, false}, {"7", 10, 0, 0, false},
	} {
		s, e, err := parseRange(c.s, c.size)
		if (err == nil) != c.ok || (c.ok && (s != c.start || e != c.end)) {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v", c.s, c.size, s, e, err)
		}
	}
}

// FuzzParseRange: whatever parses is a non-empty range inside the piece.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"0-0", "1-", "-1", "5-3", "18446744073709551615-", "-18446744073709551615", "a-b", "--"} {
		f.Add(s, uint64(100))
	}
	f.Fuzz(func(t *testing.T, s string, size uint64) {
		start, end, err := parseRange(s, size)
		if err == nil && (start >= end || end > size) {
			t.Fatalf("parseRange(%q, %d) = [%d, %d)", s, size, start, end)
		}
	})
}
