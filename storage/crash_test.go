package storage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage/fsbackend"
	"github.com/warmstore/warmstore/storage/internal/faultfs"
)

// openFaulty opens a store in dir whose blob file operations go through a faultfs.
func openFaulty(t *testing.T, dir string, opts Options) (*Store, *faultfs.FS) {
	t.Helper()
	ffs := faultfs.New(fsbackend.OS{})
	be, err := fsbackend.New(dir, ffs)
	if err != nil {
		t.Fatal(err)
	}
	opts.Backend = be
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, ffs
}

// TestCrashIngestEveryStep cuts an ingest at every file-system step (create, each write,
// fsync, close, rename, directory fsync of data and sidecar), simulates a power cut there
// (unsynced data dropped, unsynced renames undone, no cleanup allowed), restarts, and checks:
// the piece acknowledged before is intact, the cut piece is visible only if Ingest returned
// success (and then intact), and no blob or temporary file is left that the index does not name.
func TestCrashIngestEveryStep(t *testing.T) {
	a := payload(1, 300_000)
	b := payload(2, 1<<20+1000) // two writes: one aligned 1 MiB chunk, one padded tail
	pa, pb := commP(t, a), commP(t, b)
	steps := 0
	for n := 0; ; n++ {
		dir := t.TempDir()
		s, ffs := openFaulty(t, dir, Options{})
		ingest(t, s, a)
		ffs.FailAt(n, syscall.EIO, faultfs.FailAndDie)
		_, err := s.Ingest(context.Background(), bytes.NewReader(b), nil)
		fired := ffs.Fired()
		names := ffs.StepNames()
		if err := ffs.Crash(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if fired && err == nil && n < len(names)-1 {
			t.Logf("step %d (%s) failed after the ingest was acknowledged", n, names[n])
		}
		if fired && err != nil && !errors.Is(err, ErrIO) {
			t.Fatalf("step %d (%s): error %v is not ErrIO", n, names[n], err)
		}

		s2 := openTest(t, dir, Options{})
		checkPiece(t, s2, pa, a)
		has, herr := s2.Has(pb)
		if herr != nil {
			t.Fatal(herr)
		}
		switch {
		case err == nil:
			checkPiece(t, s2, pb, b)
		case has:
			t.Fatalf("step %d (%s): unacknowledged piece visible after the crash", n, names[n])
		}
		if rep := s2.StartupReport(); len(rep.Missing)+len(rep.Damaged) != 0 {
			t.Fatalf("step %d: startup report %+v", n, rep)
		}
		assertConsistent(t, s2, dir)
		// The store still works: the cut piece can be stored now.
		checkPiece(t, s2, ingest(t, s2, b).Piece, b)
		s2.Close()
		if !fired {
			steps = n
			break
		}
	}
	if steps < 10 {
		t.Fatalf("ingest took only %d file-system steps; the fault never reached the commit", steps)
	}
	t.Logf("cut ingest at each of %d steps", steps)
}

// TestCrashIngestNoSpaceEveryStep fails one step of an ingest with ENOSPC (no crash): the
// error is ErrNoSpace and nothing partial remains, without needing a restart.
func TestCrashIngestNoSpaceEveryStep(t *testing.T) {
	b := payload(2, 1<<20+1000)
	pb := commP(t, b)
	for n := 0; ; n++ {
		dir := t.TempDir()
		s, ffs := openFaulty(t, dir, Options{})
		ffs.FailAt(n, syscall.ENOSPC, faultfs.FailOnce)
		_, err := s.Ingest(context.Background(), bytes.NewReader(b), nil)
		fired := ffs.Fired()
		if !fired {
			s.Close()
			if n < 8 {
				t.Fatalf("only %d steps", n)
			}
			break
		}
		name := ffs.StepNames()[n]
		if err == nil {
			// The failed step was a best-effort one after the commit point.
			checkPiece(t, s, pb, b)
		} else {
			if !errors.Is(err, ErrNoSpace) {
				t.Fatalf("step %d (%s): err = %v, want ErrNoSpace", n, name, err)
			}
			if hasPiece(t, s, pb) {
				t.Fatalf("step %d (%s): failed piece visible", n, name)
			}
		}
		assertConsistent(t, s, dir)
		s.Close()
	}
}

// TestCrashGCEveryStep cuts garbage collection at every file-system step and checks that
// after restart each piece is either fully present and intact or fully gone, never half.
func TestCrashGCEveryStep(t *testing.T) {
	a, b, c := payload(1, 200_000), payload(2, 300_000), payload(3, 100_000)
	for n := 0; ; n++ {
		dir := t.TempDir()
		clock := newTestClock()
		s, ffs := openFaulty(t, dir, Options{Now: clock.Now, GCGrace: time.Minute})
		pa, pb, pc := ingest(t, s, a).Piece, ingest(t, s, b).Piece, ingest(t, s, c).Piece
		if err := s.AddRef(pc, 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour)
		ffs.FailAt(n, syscall.EIO, faultfs.FailAndDie)
		rep, _ := s.GC(context.Background(), clock.Now())
		fired := ffs.Fired()
		if err := ffs.Crash(); err != nil {
			t.Fatal(err)
		}
		s.Close()

		s2 := openTest(t, dir, Options{Now: clock.Now, GCGrace: time.Minute})
		removed := map[pdp.PieceCID]bool{}
		for _, p := range rep.Removed {
			removed[p] = true
		}
		for _, pc := range []struct {
			p    pdp.PieceCID
			data []byte
		}{{pa, a}, {pb, b}} {
			has, err := s2.Has(pc.p)
			if err != nil {
				t.Fatal(err)
			}
			if removed[pc.p] && has {
				t.Fatalf("step %d: piece reported collected is still visible", n)
			}
			if has {
				checkPiece(t, s2, pc.p, pc.data)
			}
		}
		checkPiece(t, s2, pc, c) // referenced: never collected
		if r := s2.StartupReport(); len(r.Missing)+len(r.Damaged) != 0 {
			t.Fatalf("step %d: startup report %+v", n, r)
		}
		assertConsistent(t, s2, dir)
		// Collection completes after the restart.
		if _, err := s2.GC(context.Background(), clock.Now()); err != nil {
			t.Fatal(err)
		}
		for _, p := range []pdp.PieceCID{pa, pb} {
			if hasPiece(t, s2, p) {
				t.Fatalf("step %d: GC after restart left %v", n, p)
			}
		}
		assertConsistent(t, s2, dir)
		s2.Close()
		if !fired {
			if n < 4 {
				t.Fatalf("GC took only %d steps", n)
			}
			break
		}
	}
}

// crashChildEnv names the store directory for the SIGKILL child process.
const crashChildEnv = "WARMSTORE_STORAGE_CRASH_DIR"

func crashPieceSize(seed uint64) int { return 1 + int(seed*7919%(3<<20)) }

// TestCrashChildProcess is the child of TestCrashSIGKILL: it ingests, references and collects
// pieces forever, printing each acknowledged step, until it is killed.
func TestCrashChildProcess(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestCrashSIGKILL")
	}
	round, _ := strconv.ParseUint(os.Getenv(crashChildEnv+"_ROUND"), 10, 64)
	far := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(dir, Options{GCGrace: time.Hour})
	if err != nil {
		fmt.Println("OPENFAIL", err)
		os.Exit(2)
	}
	fmt.Println("OPEN")
	ctx := context.Background()
	for i := uint64(0); ; i++ {
		seed := round*100000 + i
		fmt.Println("BEGIN", seed)
		info, err := s.Ingest(ctx, bytes.NewReader(payload(seed, crashPieceSize(seed))), nil)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		fmt.Println("ACK", seed, info.Piece)
		if seed%2 == 0 {
			if err := s.AddRef(info.Piece, 1); err != nil {
				fmt.Println("ERR", err)
				os.Exit(3)
			}
			fmt.Println("REF", seed)
		}
		if i%3 == 2 {
			fmt.Println("GCBEGIN")
			rep, err := s.GC(ctx, far)
			if err != nil {
				fmt.Println("ERR", err)
				os.Exit(3)
			}
			for _, p := range rep.Removed {
				fmt.Println("GONE", p)
			}
			fmt.Println("GCEND")
		}
	}
}

// TestCrashSIGKILL runs a child process that ingests and collects pieces, kills it with
// SIGKILL at random moments, restarts the store and checks: every acknowledged piece that
// was referenced is intact; every visible piece is intact and was either acknowledged or the
// one in flight at the kill; collected pieces stay gone; no orphan or temporary file remains.
func TestCrashSIGKILL(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("child")
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("WARMSTORE_CRASH_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("kill schedule seed %d (set WARMSTORE_CRASH_SEED to replay the schedule)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	type state struct {
		acked, referenced, gone bool
		piece                   pdp.PieceCID
	}
	seeds := map[uint64]*state{}
	bySeedPiece := map[pdp.PieceCID]uint64{}
	rounds := 12
	if raceEnabled {
		rounds = 3
	}
	kills := 0
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChildProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s_ROUND=%d", crashChildEnv, round+1))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		killAfter := 2 + rng.IntN(12) // lines
		var inflight *uint64
		seen := 0
		killed := false
		for line := range lines {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			switch f[0] {
			case "OPENFAIL", "ERR":
				t.Fatalf("child: %s", line)
			case "BEGIN":
				seed, _ := strconv.ParseUint(f[1], 10, 64)
				inflight = &seed
				seeds[seed] = &state{}
			case "ACK":
				seed, _ := strconv.ParseUint(f[1], 10, 64)
				p, err := pdp.ParsePieceCID(f[2])
				if err != nil {
					t.Fatal(err)
				}
				seeds[seed].acked, seeds[seed].piece = true, p
				bySeedPiece[p] = seed
				inflight = nil
			case "REF":
				seed, _ := strconv.ParseUint(f[1], 10, 64)
				seeds[seed].referenced = true
			case "GONE":
				p, _ := pdp.ParsePieceCID(f[1])
				seeds[bySeedPiece[p]].gone = true
			}
			seen++
			if seen == killAfter && !killed {
				time.Sleep(time.Duration(rng.IntN(20_000)) * time.Microsecond)
				cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		werr := cmd.Wait()
		if !killed {
			t.Fatalf("child exited on its own: %v", werr)
		}
		kills++

		s := openTest(t, dir, Options{GCGrace: time.Hour})
		if rep := s.StartupReport(); len(rep.Missing)+len(rep.Damaged) != 0 {
			t.Fatalf("round %d: startup report %+v", round, rep)
		}
		// Every visible piece is one we know, intact.
		visible := map[pdp.PieceCID]bool{}
		if err := s.Pieces(func(info PieceInfo) error {
			visible[info.Piece] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var inflightPiece pdp.PieceCID
		if inflight != nil {
			inflightPiece = commP(t, payload(*inflight, crashPieceSize(*inflight)))
		}
		for p := range visible {
			seed, known := bySeedPiece[p]
			switch {
			case known:
				if seeds[seed].gone {
					t.Fatalf("round %d: collected piece of seed %d visible again", round, seed)
				}
				checkPiece(t, s, p, payload(seed, crashPieceSize(seed)))
			case inflight != nil && p == inflightPiece:
				// Committed just before the kill, not yet acknowledged: allowed, and intact.
				checkPiece(t, s, p, payload(*inflight, crashPieceSize(*inflight)))
				seeds[*inflight].acked, seeds[*inflight].piece = true, p
				bySeedPiece[p] = *inflight
			default:
				t.Fatalf("round %d: unknown piece %v visible", round, p)
			}
		}
		for seed, st := range seeds {
			if st.acked && st.referenced && !visible[st.piece] {
				t.Fatalf("round %d: acknowledged, referenced piece of seed %d lost", round, seed)
			}
		}
		assertConsistent(t, s, dir)
		s.Close()
	}
	acked := 0
	for _, st := range seeds {
		if st.acked {
			acked++
		}
	}
	t.Logf("%d SIGKILLs, %d pieces acknowledged", kills, acked)
}

// TestCrashRepairLayerEveryStep cuts a sidecar rebuild at every step: after restart the piece
// is intact and provable (reconciliation finishes the rebuild if needed) and no orphan remains.
func TestCrashRepairLayerEveryStep(t *testing.T) {
	a := payload(4, 500_000)
	for n := 0; ; n++ {
		dir := t.TempDir()
		s, ffs := openFaulty(t, dir, Options{})
		pa := ingest(t, s, a).Piece
		rec := record(t, s, pa)
		flipByte(t, dir, rec.LayerBlob, rec.LayerSize-3)
		ffs.FailAt(n, syscall.EIO, faultfs.FailAndDie)
		err := s.RepairLayer(context.Background(), pa)
		fired := ffs.Fired()
		if err := ffs.Crash(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s2 := openTest(t, dir, Options{})
		checkPiece(t, s2, pa, a)
		if r := s2.StartupReport(); len(r.Missing)+len(r.Damaged) != 0 || (err == nil && len(r.LayersRebuilt) != 0) {
			t.Fatalf("step %d (repair err %v): startup report %+v", n, err, r)
		}
		if d := damagedPieces(t, s2); len(d) != 0 {
			t.Fatalf("step %d: damage left %+v", n, d)
		}
		assertConsistent(t, s2, dir)
		s2.Close()
		if !fired {
			if n < 5 {
				t.Fatalf("repair took only %d steps", n)
			}
			break
		}
	}
}
