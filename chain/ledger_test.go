package chain

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

// openWorld attaches a persistent ledger in dir to w (same config and beacon secret as the
// in-memory world uses, so the tests' helpers work unchanged).
func openWorld(t testing.TB, w *world, dir string) {
	t.Helper()
	cfg := w.cfg()
	if w.clock == nil {
		w.clock = NewManualClock(w.now)
	}
	l, err := Open(dir, Options{Config: &cfg, Clock: w.clock, Beacon: w.beacon})
	if err != nil {
		t.Fatal(err)
	}
	w.led = l
}

func TestLedgerRestartAndReplayGiveTheSameStateHash(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(t)
	openWorld(t, w, dir)
	id := w.setup(true)
	w.addPieces(id, makePiece(t, 1, 128), makePiece(t, 2, 64))
	w.schedule(id)
	w.toChallenge(id)
	if err := w.prove(id); err != nil {
		t.Fatal(err)
	}
	w.schedule(id)
	h1 := w.hash()
	head1 := w.led.Head()
	if err := w.led.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart mid-run.
	openWorld(t, w, dir)
	defer w.led.Close()
	if h := w.hash(); h != h1 {
		t.Fatalf("state hash after restart %x, before %x", h, h1)
	}
	if head := w.led.Head(); head.TxSeq != head1.TxSeq || head.EventSeq != head1.EventSeq {
		t.Fatalf("head after restart %+v, before %+v", head, head1)
	}
	if rh, err := w.led.ReplayHash(); err != nil || rh != h1 {
		t.Fatalf("replay from genesis %x (%v), state %x", rh, err, h1)
	}
	// Continue: miss a period, prove the next, settle, use the CDN.
	w.now = w.dataSet(id).Deadline + 1
	w.schedule(id)
	w.toChallenge(id)
	if err := w.prove(id); err != nil {
		t.Fatal(err)
	}
	w.settle(id, w.now)
	w.must(w.edge, TxReportUsage, ReportUsageBody{DataSetID: id, CDNBytes: 1 << 20, CacheMissBytes: 1 << 20})
	// A refused transaction leaves no trace in the log or the state.
	h2 := w.hash()
	if _, err := w.send(w.sp, TxProvePossession, ProvePossessionBody{DataSetID: id, Proofs: w.proofs(id)}); !errors.Is(err, ErrAlreadyProven) {
		t.Fatalf("second proof: %v", err)
	}
	if w.hash() != h2 {
		t.Fatal("refused transaction changed the stored state")
	}
	rh, err := w.led.ReplayHash()
	if err != nil || rh != h2 {
		t.Fatalf("replay %x (%v), state %x", rh, err, h2)
	}
	// Replaying into the pure engine's in-memory state reproduces it too, event for event.
	var log []LogEntry
	if err := w.led.Log(func(e LogEntry) error { log = append(log, e); return nil }); err != nil {
		t.Fatal(err)
	}
	mem, err := Replay(w.cfg(), w.beacon, log)
	if err != nil {
		t.Fatal(err)
	}
	if mh, err := StateHash(mem); err != nil || mh != h2 {
		t.Fatalf("in-memory replay differs (%v)", err)
	}
	evs, err := w.led.Events(context.Background(), 0, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: the stream has a gap or a repeat across the restart", i, e.Seq)
		}
	}
	if countKind(evs, EvFault) != 1 || countKind(evs, EvProven) != 2 {
		t.Fatalf("events: %d faults, %d proofs", countKind(evs, EvFault), countKind(evs, EvProven))
	}
}

func TestEventsLongPoll(t *testing.T) {
	w := newWorld(t)
	openWorld(t, w, t.TempDir())
	defer w.led.Close()
	head := w.led.Head().EventSeq
	got := make(chan []Event, 1)
	go func() {
		evs, _ := w.led.Events(context.Background(), head, 10, 5*time.Second)
		got <- evs
	}()
	time.Sleep(50 * time.Millisecond)
	w.must(w.payer, TxFaucet, FaucetBody{Amount: tokens(1)})
	select {
	case evs := <-got:
		if len(evs) != 1 || evs[0].Kind != EvFaucet {
			t.Fatalf("woke with %v", evs)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("long poll did not wake on a new event")
	}
	// Nothing new: a short wait returns empty.
	evs, err := w.led.Events(context.Background(), w.led.Head().EventSeq, 10, 20*time.Millisecond)
	if err != nil || len(evs) != 0 {
		t.Fatalf("%v %v", evs, err)
	}
}

// A transaction whose body is not in Go's compact JSON form (a non-Go client signed it as it
// wrote it) must replay: the log keeps the exact signed bytes.
func TestReplayKeepsExactBodyBytes(t *testing.T) {
	w := newWorld(t)
	openWorld(t, w, t.TempDir())
	defer w.led.Close()
	tx := &Tx{Kind: TxRegisterProvider, From: addr(w.sp), Nonce: 0,
		Body: []byte("{ \"serviceUrl\" : \"http://sp.example/?a=<b>&c\",\n  \"name\": \"x\" }")}
	h := tx.SigningHash(w.cfg().ChainID)
	sig, _ := crypto.Sign(h[:], w.sp)
	tx.Sig = sig
	if _, err := w.led.Submit(tx); err != nil {
		t.Fatal(err)
	}
	want, _ := w.led.StateHash()
	got, err := w.led.ReplayHash()
	if err != nil || got != want {
		t.Fatalf("replay %x (%v), want %x", got, err, want)
	}
}

func TestRealClockLedgerKeepsItsEpochDuration(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{EpochDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if l.EpochDuration() != time.Second || l.Epoch() > 5 {
		t.Fatalf("duration %s epoch %d", l.EpochDuration(), l.Epoch())
	}
	l.Close()
	if _, err := Open(dir, Options{EpochDuration: 30 * time.Second}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("reopened with another epoch duration: %v", err)
	}
	l, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.EpochDuration() != time.Second {
		t.Fatalf("duration after reopen %s", l.EpochDuration())
	}
}

func TestClosedLedgerRefusesReadsAndWrites(t *testing.T) {
	w := newWorld(t)
	openWorld(t, w, t.TempDir())
	w.must(w.payer, TxFaucet, FaucetBody{Amount: tokens(1)})
	if err := w.led.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.led.Read(func(*View) error { return nil }); !errors.Is(err, ErrInternal) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := w.led.Events(context.Background(), 0, 10, 0); !errors.Is(err, ErrInternal) {
		t.Fatalf("events after close: %v", err)
	}
	if _, err := w.send(w.payer, TxFaucet, FaucetBody{Amount: tokens(1)}); !errors.Is(err, ErrInternal) {
		t.Fatalf("submit after close: %v", err)
	}
	if err := w.led.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}
