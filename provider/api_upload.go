package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage"
)

// Upload session states (storage.Session.State).
const (
	sessionCreated   = "created"   // waiting for the PUT
	sessionUploading = "uploading" // a PUT is receiving bytes
	sessionStored    = "stored"    // streaming: bytes stored, waiting for the finalize POST
	sessionDone      = "done"      // the piece is stored and (for streaming) finalized
)

// Upload kinds (metric labels).
const (
	kindOneShot   = "oneshot"
	kindStreaming = "streaming"
	kindPull      = "pull"
)

// pieceRequest is the body of POST /pdp/piece and of the streaming finalize POST. The
// reference also takes a "notify" URL; its job (announcing a parked piece) does not exist
// here, because a piece is retrievable when its upload returns.
type pieceRequest struct {
	PieceCID string `json:"pieceCid"`
	Notify   string `json:"notify,omitempty"`
}

// PieceResponse is the 200 body of POST /pdp/piece, GET /pdp/piece and the finalize POST.
type PieceResponse struct {
	PieceCID string `json:"pieceCid"`
}

// parsePieceV2 parses a v2 piece CID from a request and turns failures into 400s.
func parsePieceV2(s string) (pdp.PieceCID, error) {
	if s == "" {
		return pdp.PieceCID{}, errorf(http.StatusBadRequest, "bad_piece_cid", "pieceCid is required")
	}
	c, err := pdp.ParsePieceCID(s)
	if err != nil {
		return pdp.PieceCID{}, errorf(http.StatusBadRequest, "bad_piece_cid", "pieceCid %q: %v", truncate(s, 120), err)
	}
	return c, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// POST /pdp/piece {"pieceCid"}: 200 if the piece is stored (dedupe), else 201 with the upload URL.
func (p *Provider) handlePiecePost(w http.ResponseWriter, r *http.Request) error {
	var req pieceRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	piece, err := parsePieceV2(req.PieceCID)
	if err != nil {
		return err
	}
	if piece.RawSize() > p.cfg.MaxPieceSize {
		return errorf(http.StatusRequestEntityTooLarge, "too_large", "piece %v has %d raw bytes, above this provider's limit of %d", piece, piece.RawSize(), p.cfg.MaxPieceSize)
	}
	has, err := p.store.Has(piece)
	if err != nil {
		return fmt.Errorf("look up %v: %w", piece, err)
	}
	if has {
		writeJSON(w, http.StatusOK, PieceResponse{PieceCID: piece.String()})
		return nil
	}
	sess, err := p.createSession(storage.Session{State: sessionCreated, ExpectedPiece: &piece, ExpectedSize: piece.RawSize()})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/pdp/piece/upload/"+sess.ID)
	writeJSON(w, http.StatusCreated, map[string]string{"uploadId": sess.ID})
	return nil
}

// PUT /pdp/piece/upload/{id}: the raw bytes of the piece declared by POST /pdp/piece → 204.
func (p *Provider) handlePieceUpload(w http.ResponseWriter, r *http.Request) error {
	return p.receive(w, r, kindOneShot)
}

// POST /pdp/piece/uploads: a streaming upload session whose CID comes last → 201 + Location.
func (p *Provider) handleStreamingCreate(w http.ResponseWriter, r *http.Request) error {
	sess, err := p.createSession(storage.Session{State: sessionCreated})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/pdp/piece/uploads/"+sess.ID)
	writeJSON(w, http.StatusCreated, map[string]string{"uploadId": sess.ID})
	return nil
}

// PUT /pdp/piece/uploads/{id}: the raw bytes; the provider computes the piece CID → 204.
func (p *Provider) handleStreamingUpload(w http.ResponseWriter, r *http.Request) error {
	return p.receive(w, r, kindStreaming)
}

// receive runs one PUT: claim the session (created → uploading), stream the body into the
// store with a size limit and an idle timeout, then record the piece on the session. Any
// failure deletes the session: nothing of a failed upload is kept.
func (p *Provider) receive(w http.ResponseWriter, r *http.Request, kind string) error {
	id := r.PathValue("id")
	sess, err := p.store.Session(id)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalid) {
			return errorf(http.StatusNotFound, "unknown_upload", "no upload session %q", truncate(id, 80))
		}
		return fmt.Errorf("load session %s: %w", id, err)
	}
	streaming := kind == kindStreaming
	if streaming != (sess.ExpectedPiece == nil) {
		// A one-shot id on the streaming route or the reverse: the session is not of this kind.
		return errorf(http.StatusNotFound, "unknown_upload", "no %s upload session %q", kind, id)
	}
	limit := p.cfg.MaxPieceSize
	if sess.ExpectedPiece != nil {
		limit = sess.ExpectedPiece.RawSize()
	}
	if r.ContentLength > 0 && uint64(r.ContentLength) > limit {
		w.Header().Set("Connection", "close")
		return errorf(http.StatusRequestEntityTooLarge, "too_large", "Content-Length %d exceeds the %d bytes this upload may carry", r.ContentLength, limit)
	}

	// Mark the session busy before claiming it, so that Sweep (which checks and deletes under
	// p.mu) either deleted it already (the claim then finds nothing) or leaves it alone.
	p.mu.Lock()
	if p.active[id] {
		p.mu.Unlock()
		return errorf(http.StatusConflict, "already_uploaded", "upload %s is receiving data already", id)
	}
	p.active[id] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.active, id)
		p.mu.Unlock()
	}()

	// Claim the session; a second PUT (concurrent or after completion) conflicts.
	_, err = p.store.UpdateSession(id, func(s *storage.Session) error {
		if s.State != sessionCreated {
			return errorf(http.StatusConflict, "already_uploaded", "upload %s is %s; its data can be sent once", id, s.State)
		}
		s.State = sessionUploading
		return nil
	})
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			err = errorf(http.StatusNotFound, "unknown_upload", "no upload session %q", id)
		}
		return err
	}
	start := time.Now()
	body := newUploadBody(w, r.Body, limit, p.cfg.UploadIdleTimeout)
	info, err := p.store.Ingest(r.Context(), body, sess.ExpectedPiece)
	body.finish()
	p.metrics.uploadBytes.WithLabelValues(kind).Add(float64(body.n))
	if err != nil {
		p.metrics.uploadDuration.WithLabelValues(kind, "error").Observe(time.Since(start).Seconds())
		if derr := p.deleteSession(id); derr != nil {
			p.log.Warn("drop failed upload session", "session", id, "err", derr)
		}
		// The body was not consumed: closing the connection keeps net/http from trying to drain
		// it (a stalled client would hold the response back until it gave up).
		w.Header().Set("Connection", "close")
		return p.classifyIngest(err, body, sess.ExpectedPiece)
	}
	p.metrics.uploadDuration.WithLabelValues(kind, "ok").Observe(time.Since(start).Seconds())
	p.roots.add(info.Piece)
	state := sessionDone
	if streaming {
		state = sessionStored
	}
	if _, err := p.store.UpdateSession(id, func(s *storage.Session) error {
		s.State = state
		piece := info.Piece
		s.Piece = &piece
		return nil
	}); err != nil {
		return fmt.Errorf("record upload %s: %w", id, err)
	}
	p.log.Info("piece uploaded", "kind", kind, "session", id, "piece", info.Piece.String(), "bytes", info.RawSize,
		"deduplicated", info.Deduplicated, "duration", time.Since(start))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// classifyIngest maps a failed ingest to the status the client sees.
func (p *Provider) classifyIngest(err error, body *uploadBody, expected *pdp.PieceCID) error {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return err
	case body.empty:
		return errorf(http.StatusBadRequest, "empty_piece", "the upload carried no bytes; a piece holds at least one")
	case body.overLimit:
		return errorf(http.StatusRequestEntityTooLarge, "too_large", "upload body exceeds the %d bytes it may carry", body.limit)
	case body.idleHit:
		return errorf(http.StatusRequestTimeout, "upload_stalled", "no upload bytes for %v; upload dropped", p.cfg.UploadIdleTimeout)
	case body.readErr != nil:
		return errorf(http.StatusBadRequest, "upload_interrupted", "reading the upload body: %v", body.readErr)
	case errors.Is(err, storage.ErrMismatch):
		return errorf(http.StatusBadRequest, "piece_mismatch", "uploaded bytes do not match piece %v: %v", *expected, err)
	case errors.Is(err, storage.ErrTooLarge):
		return errorf(http.StatusRequestEntityTooLarge, "too_large", "%v", err)
	case errors.Is(err, storage.ErrNoSpace):
		return errorf(http.StatusInsufficientStorage, "no_space", "the provider is out of space")
	case errors.Is(err, context.Canceled):
		return errorf(http.StatusBadRequest, "upload_interrupted", "the upload was cancelled")
	}
	return fmt.Errorf("store piece: %w", err)
}

// uploadBody reads a request body for Ingest: it refuses bytes past limit and, through the
// connection's read deadline, gives up when no byte arrives for idle.
type uploadBody struct {
	r     io.Reader
	rc    *http.ResponseController // nil when the connection does not support deadlines
	idle  time.Duration
	limit uint64
	n     uint64

	empty     bool  // the body ended before its first byte
	overLimit bool  // the body went past limit
	idleHit   bool  // the read deadline passed
	readErr   error // another read error (client went away, bad chunking)
}

var (
	errOverLimit   = errors.New("provider: upload body over its limit")
	errEmptyUpload = errors.New("provider: empty upload body")
)

func newUploadBody(w http.ResponseWriter, r io.Reader, limit uint64, idle time.Duration) *uploadBody {
	return &uploadBody{r: r, rc: http.NewResponseController(w), idle: idle, limit: limit}
}

func (b *uploadBody) Read(p []byte) (int, error) {
	if b.rc != nil && b.rc.SetReadDeadline(time.Now().Add(b.idle)) != nil {
		b.rc = nil
	}
	n, err := b.r.Read(p)
	b.n += uint64(n)
	if err == io.EOF && b.n == 0 {
		// Fail the ingest rather than store a piece without data (PDPVerifier refuses those).
		b.empty = true
		return 0, errEmptyUpload
	}
	if b.n > b.limit {
		b.overLimit = true
		return n, errOverLimit
	}
	if err != nil && err != io.EOF {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			b.idleHit = true
		} else {
			b.readErr = err
		}
	}
	return n, err
}

// finish clears the read deadline so that a slow client can still read the response.
func (b *uploadBody) finish() {
	if b.rc != nil {
		b.rc.SetReadDeadline(time.Time{})
	}
}
