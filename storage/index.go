package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/warmstore/warmstore/pdp"
)

// Index layout (all integers big-endian so that range scans sort):
//
//	p/<piece>             -> pieceRecord
//	r/<piece><dataSetID>  -> empty: data set dataSetID references the piece
//	u/<piece>             -> unix nanos when the piece became unreferenced (GC candidate)
//	d/<piece>             -> damageRecord: reconciliation or scrub found the piece damaged
//	s/<sessionID>         -> Session (JSON)
//
// <piece> is the fixed 41-byte form root(32) || height(1) || padding(8).
const (
	prefixPiece   = "p/"
	prefixRef     = "r/"
	prefixUnref   = "u/"
	prefixDamage  = "d/"
	prefixSession = "s/"
	pieceKeyLen   = 32 + 1 + 8
)

func pieceKeyBytes(p pdp.PieceCID) []byte {
	b := make([]byte, pieceKeyLen)
	copy(b, p.Root[:])
	b[32] = p.Height
	binary.BigEndian.PutUint64(b[33:], p.Padding)
	return b
}

func parsePieceKeyBytes(b []byte) (pdp.PieceCID, error) {
	if len(b) != pieceKeyLen {
		return pdp.PieceCID{}, fmt.Errorf("storage: index: piece key of %d bytes", len(b))
	}
	var p pdp.PieceCID
	copy(p.Root[:], b[:32])
	p.Height = b[32]
	p.Padding = binary.BigEndian.Uint64(b[33:])
	return p, nil
}

func key(prefix string, parts ...[]byte) []byte {
	k := []byte(prefix)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// prefixEnd is the smallest key greater than every key starting with prefix.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// pieceRecord is the index entry of a stored piece.
type pieceRecord struct {
	Created     time.Time
	LayerHeight uint8  // effective layer height of the sidecar (min(requested, piece height))
	Sections    uint64 // section roots that cover data
	DataBlob    string // blob holding the raw bytes
	LayerBlob   string // blob holding the tree-layer sidecar
	LayerSize   int64  // sidecar size including its checksum trailer
}

const pieceRecordVersion = 1

func (r *pieceRecord) marshal() []byte {
	b := []byte{pieceRecordVersion}
	b = binary.BigEndian.AppendUint64(b, uint64(r.Created.UnixNano()))
	b = append(b, r.LayerHeight)
	b = binary.BigEndian.AppendUint64(b, r.Sections)
	b = binary.BigEndian.AppendUint64(b, uint64(r.LayerSize))
	b = binary.AppendUvarint(b, uint64(len(r.DataBlob)))
	b = append(b, r.DataBlob...)
	b = binary.AppendUvarint(b, uint64(len(r.LayerBlob)))
	b = append(b, r.LayerBlob...)
	return b
}

var errBadRecord = errors.New("storage: index: malformed piece record")

func (r *pieceRecord) unmarshal(b []byte) error {
	if len(b) < 1+8+1+8+8 || b[0] != pieceRecordVersion {
		return errBadRecord
	}
	r.Created = time.Unix(0, int64(binary.BigEndian.Uint64(b[1:])))
	r.LayerHeight = b[9]
	r.Sections = binary.BigEndian.Uint64(b[10:])
	r.LayerSize = int64(binary.BigEndian.Uint64(b[18:]))
	rest := b[26:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(rest)
		// Canonical lengths only, so that one record has one encoding.
		if k <= 0 || k != len(binary.AppendUvarint(nil, n)) || n > uint64(len(rest)-k) {
			return "", false
		}
		s := string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
		return s, true
	}
	var ok1, ok2 bool
	r.DataBlob, ok1 = str()
	r.LayerBlob, ok2 = str()
	if !ok1 || !ok2 || len(rest) != 0 {
		return errBadRecord
	}
	return nil
}

// getRecord loads the index entry of p, or ErrNotFound.
func (s *Store) getRecord(p pdp.PieceCID) (pieceRecord, error) {
	var rec pieceRecord
	v, closer, err := s.db.Get(key(prefixPiece, pieceKeyBytes(p)))
	if errors.Is(err, pebble.ErrNotFound) {
		return rec, fmt.Errorf("piece %v: %w", p, ErrNotFound)
	}
	if err != nil {
		return rec, fmt.Errorf("piece %v: read index: %w", p, classify(err))
	}
	defer closer.Close()
	if err := rec.unmarshal(v); err != nil {
		return rec, fmt.Errorf("piece %v: %w", p, err)
	}
	return rec, nil
}

// has reports whether k exists.
func (s *Store) has(k []byte) (bool, error) {
	_, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, classify(err)
	}
	closer.Close()
	return true, nil
}

// scan calls fn for every key under prefix, in order. The key and value are valid only during
// the call.
func (s *Store) scan(prefix []byte, fn func(k, v []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return classify(err)
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return classify(err)
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return classify(err)
	}
	return classify(it.Close())
}

// damageRecord is kept under d/<piece> while a piece is known damaged.
type damageRecord struct {
	Time   time.Time
	Kind   DamageKind
	Detail string
}

func (d *damageRecord) marshal() []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(d.Time.UnixNano()))
	b = append(b, byte(d.Kind))
	return append(b, d.Detail...)
}

func (d *damageRecord) unmarshal(b []byte) error {
	if len(b) < 9 {
		return errors.New("storage: index: malformed damage record")
	}
	d.Time = time.Unix(0, int64(binary.BigEndian.Uint64(b)))
	d.Kind = DamageKind(b[8])
	d.Detail = string(b[9:])
	return nil
}
