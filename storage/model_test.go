package storage

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/warmstore/warmstore/pdp"
	"pgregory.net/rapid"
)

// TestRefsGCStateMachine drives ingest, references, the clock, GC and restarts at random and
// compares the store with a model of which pieces are held and by whom.
func TestRefsGCStateMachine(t *testing.T) {
	const grace = time.Hour
	var payloads [4][]byte
	var pieces [4]pdp.PieceCID
	for i := range payloads {
		payloads[i] = payload(uint64(i+100), 1000*(i+1)+i)
		pieces[i] = commP(t, payloads[i])
	}
	// Every step fsyncs; keep the default run short unless -rapid.checks asks for more.
	if f := flag.Lookup("rapid.checks"); f != nil && f.Value.String() == "100" {
		f.Value.Set("30")
		if raceEnabled {
			f.Value.Set("8")
		}
		defer f.Value.Set("100")
	}
	rapid.Check(t, func(rt *rapid.T) {
		dir, err := os.MkdirTemp("", "storage-model")
		if err != nil {
			rt.Fatal(err)
		}
		defer os.RemoveAll(dir)
		clock := newTestClock()
		opts := Options{Now: clock.Now, GCGrace: grace}
		s, err := Open(dir, opts)
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { s.Close() }()
		type modelPiece struct {
			present    bool
			refs       map[uint64]bool
			unrefSince time.Time
		}
		var model [4]modelPiece
		ctx := context.Background()
		rt.Repeat(map[string]func(*rapid.T){
			"ingest": func(rt *rapid.T) {
				i := rapid.IntRange(0, 3).Draw(rt, "piece")
				info, err := s.Ingest(ctx, bytes.NewReader(payloads[i]), nil)
				if err != nil {
					rt.Fatal(err)
				}
				if info.Deduplicated != model[i].present {
					rt.Fatalf("Deduplicated = %v, model present = %v", info.Deduplicated, model[i].present)
				}
				if !model[i].present {
					model[i] = modelPiece{present: true, refs: map[uint64]bool{}, unrefSince: clock.Now()}
				}
			},
			"addRef": func(rt *rapid.T) {
				i := rapid.IntRange(0, 3).Draw(rt, "piece")
				ds := rapid.Uint64Range(1, 3).Draw(rt, "dataSet")
				err := s.AddRef(pieces[i], ds)
				if !model[i].present {
					if !errors.Is(err, ErrNotFound) {
						rt.Fatalf("AddRef on absent piece: %v", err)
					}
					return
				}
				if err != nil {
					rt.Fatal(err)
				}
				model[i].refs[ds] = true
			},
			"removeRef": func(rt *rapid.T) {
				i := rapid.IntRange(0, 3).Draw(rt, "piece")
				ds := rapid.Uint64Range(1, 3).Draw(rt, "dataSet")
				err := s.RemoveRef(pieces[i], ds)
				if !model[i].present || !model[i].refs[ds] {
					if !errors.Is(err, ErrNotFound) {
						rt.Fatalf("RemoveRef of absent ref: %v", err)
					}
					return
				}
				if err != nil {
					rt.Fatal(err)
				}
				delete(model[i].refs, ds)
				if len(model[i].refs) == 0 {
					model[i].unrefSince = clock.Now()
				}
			},
			"advance": func(rt *rapid.T) {
				clock.Advance(time.Duration(rapid.IntRange(0, 180).Draw(rt, "minutes")) * time.Minute)
			},
			"gc": func(rt *rapid.T) {
				rep, err := s.GC(ctx, clock.Now())
				if err != nil {
					rt.Fatal(err)
				}
				var want []pdp.PieceCID
				for i := range model {
					m := &model[i]
					if m.present && len(m.refs) == 0 && !m.unrefSince.After(clock.Now().Add(-grace)) {
						want = append(want, pieces[i])
						m.present = false
					}
				}
				got := slices.Clone(rep.Removed)
				key := func(a, b pdp.PieceCID) int { return bytes.Compare(pieceKeyBytes(a), pieceKeyBytes(b)) }
				slices.SortFunc(got, key)
				slices.SortFunc(want, key)
				if !slices.Equal(got, want) {
					rt.Fatalf("GC removed %v, model %v", got, want)
				}
			},
			"reopen": func(rt *rapid.T) {
				if err := s.Close(); err != nil {
					rt.Fatal(err)
				}
				if s, err = Open(dir, opts); err != nil {
					rt.Fatal(err)
				}
			},
			"": func(rt *rapid.T) {
				for i := range model {
					has, err := s.Has(pieces[i])
					if err != nil || has != model[i].present {
						rt.Fatalf("Has(piece %d) = %v, %v; model %v", i, has, err, model[i].present)
					}
					refs, err := s.Refs(pieces[i])
					if err != nil {
						rt.Fatal(err)
					}
					var want []uint64
					for ds := range model[i].refs {
						if model[i].present {
							want = append(want, ds)
						}
					}
					slices.Sort(want)
					if !slices.Equal(refs, want) {
						rt.Fatalf("Refs(piece %d) = %v, model %v", i, refs, want)
					}
				}
			},
		})
	})
}
