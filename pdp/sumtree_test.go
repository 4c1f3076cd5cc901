package pdp

import (
	"errors"
	"testing"

	"pgregory.net/rapid"
)

// sumModel is the obviously-correct reference: per-piece counts, Find by linear prefix sums.
type sumModel struct{ counts []uint64 }

func (m *sumModel) total() uint64 {
	var s uint64
	for _, c := range m.counts {
		s += c
	}
	return s
}

func (m *sumModel) find(x uint64) (uint64, uint64, bool) {
	var start uint64
	for id, c := range m.counts {
		if x < start+c {
			return uint64(id), x - start, true
		}
		start += c
	}
	return 0, 0, false
}

// checkAgainstModel compares every observable of t with m, probing Find at both sides of every
// piece boundary and just past the end.
func checkAgainstModel(t *rapid.T, st *SumTree, m *sumModel) {
	if st.Len() != uint64(len(m.counts)) {
		t.Fatalf("Len %d, model %d", st.Len(), len(m.counts))
	}
	total := m.total()
	if st.Total() != total {
		t.Fatalf("Total %d, model %d", st.Total(), total)
	}
	var start uint64
	for id, c := range m.counts {
		if got := st.LeafCount(uint64(id)); got != c {
			t.Fatalf("LeafCount(%d) = %d, model %d", id, got, c)
		}
		if c > 0 {
			for _, x := range []uint64{start, start + c - 1, start + c/2} {
				p, off, err := st.Find(x)
				if err != nil || p != uint64(id) || off != x-start {
					t.Fatalf("Find(%d) = (%d,%d,%v), want (%d,%d)", x, p, off, err, id, x-start)
				}
			}
		}
		start += c
	}
	if _, _, err := st.Find(total); !errors.Is(err, ErrLeafOutOfRange) {
		t.Fatalf("Find(total=%d) err = %v, want ErrLeafOutOfRange", total, err)
	}
}

func TestSumTreeMatchesPrefixSumModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := NewSumTree(nil)
		m := &sumModel{}
		t.Repeat(map[string]func(*rapid.T){
			"add": func(t *rapid.T) {
				c := rapid.OneOf(rapid.Uint64Range(0, 8), rapid.Uint64Range(1, 1<<40)).Draw(t, "count")
				id := st.Add(c)
				if id != uint64(len(m.counts)) {
					t.Fatalf("Add gave id %d, want %d", id, len(m.counts))
				}
				m.counts = append(m.counts, c)
			},
			"remove": func(t *rapid.T) {
				id := rapid.Uint64Range(0, uint64(len(m.counts))+2).Draw(t, "id")
				err := st.Remove(id)
				live := id < uint64(len(m.counts)) && m.counts[id] > 0
				if live != (err == nil) {
					t.Fatalf("Remove(%d) err = %v, live = %v", id, err, live)
				}
				if err != nil && !errors.Is(err, ErrUnknownPiece) {
					t.Fatalf("Remove(%d) err %v does not wrap ErrUnknownPiece", id, err)
				}
				if live {
					m.counts[id] = 0
				}
			},
			"find": func(t *rapid.T) {
				total := m.total()
				if total == 0 {
					t.Skip("empty")
				}
				x := rapid.Uint64Range(0, total-1).Draw(t, "leaf")
				p, off, err := st.Find(x)
				wp, woff, _ := m.find(x)
				if err != nil || p != wp || off != woff {
					t.Fatalf("Find(%d) = (%d,%d,%v), model (%d,%d)", x, p, off, err, wp, woff)
				}
			},
			"rebuild": func(t *rapid.T) {
				// Rebuilding from the persisted counts must give an identical tree.
				st = NewSumTree(m.counts)
			},
			"": func(t *rapid.T) { checkAgainstModel(t, st, m) },
		})
	})
}

func TestSumTreeRebuildEqualsIncremental(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		counts := rapid.SliceOfN(rapid.Uint64Range(0, 1000), 0, 300).Draw(t, "counts")
		inc := NewSumTree(nil)
		for _, c := range counts {
			inc.Add(c)
		}
		built := NewSumTree(counts)
		for j := range counts {
			if inc.node[j] != built.node[j] {
				t.Fatalf("node %d: incremental %d, rebuilt %d", j, inc.node[j], built.node[j])
			}
		}
		checkAgainstModel(t, built, &sumModel{counts: counts})
	})
}

// TestSumTreeVerifierNodeValues checks the stored node values against PDPVerifier's definition:
// node j = sum of counts over [j+1-2^h, j], h = ctz(j+1).
func TestSumTreeVerifierNodeValues(t *testing.T) {
	st := NewSumTree(nil)
	var counts []uint64
	for j := uint64(0); j < 100; j++ {
		c := j*7%13 + 1
		counts = append(counts, c)
		st.Add(c)
	}
	if err := st.Remove(37); err != nil {
		t.Fatal(err)
	}
	counts[37] = 0
	for j := range counts {
		span := (j + 1) & -(j + 1)
		var want uint64
		for k := j + 1 - span; k <= j; k++ {
			want += counts[k]
		}
		if st.node[j] != want {
			t.Fatalf("node %d = %d, want %d", j, st.node[j], want)
		}
	}
}

func TestSumTreeErrors(t *testing.T) {
	st := NewSumTree([]uint64{4, 0, 8})
	if err := st.Remove(1); !errors.Is(err, ErrUnknownPiece) {
		t.Fatalf("removing a 0-leaf piece: %v", err)
	}
	if err := st.Remove(3); !errors.Is(err, ErrUnknownPiece) {
		t.Fatalf("removing an id never handed out: %v", err)
	}
	if err := st.Remove(0); err != nil {
		t.Fatal(err)
	}
	if err := st.Remove(0); !errors.Is(err, ErrUnknownPiece) {
		t.Fatalf("double remove: %v", err)
	}
	if p, off, err := st.Find(0); err != nil || p != 2 || off != 0 {
		t.Fatalf("Find(0) after removals = (%d,%d,%v), want (2,0)", p, off, err)
	}
	if _, _, err := NewSumTree(nil).Find(0); !errors.Is(err, ErrLeafOutOfRange) {
		t.Fatalf("Find on empty tree: %v", err)
	}
	if st.LeafCount(99) != 0 {
		t.Fatal("LeafCount of unknown id not 0")
	}
}
