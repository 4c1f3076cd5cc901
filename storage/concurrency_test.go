package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/warmstore/warmstore/pdp"
)

// TestConcurrentMixedOperations runs ingests, reads, proofs, reference changes, GC, scrub and
// reconciliation at the same time (run under -race) and then checks that every referenced
// piece is intact and the blobs match the index.
func TestConcurrentMixedOperations(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock()
	s := openTest(t, dir, Options{Now: clock.Now, GCGrace: time.Minute, LayerHeight: 6})
	ctx := context.Background()
	const n = 8
	datas := make([][]byte, n)
	pieces := make([]pdp.PieceCID, n)
	for i := range datas {
		datas[i] = payload(uint64(i+50), 50_000+i*37_000)
		pieces[i] = commP(t, datas[i])
	}
	// Even pieces are referenced up front and must survive everything.
	for i := 0; i < n; i += 2 {
		ingest(t, s, datas[i])
		if err := s.AddRef(pieces[i], 1); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var stop atomic.Bool
	errc := make(chan error, 64)
	run := func(f func(i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				if err := f(i); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	run(func(i int) error { // ingest odd pieces again and again (dedup or re-store after GC)
		_, err := s.Ingest(ctx, bytes.NewReader(datas[(i%(n/2))*2+1]), nil)
		return err
	})
	run(func(i int) error { // ingest even pieces concurrently with the other ingester
		_, err := s.Ingest(ctx, bytes.NewReader(datas[(i%(n/2))*2]), nil)
		return err
	})
	run(func(i int) error { // read and prove referenced pieces
		k := (i % (n / 2)) * 2
		r, err := s.OpenPiece(ctx, pieces[k])
		if err != nil {
			return err
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, datas[k]) {
			return errors.New("read of a referenced piece differs")
		}
		_, err = s.ProveLeaves(ctx, pieces[k], []uint64{uint64(i) % pieces[k].LeafCount()})
		return err
	})
	run(func(i int) error { // churn references on odd pieces
		k := (i%(n/2))*2 + 1
		if err := s.AddRef(pieces[k], 2); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := s.RemoveRef(pieces[k], 2); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return nil
	})
	run(func(i int) error { // collect
		clock.Advance(time.Minute)
		_, err := s.GC(ctx, clock.Now())
		return err
	})
	run(func(i int) error { // scrub and reconcile
		rep, err := s.Scrub(ctx)
		if err == nil && len(rep.Damaged) > 0 {
			return errors.New("scrub found damage in a healthy store")
		}
		if err != nil {
			return err
		}
		r, err := s.Reconcile(ctx)
		if err == nil && len(r.Missing)+len(r.Damaged)+len(r.OrphansRemoved) > 0 {
			t.Errorf("reconcile during traffic: %+v", r)
		}
		return err
	})
	time.Sleep(1500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 2 {
		checkPiece(t, s, pieces[i], datas[i])
	}
	assertConsistent(t, s, dir)
	if d := damagedPieces(t, s); len(d) != 0 {
		t.Fatalf("damage recorded: %+v", d)
	}
}

func TestIngestSourceErrorAndCancel(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	boom := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(payload(1, 3<<20)), iotest.ErrReader(boom))
	if _, err := s.Ingest(context.Background(), r, nil); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the source's error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Ingest(ctx, bytes.NewReader(payload(2, 3<<20)), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertConsistent(t, s, dir)
	if blobs, _ := blobNames(t, dir); len(blobs) != 0 {
		t.Fatalf("blobs left: %v", blobs)
	}
}

func TestBackgroundScrub(t *testing.T) {
	dir := t.TempDir()
	events := make(chan DamageEvent, 4)
	s := openTest(t, dir, Options{
		ScrubInterval:       20 * time.Millisecond,
		ScrubBytesPerSecond: 64 << 20,
		OnDamage:            func(e DamageEvent) { events <- e },
	})
	p := ingest(t, s, payload(1, 1<<20)).Piece
	rec := record(t, s, p)
	flipByte(t, dir, rec.DataBlob, 900_000)
	select {
	case e := <-events:
		if e.Piece != p || e.Kind != DamageData {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("background scrub did not report the damaged piece")
	}
	if m := s.Metrics(); m.DamagedPieces != 1 || m.ScrubbedBytes == 0 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestScrubRateLimit(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{ScrubBytesPerSecond: 4 << 20})
	ingest(t, s, payload(1, 2<<20))
	start := time.Now()
	rep, err := s.Scrub(context.Background())
	if err != nil || rep.Pieces != 1 {
		t.Fatalf("scrub %+v, %v", rep, err)
	}
	// 2 MiB at 4 MiB/s with a one-section burst cannot finish in much under half a second.
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Fatalf("scrub of 2 MiB at 4 MiB/s took %v", el)
	}
}
