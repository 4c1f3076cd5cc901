package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage/blob"
)

func isNotExist(err error) bool { return errors.Is(err, blob.ErrNotExist) }

// Has reports whether piece is stored and not known to be damaged, i.e. retrievable and
// provable.
func (s *Store) Has(piece pdp.PieceCID) (bool, error) {
	if err := s.checkOpen("has"); err != nil {
		return false, err
	}
	pk := pieceKeyBytes(piece)
	ok, err := s.has(key(prefixPiece, pk))
	if err != nil || !ok {
		return false, wrapErr("has", err)
	}
	d, err := s.damage(pk)
	if err != nil {
		return false, wrapErr("has", err)
	}
	return d == nil || d.Kind == DamageLayer, nil
}

func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("storage: %s: %w", op, err)
}

func (s *Store) damage(pk []byte) (*Damage, error) {
	v, closer, err := s.db.Get(key(prefixDamage, pk))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, classify(err)
	}
	defer closer.Close()
	var d damageRecord
	if err := d.unmarshal(v); err != nil {
		return nil, err
	}
	return &Damage{Kind: d.Kind, Time: d.Time, Detail: d.Detail}, nil
}

// servableRecord loads piece's index entry for a read or a proof: ErrNotFound when it is not
// stored, ErrCorrupt when its data is known damaged (a damaged sidecar is rebuilt on use, so
// it does not stop either).
func (s *Store) servableRecord(op string, piece pdp.PieceCID) (pieceRecord, error) {
	rec, err := s.getRecord(piece)
	if err != nil {
		return rec, wrapErr(op, err)
	}
	if d, err := s.damage(pieceKeyBytes(piece)); err != nil {
		return rec, wrapErr(op, err)
	} else if d != nil && d.Kind != DamageLayer {
		return rec, fmt.Errorf("storage: %s %v: %s damage found %s (%s): %w",
			op, piece, d.Kind, d.Time.UTC().Format(time.RFC3339), d.Detail, ErrCorrupt)
	}
	return rec, nil
}

// Stat describes a stored piece (ErrNotFound if it is not stored).
func (s *Store) Stat(piece pdp.PieceCID) (PieceInfo, error) {
	if err := s.checkOpen("stat"); err != nil {
		return PieceInfo{}, err
	}
	rec, err := s.getRecord(piece)
	if err != nil {
		return PieceInfo{}, wrapErr("stat", err)
	}
	info := s.infoFromRecord(piece, rec)
	refs, err := s.Refs(piece)
	if err != nil {
		return PieceInfo{}, err
	}
	info.Refs = len(refs)
	if info.Damage, err = s.damage(pieceKeyBytes(piece)); err != nil {
		return PieceInfo{}, wrapErr("stat", err)
	}
	return info, nil
}

// Pieces calls fn for every stored piece, in index order, until fn returns an error.
func (s *Store) Pieces(fn func(PieceInfo) error) error {
	if err := s.checkOpen("pieces"); err != nil {
		return err
	}
	return s.scan([]byte(prefixPiece), func(k, v []byte) error {
		p, err := parsePieceKeyBytes(k[len(prefixPiece):])
		if err != nil {
			return err
		}
		var rec pieceRecord
		if err := rec.unmarshal(v); err != nil {
			return err
		}
		return fn(s.infoFromRecord(p, rec))
	})
}

// PieceReader reads a piece's raw bytes. It implements io.ReadSeekCloser and io.ReaderAt and
// never buffers more than the caller's slice, so http.ServeContent can serve ranges of pieces
// of any size.
type PieceReader struct {
	*io.SectionReader
	blob  blob.Reader
	piece pdp.PieceCID
}

// Close releases the underlying blob.
func (r *PieceReader) Close() error { return r.blob.Close() }

// Size is the piece's raw size.
func (r *PieceReader) Size() int64 { return r.SectionReader.Size() }

// Piece is the piece being read.
func (r *PieceReader) Piece() pdp.PieceCID { return r.piece }

// OpenPiece opens piece for reading. It fails with ErrNotFound when the piece is not stored and
// with ErrCorrupt when it is known damaged or its file is missing or has the wrong size (which
// is then recorded as damage, as a proof would).
func (s *Store) OpenPiece(ctx context.Context, piece pdp.PieceCID) (*PieceReader, error) {
	if err := s.checkOpen("open piece"); err != nil {
		return nil, err
	}
	rec, err := s.servableRecord("open piece", piece)
	if err != nil {
		return nil, err
	}
	// A missing or wrong-sized file is recorded as damage here as in proofs, so that Has and
	// Stat stop reporting a piece that cannot be served.
	b, err := s.openData(ctx, piece, rec)
	if err != nil {
		return nil, fmt.Errorf("storage: open piece %v: %w", piece, err)
	}
	s.metrics.readersOpened.Add(1)
	return &PieceReader{SectionReader: io.NewSectionReader(b, 0, b.Size()), blob: b, piece: piece}, nil
}
