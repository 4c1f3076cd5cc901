package chain

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/filecoin-project/go-state-types/abi"
)

// Pebble key prefixes of a ledger directory: state, the transaction log, events, and metadata.
var (
	pfxState = []byte("s/")
	pfxLog   = []byte("l/")
	pfxEvent = []byte("e/")
	keyMeta  = []byte("m/genesis")
)

// genesis is what a ledger directory was created with.
type genesis struct {
	Config  Config    `json:"config"`
	Secret  []byte    `json:"secret"` // beacon secret; never served
	Created time.Time `json:"created"`
	// EpochDuration of the wall-time clock, fixed at creation so epochs do not jump when the
	// ledger restarts.
	EpochDuration time.Duration `json:"epochDuration"`
}

// LogEntry is one accepted transaction with the epoch it was applied at.
type LogEntry struct {
	Seq   uint64         `json:"seq"`
	Epoch abi.ChainEpoch `json:"epoch"`
	Tx    *Tx            `json:"tx"`
}

// storedEntry is a LogEntry as written to the log. The body is kept as base64 of the exact
// bytes that were signed: re-encoding it as JSON would compact and escape it, and the
// signature would no longer verify on replay.
type storedEntry struct {
	Seq   uint64         `json:"seq"`
	Epoch abi.ChainEpoch `json:"epoch"`
	Kind  TxKind         `json:"kind"`
	From  common.Address `json:"from"`
	Nonce uint64         `json:"nonce"`
	Body  []byte         `json:"body"`
	Sig   []byte         `json:"sig"`
}

func encodeEntry(e LogEntry) ([]byte, error) {
	return json.Marshal(storedEntry{Seq: e.Seq, Epoch: e.Epoch, Kind: e.Tx.Kind, From: e.Tx.From, Nonce: e.Tx.Nonce, Body: e.Tx.Body, Sig: e.Tx.Sig})
}

func decodeEntry(raw []byte) (LogEntry, error) {
	var s storedEntry
	if err := json.Unmarshal(raw, &s); err != nil {
		return LogEntry{}, fmt.Errorf("%w: log entry: %v", ErrInternal, err)
	}
	return LogEntry{Seq: s.Seq, Epoch: s.Epoch, Tx: &Tx{Kind: s.Kind, From: s.From, Nonce: s.Nonce, Body: s.Body, Sig: s.Sig}}, nil
}

// Options configure Open.
type Options struct {
	// Config is the genesis configuration, used only when the directory is new. DefaultConfig
	// when zero.
	Config *Config
	// Clock gives the current epoch. When nil, a RealClock with EpochDuration starting at the
	// directory's creation time.
	Clock Clock
	// EpochDuration of the default clock, recorded at creation (DefaultEpochDuration when
	// zero). Reopening with a different non-zero value is refused.
	EpochDuration time.Duration
	// Beacon overrides the devnet secret beacon (e.g. with drand).
	Beacon Beacon
}

// Ledger is the persistent ledger: the rule engine over pebble. Each accepted transaction is
// appended to the log, applied, and committed with its state writes and events as one synced
// batch. It is safe for concurrent use; transactions are serialized.
type Ledger struct {
	db     *pebble.DB
	engine *Engine
	clock  Clock
	beacon Beacon
	gen    genesis

	mu      sync.Mutex
	txSeq   uint64
	evSeq   uint64
	last    abi.ChainEpoch
	notify  chan struct{} // closed and replaced when events are appended
	closed  bool
	readers sync.WaitGroup // reads in flight (Close waits for them)
}

// Open opens (or creates) the ledger in dir.
func Open(dir string, opts Options) (*Ledger, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}, FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		return nil, fmt.Errorf("chain: open %s: %w", dir, err)
	}
	l, err := openDB(db, opts)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return l, nil
}

func openDB(db *pebble.DB, opts Options) (*Ledger, error) {
	l := &Ledger{db: db, notify: make(chan struct{})}
	raw, closer, err := db.Get(keyMeta)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		cfg := DefaultConfig()
		if opts.Config != nil {
			cfg = *opts.Config
		}
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("chain: beacon secret: %w", err)
		}
		d := opts.EpochDuration
		if d <= 0 {
			d = DefaultEpochDuration
		}
		l.gen = genesis{Config: cfg, Secret: secret, Created: time.Now().UTC().Truncate(time.Second), EpochDuration: d}
		b, _ := json.Marshal(l.gen)
		st := NewTxn(l.store())
		if err := putJSON(st, keyConfig, cfg); err != nil {
			return nil, err
		}
		batch := db.NewBatch()
		_ = batch.Set(keyMeta, b, nil)
		for _, w := range st.Writes() {
			_ = batch.Set(append(bytes.Clone(pfxState), w.Key...), w.Value, nil)
		}
		if err := batch.Commit(pebble.Sync); err != nil {
			return nil, fmt.Errorf("chain: write genesis: %w", err)
		}
		_ = batch.Close()
	case err != nil:
		return nil, fmt.Errorf("chain: read genesis: %w", err)
	default:
		err := json.Unmarshal(raw, &l.gen)
		_ = closer.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: genesis record: %v", ErrInternal, err)
		}
	}
	if l.gen.EpochDuration <= 0 {
		l.gen.EpochDuration = DefaultEpochDuration
	}
	if opts.EpochDuration > 0 && opts.EpochDuration != l.gen.EpochDuration {
		return nil, fmt.Errorf("%w: ledger was created with %s epochs, not %s", ErrInvalidArgument, l.gen.EpochDuration, opts.EpochDuration)
	}
	if l.engine, err = NewEngine(l.gen.Config); err != nil {
		return nil, err
	}
	l.beacon = opts.Beacon
	if l.beacon == nil {
		if l.beacon, err = NewSecretBeacon(l.gen.Secret); err != nil {
			return nil, err
		}
	}
	l.clock = opts.Clock
	if l.clock == nil {
		l.clock = RealClock{Genesis: l.gen.Created, EpochDuration: l.gen.EpochDuration}
	}
	// Recover the counters and the last applied epoch from the log and the event stream.
	if last, ok, err := l.lastKey(pfxLog); err != nil {
		return nil, err
	} else if ok {
		e, err := l.logEntry(last)
		if err != nil {
			return nil, err
		}
		l.txSeq, l.last = last, e.Epoch
	}
	if last, ok, err := l.lastKey(pfxEvent); err != nil {
		return nil, err
	} else if ok {
		l.evSeq = last
	}
	return l, nil
}

func (l *Ledger) lastKey(prefix []byte) (uint64, bool, error) {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, false, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, false, it.Error()
	}
	k := it.Key()
	if len(k) != len(prefix)+8 {
		return 0, false, fmt.Errorf("%w: bad key %q", ErrInternal, k)
	}
	return binary.BigEndian.Uint64(k[len(prefix):]), true, nil
}

func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// Close closes the database. Long-polling event readers are released.
func (l *Ledger) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.notify)
	l.mu.Unlock()
	l.readers.Wait() // reads in flight finish before the database goes away
	return l.db.Close()
}

// beginRead registers a reader of the database; it fails once the ledger is closed.
func (l *Ledger) beginRead() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("%w: ledger is closed", ErrInternal)
	}
	l.readers.Add(1)
	return nil
}

// Engine returns the rule engine.
func (l *Ledger) Engine() *Engine { return l.engine }

// Config returns the genesis configuration.
func (l *Ledger) Config() Config { return l.gen.Config }

// Genesis returns the wall time the ledger was created (epoch 0 of its default clock).
func (l *Ledger) Genesis() time.Time { return l.gen.Created }

// EpochDuration is the wall-time length of an epoch of the ledger's default clock.
func (l *Ledger) EpochDuration() time.Duration { return l.gen.EpochDuration }

// Epoch returns the current epoch (never earlier than the last applied transaction's).
func (l *Ledger) Epoch() abi.ChainEpoch {
	e := l.clock.Epoch()
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(e, l.last)
}

// Receipt is the outcome of an accepted transaction.
type Receipt struct {
	Seq    uint64         `json:"seq"`
	Hash   string         `json:"hash"`
	Epoch  abi.ChainEpoch `json:"epoch"`
	Events []Event        `json:"events"`
}

// Submit applies tx at the current epoch. A refused transaction returns an error wrapping one
// of the package's sentinel errors and changes nothing.
func (l *Ledger) Submit(tx *Tx) (*Receipt, error) {
	now := l.clock.Epoch()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("%w: ledger is closed", ErrInternal)
	}
	now = max(now, l.last)
	writes, events, hash, err := l.engine.apply(l.store(), tx, now, l.beacon)
	if err != nil {
		return nil, err
	}
	seq := l.txSeq + 1
	batch := l.db.NewBatch()
	defer batch.Close()
	entry, err := encodeEntry(LogEntry{Seq: seq, Epoch: now, Tx: tx})
	if err != nil {
		return nil, fmt.Errorf("%w: encode log entry: %v", ErrInternal, err)
	}
	_ = batch.Set(u64(bytes.Clone(pfxLog), seq), entry, nil)
	for _, w := range writes.Writes() {
		k := append(bytes.Clone(pfxState), w.Key...)
		if w.Value == nil {
			_ = batch.Delete(k, nil)
		} else {
			_ = batch.Set(k, w.Value, nil)
		}
	}
	ev := l.evSeq
	for i := range events {
		ev++
		events[i].Seq = ev
		b, err := json.Marshal(events[i])
		if err != nil {
			return nil, fmt.Errorf("%w: encode event: %v", ErrInternal, err)
		}
		_ = batch.Set(u64(bytes.Clone(pfxEvent), ev), b, nil)
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("%w: commit: %v", ErrInternal, err)
	}
	l.txSeq, l.evSeq, l.last = seq, ev, now
	if len(events) > 0 {
		close(l.notify)
		l.notify = make(chan struct{})
	}
	return &Receipt{Seq: seq, Hash: hash.Hex(), Epoch: now, Events: events}, nil
}

// Events returns up to limit events with Seq > after. If there are none and wait > 0, it
// waits until one is appended, ctx ends, or wait passes.
func (l *Ledger) Events(ctx context.Context, after uint64, limit int, wait time.Duration) ([]Event, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var deadline <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	for {
		l.mu.Lock()
		closed, head, ch := l.closed, l.evSeq, l.notify
		l.mu.Unlock()
		if closed {
			return nil, fmt.Errorf("%w: ledger is closed", ErrInternal)
		}
		if head > after {
			return l.readEvents(after, limit)
		}
		if deadline == nil {
			return []Event{}, nil
		}
		select {
		case <-ch:
		case <-deadline:
			return []Event{}, nil
		case <-ctx.Done():
			return []Event{}, nil
		}
	}
}

func (l *Ledger) readEvents(after uint64, limit int) ([]Event, error) {
	if err := l.beginRead(); err != nil {
		return nil, err
	}
	defer l.readers.Done()
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: u64(bytes.Clone(pfxEvent), after+1), UpperBound: prefixEnd(pfxEvent)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := []Event{}
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		var ev Event
		if err := json.Unmarshal(it.Value(), &ev); err != nil {
			return nil, fmt.Errorf("%w: event %x: %v", ErrInternal, it.Key(), err)
		}
		out = append(out, ev)
	}
	return out, it.Error()
}

func (l *Ledger) logEntry(seq uint64) (*LogEntry, error) {
	raw, closer, err := l.db.Get(u64(bytes.Clone(pfxLog), seq))
	if err != nil {
		return nil, fmt.Errorf("%w: log entry %d: %v", ErrInternal, seq, err)
	}
	defer closer.Close()
	e, err := decodeEntry(raw)
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// Log calls fn for every log entry in order.
func (l *Ledger) Log(fn func(LogEntry) error) error {
	if err := l.beginRead(); err != nil {
		return err
	}
	defer l.readers.Done()
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: pfxLog, UpperBound: prefixEnd(pfxLog)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		e, err := decodeEntry(it.Value())
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return it.Error()
}

// StateHash returns the canonical hash of the committed state.
func (l *Ledger) StateHash() ([32]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return [32]byte{}, fmt.Errorf("%w: ledger is closed", ErrInternal)
	}
	return StateHash(l.store())
}

// Head is the ledger's position.
type Head struct {
	Epoch    abi.ChainEpoch `json:"epoch"`
	TxSeq    uint64         `json:"txSeq"`
	EventSeq uint64         `json:"eventSeq"`
}

// Head returns the current epoch and sequence numbers.
func (l *Ledger) Head() Head {
	e := l.Epoch()
	l.mu.Lock()
	defer l.mu.Unlock()
	return Head{Epoch: e, TxSeq: l.txSeq, EventSeq: l.evSeq}
}

// Replay applies a transaction log from genesis to a fresh in-memory state under cfg and beacon
// and returns that state. Every entry must be accepted again at its recorded epoch; a refusal
// means the log and the rules disagree.
func Replay(cfg Config, beacon Beacon, log []LogEntry) (*MemStore, error) {
	eng, err := NewEngine(cfg)
	if err != nil {
		return nil, err
	}
	st := NewMemStore()
	g := NewTxn(st)
	if err := putJSON(g, keyConfig, cfg); err != nil {
		return nil, err
	}
	st.Commit(g)
	for _, e := range log {
		w, _, err := eng.Apply(st, e.Tx, e.Epoch, beacon)
		if err != nil {
			return nil, fmt.Errorf("chain: replay entry %d at epoch %d: %w", e.Seq, e.Epoch, err)
		}
		st.Commit(w)
	}
	return st, nil
}

// ReplayHash replays this ledger's own log from genesis and returns the resulting state hash,
// which must equal StateHash.
func (l *Ledger) ReplayHash() ([32]byte, error) {
	var log []LogEntry
	if err := l.Log(func(e LogEntry) error { log = append(log, e); return nil }); err != nil {
		return [32]byte{}, err
	}
	st, err := Replay(l.gen.Config, l.beacon, log)
	if err != nil {
		return [32]byte{}, err
	}
	return StateHash(st)
}

// store is the committed state as a Store.
func (l *Ledger) store() Store { return readerStore{l.db} }

// readerStore is the state under pfxState of a pebble.Reader: the live database for the
// writer, a snapshot for consistent reads.
type readerStore struct{ r pebble.Reader }

func (p readerStore) Get(key []byte) ([]byte, bool, error) {
	v, closer, err := p.r.Get(append(bytes.Clone(pfxState), key...))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: read %q: %v", ErrInternal, key, err)
	}
	out := bytes.Clone(v)
	_ = closer.Close()
	return out, true, nil
}

func (p readerStore) Iterate(prefix []byte, fn func(key, value []byte) error) error {
	lo := append(bytes.Clone(pfxState), prefix...)
	it, err := p.r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key()[len(pfxState):], it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// Read calls fn with a consistent view of the committed state at the current epoch.
func (l *Ledger) Read(fn func(*View) error) error {
	now := l.Epoch()
	if err := l.beginRead(); err != nil {
		return err
	}
	defer l.readers.Done()
	snap := l.db.NewSnapshot()
	defer snap.Close()
	return fn(NewView(readerStore{snap}, l.gen.Config, now, l.beacon))
}
