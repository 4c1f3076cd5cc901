package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage/blob"
	"golang.org/x/time/rate"
)

// ScrubReport says what one scrub pass found.
type ScrubReport struct {
	Pieces        int            // pieces fully checked
	Bytes         uint64         // piece bytes read
	Damaged       []pdp.PieceCID // pieces whose data no longer matches the layer (or is missing)
	LayersRebuilt []pdp.PieceCID // pieces whose sidecar was damaged and rebuilt from good data
}

// Scrub checks every stored piece once: the sidecar's checksum, then every section of the data
// against its cached root, reading at most Options.ScrubBytesPerSecond. Damage is recorded,
// counted and raised through Options.OnDamage; a damaged sidecar over intact data is rebuilt.
// Pieces already known damaged are skipped.
func (s *Store) Scrub(ctx context.Context) (ScrubReport, error) {
	if err := s.checkOpen("scrub"); err != nil {
		return ScrubReport{}, err
	}
	var rep ScrubReport
	var pieces []pdp.PieceCID
	if err := s.Pieces(func(info PieceInfo) error {
		pieces = append(pieces, info.Piece)
		return nil
	}); err != nil {
		return rep, fmt.Errorf("storage: scrub: %w", err)
	}
	var lim *rate.Limiter
	if s.opts.ScrubBytesPerSecond > 0 {
		lim = rate.NewLimiter(rate.Limit(s.opts.ScrubBytesPerSecond), int(pdp.SectionRawSize(12)))
	}
	for _, p := range pieces {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		res, err := s.scrubPiece(ctx, p, lim)
		rep.Bytes += res.bytes
		switch {
		case errors.Is(err, ErrNotFound):
			continue // collected meanwhile
		case err != nil && !errors.Is(err, ErrCorrupt):
			return rep, fmt.Errorf("storage: scrub %v: %w", p, err)
		}
		if res.rebuilt {
			rep.LayersRebuilt = append(rep.LayersRebuilt, p)
		}
		if res.damaged {
			rep.Damaged = append(rep.Damaged, p)
			continue
		}
		if !res.skipped {
			rep.Pieces++
			s.metrics.scrubbedPieces.Add(1)
		}
	}
	return rep, nil
}

type scrubResult struct {
	bytes                     uint64
	damaged, rebuilt, skipped bool
}

func (s *Store) scrubPiece(ctx context.Context, p pdp.PieceCID, lim *rate.Limiter) (res scrubResult, err error) {
	rec, err := s.getRecord(p)
	if err != nil {
		return res, err
	}
	if d, err := s.damage(pieceKeyBytes(p)); err != nil {
		return res, err
	} else if d != nil && d.Kind != DamageLayer {
		res.skipped = true
		return res, nil
	}
	// The verified sidecar stays open for the section checks below rather than being
	// opened a second time.
	layer, layerErr := s.openVerifiedLayer(ctx, rec)
	if layerErr != nil && !errors.Is(layerErr, ErrCorrupt) {
		return res, layerErr
	}
	if layerErr != nil {
		if !s.markDamaged(p, rec, DamageLayer, -1, layerErr.Error()) {
			return res, changedErr("scrub", p)
		}
		if err := s.repairLayer(ctx, p); err != nil {
			if errors.Is(err, ErrCorrupt) {
				res.damaged = true
			}
			return res, err
		}
		res.rebuilt = true
		if rec, err = s.getRecord(p); err != nil {
			return res, err
		}
		if layer, err = s.backend.Open(ctx, rec.LayerBlob); err != nil {
			return res, classify(err)
		}
	}
	defer layer.Close()
	data, err := s.openData(ctx, p, rec)
	if err != nil {
		res.damaged = errors.Is(err, ErrCorrupt)
		return res, err
	}
	defer data.Close()
	nodes := &sidecarNodes{r: layer, piece: p, layerHeight: rec.LayerHeight, sections: rec.Sections}
	buf := make([]byte, pdp.SectionRawSize(rec.LayerHeight))
	for k := uint64(0); k < rec.Sections; k++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		off, n := pdp.SectionRange(p, rec.LayerHeight, k)
		if lim != nil && n > 0 {
			if err := lim.WaitN(ctx, int(n)); err != nil {
				return res, err
			}
		}
		if _, err := data.ReadAt(buf[:n], int64(off)); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
			return res, fmt.Errorf("read section %d: %w", k, classify(err))
		}
		res.bytes += n
		s.metrics.scrubbedBytes.Add(n)
		want, err := nodes.TopNode(rec.LayerHeight, k)
		if err != nil {
			return res, err
		}
		if pdp.SectionRoot(buf[:n], rec.LayerHeight) != want {
			if !s.markDamaged(p, rec, DamageData, int64(k), "section does not hash to its cached root") {
				return res, changedErr("scrub", p)
			}
			res.damaged = true
			return res, fmt.Errorf("section %d: %w", k, ErrCorrupt)
		}
	}
	return res, nil
}

// openVerifiedLayer opens rec's sidecar and checks its size and checksum; ErrCorrupt when it
// is damaged or missing. On success the caller owns the open reader.
func (s *Store) openVerifiedLayer(ctx context.Context, rec pieceRecord) (blob.Reader, error) {
	layer, err := s.backend.Open(ctx, rec.LayerBlob)
	if err != nil {
		if isNotExist(err) {
			return nil, fmt.Errorf("sidecar missing: %w", ErrCorrupt)
		}
		return nil, classify(err)
	}
	if layer.Size() != rec.LayerSize {
		err = fmt.Errorf("sidecar has %d bytes, want %d: %w", layer.Size(), rec.LayerSize, ErrCorrupt)
	} else {
		err = verifySidecar(layer)
	}
	if err != nil {
		layer.Close()
		return nil, err
	}
	return layer, nil
}

func (s *Store) scrubLoop(interval time.Duration) {
	defer s.bg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.closed
		cancel()
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
		}
		rep, err := s.Scrub(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("storage: scrub pass failed", "err", err)
		}
		s.log.Info("storage: scrub pass", "pieces", rep.Pieces, "bytes", rep.Bytes, "damaged", len(rep.Damaged))
	}
}
