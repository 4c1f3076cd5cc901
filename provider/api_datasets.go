package provider

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/filecoin-project/go-state-types/abi"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/chain/extradata"
	"github.com/warmstore/warmstore/pdp"
)

// createRequest is the body of POST /pdp/data-sets and (with pieces) of create-and-add.
type createRequest struct {
	RecordKeeper string         `json:"recordKeeper"`
	ExtraData    string         `json:"extraData"`
	Pieces       []addPieceItem `json:"pieces,omitempty"`
}

// addRequest is the body of POST /pdp/data-sets/{id}/pieces.
type addRequest struct {
	Pieces    []addPieceItem `json:"pieces"`
	ExtraData string         `json:"extraData"`
}

// addPieceItem is one piece of an add: the reference accepts an aggregate of sub-pieces; the
// Synapse SDK always sends one sub-piece equal to the piece, the only form accepted here.
type addPieceItem struct {
	PieceCID  string `json:"pieceCid"`
	SubPieces []struct {
		SubPieceCID string `json:"subPieceCid"`
	} `json:"subPieces"`
}

// deleteRequest is the (optional) body of DELETE /pdp/data-sets/{id}/pieces/{pieceId}.
type deleteRequest struct {
	ExtraData string   `json:"extraData"`
	PieceIDs  []uint64 `json:"pieceIds,omitempty"`
}

// CreatedStatus is GET /pdp/data-sets/created/{txHash}. The chain applies a transaction when
// it is submitted, so a known hash is always confirmed. For create-and-add the pieces added
// by the same request are reported too.
type CreatedStatus struct {
	CreateMessageHash string   `json:"createMessageHash"`
	DataSetCreated    bool     `json:"dataSetCreated"`
	Service           string   `json:"service"`
	TxStatus          string   `json:"txStatus"`
	OK                *bool    `json:"ok"`
	DataSetID         uint64   `json:"dataSetId"`
	ConfirmedTxHash   string   `json:"confirmedTxHash,omitempty"`
	PiecesAdded       bool     `json:"piecesAdded,omitempty"`
	ConfirmedPieceIDs []uint64 `json:"confirmedPieceIds,omitempty"`
	AddTxHash         string   `json:"addTxHash,omitempty"`
}

// AddedStatus is GET /pdp/data-sets/{id}/pieces/added/{txHash}.
type AddedStatus struct {
	TxHash            string   `json:"txHash"`
	TxStatus          string   `json:"txStatus"`
	DataSetID         uint64   `json:"dataSetId"`
	PieceCount        int      `json:"pieceCount"`
	AddMessageOK      *bool    `json:"addMessageOk"`
	PiecesAdded       bool     `json:"piecesAdded"`
	ConfirmedPieceIDs []uint64 `json:"confirmedPieceIds"`
	ConfirmedTxHash   string   `json:"confirmedTxHash,omitempty"`
}

// DataSetResponse is GET /pdp/data-sets/{id}.
type DataSetResponse struct {
	ID                 uint64          `json:"id"`
	NextChallengeEpoch int64           `json:"nextChallengeEpoch"`
	Pieces             []DataSetPiece  `json:"pieces"`
	PieceCount         int             `json:"pieceCount"`
	Payer              common.Address  `json:"payer"`
	Metadata           []metadataEntry `json:"metadata"`
}

type metadataEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// DataSetPiece is one live piece of a data set.
type DataSetPiece struct {
	PieceID        uint64 `json:"pieceId"`
	PieceCID       string `json:"pieceCid"`
	SubPieceCID    string `json:"subPieceCid"`
	SubPieceOffset uint64 `json:"subPieceOffset"`
}

// PieceDetail is GET /pdp/data-sets/{id}/pieces/{pieceId}.
type PieceDetail struct {
	PieceID   uint64     `json:"pieceId"`
	PieceCID  string     `json:"pieceCid"`
	SubPieces []SubPiece `json:"subPieces"`
}

// SubPiece is one sub-piece of a piece (here always the piece itself at offset 0).
type SubPiece struct {
	SubPieceCID    string `json:"subPieceCid"`
	SubPieceOffset uint64 `json:"subPieceOffset"`
}

// TerminateStatus is GET /pdp/data-sets/{id}/terminate.
type TerminateStatus struct {
	TerminationTxHash       string `json:"terminationTxHash"`
	TxStatus                string `json:"txStatus"`
	TxSuccess               *bool  `json:"txSuccess"`
	FWSSTerminated          bool   `json:"fwssTerminated"`
	ServiceTerminationEpoch *int64 `json:"serviceTerminationEpoch"`
	ConfirmedTxHash         string `json:"confirmedTxHash,omitempty"`
}

// txRecord is what the provider remembers of a transaction it sent for a client, so the
// status URLs can answer. The chain has no lookup by transaction hash.
type txRecord struct {
	hash      string
	kind      string // create, add, remove, terminate
	dataSetID uint64
	pieceIDs  []uint64
	addHash   string // create-and-add: the add transaction sent after the create
	epoch     abi.ChainEpoch
	at        time.Time
}

// txLog keeps the most recent transaction records, bounded so memory cannot grow without end.
type txLog struct {
	mu         sync.Mutex
	byHash     map[string]*txRecord
	order      []string
	max        int
	terminates map[uint64]*txRecord // data set → client-requested termination
}

func newTxLog(max int) *txLog {
	return &txLog{byHash: map[string]*txRecord{}, max: max, terminates: map[uint64]*txRecord{}}
}

func normHash(h string) string { return strings.ToLower(h) }

func (l *txLog) put(r *txRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := normHash(r.hash)
	if _, ok := l.byHash[h]; !ok {
		l.order = append(l.order, h)
	}
	l.byHash[h] = r
	if r.kind == "terminate" {
		l.terminates[r.dataSetID] = r
	}
	for len(l.order) > l.max {
		old := l.byHash[l.order[0]]
		delete(l.byHash, l.order[0])
		if old != nil && old.kind == "terminate" && l.terminates[old.dataSetID] == old {
			delete(l.terminates, old.dataSetID)
		}
		l.order = l.order[1:]
	}
}

// putIfAbsent records r unless its hash is known (the handler's own record is richer than one
// rebuilt from chain events).
func (l *txLog) putIfAbsent(r *txRecord) {
	l.mu.Lock()
	_, ok := l.byHash[normHash(r.hash)]
	l.mu.Unlock()
	if !ok {
		l.put(r)
	}
}

func (l *txLog) get(h string) (*txRecord, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.byHash[normHash(h)]
	return r, ok
}

func (l *txLog) termination(id uint64) (*txRecord, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.terminates[id]
	return r, ok
}

func ptr[T any](v T) *T { return &v }

// needChain refuses data-set routes on a provider without a chain.
func (p *Provider) needChain() error {
	if p.chain == nil {
		return errorf(http.StatusServiceUnavailable, "no_chain", "this provider runs without a chain; data-set routes are unavailable")
	}
	return nil
}

// chainError turns a chain refusal into the client's error: the chain's own 4xx status and
// message (bad signature, used nonce, unfunded payer, …), or 502 when the chain is unreachable
// or failed.
func chainError(what string, err error) error {
	var ae *chain.APIError
	if errors.As(err, &ae) {
		if ae.Status >= 400 && ae.Status < 500 {
			return errorf(ae.Status, "chain_"+ae.Code, "%s refused by the chain: %s", what, ae.Message)
		}
		return errorf(http.StatusBadGateway, "chain_"+ae.Code, "%s: chain error: %s", what, ae.Message)
	}
	if errors.Is(err, context.Canceled) {
		return errorf(http.StatusBadRequest, "cancelled", "%s: request cancelled", what)
	}
	return errorf(http.StatusBadGateway, "chain_unreachable", "%s: %v", what, err)
}

func decodeHexExtra(s string, limit int) ([]byte, error) {
	if s == "" {
		return nil, errorf(http.StatusBadRequest, "bad_extra_data", "extraData is required")
	}
	if len(s) > 2+2*limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, "too_large", "extraData is larger than %d bytes", limit)
	}
	b, err := hexutil.Decode(s)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "bad_extra_data", "extraData is not 0x-prefixed hex: %v", err)
	}
	return b, nil
}

func extraError(err error) error {
	return errorf(http.StatusBadRequest, "bad_extra_data", "%v", err)
}

// checkRecordKeeper accepts the warm-storage service (the only record keeper of this chain).
func (p *Provider) checkRecordKeeper(ctx context.Context, rk string, required bool) error {
	if rk == "" {
		if required {
			return errorf(http.StatusBadRequest, "bad_record_keeper", "recordKeeper is required")
		}
		return nil
	}
	if !common.IsHexAddress(rk) {
		return errorf(http.StatusBadRequest, "bad_record_keeper", "recordKeeper %q is not an address", truncate(rk, 60))
	}
	dom, err := p.chain.Domain(ctx)
	if err != nil {
		return chainError("read chain info", err)
	}
	if common.HexToAddress(rk) != dom.VerifyingContract {
		return errorf(http.StatusBadRequest, "bad_record_keeper", "recordKeeper %s is not the warm-storage service %s", rk, dom.VerifyingContract.Hex())
	}
	return nil
}

// parseAddPieces validates the pieces of an add: v2 CIDs, one sub-piece equal to the piece,
// stored here, within the batch limit.
func (p *Provider) parseAddPieces(items []addPieceItem) ([]pdp.PieceCID, error) {
	if len(items) == 0 {
		return nil, errorf(http.StatusBadRequest, "no_pieces", "pieces is empty")
	}
	if len(items) > p.cfg.MaxPiecesPerAdd {
		return nil, errorf(http.StatusBadRequest, "too_many_pieces", "%d pieces in one add, max %d", len(items), p.cfg.MaxPiecesPerAdd)
	}
	out := make([]pdp.PieceCID, len(items))
	for i, it := range items {
		c, err := parsePieceV2(it.PieceCID)
		if err != nil {
			return nil, err
		}
		for _, sp := range it.SubPieces {
			sc, err := parsePieceV2(sp.SubPieceCID)
			if err != nil {
				return nil, err
			}
			if sc != c || len(it.SubPieces) != 1 {
				return nil, errorf(http.StatusBadRequest, "aggregates_unsupported",
					"piece %d: aggregates are not supported; subPieces must be [{subPieceCid: pieceCid}]", i)
			}
		}
		has, err := p.store.Has(c)
		if err != nil {
			return nil, fmt.Errorf("look up %v: %w", c, err)
		}
		if !has {
			return nil, errorf(http.StatusBadRequest, "piece_not_stored", "piece %v is not stored on this provider; upload it first", c)
		}
		out[i] = c
	}
	return out, nil
}

func (p *Provider) countTx(kind string, err error) {
	result := "ok"
	if err != nil {
		result = "refused"
	}
	p.metrics.chainTxs.WithLabelValues(kind, result).Inc()
}

// sendCreate sends the payer's CreateDataSet and returns the receipt and the new data set id.
func (p *Provider) sendCreate(ctx context.Context, c extradata.CreateDataSet) (*chain.Receipt, uint64, error) {
	rc, err := p.chain.CreateDataSet(ctx, p.cfg.Key, chain.CreateDataSetBody{
		Payer: c.Payer, ClientDataSetID: abi.TokenAmount{Int: orZero(c.ClientDataSetID)},
		Metadata: c.Metadata, Signature: c.Signature,
	})
	p.countTx("create", err)
	if err != nil {
		return nil, 0, chainError("create data set", err)
	}
	for _, ev := range rc.Events {
		if ev.Kind == chain.EvDataSetCreated {
			return rc, ev.DataSetID, nil
		}
	}
	return nil, 0, fmt.Errorf("create data set: receipt %s has no %s event", rc.Hash, chain.EvDataSetCreated)
}

// sendAdd sends the payer's AddPieces and takes a storage reference for every piece, so GC
// keeps what a data set holds.
func (p *Provider) sendAdd(ctx context.Context, dataSetID uint64, pieces []pdp.PieceCID, a extradata.AddPieces) (*chain.Receipt, []uint64, error) {
	meta := a.PieceMetadata
	if len(meta) == 0 {
		meta = nil
	} else if len(meta) != len(pieces) {
		return nil, nil, errorf(http.StatusBadRequest, "bad_extra_data", "extraData has metadata for %d pieces, the request has %d pieces", len(meta), len(pieces))
	}
	rc, err := p.chain.AddPieces(ctx, p.cfg.Key, chain.AddPiecesBody{
		DataSetID: dataSetID, Nonce: abi.TokenAmount{Int: orZero(a.Nonce)}, Pieces: pieces,
		PieceMetadata: meta, Signature: a.Signature,
	})
	p.countTx("add", err)
	if err != nil {
		return nil, nil, chainError("add pieces", err)
	}
	var ids []uint64
	for _, ev := range rc.Events {
		if ev.Kind == chain.EvPiecesAdded && ev.DataSetID == dataSetID {
			ids = ev.PieceIDs
		}
	}
	for _, pc := range pieces {
		if err := p.store.AddRef(pc, dataSetID); err != nil {
			// The chain already holds the piece; the follower retries the reference from the event.
			p.log.Error("reference added piece", "piece", pc.String(), "dataSet", dataSetID, "err", err)
		}
	}
	return rc, ids, nil
}

// POST /pdp/data-sets {"recordKeeper","extraData"} → 201, Location /pdp/data-sets/created/{txHash}.
func (p *Provider) handleCreateDataSet(w http.ResponseWriter, r *http.Request) error {
	return p.createDataSet(w, r, false)
}

// POST /pdp/data-sets/create-and-add {"recordKeeper","pieces","extraData"} → 201, Location
// /pdp/data-sets/created/{createTxHash}. The chain has no single create-and-add transaction,
// so the provider sends the create, then the add.
func (p *Provider) handleCreateAndAdd(w http.ResponseWriter, r *http.Request) error {
	return p.createDataSet(w, r, true)
}

func (p *Provider) createDataSet(w http.ResponseWriter, r *http.Request, withPieces bool) error {
	if err := p.needChain(); err != nil {
		return err
	}
	var req createRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	if err := p.checkRecordKeeper(ctx, req.RecordKeeper, true); err != nil {
		return err
	}
	limit := extradata.MaxCreateSize
	if withPieces {
		limit = extradata.MaxCreateSize + extradata.MaxAddSize + 256
	}
	raw, err := decodeHexExtra(req.ExtraData, limit)
	if err != nil {
		return err
	}
	var (
		create extradata.CreateDataSet
		add    extradata.AddPieces
		pieces []pdp.PieceCID
	)
	if withPieces {
		if create, add, err = extradata.DecodeCreateAndAdd(raw); err != nil {
			return extraError(err)
		}
		if pieces, err = p.parseAddPieces(req.Pieces); err != nil {
			return err
		}
		// The chain has no create-and-add transaction: check the add's signature before the
		// create, so that a bad one does not leave an empty data set behind.
		dom, err := p.chain.Domain(ctx)
		if err != nil {
			return chainError("read chain info", err)
		}
		if err := verifyAddAuth(dom, create.ClientDataSetID, create.Payer, add, pieces); err != nil {
			return err
		}
	} else {
		if len(req.Pieces) != 0 {
			return errorf(http.StatusBadRequest, "bad_request", "pieces belong on /pdp/data-sets/create-and-add")
		}
		if create, err = extradata.DecodeCreateDataSet(raw); err != nil {
			return extraError(err)
		}
	}
	rc, id, err := p.sendCreate(ctx, create)
	if err != nil {
		return err
	}
	rec := &txRecord{hash: rc.Hash, kind: "create", dataSetID: id, epoch: rc.Epoch, at: p.now()}
	p.log.Info("data set created", "dataSet", id, "payer", create.Payer.Hex(), "tx", rc.Hash)
	if withPieces {
		arc, ids, err := p.sendAdd(ctx, id, pieces, add)
		if err != nil {
			// The data set exists; the client can retry the add on /pdp/data-sets/{id}/pieces.
			p.txs.put(rec)
			var he *httpError
			if errors.As(err, &he) {
				he.msg = fmt.Sprintf("data set %d was created (tx %s) but adding its pieces failed: %s", id, rc.Hash, he.msg)
			}
			return err
		}
		rec.pieceIDs, rec.addHash = ids, arc.Hash
		p.txs.put(&txRecord{hash: arc.Hash, kind: "add", dataSetID: id, pieceIDs: ids, epoch: arc.Epoch, at: p.now()})
		p.log.Info("pieces added", "dataSet", id, "pieces", len(ids), "tx", arc.Hash)
	}
	p.txs.put(rec)
	w.Header().Set("Location", "/pdp/data-sets/created/"+rc.Hash)
	writeJSON(w, http.StatusCreated, map[string]any{"txHash": rc.Hash, "dataSetId": id})
	return nil
}

// GET /pdp/data-sets/created/{txHash}.
func (p *Provider) handleCreatedStatus(w http.ResponseWriter, tx string) error {
	rec, ok := p.txs.get(tx)
	if !ok || rec.kind != "create" {
		return errorf(http.StatusNotFound, "unknown_tx", "no data-set creation with transaction %s", truncate(tx, 80))
	}
	st := CreatedStatus{
		CreateMessageHash: rec.hash, DataSetCreated: true, Service: ServiceName, TxStatus: "confirmed",
		OK: ptr(true), DataSetID: rec.dataSetID, ConfirmedTxHash: rec.hash,
	}
	if rec.addHash != "" {
		st.PiecesAdded, st.ConfirmedPieceIDs, st.AddTxHash = true, rec.pieceIDs, rec.addHash
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func pathID(r *http.Request, name string) (uint64, error) {
	s := r.PathValue(name)
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "bad_id", "%s %q is not a decimal id", name, truncate(s, 40))
	}
	return v, nil
}

// ownDataSet loads a data set of this provider; others' are 404 here.
func (p *Provider) ownDataSet(ctx context.Context, id uint64) (*chain.DataSet, error) {
	if err := p.needChain(); err != nil {
		return nil, err
	}
	ds, err := p.chain.DataSet(ctx, id)
	if err != nil {
		if errors.Is(err, chain.ErrNotFound) {
			return nil, errorf(http.StatusNotFound, "unknown_data_set", "no data set %d", id)
		}
		return nil, chainError("read data set", err)
	}
	if ds.Provider != p.address {
		return nil, errorf(http.StatusNotFound, "unknown_data_set", "data set %d is not held by this provider", id)
	}
	return ds, nil
}

// GET /pdp/data-sets/{id}.
func (p *Provider) handleGetDataSet(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ds, err := p.ownDataSet(r.Context(), id)
	if err != nil {
		return err
	}
	pieces, err := p.chain.Pieces(r.Context(), id)
	if err != nil {
		return chainError("read pieces", err)
	}
	out := DataSetResponse{ID: ds.ID, NextChallengeEpoch: int64(ds.NextChallengeEpoch), Pieces: []DataSetPiece{}, Payer: ds.Payer, Metadata: []metadataEntry{}}
	for _, m := range ds.Metadata {
		out.Metadata = append(out.Metadata, metadataEntry{Key: m.Key, Value: m.Value})
	}
	for _, pc := range pieces {
		if pc.Removed {
			continue
		}
		s := pc.CID.String()
		out.Pieces = append(out.Pieces, DataSetPiece{PieceID: pc.ID, PieceCID: s, SubPieceCID: s})
	}
	out.PieceCount = len(out.Pieces)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// POST /pdp/data-sets/{id}/pieces {"pieces","extraData"} → 201, Location
// /pdp/data-sets/{id}/pieces/added/{txHash}.
func (p *Provider) handleAddPieces(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req addRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if _, err := p.ownDataSet(r.Context(), id); err != nil {
		return err
	}
	raw, err := decodeHexExtra(req.ExtraData, extradata.MaxAddSize)
	if err != nil {
		return err
	}
	add, err := extradata.DecodeAddPieces(raw)
	if err != nil {
		return extraError(err)
	}
	pieces, err := p.parseAddPieces(req.Pieces)
	if err != nil {
		return err
	}
	rc, ids, err := p.sendAdd(r.Context(), id, pieces, add)
	if err != nil {
		return err
	}
	p.txs.put(&txRecord{hash: rc.Hash, kind: "add", dataSetID: id, pieceIDs: ids, epoch: rc.Epoch, at: p.now()})
	p.log.Info("pieces added", "dataSet", id, "pieces", len(ids), "tx", rc.Hash)
	w.Header().Set("Location", fmt.Sprintf("/pdp/data-sets/%d/pieces/added/%s", id, rc.Hash))
	writeJSON(w, http.StatusCreated, map[string]any{"txHash": rc.Hash, "pieceIds": ids})
	return nil
}

// GET /pdp/data-sets/{id}/pieces/added/{txHash}. The hash of a create-and-add's create is
// accepted too.
func (p *Provider) handleAddedStatus(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	rec, ok := p.txs.get(r.PathValue("tx"))
	if ok && rec.kind == "create" && rec.addHash != "" {
		rec, ok = p.txs.get(rec.addHash)
	}
	if !ok || rec.kind != "add" || rec.dataSetID != id {
		return errorf(http.StatusNotFound, "unknown_tx", "no piece addition to data set %d with transaction %s", id, truncate(r.PathValue("tx"), 80))
	}
	writeJSON(w, http.StatusOK, AddedStatus{
		TxHash: rec.hash, TxStatus: "confirmed", DataSetID: id, PieceCount: len(rec.pieceIDs),
		AddMessageOK: ptr(true), PiecesAdded: true, ConfirmedPieceIDs: rec.pieceIDs, ConfirmedTxHash: rec.hash,
	})
	return nil
}

// GET /pdp/data-sets/{id}/pieces/{pieceId}.
func (p *Provider) handleGetDataSetPiece(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	pid, err := pathID(r, "pieceId")
	if err != nil {
		return err
	}
	if _, err := p.ownDataSet(r.Context(), id); err != nil {
		return err
	}
	pieces, err := p.chain.Pieces(r.Context(), id)
	if err != nil {
		return chainError("read pieces", err)
	}
	for _, pc := range pieces {
		if pc.ID == pid && !pc.Removed {
			s := pc.CID.String()
			writeJSON(w, http.StatusOK, PieceDetail{PieceID: pid, PieceCID: s, SubPieces: []SubPiece{{SubPieceCID: s}}})
			return nil
		}
	}
	return errorf(http.StatusNotFound, "unknown_piece", "data set %d has no live piece %d", id, pid)
}

// DELETE /pdp/data-sets/{id}/pieces/{pieceId} {"extraData","pieceIds"?} → 200 {"txHash"}. The
// removal takes effect at the next proving period; the storage reference is dropped when the
// chain reports the piece removed (see followChain).
func (p *Provider) handleDeletePiece(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	pid, err := pathID(r, "pieceId")
	if err != nil {
		return err
	}
	var req deleteRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ids := req.PieceIDs
	if len(ids) == 0 {
		ids = []uint64{pid}
	}
	if len(ids) > p.cfg.MaxRemovals {
		return errorf(http.StatusBadRequest, "too_many_pieces", "%d piece ids in one removal, max %d", len(ids), p.cfg.MaxRemovals)
	}
	raw, err := decodeHexExtra(req.ExtraData, extradata.MaxSignatureSize)
	if err != nil {
		return err
	}
	sig, err := extradata.DecodeSignature(raw)
	if err != nil {
		return extraError(err)
	}
	if _, err := p.ownDataSet(r.Context(), id); err != nil {
		return err
	}
	rc, err := p.chain.SchedulePieceRemovals(r.Context(), p.cfg.Key, chain.SchedulePieceRemovalsBody{DataSetID: id, PieceIDs: ids, Signature: sig})
	p.countTx("remove", err)
	if err != nil {
		return chainError("schedule piece removals", err)
	}
	p.txs.put(&txRecord{hash: rc.Hash, kind: "remove", dataSetID: id, pieceIDs: ids, epoch: rc.Epoch, at: p.now()})
	p.log.Info("piece removals scheduled", "dataSet", id, "pieces", ids, "tx", rc.Hash)
	writeJSON(w, http.StatusOK, map[string]string{"txHash": rc.Hash})
	return nil
}

// POST /pdp/data-sets/{id}/terminate {"extraData"} → 202: the provider relays the payer's signed
// TerminateService (immediate, consent termination); 409 when the service already ended.
func (p *Provider) handleTerminate(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req struct {
		ExtraData string `json:"extraData"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	raw, err := decodeHexExtra(req.ExtraData, extradata.MaxSignatureSize)
	if err != nil {
		return err
	}
	sig, err := extradata.DecodeSignature(raw)
	if err != nil {
		return extraError(err)
	}
	ds, err := p.ownDataSet(r.Context(), id)
	if err != nil {
		return err
	}
	if ds.EndEpoch != 0 {
		writeJSON(w, http.StatusConflict, map[string]any{
			"error": "data_set_already_terminated", "code": "data_set_already_terminated",
			"message":                 fmt.Sprintf("data set %d service already ends at epoch %d", id, ds.EndEpoch),
			"serviceTerminationEpoch": int64(ds.EndEpoch),
		})
		return nil
	}
	rc, err := p.chain.TerminateService(r.Context(), p.cfg.Key, chain.TerminateServiceBody{DataSetID: id, Signature: sig})
	p.countTx("terminate", err)
	if err != nil {
		return chainError("terminate service", err)
	}
	p.txs.put(&txRecord{hash: rc.Hash, kind: "terminate", dataSetID: id, epoch: rc.Epoch, at: p.now()})
	p.log.Info("service terminated", "dataSet", id, "tx", rc.Hash)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// GET /pdp/data-sets/{id}/terminate: the client-requested termination's status; 404 when none.
func (p *Provider) handleTerminateStatus(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	rec, ok := p.txs.termination(id)
	if !ok {
		return errorf(http.StatusNotFound, "unknown_termination", "no client-requested termination of data set %d", id)
	}
	ds, err := p.ownDataSet(r.Context(), id)
	if err != nil {
		return err
	}
	st := TerminateStatus{TerminationTxHash: rec.hash, TxStatus: "confirmed", TxSuccess: ptr(true), ConfirmedTxHash: rec.hash}
	if ds.EndEpoch != 0 {
		st.FWSSTerminated = true
		st.ServiceTerminationEpoch = ptr(int64(ds.EndEpoch))
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// followChain keeps storage references in step with the chain: a piece gets a reference per
// data set of this provider that holds it (pieces added), loses it when the chain removes the
// piece at a period boundary or deletes the data set. It replays the event log from the start
// on every run (references are idempotent), so nothing needs persisting.
func (p *Provider) followChain() {
	defer p.wg.Done()
	ours := dataSetPieces{}
	handle := func(ev chain.Event) error {
		switch ev.Kind {
		case chain.EvDataSetCreated:
			// The event notes the provider; without that note, ask the chain.
			mine := common.IsHexAddress(ev.Note) && common.HexToAddress(ev.Note) == p.address
			if !common.IsHexAddress(ev.Note) {
				ds, err := p.chain.DataSet(p.ctx, ev.DataSetID)
				if err != nil && !errors.Is(err, chain.ErrNotFound) {
					return err
				}
				mine = err == nil && ds.Provider == p.address
			}
			if mine {
				ours[ev.DataSetID] = map[uint64]pdp.PieceCID{}
				// Status URLs outlive a restart: the replay rebuilds the transaction records.
				p.txs.putIfAbsent(&txRecord{hash: ev.Tx.Hex(), kind: "create", dataSetID: ev.DataSetID, epoch: ev.Epoch, at: p.now()})
			}
		case chain.EvPiecesAdded:
			set, ok := ours[ev.DataSetID]
			if !ok {
				return nil
			}
			p.txs.putIfAbsent(&txRecord{hash: ev.Tx.Hex(), kind: "add", dataSetID: ev.DataSetID, pieceIDs: ev.PieceIDs, epoch: ev.Epoch, at: p.now()})
			pieces, err := p.chain.Pieces(p.ctx, ev.DataSetID)
			if err != nil {
				return err
			}
			want := map[uint64]bool{}
			for _, id := range ev.PieceIDs {
				want[id] = true
			}
			for _, pc := range pieces {
				if !want[pc.ID] {
					continue
				}
				set[pc.ID] = pc.CID
				if !pc.Removed {
					if err := p.store.AddRef(pc.CID, ev.DataSetID); err != nil {
						p.log.Warn("reference piece of data set", "piece", pc.CID.String(), "dataSet", ev.DataSetID, "err", err)
					}
				}
			}
		case chain.EvPiecesRemoved, chain.EvDataSetDeleted:
			ours.forget(ev, func(c pdp.PieceCID, ds uint64) {
				if err := p.store.RemoveRef(c, ds); err != nil {
					p.log.Debug("drop piece reference", "piece", c.String(), "dataSet", ds, "err", err)
				}
			})
		}
		return nil
	}
	p.follow("chain follower", handle)
}

// follow feeds every chain event from genesis to handle until the provider closes. When
// handle fails (the chain hiccuped while it read pieces), it retries from the failed event
// after a second, so no event is skipped.
func (p *Provider) follow(name string, handle func(chain.Event) error) {
	cursor := uint64(0)
	for p.ctx.Err() == nil {
		next, err := p.chain.Follow(p.ctx, cursor, handle)
		if p.ctx.Err() != nil {
			return
		}
		p.log.Warn(name, "cursor", next, "err", err)
		cursor = next
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// dataSetPieces is a chain follower's view of the data sets it follows: data set → piece id →
// piece, live pieces only.
type dataSetPieces map[uint64]map[uint64]pdp.PieceCID

// forget applies a pieces-removed or data-set-deleted event and calls release(c, ds) for each
// piece c that data set ds no longer holds under any piece id (a set may hold one piece twice).
// Events of other kinds, and of data sets not followed, change nothing.
func (d dataSetPieces) forget(ev chain.Event, release func(c pdp.PieceCID, ds uint64)) {
	set, ok := d[ev.DataSetID]
	if !ok {
		return
	}
	var ids []uint64
	switch ev.Kind {
	case chain.EvPiecesRemoved:
		ids = ev.PieceIDs
	case chain.EvDataSetDeleted:
		delete(d, ev.DataSetID)
		for id := range set {
			ids = append(ids, id)
		}
	default:
		return
	}
	for _, id := range ids {
		c, ok := set[id]
		if !ok {
			continue
		}
		delete(set, id)
		held := false
		for _, other := range set {
			held = held || other == c
		}
		if !held {
			release(c, ev.DataSetID)
		}
	}
}

// orZero reads a nil big integer (an absent field) as 0.
func orZero(b *big.Int) *big.Int {
	if b == nil {
		return new(big.Int)
	}
	return b
}
