package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage/blob"
	"github.com/warmstore/warmstore/storage/fsbackend"
)

// The ingest pipeline reads the source into a small ring of buffers; each filled buffer goes
// both to a writer goroutine (blob) and to a hasher goroutine (pdp.Calc) and returns to the
// ring when both are done. Reading, writing and hashing overlap, and memory per ingest is
// ingestBuffers*ingestChunk whatever the piece size.
const (
	ingestChunk   = 1 << 20
	ingestBuffers = 4
)

// PieceInfo describes a stored piece.
type PieceInfo struct {
	Piece       pdp.PieceCID
	RawSize     uint64 // payload bytes, the size of the piece file
	PaddedSize  uint64 // size of the padded tree
	LayerHeight uint8  // height of the cached tree layer in the sidecar
	Created     time.Time
	// Refs is the number of data sets referencing the piece (filled by Stat).
	Refs int
	// Deduplicated is set by Ingest when the piece was already stored; nothing new was kept.
	Deduplicated bool
	// Damage is set by Stat when reconciliation or the scrub found the piece damaged.
	Damage *Damage
}

// Damage is the last damage found on a piece.
type Damage struct {
	Kind   DamageKind
	Time   time.Time
	Detail string
}

func newBlobID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func dataBlobName(id string) string  { return id + ".data" }
func layerBlobName(id string) string { return id + ".layer" }

type ingestChunkBuf struct {
	buf  []byte
	n    int
	refs atomic.Int32
}

// Ingest stores the payload read from r (until EOF) as a piece. It returns once the piece is
// durable and indexed; on any error nothing of it is kept or visible. When expected is not nil
// and the bytes do not hash to it, Ingest fails with ErrMismatch. Storing a piece that is
// already stored keeps one copy and reports Deduplicated.
//
// Errors: ErrMismatch, ErrTooLarge, ErrNoSpace, ErrIO, ErrClosed, context errors, or the
// source's read error.
func (s *Store) Ingest(ctx context.Context, r io.Reader, expected *pdp.PieceCID) (info PieceInfo, err error) {
	if s.isClosed() {
		return info, fmt.Errorf("storage: ingest: %w", ErrClosed)
	}
	defer func() {
		if err != nil {
			s.metrics.ingestFailures.Add(1)
		}
	}()
	limit := s.maxRaw
	if expected != nil {
		if expected.RawSize() > s.maxRaw {
			return info, fmt.Errorf("storage: ingest: expected piece %v has %d raw bytes, above the limit %d: %w",
				*expected, expected.RawSize(), s.maxRaw, ErrTooLarge)
		}
		limit = expected.RawSize()
	}
	id := newBlobID()
	w, err := s.backend.Create(ctx, dataBlobName(id))
	if err != nil {
		return info, fmt.Errorf("storage: ingest: create piece file: %w", classify(err))
	}
	// Abort after a successful Commit is a no-op, so this covers every failure path.
	defer w.Abort()

	calc := pdp.NewCalc(s.layer)
	defer calc.Reset()
	n, err := s.stream(ctx, r, w, calc, limit)
	if err != nil {
		if errors.Is(err, errOverLimit) {
			if expected != nil {
				s.metrics.mismatchRejects.Add(1)
				return info, fmt.Errorf("storage: ingest: payload longer than the %d bytes of expected piece %v: %w",
					limit, *expected, ErrMismatch)
			}
			return info, fmt.Errorf("storage: ingest: payload exceeds %d bytes: %w", limit, ErrTooLarge)
		}
		return info, fmt.Errorf("storage: ingest: %w", err)
	}
	c, err := calc.Finish()
	if err != nil {
		return info, fmt.Errorf("storage: ingest: commP of %d bytes: %w", n, err)
	}
	if c.Top == nil {
		return info, fmt.Errorf("storage: ingest: commP returned no tree layer: %w", ErrInvalid)
	}
	if expected != nil && c.Piece != *expected {
		s.metrics.mismatchRejects.Add(1)
		return info, fmt.Errorf("storage: ingest: bytes hash to %v, expected %v: %w", c.Piece, *expected, ErrMismatch)
	}
	return s.commitPiece(ctx, id, w, c.Piece, c.Top)
}

var errOverLimit = errors.New("payload over limit")

// stream copies r into w and calc through the bounded pipeline and returns the bytes read.
func (s *Store) stream(ctx context.Context, r io.Reader, w blob.Writer, calc *pdp.Calc, limit uint64) (uint64, error) {
	pool := make(chan *ingestChunkBuf, ingestBuffers)
	for range ingestBuffers {
		// Aligned so that a direct-I/O backend writes them without copying.
		pool <- &ingestChunkBuf{buf: fsbackend.AlignedBuffer(ingestChunk)}
	}
	release := func(c *ingestChunkBuf) {
		if c.refs.Add(-1) == 0 {
			pool <- c
		}
	}
	writeQ := make(chan *ingestChunkBuf, ingestBuffers)
	hashQ := make(chan *ingestChunkBuf, ingestBuffers)
	var (
		failed     atomic.Bool
		werr, herr error
		wg         sync.WaitGroup
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for c := range writeQ {
			if werr == nil {
				if _, err := w.Write(c.buf[:c.n]); err != nil {
					werr = fmt.Errorf("write piece file: %w", classify(err))
					failed.Store(true)
				}
			}
			release(c)
		}
	}()
	go func() {
		defer wg.Done()
		for c := range hashQ {
			if herr == nil {
				if _, err := calc.Write(c.buf[:c.n]); err != nil {
					herr = fmt.Errorf("commP: %w", err)
					failed.Store(true)
				}
			}
			release(c)
		}
	}()

	var total uint64
	var rerr error
loop:
	for !failed.Load() {
		var c *ingestChunkBuf
		select {
		case c = <-pool:
		case <-ctx.Done():
			rerr = ctx.Err()
			break loop
		}
		n, err := io.ReadFull(r, c.buf)
		if n > 0 {
			total += uint64(n)
			if total > limit {
				pool <- c
				rerr = errOverLimit
				break
			}
			c.n = n
			c.refs.Store(2)
			writeQ <- c
			hashQ <- c
		} else {
			pool <- c
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			break loop
		case err != nil:
			rerr = fmt.Errorf("read source after %d bytes: %w", total, err)
			break loop
		}
	}
	close(writeQ)
	close(hashQ)
	wg.Wait()
	switch {
	case werr != nil:
		return total, werr
	case herr != nil:
		return total, herr
	}
	return total, rerr
}

// commitPiece makes a fully written piece durable and visible: sidecar blob, data blob, then
// one synced index batch. Before the batch commits, a crash leaves only orphan blobs, which
// reconciliation removes.
func (s *Store) commitPiece(ctx context.Context, id string, w blob.Writer, p pdp.PieceCID, top *pdp.TreeTop) (PieceInfo, error) {
	side, err := encodeSidecar(top)
	if err != nil {
		return PieceInfo{}, fmt.Errorf("storage: ingest %v: %w", p, err)
	}
	s.commitMu.RLock()
	defer s.commitMu.RUnlock()
	if s.isClosed() {
		return PieceInfo{}, fmt.Errorf("storage: ingest %v: %w", p, ErrClosed)
	}
	unlock := s.lockPiece(p)
	defer unlock()

	pk := pieceKeyBytes(p)
	existing, err := s.getRecord(p)
	var replacing *pieceRecord
	switch {
	case err == nil:
		damaged, err := s.has(key(prefixDamage, pk))
		if err != nil {
			return PieceInfo{}, fmt.Errorf("storage: ingest %v: %w", p, err)
		}
		if !damaged {
			w.Abort()
			s.metrics.dedupedPieces.Add(1)
			info := s.infoFromRecord(p, existing)
			info.Deduplicated = true
			return info, nil
		}
		// A damaged copy is replaced by this fresh one; its references are kept.
		replacing = &existing
	case !errors.Is(err, ErrNotFound):
		return PieceInfo{}, fmt.Errorf("storage: ingest: %w", err)
	}

	layerName := layerBlobName(id)
	if err := s.writeBlob(ctx, layerName, side.body, side.trailer[:]); err != nil {
		return PieceInfo{}, fmt.Errorf("storage: ingest %v: sidecar: %w", p, err)
	}
	if err := w.Commit(); err != nil {
		// Commit may have renamed the data blob before failing at the directory sync.
		s.removeBlobs(layerName, dataBlobName(id))
		return PieceInfo{}, fmt.Errorf("storage: ingest %v: commit piece file: %w", p, classify(err))
	}
	rec := pieceRecord{
		Created:     s.now(),
		LayerHeight: top.LayerHeight,
		Sections:    top.Sections(),
		DataBlob:    dataBlobName(id),
		LayerBlob:   layerName,
		LayerSize:   side.size(),
	}
	b := s.db.NewBatch()
	defer b.Close()
	b.Set(key(prefixPiece, pk), rec.marshal(), nil)
	b.Delete(key(prefixDamage, pk), nil)
	referenced, err := s.hasRefs(pk)
	if err != nil {
		s.removeBlobs(rec.DataBlob, rec.LayerBlob)
		return PieceInfo{}, fmt.Errorf("storage: ingest %v: %w", p, err)
	}
	if !referenced {
		b.Set(key(prefixUnref, pk), u64(uint64(rec.Created.UnixNano())), nil)
	}
	if err := b.Commit(syncWrite); err != nil {
		s.removeBlobs(rec.DataBlob, rec.LayerBlob)
		return PieceInfo{}, fmt.Errorf("storage: ingest %v: index: %w", p, classify(err))
	}
	if replacing != nil {
		s.removeBlobs(replacing.DataBlob, replacing.LayerBlob)
	}
	s.metrics.ingestedPieces.Add(1)
	s.metrics.ingestedBytes.Add(p.RawSize())
	return s.infoFromRecord(p, rec), nil
}

// writeBlob stores b durably as the blob name.
func (s *Store) writeBlob(ctx context.Context, name string, parts ...[]byte) error {
	w, err := s.backend.Create(ctx, name)
	if err != nil {
		return classify(err)
	}
	for _, b := range parts {
		if _, err := w.Write(b); err != nil {
			w.Abort()
			return classify(err)
		}
	}
	if err := w.Commit(); err != nil {
		// Commit may have renamed the blob before failing (e.g. at the directory sync).
		s.removeBlobs(name)
		return classify(err)
	}
	return nil
}

// removeBlobs deletes blobs best-effort: one that cannot be removed now is an orphan that
// reconciliation removes later.
func (s *Store) removeBlobs(names ...string) {
	for _, n := range names {
		if err := s.backend.Remove(context.Background(), n); err != nil && !errors.Is(err, blob.ErrNotExist) {
			s.log.Warn("storage: could not remove blob; reconciliation will", "blob", n, "err", err)
		}
	}
}

func (s *Store) infoFromRecord(p pdp.PieceCID, rec pieceRecord) PieceInfo {
	return PieceInfo{
		Piece:       p,
		RawSize:     p.RawSize(),
		PaddedSize:  p.PaddedSize(),
		LayerHeight: rec.LayerHeight,
		Created:     rec.Created,
	}
}
