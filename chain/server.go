package chain

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/filecoin-project/go-state-types/abi"

	"github.com/warmstore/warmstore/payments"
)

// HTTP API (JSON). Every state change is a signed Tx posted to /tx; everything else reads.
//
//	GET  /info                         Info: chain id, addresses, proving parameters, head
//	GET  /head                         Head: epoch, last tx and event sequence numbers
//	GET  /state/hash                   {"stateHash": "0x…"} canonical state hash
//	POST /tx                           body Tx → Receipt; refusals → Error with a code
//	GET  /nonce/{address}              {"nonce": n} next transaction nonce of a sender
//	GET  /providers                    []Provider
//	GET  /providers/{address}          Provider
//	GET  /datasets?provider=&payer=    []DataSet
//	GET  /datasets/{id}                DataSet
//	GET  /datasets/{id}/pieces         []Piece
//	GET  /datasets/{id}/challenges     ChallengeSet (once the challenge epoch has begun)
//	GET  /datasets/{id}/proven/{n}     {"proven": bool} whether period n was proven
//	GET  /accounts/{address}           Account: wallet and payments account
//	GET  /approvals/{client}/{operator} payments.Approval
//	GET  /rails/{id}                   RailInfo
//	GET  /randomness/{epoch}           {"randomness": "0x…"} (epochs that have begun only)
//	GET  /events?after=N&limit=L&wait=30s  []Event with Seq > N; waits up to wait for one
//
// Errors are {"code": "...", "error": "..."} with a status from the code (400 malformed and
// invalid input, 401 signatures, 403 unauthorized, 404 not found, 409 nonces and state
// conflicts, 422 rule refusals, 500 internal). The Go Client turns them back into the
// package's sentinel errors.

// Info describes a ledger to its clients.
type Info struct {
	ChainID           uint64           `json:"chainId"`
	WarmStorage       common.Address   `json:"warmStorage"`
	Token             common.Address   `json:"token"`
	FilBeam           common.Address   `json:"filBeam"`
	Edges             []common.Address `json:"edges"`
	ProvingPeriod     abi.ChainEpoch   `json:"provingPeriod"`
	ChallengeWindow   abi.ChainEpoch   `json:"challengeWindow"`
	ChallengeFinality abi.ChainEpoch   `json:"challengeFinality"`
	NumChallenges     int              `json:"numChallenges"`
	Faucet            bool             `json:"faucet"`
	Genesis           time.Time        `json:"genesis"`
	EpochDurationMs   int64            `json:"epochDurationMs"`
	Head              Head             `json:"head"`
}

// ErrorBody is the JSON shape of a refusal.
type ErrorBody struct {
	Code  string `json:"code"`
	Error string `json:"error"`
	// Rule is the payments rule that refused the transaction, when one did.
	Rule string `json:"rule,omitempty"`
}

// Server serves a Ledger over HTTP.
type Server struct {
	l   *Ledger
	mux *http.ServeMux
	m   *serverMetrics
	// Logger receives a debug line per transaction, accepted or refused; slog.Default when nil.
	Logger *slog.Logger
	// MaxWait caps an event long-poll (30 s by default).
	MaxWait time.Duration
}

// NewServer returns the HTTP API of l.
func NewServer(l *Ledger) *Server {
	s := &Server{l: l, mux: http.NewServeMux(), m: newServerMetrics(), MaxWait: 30 * time.Second}
	s.mux.HandleFunc("GET /info", s.info)
	s.mux.HandleFunc("GET /head", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, l.Head()) })
	s.mux.HandleFunc("GET /state/hash", s.stateHash)
	s.mux.HandleFunc("POST /tx", s.submit)
	s.mux.HandleFunc("GET /nonce/{address}", s.read(func(v *View, r *http.Request) (any, error) {
		a, err := pathAddress(r, "address")
		if err != nil {
			return nil, err
		}
		n, err := v.Nonce(a)
		return map[string]uint64{"nonce": n}, err
	}))
	s.mux.HandleFunc("GET /providers", s.read(func(v *View, r *http.Request) (any, error) { return v.Providers() }))
	s.mux.HandleFunc("GET /providers/{address}", s.read(func(v *View, r *http.Request) (any, error) {
		a, err := pathAddress(r, "address")
		if err != nil {
			return nil, err
		}
		return v.Provider(a)
	}))
	s.mux.HandleFunc("GET /datasets", s.read(func(v *View, r *http.Request) (any, error) {
		var prov, payer common.Address
		for name, dst := range map[string]*common.Address{"provider": &prov, "payer": &payer} {
			if q := r.URL.Query().Get(name); q != "" {
				if !common.IsHexAddress(q) {
					return nil, fmt.Errorf("%w: %s %q is not an address", ErrInvalidArgument, name, q)
				}
				*dst = common.HexToAddress(q)
			}
		}
		return v.DataSets(prov, payer)
	}))
	s.mux.HandleFunc("GET /datasets/{id}", s.read(func(v *View, r *http.Request) (any, error) {
		id, err := pathUint(r, "id")
		if err != nil {
			return nil, err
		}
		return v.DataSet(id)
	}))
	s.mux.HandleFunc("GET /datasets/{id}/pieces", s.read(func(v *View, r *http.Request) (any, error) {
		id, err := pathUint(r, "id")
		if err != nil {
			return nil, err
		}
		return v.Pieces(id)
	}))
	s.mux.HandleFunc("GET /datasets/{id}/challenges", s.read(func(v *View, r *http.Request) (any, error) {
		id, err := pathUint(r, "id")
		if err != nil {
			return nil, err
		}
		return v.Challenges(id)
	}))
	s.mux.HandleFunc("GET /datasets/{id}/proven/{n}", s.read(func(v *View, r *http.Request) (any, error) {
		id, err := pathUint(r, "id")
		if err != nil {
			return nil, err
		}
		n, err := pathUint(r, "n")
		if err != nil {
			return nil, err
		}
		ok, err := v.IsProven(id, n)
		return map[string]bool{"proven": ok}, err
	}))
	s.mux.HandleFunc("GET /accounts/{address}", s.read(func(v *View, r *http.Request) (any, error) {
		a, err := pathAddress(r, "address")
		if err != nil {
			return nil, err
		}
		return v.Account(a)
	}))
	s.mux.HandleFunc("GET /approvals/{client}/{operator}", s.read(func(v *View, r *http.Request) (any, error) {
		c, err := pathAddress(r, "client")
		if err != nil {
			return nil, err
		}
		o, err := pathAddress(r, "operator")
		if err != nil {
			return nil, err
		}
		return v.Approval(c, o)
	}))
	s.mux.HandleFunc("GET /rails/{id}", s.read(func(v *View, r *http.Request) (any, error) {
		id, err := pathUint(r, "id")
		if err != nil {
			return nil, err
		}
		return v.Rail(id)
	}))
	s.mux.HandleFunc("GET /randomness/{epoch}", s.read(func(v *View, r *http.Request) (any, error) {
		e, err := pathUint(r, "epoch")
		if err != nil {
			return nil, err
		}
		h, err := v.Randomness(abi.ChainEpoch(e))
		return map[string]common.Hash{"randomness": h}, err
	}))
	s.mux.HandleFunc("GET /events", s.events)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	c := s.l.Config()
	writeJSON(w, http.StatusOK, Info{
		ChainID: c.ChainID, WarmStorage: c.WarmStorage, Token: c.Token, FilBeam: c.FilBeam, Edges: c.Edges,
		ProvingPeriod: c.ProvingPeriod, ChallengeWindow: c.ChallengeWindow, ChallengeFinality: c.ChallengeFinality,
		NumChallenges: NumChallenges, Faucet: c.Faucet, Genesis: s.l.Genesis(), EpochDurationMs: s.l.EpochDuration().Milliseconds(), Head: s.l.Head(),
	})
}

func (s *Server) stateHash(w http.ResponseWriter, r *http.Request) {
	h, err := s.l.StateHash()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]common.Hash{"stateHash": h})
}

// maxTxSize bounds a posted transaction (a proof of 64 challenges at height 50 is ~110 KB).
const maxTxSize = 4 << 20

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTxSize))
	if err != nil {
		writeError(w, fmt.Errorf("%w: read body: %v", ErrMalformed, err))
		return
	}
	var tx Tx
	if err := decodeBody(body, &tx); err != nil {
		writeError(w, err)
		return
	}
	rc, err := s.l.Submit(&tx)
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	if err != nil {
		s.m.txs.WithLabelValues(string(tx.Kind), ErrorCode(err)).Inc()
		log.Debug("chain: transaction refused", "kind", tx.Kind, "from", tx.From, "nonce", tx.Nonce, "err", err)
		writeError(w, err)
		return
	}
	s.m.txs.WithLabelValues(string(tx.Kind), "ok").Inc()
	for _, ev := range rc.Events {
		s.m.events.WithLabelValues(string(ev.Kind)).Inc()
	}
	log.Debug("chain: transaction applied", "kind", tx.Kind, "from", tx.From, "seq", rc.Seq, "epoch", rc.Epoch, "events", len(rc.Events))
	writeJSON(w, http.StatusOK, rc)
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after uint64
	var limit int
	var wait time.Duration
	var err error
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeError(w, fmt.Errorf("%w: after=%q", ErrInvalidArgument, v))
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			writeError(w, fmt.Errorf("%w: limit=%q", ErrInvalidArgument, v))
			return
		}
	}
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			writeError(w, fmt.Errorf("%w: wait=%q", ErrInvalidArgument, v))
			return
		}
		wait = min(wait, s.MaxWait)
	}
	s.m.waiters.Inc()
	evs, err := s.l.Events(r.Context(), after, limit, wait)
	s.m.waiters.Dec()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, evs)
}

func (s *Server) read(fn func(*View, *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var out any
		err := s.l.Read(func(v *View) error {
			var err error
			out, err = fn(v, r)
			return err
		})
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func pathAddress(r *http.Request, name string) (common.Address, error) {
	v := r.PathValue(name)
	if !common.IsHexAddress(v) {
		return common.Address{}, fmt.Errorf("%w: %s %q is not a hex address", ErrInvalidArgument, name, v)
	}
	return common.HexToAddress(v), nil
}

func pathUint(r *http.Request, name string) (uint64, error) {
	v, err := strconv.ParseUint(r.PathValue(name), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q is not a number", ErrInvalidArgument, name, r.PathValue(name))
	}
	return v, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func statusOf(code string) int {
	switch code {
	case "malformed", "invalid_argument", "unknown_kind":
		return http.StatusBadRequest
	case "bad_signature", "wrong_signer":
		return http.StatusUnauthorized
	case "unauthorized", "faucet_disabled":
		return http.StatusForbidden
	case "not_found":
		return http.StatusNotFound
	case "bad_nonce", "nonce_used", "already_exists", "already_proven":
		return http.StatusConflict
	case "internal":
		return http.StatusInternalServerError
	}
	return http.StatusUnprocessableEntity
}

func writeError(w http.ResponseWriter, err error) {
	code := ErrorCode(err)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		code = "malformed"
	}
	body := ErrorBody{Code: code, Error: err.Error()}
	var rule payments.Rule
	if errors.As(err, &rule) {
		body.Rule = string(rule)
	}
	writeJSON(w, statusOf(code), body)
}
