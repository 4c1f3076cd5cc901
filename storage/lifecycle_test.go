package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/warmstore/warmstore/pdp"
)

func TestServeContentRanges(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	b := payload(3, 2<<20+555)
	p := ingest(t, s, b).Piece
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, err := s.OpenPiece(r.Context(), p)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer pr.Close()
		http.ServeContent(w, r, "", time.Time{}, pr)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		rng        string
		start, end int
	}{{"bytes=0-0", 0, 1}, {"bytes=1000-1999999", 1000, 2000000}, {"bytes=-10", len(b) - 10, len(b)}, {"bytes=2097000-", 2097000, len(b)}} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Range", tc.rng)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, b[tc.start:tc.end]) {
			t.Fatalf("%s: status %d, %d bytes", tc.rng, resp.StatusCode, len(got))
		}
	}
	if _, err := s.OpenPiece(context.Background(), commP(t, []byte("absent"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("OpenPiece of absent piece: %v", err)
	}
}

func TestRefsAndGC(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock()
	s := openTest(t, dir, Options{Now: clock.Now, GCGrace: time.Hour})
	ctx := context.Background()
	a, b := payload(1, 100_000), payload(2, 200_000)
	pa, pb := ingest(t, s, a).Piece, ingest(t, s, b).Piece
	if err := s.AddRef(pa, 7); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRef(pa, 9); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRef(commP(t, []byte("nope")), 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AddRef of absent piece: %v", err)
	}
	if err := s.RemoveRef(pa, 8); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RemoveRef of absent ref: %v", err)
	}
	if refs, err := s.Refs(pa); err != nil || !slices.Equal(refs, []uint64{7, 9}) {
		t.Fatalf("refs %v, %v", refs, err)
	}
	// Within the grace period nothing goes; b was never referenced.
	clock.Advance(59 * time.Minute)
	if rep, err := s.GC(ctx, clock.Now()); err != nil || len(rep.Removed) != 0 {
		t.Fatalf("early GC: %+v, %v", rep, err)
	}
	clock.Advance(2 * time.Minute)
	rep, err := s.GC(ctx, clock.Now())
	if err != nil || !slices.Equal(rep.Removed, []pdp.PieceCID{pb}) || rep.RemovedBytes != 200_000 {
		t.Fatalf("GC: %+v, %v", rep, err)
	}
	if hasPiece(t, s, pb) {
		t.Fatal("collected piece still visible")
	}
	checkPiece(t, s, pa, a)
	// Dropping one of two refs keeps it; dropping the last starts the grace period.
	if err := s.RemoveRef(pa, 7); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	if rep := collect(t, s, clock.Now()); len(rep.Removed) != 0 {
		t.Fatalf("GC removed a referenced piece: %+v", rep)
	}
	if err := s.RemoveRef(pa, 9); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	if rep := collect(t, s, clock.Now()); len(rep.Removed) != 0 {
		t.Fatalf("GC ignored the grace period: %+v", rep)
	}
	// Re-referencing within grace rescues it.
	if err := s.AddRef(pa, 10); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	if rep := collect(t, s, clock.Now()); len(rep.Removed) != 0 {
		t.Fatalf("GC removed a re-referenced piece: %+v", rep)
	}
	if err := s.RemoveRef(pa, 10); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	if rep := collect(t, s, clock.Now()); len(rep.Removed) != 1 {
		t.Fatalf("GC: %+v", rep)
	}
	if blobs, _ := blobNames(t, dir); len(blobs) != 0 {
		t.Fatalf("blobs left after GC: %v", blobs)
	}
	// A collected piece can be stored again.
	checkPiece(t, s, ingest(t, s, b).Piece, b)
	if m := s.Metrics(); m.GCRemovedPieces != 2 || m.GCRemovedBytes != 300_000 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestSessions(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock()
	s, err := Open(dir, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	p := commP(t, payload(1, 1000))
	a, err := s.CreateSession(Session{State: "uploading", ExpectedSize: 1000, ExpectedPiece: &p})
	if err != nil || len(a.ID) != 36 || !a.Created.Equal(clock.Now()) {
		t.Fatalf("CreateSession: %+v, %v", a, err)
	}
	if _, err := s.CreateSession(Session{ID: a.ID}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate id: %v", err)
	}
	if _, err := s.CreateSession(Session{ID: "a/b"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad id: %v", err)
	}
	clock.Advance(time.Hour)
	b, err := s.CreateSession(Session{ID: "fixed-id", State: "new"})
	if err != nil {
		t.Fatal(err)
	}
	// Persisted across a restart.
	s.Close()
	s = openTest(t, dir, Options{Now: clock.Now})
	got, err := s.Session(a.ID)
	if err != nil || got.State != "uploading" || got.ExpectedPiece == nil || *got.ExpectedPiece != p || got.ExpectedSize != 1000 {
		t.Fatalf("Session after reopen: %+v, %v", got, err)
	}
	exp, err := s.ExpiredSessions(30 * time.Minute)
	if err != nil || len(exp) != 1 || exp[0].ID != a.ID {
		t.Fatalf("expired: %+v, %v", exp, err)
	}
	clock.Advance(20 * time.Minute)
	if _, err := s.UpdateSession(a.ID, func(x *Session) error { x.State = "done"; x.Piece = &p; return nil }); err != nil {
		t.Fatal(err)
	}
	clock.Advance(40 * time.Minute)
	if exp, err := s.ExpiredSessions(50 * time.Minute); err != nil || len(exp) != 1 || exp[0].ID != b.ID {
		t.Fatalf("expired after update: %+v, %v", exp, err)
	}
	if _, err := s.UpdateSession(a.ID, func(x *Session) error { x.ID = "other"; return nil }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("id change: %v", err)
	}
	if err := s.DeleteSession(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted session: %v", err)
	}
	if err := s.DeleteSession(a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

// flipByte flips one bit of the committed blob name in dir.
func flipByte(t *testing.T, dir, name string, off int64) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "blobs", name), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptionDetected(t *testing.T) {
	dir := t.TempDir()
	var events []DamageEvent
	s := openTest(t, dir, Options{LayerHeight: 8, OnDamage: func(e DamageEvent) { events = append(events, e) }})
	ctx := context.Background()
	a, b := payload(1, 1<<20), payload(2, 1<<20)
	pa, pb := ingest(t, s, a).Piece, ingest(t, s, b).Piece
	recA := record(t, s, pa)
	recB := record(t, s, pb)
	secRaw := int64(pdp.SectionRawSize(8))
	// Damage section 3 of a and section 5 of b.
	flipByte(t, dir, recA.DataBlob, 3*secRaw+17)
	flipByte(t, dir, recB.DataBlob, 5*secRaw+100)

	// The proof read of a leaf in the damaged section refuses; other sections still prove.
	leafInSec3 := uint64(3)<<8 + 5
	if _, err := s.ProveLeaves(ctx, pa, []uint64{1}); err != nil {
		t.Fatalf("undamaged section: %v", err)
	}
	if _, err := s.ProveLeaves(ctx, pa, []uint64{leafInSec3}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("proof of damaged section: err = %v, want ErrCorrupt", err)
	}
	if len(events) != 1 || events[0].Piece != pa || events[0].Kind != DamageData || events[0].Section != 3 {
		t.Fatalf("events %+v", events)
	}
	if hasPiece(t, s, pa) {
		t.Fatal("damaged piece still reported as held")
	}

	// The scrub finds b (a is already known and skipped).
	rep, err := s.Scrub(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Damaged, []pdp.PieceCID{pb}) || rep.Pieces != 0 {
		t.Fatalf("scrub %+v", rep)
	}
	if len(events) != 2 || events[1].Piece != pb || events[1].Section != 5 {
		t.Fatalf("events %+v", events)
	}
	if m := s.Metrics(); m.DamagedPieces != 2 {
		t.Fatalf("metrics %+v", m)
	}
	dmg := damagedPieces(t, s)
	if len(dmg) != 2 || dmg[pa].Kind != DamageData {
		t.Fatalf("damaged %+v", dmg)
	}
	if _, err := s.OpenPiece(ctx, pb); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("OpenPiece of damaged piece: %v", err)
	}
	// Ingesting the good bytes again replaces the damaged copy.
	info := ingest(t, s, b)
	if info.Deduplicated {
		t.Fatal("damaged copy was kept as a dedup target")
	}
	checkPiece(t, s, pb, b)
	rep, err = s.Scrub(ctx)
	if err != nil || rep.Pieces != 1 || len(rep.Damaged) != 0 || rep.Bytes != uint64(len(b)) {
		t.Fatalf("scrub after repair: %+v, %v", rep, err)
	}
	assertConsistent(t, s, dir)
}

func TestDamagedSidecarRebuilt(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{LayerHeight: 6})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, b, c := payload(1, 1<<20), payload(2, 1<<20), payload(3, 700_000)
	pa, pb, pc := ingest(t, s, a).Piece, ingest(t, s, b).Piece, ingest(t, s, c).Piece
	recA := record(t, s, pa)
	recB := record(t, s, pb)
	recC := record(t, s, pc)
	// a: a section root flipped (caught by the proof read); b: upper node flipped (caught by
	// the scrub's checksum); c: sidecar truncated (caught at startup reconciliation).
	off, ok := pdp.TreeTopNodeOffset(pa.Height, recA.LayerHeight, recA.Sections, recA.LayerHeight, 0)
	if !ok {
		t.Fatal("no offset for section root 0")
	}
	flipByte(t, dir, recA.LayerBlob, off)
	flipByte(t, dir, recB.LayerBlob, recB.LayerSize-20)
	proofs, err := s.ProveLeaves(ctx, pa, []uint64{0, 1000})
	if err != nil || len(proofs) != 2 {
		t.Fatalf("prove with damaged sidecar: %v", err)
	}
	rep, err := s.Scrub(ctx)
	if err != nil || !slices.Equal(rep.LayersRebuilt, []pdp.PieceCID{pb}) || len(rep.Damaged) != 0 {
		t.Fatalf("scrub: %+v, %v", rep, err)
	}
	if m := s.Metrics(); m.LayersRebuilt != 2 {
		t.Fatalf("metrics %+v", m)
	}
	recA = record(t, s, pa) // rebuilt: a new sidecar blob
	s.Close()
	if err := os.Truncate(filepath.Join(dir, "blobs", recC.LayerBlob), 100); err != nil {
		t.Fatal(err)
	}
	// A quick reconciliation still catches the truncation (size), not a flipped byte.
	flipByte(t, dir, recA.LayerBlob, 5)
	s = openTest(t, dir, Options{LayerHeight: 6, QuickReconcile: true})
	if r := s.StartupReport(); !slices.Equal(r.LayersRebuilt, []pdp.PieceCID{pc}) {
		t.Fatalf("quick startup %+v", r)
	}
	s.Close()
	s = openTest(t, dir, Options{LayerHeight: 6})
	if r := s.StartupReport(); !slices.Equal(r.LayersRebuilt, []pdp.PieceCID{pa}) {
		t.Fatalf("startup %+v", r)
	}
	checkPiece(t, s, pa, a)
	checkPiece(t, s, pb, b)
	checkPiece(t, s, pc, c)
	if d := damagedPieces(t, s); len(d) != 0 {
		t.Fatalf("damage left after rebuilds: %+v", d)
	}
	assertConsistent(t, s, dir)
}

func TestReconcileOrphansAndMissing(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := payload(1, 100_000), payload(2, 100_000)
	pa, pb := ingest(t, s, a).Piece, ingest(t, s, b).Piece
	recB := record(t, s, pb)
	s.Close()
	// A blob nobody indexes (a crash between commit and index batch) and a leftover temp file.
	os.WriteFile(filepath.Join(dir, "blobs", "0123.data"), []byte("orphan"), 0o644)
	os.WriteFile(filepath.Join(dir, "tmp", "x.data.1.tmp"), []byte("half"), 0o644)
	os.Remove(filepath.Join(dir, "blobs", recB.DataBlob))
	var events []DamageEvent
	s = openTest(t, dir, Options{OnDamage: func(e DamageEvent) { events = append(events, e) }})
	rep := s.StartupReport()
	if !slices.Equal(rep.OrphansRemoved, []string{"0123.data"}) || !slices.Equal(rep.Missing, []pdp.PieceCID{pb}) || rep.Pieces != 2 {
		t.Fatalf("report %+v", rep)
	}
	if len(events) != 1 || events[0].Kind != DamageMissing {
		t.Fatalf("events %+v", events)
	}
	checkPiece(t, s, pa, a)
	if hasPiece(t, s, pb) {
		t.Fatal("piece with a missing file reported as held")
	}
	if _, err := s.ProveLeaves(context.Background(), pb, []uint64{0}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("prove missing: %v", err)
	}
	// Re-ingest heals it.
	checkPiece(t, s, ingest(t, s, b).Piece, b)
	assertConsistent(t, s, dir)
}

// TestOpenPieceRecordsMissingFile: a read that finds the piece file gone records the damage,
// so Has stops reporting the piece before any proof or scrub runs into it.
func TestOpenPieceRecordsMissingFile(t *testing.T) {
	dir := t.TempDir()
	var events []DamageEvent
	s := openTest(t, dir, Options{OnDamage: func(e DamageEvent) { events = append(events, e) }})
	b := payload(3, 100_000)
	p := ingest(t, s, b).Piece
	if err := os.Remove(filepath.Join(dir, "blobs", record(t, s, p).DataBlob)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenPiece(context.Background(), p); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("OpenPiece with its file gone: %v, want ErrCorrupt", err)
	}
	if hasPiece(t, s, p) {
		t.Fatal("piece whose file is gone still reported as held")
	}
	if d := damagedPieces(t, s); len(d) != 1 || d[p].Kind != DamageMissing {
		t.Fatalf("damage %+v, want DamageMissing for %v", d, p)
	}
	if len(events) != 1 || events[0].Kind != DamageMissing || events[0].Piece != p {
		t.Fatalf("events %+v", events)
	}
	// Re-ingest heals it.
	checkPiece(t, s, ingest(t, s, b).Piece, b)
	assertConsistent(t, s, dir)
}
