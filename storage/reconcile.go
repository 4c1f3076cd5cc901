package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/warmstore/warmstore/pdp"
)

// ReconcileReport says what reconciliation of blobs against the index found.
type ReconcileReport struct {
	Pieces         int            // index entries checked
	OrphansRemoved []string       // blobs no index entry names (left by a crash mid-ingest or mid-GC)
	Missing        []pdp.PieceCID // entries whose data blob is missing or has the wrong size
	LayersRebuilt  []pdp.PieceCID // entries whose sidecar was missing or damaged and was rebuilt
	Damaged        []pdp.PieceCID // entries whose sidecar was bad and whose data no longer hashes to the CID
}

// Reconcile compares blobs with the index: blobs that no entry names are removed; entries
// whose data blob is missing or the wrong size are marked damaged and reported; missing or
// damaged sidecars are rebuilt from the data. It checks sizes and sidecar checksums (sizes
// only with Options.QuickReconcile), not the data itself (that is Scrub's job). Open runs it;
// it is safe to run at any time.
func (s *Store) Reconcile(ctx context.Context) (ReconcileReport, error) {
	if err := s.checkOpen("reconcile"); err != nil {
		return ReconcileReport{}, err
	}
	var rep ReconcileReport
	type entry struct {
		p   pdp.PieceCID
		rec pieceRecord
	}
	var entries []entry
	// Exclusive: no blob may be committed between listing the index and listing the blobs.
	s.commitMu.Lock()
	named := map[string]bool{}
	err := s.scan([]byte(prefixPiece), func(k, v []byte) error {
		p, err := parsePieceKeyBytes(k[len(prefixPiece):])
		if err != nil {
			return err
		}
		var rec pieceRecord
		if err := rec.unmarshal(v); err != nil {
			return fmt.Errorf("piece %v: %w", p, err)
		}
		named[rec.DataBlob], named[rec.LayerBlob] = true, true
		entries = append(entries, entry{p, rec})
		return nil
	})
	var orphans []string
	if err == nil {
		err = s.backend.List(ctx, func(name string, size int64) error {
			if !named[name] {
				orphans = append(orphans, name)
			}
			return nil
		})
	}
	if err == nil {
		for _, name := range orphans {
			if rerr := s.backend.Remove(ctx, name); rerr != nil && !isNotExist(rerr) {
				err = fmt.Errorf("remove orphan %s: %w", name, classify(rerr))
				break
			}
			rep.OrphansRemoved = append(rep.OrphansRemoved, name)
			s.metrics.orphansRemoved.Add(1)
		}
	}
	s.commitMu.Unlock()
	if err != nil {
		return rep, fmt.Errorf("storage: reconcile: %w", err)
	}

	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.Pieces++
		size, err := s.backend.Stat(ctx, e.rec.DataBlob)
		switch {
		case isNotExist(err):
			if s.markDamaged(e.p, e.rec, DamageMissing, -1, "piece file missing at reconciliation") {
				rep.Missing = append(rep.Missing, e.p)
				s.metrics.reconcileMissing.Add(1)
			}
			continue
		case err != nil:
			return rep, fmt.Errorf("storage: reconcile %v: %w", e.p, classify(err))
		case uint64(size) != e.p.RawSize():
			if s.markDamaged(e.p, e.rec, DamageData, -1, fmt.Sprintf("piece file has %d bytes, want %d", size, e.p.RawSize())) {
				rep.Missing = append(rep.Missing, e.p)
				s.metrics.reconcileMissing.Add(1)
			}
			continue
		}
		// The full check compares the size itself, so each mode touches the sidecar once.
		var lerr error
		if s.opts.QuickReconcile {
			lerr = s.checkLayerSize(ctx, e.rec)
		} else if layer, err := s.openVerifiedLayer(ctx, e.rec); err != nil {
			lerr = err
		} else {
			layer.Close()
		}
		if lerr == nil {
			continue
		}
		if !errors.Is(lerr, ErrCorrupt) {
			return rep, fmt.Errorf("storage: reconcile %v: %w", e.p, lerr)
		}
		if !s.markDamaged(e.p, e.rec, DamageLayer, -1, lerr.Error()) {
			continue // collected or replaced meanwhile
		}
		switch rerr := s.repairLayer(ctx, e.p); {
		case errors.Is(rerr, ErrNotFound):
		case rerr == nil:
			rep.LayersRebuilt = append(rep.LayersRebuilt, e.p)
		case errors.Is(rerr, ErrCorrupt):
			rep.Damaged = append(rep.Damaged, e.p)
		default:
			return rep, fmt.Errorf("storage: reconcile %v: %w", e.p, rerr)
		}
	}
	return rep, nil
}

// checkLayerSize checks that a sidecar exists with its recorded size; ErrCorrupt otherwise.
func (s *Store) checkLayerSize(ctx context.Context, rec pieceRecord) error {
	size, err := s.backend.Stat(ctx, rec.LayerBlob)
	switch {
	case isNotExist(err):
		return fmt.Errorf("sidecar missing: %w", ErrCorrupt)
	case err != nil:
		return classify(err)
	case size != rec.LayerSize:
		return fmt.Errorf("sidecar has %d bytes, want %d: %w", size, rec.LayerSize, ErrCorrupt)
	}
	return nil
}

// Damaged lists the pieces currently recorded as damaged.
func (s *Store) Damaged() (map[pdp.PieceCID]Damage, error) {
	out := map[pdp.PieceCID]Damage{}
	err := s.scan([]byte(prefixDamage), func(k, v []byte) error {
		p, err := parsePieceKeyBytes(k[len(prefixDamage):])
		if err != nil {
			return err
		}
		var d damageRecord
		if err := d.unmarshal(v); err != nil {
			return err
		}
		out[p] = Damage{Kind: d.Kind, Time: d.Time, Detail: d.Detail}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: damaged: %w", err)
	}
	return out, nil
}
