package ipfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"

	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage"
)

// Errors of the index. Check them with errors.Is.
var (
	// ErrNotCAR means a piece marked for IPFS indexing is not a readable CAR (v1 or v2).
	ErrNotCAR = errors.New("ipfs: piece is not a CAR")
	// ErrNotFound means no indexed piece holds the block.
	ErrNotFound = errors.New("ipfs: block not found")
	// ErrBlockMismatch means bytes read for a block do not hash to its CID: a damaged piece on
	// the provider, or a gateway sending wrong bytes to a client.
	ErrBlockMismatch = errors.New("ipfs: block does not match its CID")
	// ErrClosed means the index was closed.
	ErrClosed = errors.New("ipfs: index closed")
)

// indexBatchBlocks bounds the blocks written per pebble batch while indexing, so a piece of
// millions of blocks never builds one huge batch in memory.
const indexBatchBlocks = 8192

// Key layout of the index DB. A multihash is self-delimiting, so no multihash is a prefix of
// another and a prefix scan over keyBlock‖mh finds exactly the pieces holding that block.
//
//	'b' ‖ multihash ‖ piece CID bytes           → uvarint(offset) ‖ uvarint(length)
//	'r' ‖ uvarint(len(piece)) ‖ piece ‖ multihash → ""  (reverse entries, for removal)
//	'p' ‖ piece CID bytes                         → record: the piece is fully indexed
//	'd' ‖ uvarint(len(piece)) ‖ piece ‖ be64(data set) → "" (data sets that asked for it)
const (
	keyBlock   = 'b'
	keyReverse = 'r'
	keyPiece   = 'p'
	keyDataSet = 'd'
)

// Location is where a block's bytes sit inside a stored piece.
type Location struct {
	Piece  pdp.PieceCID
	Offset uint64 // of the block's data (after the section's length and CID)
	Length uint64
}

// PieceRecord describes an indexed CAR piece.
type PieceRecord struct {
	Piece  pdp.PieceCID
	Roots  []cid.Cid // the CAR header's roots
	Blocks uint64
}

// Index maps the blocks of CAR pieces to their place in the piece store. Its pebble DB is its
// own (storage/ keeps the pieces; this package only reads them), so dropping the index loses
// nothing that re-indexing cannot rebuild.
type Index struct {
	dir   string
	db    *pebble.DB
	store *storage.Store
	log   *slog.Logger

	writeMu sync.Mutex   // serializes AddPiece/RemovePiece
	closeMu sync.RWMutex // read-held by every operation, so Close waits for them
	closed  bool
}

// IndexOptions configures OpenIndex.
type IndexOptions struct {
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// OpenIndex opens (or creates) the block index in dir over the pieces of store.
func OpenIndex(dir string, store *storage.Store, opts IndexOptions) (*Index, error) {
	if store == nil {
		return nil, errors.New("ipfs: OpenIndex needs a piece store")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{log}})
	if err != nil {
		return nil, fmt.Errorf("ipfs: open index %s: %w", dir, err)
	}
	return &Index{dir: dir, db: db, store: store, log: log}, nil
}

// Dir is the directory of the index's DB.
func (x *Index) Dir() string { return x.dir }

// Close waits for operations in flight and closes the DB; later calls fail with ErrClosed.
func (x *Index) Close() error {
	x.closeMu.Lock()
	defer x.closeMu.Unlock()
	if x.closed {
		return nil
	}
	x.closed = true
	return x.db.Close()
}

func lenPrefixed(prefix byte, b []byte) []byte {
	k := make([]byte, 0, 1+varint.MaxLenUvarint63+len(b)+8)
	k = append(k, prefix)
	k = binary.AppendUvarint(k, uint64(len(b)))
	return append(k, b...)
}

func blockKey(mh multihash.Multihash, piece []byte) []byte {
	k := make([]byte, 0, 1+len(mh)+len(piece))
	k = append(k, keyBlock)
	k = append(k, mh...)
	return append(k, piece...)
}

func dataSetKey(piece []byte, ds uint64) []byte {
	return binary.BigEndian.AppendUint64(lenPrefixed(keyDataSet, piece), ds)
}

func pieceKey(piece []byte) []byte { return append([]byte{keyPiece}, piece...) }

// prefixEnd is the first key after every key starting with p.
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

func encodeRecord(r PieceRecord) []byte {
	b := binary.AppendUvarint(nil, r.Blocks)
	b = binary.AppendUvarint(b, uint64(len(r.Roots)))
	for _, c := range r.Roots {
		cb := c.Bytes()
		b = binary.AppendUvarint(b, uint64(len(cb)))
		b = append(b, cb...)
	}
	return b
}

func decodeRecord(piece pdp.PieceCID, b []byte) (PieceRecord, error) {
	r := PieceRecord{Piece: piece}
	bad := fmt.Errorf("ipfs: index record of piece %s is malformed", piece)
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return r, bad
	}
	r.Blocks, b = n, b[k:]
	roots, k := binary.Uvarint(b)
	if k <= 0 || roots > uint64(len(b)) {
		return r, bad
	}
	b = b[k:]
	for range roots {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return r, bad
		}
		c, err := cid.Cast(b[k : k+int(l)])
		if err != nil {
			return r, bad
		}
		r.Roots = append(r.Roots, c)
		b = b[k+int(l):]
	}
	return r, nil
}

// Piece returns the record of an indexed piece; ok is false when the piece is not indexed.
func (x *Index) Piece(piece pdp.PieceCID) (rec PieceRecord, ok bool, err error) {
	if err := x.enter(); err != nil {
		return PieceRecord{}, false, err
	}
	defer x.closeMu.RUnlock()
	return x.piece(piece)
}

// enter read-locks closeMu unless the index is closed.
func (x *Index) enter() error {
	x.closeMu.RLock()
	if x.closed {
		x.closeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (x *Index) piece(piece pdp.PieceCID) (rec PieceRecord, ok bool, err error) {
	v, closer, err := x.db.Get(pieceKey(piece.CID().Bytes()))
	if errors.Is(err, pebble.ErrNotFound) {
		return PieceRecord{}, false, nil
	}
	if err != nil {
		return PieceRecord{}, false, fmt.Errorf("ipfs: read index record of %s: %w", piece, err)
	}
	defer closer.Close()
	rec, err = decodeRecord(piece, v)
	return rec, err == nil, err
}

// AddPiece records that data set dataSetID wants piece indexed and, unless it already is,
// reads the piece from the store as a CAR and indexes every block. It is idempotent. A piece
// that is not a CAR fails with ErrNotCAR and leaves nothing behind.
func (x *Index) AddPiece(ctx context.Context, piece pdp.PieceCID, dataSetID uint64) (PieceRecord, error) {
	if err := x.enter(); err != nil {
		return PieceRecord{}, err
	}
	defer x.closeMu.RUnlock()
	x.writeMu.Lock()
	defer x.writeMu.Unlock()
	pb := piece.CID().Bytes()
	rec, ok, err := x.piece(piece)
	if err != nil {
		return PieceRecord{}, err
	}
	if !ok {
		if rec, err = x.indexCAR(ctx, piece, pb); err != nil {
			return PieceRecord{}, err
		}
	}
	if err := x.db.Set(dataSetKey(pb, dataSetID), nil, pebble.Sync); err != nil {
		return PieceRecord{}, fmt.Errorf("ipfs: record data set %d for piece %s: %w", dataSetID, piece, err)
	}
	return rec, nil
}

// indexCAR walks the piece's CAR sections without reading block data and writes the block
// and reverse entries in bounded batches, then the piece record last: a crash midway leaves
// entries without a record, which the next AddPiece overwrites and RemovePiece clears.
func (x *Index) indexCAR(ctx context.Context, piece pdp.PieceCID, pb []byte) (PieceRecord, error) {
	r, err := x.store.OpenPiece(ctx, piece)
	if err != nil {
		return PieceRecord{}, fmt.Errorf("ipfs: index piece %s: %w", piece, err)
	}
	defer r.Close()
	// Some CAR writers pad to a size with zeros; a zero-length section ends the CAR there.
	br, err := carv2.NewBlockReader(r, carv2.ZeroLengthSectionAsEOF(true))
	if err != nil {
		return PieceRecord{}, fmt.Errorf("%w: piece %s: %v", ErrNotCAR, piece, err)
	}
	rec := PieceRecord{Piece: piece, Roots: br.Roots}
	batch := x.db.NewBatch()
	defer func() { batch.Close() }()
	fail := func(err error) (PieceRecord, error) {
		// Undo whatever was already committed for this piece.
		if rerr := x.dropBlocks(pb); rerr != nil {
			x.log.Warn("clean up partial IPFS index", "piece", piece.String(), "err", rerr)
		}
		return PieceRecord{}, err
	}
	var val []byte
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		md, err := br.SkipNext()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(fmt.Errorf("%w: piece %s, section %d: %v", ErrNotCAR, piece, rec.Blocks, err))
		}
		cidLen := uint64(md.Cid.ByteLen())
		dataOff := md.SourceOffset + uint64(varint.UvarintSize(cidLen+md.Size)) + cidLen
		mh := md.Cid.Hash()
		val = binary.AppendUvarint(val[:0], dataOff)
		val = binary.AppendUvarint(val, md.Size)
		if err := batch.Set(blockKey(mh, pb), val, nil); err != nil {
			return fail(err)
		}
		rk := append(lenPrefixed(keyReverse, pb), mh...)
		if err := batch.Set(rk, nil, nil); err != nil {
			return fail(err)
		}
		rec.Blocks++
		if rec.Blocks%indexBatchBlocks == 0 {
			if err := batch.Commit(pebble.NoSync); err != nil {
				return fail(fmt.Errorf("ipfs: index piece %s: %w", piece, err))
			}
			batch.Close()
			batch = x.db.NewBatch()
		}
	}
	if err := batch.Set(pieceKey(pb), encodeRecord(rec), nil); err != nil {
		return fail(err)
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return fail(fmt.Errorf("ipfs: index piece %s: %w", piece, err))
	}
	return rec, nil
}

// RemovePiece drops data set dataSetID's interest in piece; when no data set is left, the
// piece's blocks leave the index. removed reports whether the blocks were dropped.
func (x *Index) RemovePiece(piece pdp.PieceCID, dataSetID uint64) (removed bool, err error) {
	if err := x.enter(); err != nil {
		return false, err
	}
	defer x.closeMu.RUnlock()
	x.writeMu.Lock()
	defer x.writeMu.Unlock()
	pb := piece.CID().Bytes()
	if err := x.db.Delete(dataSetKey(pb, dataSetID), pebble.Sync); err != nil {
		return false, fmt.Errorf("ipfs: drop data set %d of piece %s: %w", dataSetID, piece, err)
	}
	prefix := lenPrefixed(keyDataSet, pb)
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return false, err
	}
	others := it.First()
	if err := it.Close(); err != nil {
		return false, err
	}
	if others {
		return false, nil
	}
	if err := x.dropBlocks(pb); err != nil {
		return false, fmt.Errorf("ipfs: remove piece %s from the index: %w", piece, err)
	}
	return true, nil
}

// dropBlocks deletes the piece record first (so the piece no longer counts as indexed), then
// its block entries through the reverse entries, in bounded batches.
func (x *Index) dropBlocks(pb []byte) error {
	if err := x.db.Delete(pieceKey(pb), pebble.Sync); err != nil {
		return err
	}
	prefix := lenPrefixed(keyReverse, pb)
	for {
		it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
		if err != nil {
			return err
		}
		batch := x.db.NewBatch()
		n := 0
		for ok := it.First(); ok && n < indexBatchBlocks; ok = it.Next() {
			mh := it.Key()[len(prefix):]
			batch.Delete(blockKey(mh, pb), nil)
			batch.Delete(bytes.Clone(it.Key()), nil)
			n++
		}
		if err := it.Close(); err != nil {
			batch.Close()
			return err
		}
		if n == 0 {
			batch.Close()
			return nil
		}
		err = batch.Commit(pebble.Sync)
		batch.Close()
		if err != nil {
			return err
		}
	}
}

// Locate returns where the block with multihash mh is stored, one Location per indexed
// piece holding it; none is ErrNotFound.
func (x *Index) Locate(mh multihash.Multihash) ([]Location, error) {
	if err := x.enter(); err != nil {
		return nil, err
	}
	defer x.closeMu.RUnlock()
	prefix := append([]byte{keyBlock}, mh...)
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("ipfs: locate %s: %w", mh.B58String(), err)
	}
	defer it.Close()
	var out []Location
	for ok := it.First(); ok; ok = it.Next() {
		c, err := cid.Cast(it.Key()[len(prefix):])
		if err != nil {
			return nil, fmt.Errorf("ipfs: locate %s: malformed piece in index key: %w", mh.B58String(), err)
		}
		piece, err := pdp.PieceCIDFromCID(c)
		if err != nil {
			return nil, fmt.Errorf("ipfs: locate %s: malformed piece in index key: %w", mh.B58String(), err)
		}
		v := it.Value()
		off, k1 := binary.Uvarint(v)
		length, k2 := binary.Uvarint(v[max(k1, 0):])
		if k1 <= 0 || k2 <= 0 {
			return nil, fmt.Errorf("ipfs: locate %s: malformed index value", mh.B58String())
		}
		out = append(out, Location{Piece: piece, Offset: off, Length: length})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, mh.B58String())
	}
	return out, nil
}

// quietPebble routes pebble's logs to slog.
type quietPebble struct{ log *slog.Logger }

func (q quietPebble) Infof(format string, args ...any) {}
func (q quietPebble) Errorf(format string, args ...any) {
	q.log.Error("ipfs index: " + fmt.Sprintf(format, args...))
}
func (q quietPebble) Fatalf(format string, args ...any) {
	q.log.Error("ipfs index: " + fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}

// multihashes lists the multihash of every block entry (duplicates across pieces included).
func (x *Index) multihashes() ([]multihash.Multihash, error) {
	if err := x.enter(); err != nil {
		return nil, err
	}
	defer x.closeMu.RUnlock()
	prefix := []byte{keyBlock}
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []multihash.Multihash
	for ok := it.First(); ok; ok = it.Next() {
		n, mh, err := multihash.MHFromBytes(it.Key()[1:])
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("ipfs: malformed index key %x", it.Key())
		}
		out = append(out, bytes.Clone(mh))
	}
	return out, nil
}
