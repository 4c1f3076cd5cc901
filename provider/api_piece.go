package provider

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage"
)

// POST /pdp/piece/uploads/{id} {"pieceCid"}: the client names the piece it streamed; it must be
// exactly the piece the provider computed (CID and therefore raw size) → 200.
func (p *Provider) handleStreamingFinalize(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var req pieceRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	claimed, err := parsePieceV2(req.PieceCID)
	if err != nil {
		return err
	}
	sess, err := p.store.UpdateSession(id, func(s *storage.Session) error {
		if s.ExpectedPiece != nil {
			return errorf(http.StatusNotFound, "unknown_upload", "no streaming upload session %q", id)
		}
		switch s.State {
		case sessionCreated, sessionUploading:
			return errorf(http.StatusConflict, "upload_incomplete", "upload %s has no stored data yet (%s)", id, s.State)
		case sessionStored, sessionDone:
		default:
			return errorf(http.StatusConflict, "bad_state", "upload %s is in state %q", id, s.State)
		}
		if s.Piece == nil || *s.Piece != claimed {
			return errorf(http.StatusBadRequest, "piece_mismatch", "the uploaded bytes are piece %v, not %v", s.Piece, claimed)
		}
		s.State = sessionDone
		return nil
	})
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalid) {
			err = errorf(http.StatusNotFound, "unknown_upload", "no upload session %q", truncate(id, 80))
		}
		return err
	}
	writeJSON(w, http.StatusOK, PieceResponse{PieceCID: sess.Piece.String()})
	return nil
}

// GET /pdp/piece?pieceCid=: 200 {"pieceCid"} when the piece is stored and retrievable, else 404.
func (p *Provider) handleFindPiece(w http.ResponseWriter, r *http.Request) error {
	s := r.URL.Query().Get("pieceCid")
	if s == "" {
		return errorf(http.StatusBadRequest, "bad_piece_cid", "query parameter pieceCid is required")
	}
	ref, err := pdp.ParsePieceRef(s)
	if err != nil {
		return errorf(http.StatusBadRequest, "bad_piece_cid", "pieceCid %q: %v", truncate(s, 120), err)
	}
	piece, ok, err := p.resolve(ref)
	if err != nil {
		return err
	}
	if !ok {
		return errorf(http.StatusNotFound, "piece_not_found", "piece %s is not stored here", ref)
	}
	writeJSON(w, http.StatusOK, PieceResponse{PieceCID: piece.String()})
	return nil
}

// resolve turns a v1 or v2 reference into a stored piece.
func (p *Provider) resolve(ref pdp.PieceRef) (pdp.PieceCID, bool, error) {
	piece, ok := p.roots.pieceOf(ref)
	if !ok {
		return pdp.PieceCID{}, false, nil
	}
	has, err := p.store.Has(piece)
	if err != nil {
		return pdp.PieceCID{}, false, fmt.Errorf("look up %v: %w", piece, err)
	}
	return piece, has, nil
}

// Retrieval cache policy: a piece CID names immutable bytes (reference §8.1).
const pieceCacheControl = "public, max-age=29030400, immutable"

// GET|HEAD /piece/{cid} (v1 or v2): the piece's raw bytes with Range, ETag and immutable caching.
func (p *Provider) handleRetrieve(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	if !p.acquirePieceRead(r) {
		if r.Context().Err() != nil {
			return nil // the client left while queued
		}
		w.Header().Set("Retry-After", "1")
		return errorf(http.StatusTooManyRequests, "too_many_requests", "more than %d piece requests in flight for %v", cap(p.pieceReads), p.cfg.PieceReadWait)
	}
	defer func() { <-p.pieceReads }()
	s := r.PathValue("cid")
	ref, err := pdp.ParsePieceRef(s)
	if err != nil {
		return errorf(http.StatusBadRequest, "bad_piece_cid", "piece CID %q: %v", truncate(s, 120), err)
	}
	piece, ok := p.roots.pieceOf(ref)
	if !ok {
		return errorf(http.StatusNotFound, "piece_not_found", "piece %s is not stored here", ref)
	}
	// OpenPiece alone decides (not found, damaged, readable): no separate Has before it.
	rd, err := p.store.OpenPiece(r.Context(), piece)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errorf(http.StatusNotFound, "piece_not_found", "piece %s is not stored here", ref)
	case errors.Is(err, storage.ErrCorrupt):
		return errorf(http.StatusNotFound, "piece_damaged", "piece %s is damaged here; fetch it from another provider", ref)
	case err != nil:
		return fmt.Errorf("open %v: %w", piece, err)
	}
	defer rd.Close()
	h := w.Header()
	// The ETag names the piece as requested, so a v1 and a v2 URL each revalidate themselves.
	h.Set("ETag", `"`+s+`"`)
	h.Set("Cache-Control", pieceCacheControl)
	h.Set("X-Piece-Cid", piece.String())
	ttfb := p.metrics.pieceTTFB
	bytes := p.metrics.pieceBytes
	fw := firstByteWriter(w, func() { ttfb.Observe(time.Since(start).Seconds()) }, func(n int64) { bytes.Add(float64(n)) })
	// Zero modtime: no Last-Modified; conditional requests go by ETag (If-None-Match, If-Range).
	http.ServeContent(fw, r, "", time.Time{}, rd)
	return nil
}

// acquirePieceRead takes a /piece slot, waiting up to PieceReadWait for one.
func (p *Provider) acquirePieceRead(r *http.Request) bool {
	select {
	case p.pieceReads <- struct{}{}:
		return true
	default:
	}
	if p.cfg.PieceReadWait < 0 {
		return false
	}
	t := time.NewTimer(p.cfg.PieceReadWait)
	defer t.Stop()
	select {
	case p.pieceReads <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-r.Context().Done():
		return false
	}
}

// rootIndex finds a stored piece by its root alone, for v1 CIDs (which carry no size). The
// store indexes pieces by root‖height‖padding and has no lookup by root, so the provider keeps
// this map: filled from the store at start, extended by every ingest through this provider.
type rootIndex struct {
	mu sync.RWMutex
	m  map[pdp.Node]pdp.PieceCID
	// bytesAtStart is the raw size of every piece stored when the index was built.
	bytesAtStart uint64
}

func newRootIndex(st *storage.Store) (*rootIndex, error) {
	ix := &rootIndex{m: map[pdp.Node]pdp.PieceCID{}}
	err := st.Pieces(func(pi storage.PieceInfo) error {
		ix.m[pi.Piece.Root] = pi.Piece
		ix.bytesAtStart += pi.RawSize
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("provider: index stored pieces by root: %w", err)
	}
	return ix, nil
}

func (ix *rootIndex) add(p pdp.PieceCID) {
	ix.mu.Lock()
	ix.m[p.Root] = p
	ix.mu.Unlock()
}

// pieceOf names the piece ref points at: a v2 reference carries it whole, a v1 reference is
// looked up by root. It says nothing about whether the piece is stored.
func (ix *rootIndex) pieceOf(ref pdp.PieceRef) (pdp.PieceCID, bool) {
	if ref.Sized {
		return ref.Piece, true
	}
	return ix.lookup(ref.Root)
}

func (ix *rootIndex) lookup(root pdp.Node) (pdp.PieceCID, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	p, ok := ix.m[root]
	return p, ok
}
