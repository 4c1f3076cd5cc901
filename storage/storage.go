// Package storage is the provider's piece store: raw piece files plus a per-piece sidecar
// holding the cached upper layers of the piece's Merkle tree, indexed in pebble.
//
// Ingest streams a piece once: the bytes go to their final blob while commP and the tree layer
// are computed, with bounded memory whatever the size. A piece is acknowledged (Ingest
// returns) only after its data and sidecar are durable and its index batch is committed with
// pebble.Sync; until then it is invisible. Startup reconciles blobs against the index.
//
// Proofs read one section of the piece plus ~20 sibling nodes from the sidecar, so their cost
// does not grow with the piece. A background scrub compares sections against the layer so that
// bit rot is found before a challenge lands on it. Pieces are reference counted by data set and
// garbage collected after a grace period.
//
// On disk (default backend): <dir>/blobs/<id>.data holds a piece's raw bytes,
// <dir>/blobs/<id>.layer its sidecar (pdp.TreeTop.MarshalBinary + "WSL1" + CRC-32C),
// <dir>/tmp/ writes in progress, <dir>/index the pebble index (see index.go for its keys).
// Blob ids are random, so a piece re-stored after damage never overwrites the old copy in
// place, and a blob no index entry names is by construction an orphan.
//
// Ingest order: data and sidecar each go temp file -> fsync -> rename -> fsync(dir); then one
// index batch (piece record, GC candidate mark) is committed with pebble.Sync. GC order: index
// batch first, then blob removal. A crash between the steps leaves only orphan blobs, which
// Open removes.
//
// Memory per ingest: 4 MiB of pipeline buffers, pdp.Calc's workers (about 2 MiB per core),
// and the cached tree layer, which grows with the piece (two nodes of 32 bytes per section of
// 2^LayerHeight leaves: 1 MiB per GiB at the default layer height 11).
package storage

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage/blob"
	"github.com/warmstore/warmstore/storage/fsbackend"
)

// Errors returned by the store, wrapped with context; test with errors.Is.
var (
	// ErrNotFound: no such piece, reference or upload session.
	ErrNotFound = errors.New("storage: not found")
	// ErrExists: an upload session with that id already exists.
	ErrExists = errors.New("storage: already exists")
	// ErrMismatch: the ingested bytes do not hash to the expected piece CID.
	ErrMismatch = errors.New("storage: piece CID mismatch")
	// ErrTooLarge: the payload exceeds the store's maximum piece size.
	ErrTooLarge = errors.New("storage: piece too large")
	// ErrNoSpace: the disk (or object store quota) is full.
	ErrNoSpace = errors.New("storage: no space left")
	// ErrIO: an input/output error from the backend or the index.
	ErrIO = errors.New("storage: I/O error")
	// ErrCorrupt: stored bytes do not match their commitment (bit rot, truncation).
	ErrCorrupt = errors.New("storage: corrupt piece")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("storage: store closed")
	// ErrInvalid: a bad argument (leaf out of range, bad session id, ...).
	ErrInvalid = errors.New("storage: invalid argument")
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// Backend stores the piece and sidecar blobs. Nil means a local directory <dir>/blobs
	// (package fsbackend).
	Backend blob.Backend
	// PebbleOptions, when set, are used to open the index (tests inject vfs/errorfs here).
	// Nil means defaults suitable for a small index.
	PebbleOptions *pebble.Options
	// LayerHeight is the height of the cached tree layer kept per piece (2..12);
	// 0 means pdp.DefaultLayerHeight.
	LayerHeight uint8
	// MaxRawSize caps a piece's payload; 0 means pdp.MaxRawSize.
	MaxRawSize uint64
	// GCGrace is how long an unreferenced piece is kept before GC removes it; 0 means 24h.
	GCGrace time.Duration
	// ScrubInterval, when > 0, runs a full scrub pass in the background every interval.
	ScrubInterval time.Duration
	// ScrubBytesPerSecond limits how fast a scrub reads piece data; 0 means unlimited.
	ScrubBytesPerSecond float64
	// Now is the clock; nil means time.Now. Tests inject it to exercise GC grace and session
	// expiry without sleeping.
	Now func() time.Time
	// OnDamage is called (from the detecting goroutine) whenever a piece or sidecar is found
	// damaged. It must not block for long.
	OnDamage func(DamageEvent)
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// SkipReconcile skips reconciliation in Open (the caller runs Reconcile itself).
	SkipReconcile bool
	// QuickReconcile makes reconciliation check sidecar sizes only, not their checksums.
	// Sidecars are ~1/1000 of the data (1 MiB per GiB at layer height 11), so a full check
	// reads that much at every start; with QuickReconcile a damaged sidecar is found by the
	// scrub or by the proof that reads it (and then rebuilt) instead.
	QuickReconcile bool
}

// Store is the piece store. All methods are safe for concurrent use.
type Store struct {
	dir     string
	opts    Options
	backend blob.Backend
	db      *pebble.DB
	log     *slog.Logger
	now     func() time.Time
	layer   uint8
	maxRaw  uint64
	metrics counters

	// commitMu: ingest commits and GC removals hold it shared; Reconcile holds it exclusively
	// so that it never mistakes a blob committed a moment before its index batch for an orphan.
	commitMu sync.RWMutex
	// pieceMu serialises index changes to one piece (dedup, GC, references, repair).
	pieceMu [64]sync.Mutex
	// sessionMu serialises read-modify-write of upload sessions.
	sessionMu sync.Mutex

	startup   ReconcileReport
	closeOnce sync.Once
	closed    chan struct{}
	bg        sync.WaitGroup
}

// Open opens (creating if needed) the store in dir: the index in dir/index and, unless
// opts.Backend is set, the blobs under dir. It discards incomplete writes and reconciles blobs
// against the index (see Reconcile; the report is available from StartupReport).
func Open(dir string, opts Options) (*Store, error) {
	s := &Store{dir: dir, opts: opts, closed: make(chan struct{})}
	s.now = opts.Now
	if s.now == nil {
		s.now = time.Now
	}
	s.log = opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.layer = opts.LayerHeight
	if s.layer == 0 {
		s.layer = pdp.DefaultLayerHeight
	}
	if s.layer < 2 || s.layer > 12 {
		return nil, fmt.Errorf("storage: open: layer height %d outside 2..12: %w", s.layer, ErrInvalid)
	}
	s.maxRaw = opts.MaxRawSize
	if s.maxRaw == 0 || s.maxRaw > pdp.MaxRawSize {
		s.maxRaw = pdp.MaxRawSize
	}
	if s.opts.GCGrace == 0 {
		s.opts.GCGrace = 24 * time.Hour
	}
	s.backend = opts.Backend
	if s.backend == nil {
		b, err := fsbackend.New(dir, nil)
		if err != nil {
			return nil, fmt.Errorf("storage: open: %w", classify(err))
		}
		s.backend = b
	}
	popts := opts.PebbleOptions
	if popts == nil {
		popts = &pebble.Options{}
	}
	if popts.Logger == nil {
		popts.Logger = quietPebbleLogger{s.log}
	}
	if popts.FormatMajorVersion == 0 {
		popts.FormatMajorVersion = pebble.FormatNewest
	}
	db, err := pebble.Open(filepath.Join(dir, "index"), popts)
	if err != nil {
		return nil, fmt.Errorf("storage: open index: %w", classify(err))
	}
	s.db = db
	ctx := context.Background()
	if _, err := s.backend.AbortIncomplete(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: open: discard incomplete writes: %w", classify(err))
	}
	if !opts.SkipReconcile {
		rep, err := s.Reconcile(ctx)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("storage: open: %w", err)
		}
		s.startup = rep
	}
	if opts.ScrubInterval > 0 {
		s.bg.Add(1)
		go s.scrubLoop(opts.ScrubInterval)
	}
	return s, nil
}

// StartupReport is what reconciliation in Open found.
func (s *Store) StartupReport() ReconcileReport { return s.startup }

// Close stops background work and closes the index. Readers opened earlier stay usable until
// they are closed.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		s.bg.Wait()
		// Wait for in-flight commits so pebble is not closed under them.
		s.commitMu.Lock()
		err = s.db.Close()
		s.commitMu.Unlock()
	})
	return err
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// checkOpen fails with ErrClosed after Close; using the index after Close would panic.
func (s *Store) checkOpen(op string) error {
	if s.isClosed() {
		return fmt.Errorf("storage: %s: %w", op, ErrClosed)
	}
	return nil
}

func (s *Store) lockPiece(p pdp.PieceCID) func() {
	h := fnv.New32a()
	h.Write(p.Root[:])
	m := &s.pieceMu[h.Sum32()%uint32(len(s.pieceMu))]
	m.Lock()
	return m.Unlock
}

// classify adds ErrNoSpace or ErrIO to an error from a backend or the index, keeping the
// original in the chain.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNoSpace), errors.Is(err, ErrIO), errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded):
		return err
	case isNoSpace(err):
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	default:
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
}

// quietPebbleLogger routes pebble's chatter to slog at debug level, and fatal errors to error.
type quietPebbleLogger struct{ l *slog.Logger }

func (q quietPebbleLogger) Infof(format string, args ...any) {
	q.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (q quietPebbleLogger) Errorf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is what pebble calls when it cannot go on (e.g. its WAL cannot be written). Like
// pebble's default logger it ends the process: a restart recovers to a consistent state
// (Open reconciles), whereas continuing on a failed index could acknowledge nothing safely.
func (q quietPebbleLogger) Fatalf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	fmt.Fprintf(os.Stderr, "pebble: fatal: "+format+"\n", args...)
	os.Exit(1)
}

var _ io.Closer = (*Store)(nil)
