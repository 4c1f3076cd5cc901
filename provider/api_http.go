package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warmstore/warmstore/pdp"
)

// routes builds the mux. Patterns follow the reference provider's router (reference §1.2);
// GET patterns also answer HEAD.
func (p *Provider) routes(gat prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		route := pattern[strings.IndexByte(pattern, ' ')+1:]
		mux.Handle(pattern, p.instrument(route, h))
	}
	// handleErr registers a handler that returns its refusal instead of writing it.
	handleErr := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		handle(pattern, p.withErrors(h))
	}
	handle("GET /pdp/ping", p.handlePing)
	handle("GET /healthz", p.handleHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(gat, promhttp.HandlerOpts{}))

	// Uploads.
	handleErr("POST /pdp/piece", p.handlePiecePost)
	handleErr("PUT /pdp/piece/upload/{id}", p.handlePieceUpload)
	handleErr("GET /pdp/piece", p.handleFindPiece)
	handleErr("POST /pdp/piece/uploads", p.handleStreamingCreate)
	handleErr("PUT /pdp/piece/uploads/{id}", p.handleStreamingUpload)
	handleErr("POST /pdp/piece/uploads/{id}", p.handleStreamingFinalize)
	handleErr("POST /pdp/piece/pull", p.handlePull)

	// Retrieval, and Merkle proofs that let a client verify any byte range it fetched.
	handleErr("GET /piece/{cid}", p.handleRetrieve)
	handle(RangeProofPattern, RangeProofHandler(p.store).ServeHTTP)
	if p.ipfsGateway != nil {
		// Blocks of CAR pieces in withIPFSIndexing data sets (trustless: raw blocks and CARs).
		handle("GET /ipfs/", p.ipfsGateway.ServeHTTP)
	}

	// Data sets.
	handleErr("POST /pdp/data-sets", p.handleCreateDataSet)
	handleErr("POST /pdp/data-sets/create-and-add", p.handleCreateAndAdd)
	// GET /pdp/data-sets/created/{txHash} and GET /pdp/data-sets/{id}/terminate overlap as
	// patterns ("/pdp/data-sets/created/terminate"), so one route serves both.
	handleErr("GET /pdp/data-sets/{id}/{sub}", p.handleDataSetSubGet)
	handleErr("GET /pdp/data-sets/{id}", p.handleGetDataSet)
	handleErr("POST /pdp/data-sets/{id}/pieces", p.handleAddPieces)
	handleErr("GET /pdp/data-sets/{id}/pieces/added/{tx}", p.handleAddedStatus)
	handleErr("GET /pdp/data-sets/{id}/pieces/{pieceId}", p.handleGetDataSetPiece)
	handleErr("DELETE /pdp/data-sets/{id}/pieces/{pieceId}", p.handleDeletePiece)
	handleErr("POST /pdp/data-sets/{id}/terminate", p.handleTerminate)

	// Unknown paths and methods answer JSON like every other refusal.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Browsers run the Synapse SDK too. Authorization lives in the payer's signatures, not
		// in cookies or origins, so every origin may call the API and read the headers the SDK
		// needs (Location for uploads and transactions, ranges and ETags for downloads).
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "Location, ETag, Content-Range, Content-Length, Accept-Ranges, Retry-After, X-Piece-Cid")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Content-Length, Range, If-None-Match, If-Range")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			h, _ := mux.Handler(r)
			rec := &statusOnly{header: http.Header{}}
			h.ServeHTTP(rec, r)
			if rec.code == http.StatusMethodNotAllowed {
				w.Header().Set("Allow", rec.header.Get("Allow"))
				writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path))
				return
			}
			writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (p *Provider) handleDataSetSubGet(w http.ResponseWriter, r *http.Request) error {
	switch {
	case r.PathValue("id") == "created":
		return p.handleCreatedStatus(w, r.PathValue("sub"))
	case r.PathValue("sub") == "terminate":
		return p.handleTerminateStatus(w, r)
	default:
		return errorf(http.StatusNotFound, "not_found", "no route for %s %s", r.Method, r.URL.Path)
	}
}

// statusOnly records what the mux's own not-found / not-allowed handler would answer.
type statusOnly struct {
	header http.Header
	code   int
}

func (s *statusOnly) Header() http.Header { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return len(b), nil
}
func (s *statusOnly) WriteHeader(code int) { s.code = code }

func (p *Provider) handlePing(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, PingBody)
}

func (p *Provider) handleHealth(w http.ResponseWriter, r *http.Request) {
	// The store answers an index lookup only while open and readable.
	if _, err := p.store.Has(pdp.PieceCID{}); err != nil {
		writeError(w, http.StatusServiceUnavailable, "unhealthy", "piece store: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// ErrorBody is the JSON shape of every refusal the API sends.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorBody{Code: "internal", Message: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, ErrorBody{Code: code, Message: msg})
}

// httpError is a refusal with its status, carried through the handlers' error returns.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, code, format string, args ...any) error {
	return &httpError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// withErrors adapts a handler that returns its failure: one place turns the error into the
// response, so handlers read as straight-line code ending in return err.
func (p *Provider) withErrors(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			p.fail(w, r, err)
		}
	}
}

// fail writes err: an *httpError as itself, anything else as a 500 (logged).
func (p *Provider) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if errors.As(err, &he) {
		writeError(w, he.status, he.code, he.msg)
		return
	}
	p.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal", err.Error())
}

// maxJSONBody caps every JSON request body: the largest legitimate one is an add of a few
// dozen pieces with 4 KiB of extraData.
const maxJSONBody = 1 << 20

// decodeJSON reads a JSON request body strictly enough to catch garbage, leniently enough to
// accept fields the reference accepts and ignores (notify URLs and the like).
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, maxJSONBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "too_large", "request body larger than %d bytes", maxJSONBody)
		}
		if errors.Is(err, io.EOF) {
			return errorf(http.StatusBadRequest, "bad_request", "empty request body, want JSON")
		}
		return errorf(http.StatusBadRequest, "bad_request", "malformed JSON body: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "bad_request", "trailing data after the JSON body")
	}
	return nil
}
