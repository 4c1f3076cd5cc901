package storage

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage/blob"
)

// ProveLeaves builds the proof of each leaf of piece. Per leaf it reads one section of the
// piece file and the sibling nodes above the cached layer from the sidecar, so the cost does
// not grow with the piece. Every proof is checked against the piece root before it is
// returned: damaged data is reported (ErrCorrupt, a DamageData event), never proven. A damaged
// sidecar is rebuilt from the data and the proof retried.
func (s *Store) ProveLeaves(ctx context.Context, piece pdp.PieceCID, leaves []uint64) ([]pdp.Proof, error) {
	if err := s.checkOpen("prove"); err != nil {
		return nil, err
	}
	for _, leaf := range leaves {
		if piece.Height >= 64 || leaf >= uint64(1)<<piece.Height {
			return nil, fmt.Errorf("storage: prove %v: leaf %d outside a tree of height %d: %w", piece, leaf, piece.Height, ErrInvalid)
		}
	}
	for attempt := 0; ; attempt++ {
		proofs, layerBad, err := s.proveOnce(ctx, piece, leaves)
		if !layerBad || attempt > 0 {
			return proofs, err
		}
		if rerr := s.repairLayer(ctx, piece); rerr != nil {
			return nil, fmt.Errorf("storage: prove %v: %w (repairing the sidecar: %w)", piece, err, rerr)
		}
	}
}

// proveOnce returns layerBad when the failure is the sidecar's, so the caller can rebuild it.
func (s *Store) proveOnce(ctx context.Context, piece pdp.PieceCID, leaves []uint64) (proofs []pdp.Proof, layerBad bool, err error) {
	rec, err := s.servableRecord("prove", piece)
	if err != nil {
		return nil, false, err
	}
	data, err := s.openData(ctx, piece, rec)
	if err != nil {
		return nil, false, fmt.Errorf("storage: prove %v: %w", piece, err)
	}
	defer data.Close()
	layer, err := s.backend.Open(ctx, rec.LayerBlob)
	if err != nil {
		if isNotExist(err) {
			if !s.markDamaged(piece, rec, DamageLayer, -1, "sidecar missing") {
				return nil, false, changedErr("prove", piece)
			}
			return nil, true, fmt.Errorf("storage: prove %v: sidecar missing: %w", piece, ErrCorrupt)
		}
		return nil, false, fmt.Errorf("storage: prove %v: %w", piece, classify(err))
	}
	defer layer.Close()
	nodes := &sidecarNodes{r: layer, piece: piece, layerHeight: rec.LayerHeight, sections: rec.Sections}
	buf := make([]byte, pdp.SectionRawSize(rec.LayerHeight))
	var dataRead uint64
	defer func() {
		s.metrics.proofBytesRead.Add(dataRead + nodes.bytesRead)
	}()
	proofs = make([]pdp.Proof, 0, len(leaves))
	for _, leaf := range leaves {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		section := leaf >> rec.LayerHeight
		off, n := pdp.SectionRange(piece, rec.LayerHeight, section)
		if n > uint64(len(buf)) {
			return nil, false, fmt.Errorf("storage: prove %v: section of %d bytes exceeds %d: %w", piece, n, len(buf), ErrInvalid)
		}
		if _, err := data.ReadAt(buf[:n], int64(off)); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
			return nil, false, fmt.Errorf("storage: prove %v: read section %d: %w", piece, section, classify(err))
		}
		dataRead += n
		pr, err := pdp.ProveLeaf(piece, nodes, rec.LayerHeight, buf[:n], leaf)
		if errors.Is(err, pdp.ErrSectionMismatch) {
			// Either the data or the sidecar is wrong; the sidecar checksum tells which, and
			// a section that matches its cached root puts the fault in the upper levels.
			if verr := verifySidecar(layer); verr != nil {
				if !s.markDamaged(piece, rec, DamageLayer, int64(section), verr.Error()) {
					return nil, false, changedErr("prove", piece)
				}
				return nil, true, fmt.Errorf("storage: prove %v: %w", piece, verr)
			}
			lh := min(rec.LayerHeight, piece.Height)
			if cached, cerr := nodes.TopNode(lh, section); cerr == nil && cached == pdp.SectionRoot(buf[:n], lh) {
				if !s.markDamaged(piece, rec, DamageLayer, int64(section), "cached upper tree does not lead to the root") {
					return nil, false, changedErr("prove", piece)
				}
				return nil, true, fmt.Errorf("storage: prove %v leaf %d: %w (%w)", piece, leaf, ErrCorrupt, err)
			}
			if !s.markDamaged(piece, rec, DamageData, int64(section), "section does not hash to its cached root") {
				return nil, false, changedErr("prove", piece)
			}
			return nil, false, fmt.Errorf("storage: prove %v leaf %d: section %d: %w (%w)", piece, leaf, section, ErrCorrupt, err)
		}
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				if !s.markDamaged(piece, rec, DamageLayer, int64(section), err.Error()) {
					return nil, false, changedErr("prove", piece)
				}
				return nil, true, fmt.Errorf("storage: prove %v: %w", piece, err)
			}
			return nil, false, fmt.Errorf("storage: prove %v leaf %d: %w", piece, leaf, err)
		}
		if err := pdp.VerifyProof(piece.Root, piece.Height, leaf, pr); err != nil {
			// The section matched the sidecar, so the sidecar's upper levels are wrong.
			if !s.markDamaged(piece, rec, DamageLayer, int64(section), "proof does not verify against the piece root: "+err.Error()) {
				return nil, false, changedErr("prove", piece)
			}
			return nil, true, fmt.Errorf("storage: prove %v leaf %d: %w: %w", piece, leaf, ErrCorrupt, err)
		}
		proofs = append(proofs, pr)
	}
	s.metrics.proofsServed.Add(uint64(len(proofs)))
	return proofs, false, nil
}

// changedErr reports that the piece was collected or replaced while an operation was reading it.
func changedErr(op string, piece pdp.PieceCID) error {
	return fmt.Errorf("storage: %s %v: %w", op, piece, errChanged)
}

// openData opens the data blob of the copy of piece described by rec and checks its size. A
// missing or wrongly sized file is recorded as damage and reported as ErrCorrupt, or as
// ErrNotFound when that copy was collected or replaced meanwhile. On success the caller owns
// the reader.
func (s *Store) openData(ctx context.Context, piece pdp.PieceCID, rec pieceRecord) (blob.Reader, error) {
	data, err := s.backend.Open(ctx, rec.DataBlob)
	if err != nil {
		if !isNotExist(err) {
			return nil, classify(err)
		}
		if !s.markDamaged(piece, rec, DamageMissing, -1, "piece file missing") {
			return nil, errChanged
		}
		return nil, fmt.Errorf("piece file missing: %w", ErrCorrupt)
	}
	if uint64(data.Size()) != piece.RawSize() {
		detail := fmt.Sprintf("piece file has %d bytes, want %d", data.Size(), piece.RawSize())
		data.Close()
		if !s.markDamaged(piece, rec, DamageData, -1, detail) {
			return nil, errChanged
		}
		return nil, fmt.Errorf("%s: %w", detail, ErrCorrupt)
	}
	return data, nil
}

var errChanged = fmt.Errorf("collected or replaced while being read: %w", ErrNotFound)

// markDamaged records damage to the copy of piece described by rec, counts it and raises the
// event. It returns false, recording nothing, when that copy is no longer the indexed one (it
// was collected or replaced meanwhile). Damage of the same kind already recorded is not
// raised again. A failure to write the record is logged: the caller is already failing.
func (s *Store) markDamaged(piece pdp.PieceCID, rec pieceRecord, kind DamageKind, section int64, detail string) bool {
	s.commitMu.RLock()
	defer s.commitMu.RUnlock()
	if s.isClosed() {
		return true
	}
	unlock := s.lockPiece(piece)
	cur, err := s.getRecord(piece)
	if err != nil || cur.DataBlob != rec.DataBlob {
		unlock()
		return false
	}
	pk := pieceKeyBytes(piece)
	if d, err := s.damage(pk); err == nil && d != nil && d.Kind == kind {
		unlock()
		return true
	}
	now := s.now()
	d := damageRecord{Time: now, Kind: kind, Detail: detail}
	if err := s.db.Set(key(prefixDamage, pk), d.marshal(), syncWrite); err != nil {
		s.log.Error("storage: could not record damage", "piece", piece, "err", err)
	}
	unlock()
	s.metrics.damagedPieces.Add(1)
	s.log.Warn("storage: damaged piece", "piece", piece, "kind", kind.String(), "section", section, "detail", detail)
	if s.opts.OnDamage != nil {
		s.opts.OnDamage(DamageEvent{Piece: piece, Kind: kind, Section: section, Detail: detail, Time: now})
	}
	return true
}

// RepairLayer rebuilds piece's sidecar from its data. It reads the whole piece once; if the
// data no longer hashes to the piece CID the piece is marked damaged and ErrCorrupt returned.
func (s *Store) RepairLayer(ctx context.Context, piece pdp.PieceCID) error {
	return s.repairLayer(ctx, piece)
}

func (s *Store) repairLayer(ctx context.Context, piece pdp.PieceCID) error {
	rec, err := s.getRecord(piece)
	if err != nil {
		return wrapErr("repair layer", err)
	}
	data, err := s.openData(ctx, piece, rec)
	if err != nil {
		return fmt.Errorf("storage: repair layer %v: %w", piece, err)
	}
	top, err := s.hashBlob(ctx, data)
	data.Close()
	if err != nil {
		return fmt.Errorf("storage: repair layer %v: %w", piece, err)
	}
	if top.piece != piece {
		if !s.markDamaged(piece, rec, DamageData, -1, fmt.Sprintf("data hashes to %v", top.piece)) {
			return changedErr("repair layer", piece)
		}
		return fmt.Errorf("storage: repair layer %v: data hashes to %v: %w", piece, top.piece, ErrCorrupt)
	}
	side, err := encodeSidecar(top.top)
	if err != nil {
		return fmt.Errorf("storage: repair layer %v: %w", piece, err)
	}
	s.commitMu.RLock()
	defer s.commitMu.RUnlock()
	if s.isClosed() {
		return fmt.Errorf("storage: repair layer: %w", ErrClosed)
	}
	unlock := s.lockPiece(piece)
	defer unlock()
	// The piece may have been replaced or collected while we hashed.
	cur, err := s.getRecord(piece)
	if err != nil {
		return wrapErr("repair layer", err)
	}
	if cur.DataBlob != rec.DataBlob {
		return nil
	}
	name := layerBlobName(newBlobID())
	if err := s.writeBlob(ctx, name, side.body, side.trailer[:]); err != nil {
		return fmt.Errorf("storage: repair layer %v: %w", piece, err)
	}
	old := cur.LayerBlob
	cur.LayerBlob, cur.LayerSize = name, side.size()
	cur.LayerHeight, cur.Sections = top.top.LayerHeight, top.top.Sections()
	pk := pieceKeyBytes(piece)
	b := s.db.NewBatch()
	defer b.Close()
	b.Set(key(prefixPiece, pk), cur.marshal(), nil)
	if d, err := s.damage(pk); err == nil && d != nil && d.Kind == DamageLayer {
		b.Delete(key(prefixDamage, pk), nil)
	}
	if err := b.Commit(syncWrite); err != nil {
		s.removeBlobs(name)
		return fmt.Errorf("storage: repair layer %v: index: %w", piece, classify(err))
	}
	s.removeBlobs(old)
	s.metrics.layersRebuilt.Add(1)
	s.log.Info("storage: rebuilt sidecar", "piece", piece)
	return nil
}

type hashedPiece struct {
	piece pdp.PieceCID
	top   *pdp.TreeTop
}

// hashBlob computes the commitment and tree layer of a stored blob, reading it sequentially.
func (s *Store) hashBlob(ctx context.Context, b blob.Reader) (hashedPiece, error) {
	calc := pdp.NewCalc(s.layer)
	defer calc.Reset()
	buf := make([]byte, ingestChunk)
	size := b.Size()
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return hashedPiece{}, err
		}
		n := min(int64(len(buf)), size-off)
		if _, err := b.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return hashedPiece{}, fmt.Errorf("read piece file: %w", classify(err))
		}
		if _, err := calc.Write(buf[:n]); err != nil {
			return hashedPiece{}, fmt.Errorf("commP: %w", err)
		}
		off += n
	}
	c, err := calc.Finish()
	if err != nil {
		return hashedPiece{}, fmt.Errorf("commP: %w", err)
	}
	return hashedPiece{piece: c.Piece, top: c.Top}, nil
}
