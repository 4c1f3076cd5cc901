package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warmstore/warmstore/pdp"
)

// payload returns n deterministic pseudo-random bytes for seed.
func payload(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	r.Read(b)
	return b
}

func commP(t testing.TB, b []byte) pdp.PieceCID {
	t.Helper()
	p, err := pdp.CommP(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testClock is an injectable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openTest(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ingest(t testing.TB, s *Store, b []byte) PieceInfo {
	t.Helper()
	info, err := s.Ingest(context.Background(), bytes.NewReader(b), nil)
	if err != nil {
		t.Fatalf("Ingest %d bytes: %v", len(b), err)
	}
	return info
}

// checkPiece asserts that piece is stored intact: readable byte for byte and provable.
func checkPiece(t testing.TB, s *Store, p pdp.PieceCID, want []byte) {
	t.Helper()
	ok, err := s.Has(p)
	if err != nil || !ok {
		t.Fatalf("Has(%v) = %v, %v", p, ok, err)
	}
	r, err := s.OpenPiece(context.Background(), p)
	if err != nil {
		t.Fatalf("OpenPiece(%v): %v", p, err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatalf("read %v: %v", p, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("piece %v: read %d bytes differing from the %d ingested", p, len(got), len(want))
	}
	if p.LeafCount() == 0 {
		return // an empty piece has no leaf to challenge
	}
	leaves := []uint64{0, p.LeafCount() - 1, p.LeafCount() / 2}
	proofs, err := s.ProveLeaves(context.Background(), p, leaves)
	if err != nil {
		t.Fatalf("ProveLeaves(%v): %v", p, err)
	}
	if len(proofs) != len(leaves) {
		t.Fatalf("ProveLeaves(%v): %d proofs for %d leaves", p, len(proofs), len(leaves))
	}
	for i, pr := range proofs {
		if err := pdp.VerifyProof(p.Root, p.Height, leaves[i], pr); err != nil {
			t.Fatalf("proof of leaf %d of %v: %v", leaves[i], p, err)
		}
	}
}

// blobNames lists the committed blobs and the leftover temporary files of a store in dir.
func blobNames(t testing.TB, dir string) (blobs, tmps []string) {
	t.Helper()
	for sub, dst := range map[string]*[]string{"blobs": &blobs, "tmp": &tmps} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for _, e := range ents {
			*dst = append(*dst, e.Name())
		}
	}
	sort.Strings(blobs)
	return blobs, tmps
}

// indexedBlobs lists the blobs the index names.
func indexedBlobs(t testing.TB, s *Store) []string {
	t.Helper()
	var names []string
	err := s.scan([]byte(prefixPiece), func(k, v []byte) error {
		var rec pieceRecord
		if err := rec.unmarshal(v); err != nil {
			return err
		}
		names = append(names, rec.DataBlob, rec.LayerBlob)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// assertConsistent checks that blobs on disk are exactly the ones the index names and that
// no temporary file is left.
func assertConsistent(t testing.TB, s *Store, dir string) {
	t.Helper()
	blobs, tmps := blobNames(t, dir)
	if len(tmps) != 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}
	if idx := indexedBlobs(t, s); strings.Join(idx, ",") != strings.Join(blobs, ",") {
		t.Fatalf("blobs on disk %v, index names %v", blobs, idx)
	}
}

func TestIngestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	for i, n := range []int{0, 1, 126, 127, 128, 1000, 127 << 10, 1<<20 + 3, 3<<20 + 7} {
		b := payload(uint64(i), n)
		want := commP(t, b)
		info := ingest(t, s, b)
		if info.Piece != want {
			t.Fatalf("%d bytes: piece %v, commP %v", n, info.Piece, want)
		}
		if info.RawSize != uint64(n) || info.PaddedSize != want.PaddedSize() || info.Deduplicated {
			t.Fatalf("%d bytes: info %+v", n, info)
		}
		checkPiece(t, s, want, b)
		st, err := s.Stat(want)
		if err != nil || st.Refs != 0 || st.Damage != nil || st.Piece != want {
			t.Fatalf("Stat = %+v, %v", st, err)
		}
	}
	assertConsistent(t, s, dir)
	if m := s.Metrics(); m.IngestedPieces != 9 || m.ProofsServed != 24 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestIngestExpected(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	b := payload(1, 300_000)
	p := commP(t, b)
	info, err := s.Ingest(context.Background(), bytes.NewReader(b), &p)
	if err != nil || info.Piece != p {
		t.Fatalf("Ingest with matching expected CID: %v, %v", info, err)
	}
	other := payload(2, 300_000)
	for name, data := range map[string][]byte{
		"same size": other,
		"longer":    append(append([]byte(nil), other...), other...),
		"shorter":   other[:1000],
		"one more":  append(append([]byte(nil), b...), 0),
		"one fewer": b[:len(b)-1],
		"empty":     nil,
		"bit flip":  func() []byte { c := append([]byte(nil), b...); c[77] ^= 1; return c }(),
	} {
		_, err := s.Ingest(context.Background(), bytes.NewReader(data), &p)
		if !errors.Is(err, ErrMismatch) {
			t.Fatalf("%s: err = %v, want ErrMismatch", name, err)
		}
	}
	assertConsistent(t, s, dir)
	if hasPiece(t, s, commP(t, other)) {
		t.Fatal("mismatched piece visible")
	}
	if m := s.Metrics(); m.MismatchRejects != 7 || m.IngestFailures != 7 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestIngestTooLarge(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{MaxRawSize: 5 << 20})
	_, err := s.Ingest(context.Background(), bytes.NewReader(payload(1, 5<<20+1)), nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	ingest(t, s, payload(1, 5<<20))
	big := pdp.PieceCID{Height: 30}
	if _, err := s.Ingest(context.Background(), strings.NewReader("x"), &big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("expected piece above limit: err = %v", err)
	}
	assertConsistent(t, s, dir)
}

func TestDedupAndConcurrentIngest(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	const distinct, copies = 6, 3
	var wg sync.WaitGroup
	errs := make(chan error, distinct*copies)
	for i := range distinct * copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := payload(uint64(i%distinct), 200_000+(i%distinct)*100_000)
			_, err := s.Ingest(context.Background(), bytes.NewReader(b), nil)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range distinct {
		b := payload(uint64(i), 200_000+i*100_000)
		checkPiece(t, s, commP(t, b), b)
	}
	m := s.Metrics()
	if m.IngestedPieces != distinct || m.DedupedPieces != distinct*(copies-1) {
		t.Fatalf("metrics %+v", m)
	}
	if blobs, _ := blobNames(t, dir); len(blobs) != 2*distinct {
		t.Fatalf("%d blobs for %d distinct pieces", len(blobs), distinct)
	}
	assertConsistent(t, s, dir)
}

func TestReopenKeepsPieces(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := payload(9, 1<<20)
	p := ingest(t, s, b).Piece
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest(context.Background(), bytes.NewReader(b), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("ingest after close: %v", err)
	}
	s = openTest(t, dir, Options{})
	checkPiece(t, s, p, b)
	if rep := s.StartupReport(); rep.Pieces != 1 || len(rep.OrphansRemoved)+len(rep.Missing)+len(rep.Damaged) != 0 {
		t.Fatalf("startup report %+v", rep)
	}
}

// The helpers below fail the test when the call itself fails, so that a check such as
// "the piece is not visible" or "no damage is recorded" cannot pass merely because the call
// returned an error and a zero value.

func hasPiece(t testing.TB, s *Store, p pdp.PieceCID) bool {
	t.Helper()
	ok, err := s.Has(p)
	if err != nil {
		t.Fatalf("Has(%v): %v", p, err)
	}
	return ok
}

func damagedPieces(t testing.TB, s *Store) map[pdp.PieceCID]Damage {
	t.Helper()
	d, err := s.Damaged()
	if err != nil {
		t.Fatalf("Damaged: %v", err)
	}
	return d
}

func record(t testing.TB, s *Store, p pdp.PieceCID) pieceRecord {
	t.Helper()
	rec, err := s.getRecord(p)
	if err != nil {
		t.Fatalf("index record of %v: %v", p, err)
	}
	return rec
}

func collect(t testing.TB, s *Store, now time.Time) GCReport {
	t.Helper()
	rep, err := s.GC(context.Background(), now)
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	return rep
}
