package ipfs

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"

	"github.com/warmstore/warmstore/storage"
)

// ErrReadOnly is returned by the write methods of the piece blockstore: blocks enter it only
// as CAR pieces that the provider stores and indexes.
var ErrReadOnly = errors.New("ipfs: the piece blockstore is read-only")

// MaxBlockSize caps a block read from a piece. Trustless gateways and bitswap refuse blocks
// over 2 MiB, and the cap keeps a corrupt index entry from allocating a huge buffer.
const MaxBlockSize = 2 << 20

// PieceBlockstore is a read-only boxo blockstore over the index and the piece store: a Get
// looks the block's multihash up, reads its bytes from the piece with ReadAt, and checks
// them against the CID before returning them, so a damaged piece never serves a wrong block.
type PieceBlockstore struct {
	x *Index
}

var _ blockstore.Blockstore = (*PieceBlockstore)(nil)

// Blockstore returns the read-only blockstore over the index. Identity CIDs are answered by
// wrapping it in blockstore.NewIdStore (NewGateway does).
func (x *Index) Blockstore() *PieceBlockstore { return &PieceBlockstore{x: x} }

func notFound(c cid.Cid) error { return format.ErrNotFound{Cid: c} }

// Has reports whether an indexed piece holds c's block.
func (b *PieceBlockstore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	_, err := b.x.Locate(c.Hash())
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// GetSize returns the block's length from the index, without reading it.
func (b *PieceBlockstore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	locs, err := b.x.Locate(c.Hash())
	if errors.Is(err, ErrNotFound) {
		return -1, notFound(c)
	}
	if err != nil {
		return -1, err
	}
	return int(locs[0].Length), nil
}

// Get reads and verifies c's block. When a piece holding it is gone or damaged, the next
// piece holding it is tried; a block whose bytes fail verification everywhere is
// ErrBlockMismatch.
func (b *PieceBlockstore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	locs, err := b.x.Locate(c.Hash())
	if errors.Is(err, ErrNotFound) {
		return nil, notFound(c)
	}
	if err != nil {
		return nil, err
	}
	var errs []error
	gone := 0
	for _, loc := range locs {
		blk, err := b.read(ctx, c, loc)
		if err == nil {
			return blk, nil
		}
		if errors.Is(err, storage.ErrNotFound) {
			gone++
		}
		errs = append(errs, err)
	}
	if gone == len(locs) {
		// Every piece holding it left the store before its index entries did (the removal
		// event is still on its way): to a client the block is simply not here.
		return nil, notFound(c)
	}
	return nil, errors.Join(errs...)
}

func (b *PieceBlockstore) read(ctx context.Context, c cid.Cid, loc Location) (blocks.Block, error) {
	if loc.Length > MaxBlockSize {
		return nil, fmt.Errorf("ipfs: block %s in piece %s is %d bytes, over the %d-byte limit", c, loc.Piece, loc.Length, MaxBlockSize)
	}
	r, err := b.x.store.OpenPiece(ctx, loc.Piece)
	if err != nil {
		return nil, fmt.Errorf("ipfs: read block %s: %w", c, err)
	}
	defer r.Close()
	data := make([]byte, loc.Length)
	// An empty block can sit at the very end of the piece, where ReadAt reports EOF even
	// for zero bytes.
	if _, err := r.ReadAt(data, int64(loc.Offset)); err != nil && len(data) > 0 {
		return nil, fmt.Errorf("ipfs: read block %s from piece %s at %d: %w", c, loc.Piece, loc.Offset, err)
	}
	if err := VerifyBlock(c, data); err != nil {
		return nil, fmt.Errorf("%w (piece %s, offset %d)", err, loc.Piece, loc.Offset)
	}
	return blocks.NewBlockWithCid(data, c)
}

// VerifyBlock checks that data hashes to c's multihash; a mismatch is ErrBlockMismatch.
func VerifyBlock(c cid.Cid, data []byte) error {
	got, err := c.Prefix().Sum(data)
	if err != nil {
		return fmt.Errorf("ipfs: verify block %s: %w", c, err)
	}
	if string(got.Hash()) != string(c.Hash()) {
		return fmt.Errorf("%w: %s", ErrBlockMismatch, c)
	}
	return nil
}

// AllKeysChan lists every indexed block once per piece holding it, as raw-codec CIDs (the
// index keeps multihashes only).
func (b *PieceBlockstore) AllKeysChan(ctx context.Context) (<-chan cid.Cid, error) {
	mhs, err := b.x.multihashes()
	if err != nil {
		return nil, err
	}
	ch := make(chan cid.Cid)
	go func() {
		defer close(ch)
		for _, mh := range mhs {
			select {
			case ch <- cid.NewCidV1(cid.Raw, mh):
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// DeleteBlock refuses: see ErrReadOnly.
func (b *PieceBlockstore) DeleteBlock(context.Context, cid.Cid) error { return ErrReadOnly }

// Put refuses: see ErrReadOnly.
func (b *PieceBlockstore) Put(context.Context, blocks.Block) error { return ErrReadOnly }

// PutMany refuses: see ErrReadOnly.
func (b *PieceBlockstore) PutMany(context.Context, []blocks.Block) error { return ErrReadOnly }
