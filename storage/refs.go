package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/warmstore/warmstore/pdp"
)

// syncWrite is used for every index batch: pebble loses unsynced writes even on a plain
// process crash (reference/go-libraries.md §4).
var syncWrite = pebble.Sync

var errStop = errors.New("stop")

func (s *Store) hasRefs(pk []byte) (bool, error) {
	found := false
	err := s.scan(key(prefixRef, pk), func(k, v []byte) error {
		found = true
		return errStop
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return found, err
}

// Refs lists the data sets that reference piece.
func (s *Store) Refs(piece pdp.PieceCID) ([]uint64, error) {
	if err := s.checkOpen("refs"); err != nil {
		return nil, err
	}
	var sets []uint64
	prefix := key(prefixRef, pieceKeyBytes(piece))
	err := s.scan(prefix, func(k, v []byte) error {
		sets = append(sets, binary.BigEndian.Uint64(k[len(prefix):]))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: refs of %v: %w", piece, err)
	}
	return sets, nil
}

// AddRef records that data set dataSetID holds piece; a referenced piece is never collected.
// Adding an existing reference is a no-op. The piece must be stored (ErrNotFound otherwise).
func (s *Store) AddRef(piece pdp.PieceCID, dataSetID uint64) error {
	s.commitMu.RLock()
	defer s.commitMu.RUnlock()
	if s.isClosed() {
		return fmt.Errorf("storage: add ref: %w", ErrClosed)
	}
	unlock := s.lockPiece(piece)
	defer unlock()
	if _, err := s.getRecord(piece); err != nil {
		return fmt.Errorf("storage: add ref %d: %w", dataSetID, err)
	}
	pk := pieceKeyBytes(piece)
	b := s.db.NewBatch()
	defer b.Close()
	b.Set(key(prefixRef, pk, u64(dataSetID)), nil, nil)
	b.Delete(key(prefixUnref, pk), nil)
	if err := b.Commit(syncWrite); err != nil {
		return fmt.Errorf("storage: add ref %v/%d: %w", piece, dataSetID, classify(err))
	}
	return nil
}

// RemoveRef drops data set dataSetID's reference to piece. When no reference is left the
// piece becomes a GC candidate; GC removes it once Options.GCGrace has passed.
func (s *Store) RemoveRef(piece pdp.PieceCID, dataSetID uint64) error {
	s.commitMu.RLock()
	defer s.commitMu.RUnlock()
	if s.isClosed() {
		return fmt.Errorf("storage: remove ref: %w", ErrClosed)
	}
	unlock := s.lockPiece(piece)
	defer unlock()
	pk := pieceKeyBytes(piece)
	rk := key(prefixRef, pk, u64(dataSetID))
	ok, err := s.has(rk)
	if err != nil {
		return fmt.Errorf("storage: remove ref %v/%d: %w", piece, dataSetID, err)
	}
	if !ok {
		return fmt.Errorf("storage: remove ref: data set %d does not reference %v: %w", dataSetID, piece, ErrNotFound)
	}
	b := s.db.NewIndexedBatch()
	defer b.Close()
	b.Delete(rk, nil)
	remaining := false
	it, err := b.NewIter(&pebble.IterOptions{LowerBound: key(prefixRef, pk), UpperBound: prefixEnd(key(prefixRef, pk))})
	if err != nil {
		return fmt.Errorf("storage: remove ref: %w", classify(err))
	}
	remaining = it.First()
	if err := it.Close(); err != nil {
		return fmt.Errorf("storage: remove ref: %w", classify(err))
	}
	if !remaining {
		b.Set(key(prefixUnref, pk), u64(uint64(s.now().UnixNano())), nil)
	}
	if err := b.Commit(syncWrite); err != nil {
		return fmt.Errorf("storage: remove ref %v/%d: %w", piece, dataSetID, classify(err))
	}
	return nil
}

// GCReport says what a GC pass removed.
type GCReport struct {
	Removed      []pdp.PieceCID
	RemovedBytes uint64
}

// GC removes every piece that has had no reference for at least Options.GCGrace before now.
// The index entry goes first (one synced batch), then the blobs; a crash in between leaves
// orphan blobs that reconciliation removes. It returns what was removed and the first error
// met (it keeps going past per-piece errors).
func (s *Store) GC(ctx context.Context, now time.Time) (GCReport, error) {
	if err := s.checkOpen("gc"); err != nil {
		return GCReport{}, err
	}
	var rep GCReport
	cutoff := now.Add(-s.opts.GCGrace)
	var due []pdp.PieceCID
	err := s.scan([]byte(prefixUnref), func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("storage: gc: malformed unreferenced-since entry")
		}
		since := time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		if since.After(cutoff) {
			return nil
		}
		p, err := parsePieceKeyBytes(k[len(prefixUnref):])
		if err != nil {
			return err
		}
		due = append(due, p)
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("storage: gc: %w", err)
	}
	var firstErr error
	for _, p := range due {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		removed, err := s.collect(p, cutoff)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if removed {
			rep.Removed = append(rep.Removed, p)
			rep.RemovedBytes += p.RawSize()
		}
	}
	return rep, firstErr
}

// collect removes one piece if it is still unreferenced since before cutoff.
func (s *Store) collect(p pdp.PieceCID, cutoff time.Time) (bool, error) {
	s.commitMu.RLock()
	defer s.commitMu.RUnlock()
	if s.isClosed() {
		return false, fmt.Errorf("storage: gc: %w", ErrClosed)
	}
	unlock := s.lockPiece(p)
	defer unlock()
	pk := pieceKeyBytes(p)
	// Re-check under the piece lock: a reference may have been added since the scan.
	v, closer, err := s.db.Get(key(prefixUnref, pk))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage: gc %v: %w", p, classify(err))
	}
	since := time.Unix(0, int64(binary.BigEndian.Uint64(v)))
	closer.Close()
	if since.After(cutoff) {
		return false, nil
	}
	if referenced, err := s.hasRefs(pk); err != nil || referenced {
		return false, err
	}
	rec, recErr := s.getRecord(p)
	if recErr != nil && !errors.Is(recErr, ErrNotFound) {
		return false, fmt.Errorf("storage: gc: %w", recErr)
	}
	b := s.db.NewBatch()
	defer b.Close()
	b.Delete(key(prefixPiece, pk), nil)
	b.Delete(key(prefixUnref, pk), nil)
	b.Delete(key(prefixDamage, pk), nil)
	if err := b.Commit(syncWrite); err != nil {
		return false, fmt.Errorf("storage: gc %v: index: %w", p, classify(err))
	}
	if recErr == nil {
		// The piece is gone from the index; a blob not removed now is an orphan for
		// reconciliation.
		s.removeBlobs(rec.DataBlob, rec.LayerBlob)
	}
	s.metrics.gcRemovedPieces.Add(1)
	s.metrics.gcRemovedBytes.Add(p.RawSize())
	return true, nil
}
