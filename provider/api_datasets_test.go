package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/chain/extradata"
	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage"
)

var txLocation = regexp.MustCompile(`/(0x[0-9a-f]{64})$`)

// The whole data-set life through the HTTP API with ABI extraData signed by a real payer key:
// create-and-add, status URLs, get, add, piece detail, delete (reference dropped when the chain
// removes the piece), plain create, terminate.
func TestDataSetLifecycle(t *testing.T) {
	c := newAPIChain(t)
	r := newAPIRig(t, c, 1, nil)
	payer := apiKey(t, 50)
	c.fundPayer(t, payer)
	dom := c.domain()
	rk := c.info.WarmStorage.Hex()
	payee := r.p.Address()

	a := r.upload(apiPayload(10, 3000))
	b := r.upload(apiPayload(11, 70_000))
	cc := r.upload(apiPayload(12, 128))

	// Create and add in one request.
	meta := []eip712.MetadataEntry{{Key: "source", Value: "provider-test"}, {Key: "withIPFSIndexing", Value: ""}}
	create := signCreate(t, dom, payer, payee, 7, meta)
	pieceMeta := [][]eip712.MetadataEntry{{{Key: "name", Value: "a"}}, {}}
	add := signAdd(t, dom, payer, 7, 1, []pdp.PieceCID{a, b}, pieceMeta)
	extra, err := extradata.EncodeCreateAndAdd(create, add)
	if err != nil {
		t.Fatal(err)
	}
	resp := r.doJSON("POST", "/pdp/data-sets/create-and-add", map[string]any{
		"recordKeeper": rk, "pieces": addItems(a, b), "extraData": hexOf(extra),
	}).want(t, http.StatusCreated)
	loc := resp.Header.Get("Location")
	m := txLocation.FindStringSubmatch(loc)
	if m == nil || !strings.HasPrefix(loc, "/pdp/data-sets/created/") {
		t.Fatalf("Location %q", loc)
	}
	var created CreatedStatus
	st := r.do("GET", loc, nil).want(t, http.StatusOK)
	st.decode(t, &created)
	if !created.DataSetCreated || created.TxStatus != "confirmed" || created.OK == nil || !*created.OK ||
		created.CreateMessageHash != m[1] || created.Service != ServiceName || !created.PiecesAdded || len(created.ConfirmedPieceIDs) != 2 {
		t.Fatalf("created status %s", st.body)
	}
	id := created.DataSetID
	ds, err := c.client.DataSet(context.Background(), id)
	if err != nil || ds.Payer != create.Payer || ds.Provider != payee || len(ds.Metadata) != 2 {
		t.Fatalf("chain data set %+v, %v", ds, err)
	}
	// The added status answers for the create hash of a create-and-add too.
	var added AddedStatus
	r.do("GET", fmt.Sprintf("/pdp/data-sets/%d/pieces/added/%s", id, m[1]), nil).want(t, http.StatusOK).decode(t, &added)
	if !added.PiecesAdded || !slices.Equal(added.ConfirmedPieceIDs, []uint64{0, 1}) {
		t.Fatalf("added status %+v", added)
	}
	for _, pc := range []pdp.PieceCID{a, b} {
		if refs := storeRefs(t, r.store, pc); !slices.Equal(refs, []uint64{id}) {
			t.Fatalf("refs of %v = %v, want [%d]", pc, refs, id)
		}
	}

	// Get: the SDK's shape.
	var got struct {
		ID                 uint64 `json:"id"`
		NextChallengeEpoch int64  `json:"nextChallengeEpoch"`
		Pieces             []struct {
			PieceID        uint64 `json:"pieceId"`
			PieceCID       string `json:"pieceCid"`
			SubPieceCID    string `json:"subPieceCid"`
			SubPieceOffset uint64 `json:"subPieceOffset"`
		} `json:"pieces"`
	}
	r.do("GET", fmt.Sprintf("/pdp/data-sets/%d", id), nil).want(t, http.StatusOK).decode(t, &got)
	if got.ID != id || len(got.Pieces) != 2 || got.Pieces[0].PieceCID != a.String() || got.Pieces[1].SubPieceCID != b.String() || got.Pieces[1].PieceID != 1 {
		t.Fatalf("get data set %+v", got)
	}

	// Add one more piece.
	add2 := signAdd(t, dom, payer, 7, 2, []pdp.PieceCID{cc}, nil)
	raw, _ := extradata.EncodeAddPieces(add2)
	resp = r.doJSON("POST", fmt.Sprintf("/pdp/data-sets/%d/pieces", id), map[string]any{"pieces": addItems(cc), "extraData": hexOf(raw)}).want(t, http.StatusCreated)
	loc = resp.Header.Get("Location")
	if !strings.HasPrefix(loc, fmt.Sprintf("/pdp/data-sets/%d/pieces/added/0x", id)) || txLocation.FindStringSubmatch(loc) == nil {
		t.Fatalf("add Location %q", loc)
	}
	st = r.do("GET", loc, nil).want(t, http.StatusOK)
	st.decode(t, &added)
	if added.TxStatus != "confirmed" || added.AddMessageOK == nil || !*added.AddMessageOK || !slices.Equal(added.ConfirmedPieceIDs, []uint64{2}) || added.PieceCount != 1 || added.DataSetID != id {
		t.Fatalf("added status %s", st.body)
	}
	var detail PieceDetail
	r.do("GET", fmt.Sprintf("/pdp/data-sets/%d/pieces/2", id), nil).want(t, http.StatusOK).decode(t, &detail)
	if detail.PieceCID != cc.String() || len(detail.SubPieces) != 1 || detail.SubPieces[0].SubPieceCID != cc.String() {
		t.Fatalf("piece detail %+v", detail)
	}

	t.Run("refusals", func(t *testing.T) {
		// The same signed add again: the chain refuses the used nonce; the client sees its 4xx.
		rr := r.doJSON("POST", fmt.Sprintf("/pdp/data-sets/%d/pieces", id), map[string]any{"pieces": addItems(cc), "extraData": hexOf(raw)})
		if rr.StatusCode < 400 || rr.StatusCode >= 500 {
			t.Fatalf("replayed add: %d %s", rr.StatusCode, rr.body)
		}
		rr.wantError(t, rr.StatusCode, "chain_nonce_used")
		// A piece that is not stored here.
		ghost := commPOf(t, apiPayload(99, 500))
		g := signAdd(t, dom, payer, 7, 3, []pdp.PieceCID{ghost}, nil)
		graw, _ := extradata.EncodeAddPieces(g)
		r.doJSON("POST", fmt.Sprintf("/pdp/data-sets/%d/pieces", id), map[string]any{"pieces": addItems(ghost), "extraData": hexOf(graw)}).wantError(t, http.StatusBadRequest, "piece_not_stored")
		// Signed by someone else: the chain refuses the signature.
		forged := signAdd(t, dom, apiKey(t, 77), 7, 4, []pdp.PieceCID{cc}, nil)
		fraw, _ := extradata.EncodeAddPieces(forged)
		rr = r.doJSON("POST", fmt.Sprintf("/pdp/data-sets/%d/pieces", id), map[string]any{"pieces": addItems(cc), "extraData": hexOf(fraw)})
		if rr.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forged add: %d %s", rr.StatusCode, rr.body)
		}
		// Garbage extraData.
		r.doJSON("POST", fmt.Sprintf("/pdp/data-sets/%d/pieces", id), map[string]any{"pieces": addItems(cc), "extraData": "0x1234"}).wantError(t, http.StatusBadRequest, "bad_extra_data")
		r.doJSON("POST", fmt.Sprintf("/pdp/data-sets/%d/pieces", id), map[string]any{"pieces": addItems(cc), "extraData": "nothex"}).wantError(t, http.StatusBadRequest, "bad_extra_data")
		// Aggregates are refused.
		agg := []map[string]any{{"pieceCid": cc.String(), "subPieces": []map[string]string{{"subPieceCid": a.String()}, {"subPieceCid": b.String()}}}}
		r.doJSON("POST", fmt.Sprintf("/pdp/data-sets/%d/pieces", id), map[string]any{"pieces": agg, "extraData": hexOf(raw)}).wantError(t, http.StatusBadRequest, "aggregates_unsupported")
		// Wrong record keeper.
		r.doJSON("POST", "/pdp/data-sets", map[string]any{"recordKeeper": common.Address{1}.Hex(), "extraData": hexOf(extra)}).wantError(t, http.StatusBadRequest, "bad_record_keeper")
		// Unknown and malformed data set ids.
		r.do("GET", "/pdp/data-sets/999", nil).wantError(t, http.StatusNotFound, "unknown_data_set")
		r.do("GET", "/pdp/data-sets/abc", nil).wantError(t, http.StatusBadRequest, "bad_id")
		r.do("GET", fmt.Sprintf("/pdp/data-sets/%d/pieces/77", id), nil).wantError(t, http.StatusNotFound, "unknown_piece")
		r.do("GET", "/pdp/data-sets/created/0x1234", nil).wantError(t, http.StatusNotFound, "unknown_tx")
		r.do("GET", fmt.Sprintf("/pdp/data-sets/%d/pieces/added/0x99", id), nil).wantError(t, http.StatusNotFound, "unknown_tx")
	})

	// Delete piece 0 (a): scheduled now, removed by the chain at the next period boundary,
	// and only then is the storage reference dropped.
	sig, err := dom.Sign(payer, eip712.SchedulePieceRemovals{ClientDataSetID: big.NewInt(7), PieceIDs: []*big.Int{big.NewInt(0)}})
	if err != nil {
		t.Fatal(err)
	}
	del, _ := extradata.EncodeSignature(sig)
	var delResp struct {
		TxHash string `json:"txHash"`
	}
	r.doJSON("DELETE", fmt.Sprintf("/pdp/data-sets/%d/pieces/0", id), map[string]any{"extraData": hexOf(del)}).want(t, http.StatusOK).decode(t, &delResp)
	if !regexp.MustCompile(`^0x[0-9a-f]{64}$`).MatchString(delResp.TxHash) {
		t.Fatalf("delete txHash %q", delResp.TxHash)
	}
	r.doJSON("DELETE", fmt.Sprintf("/pdp/data-sets/%d/pieces/1", id), map[string]any{"extraData": "0x00"}).wantError(t, http.StatusBadRequest, "bad_extra_data")
	if refs := storeRefs(t, r.store, a); len(refs) != 1 {
		t.Fatalf("reference dropped before the chain removed the piece: %v", refs)
	}
	if _, err := c.client.NextProvingPeriod(context.Background(), r.key, chain.NextProvingPeriodBody{DataSetID: id, ChallengeEpoch: 120}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "reference of the removed piece dropped", func() bool {
		return len(storeRefs(t, r.store, a)) == 0
	})
	if refs := storeRefs(t, r.store, b); len(refs) != 1 {
		t.Fatalf("kept piece lost its reference: %v", refs)
	}
	r.do("GET", fmt.Sprintf("/pdp/data-sets/%d/pieces/0", id), nil).wantError(t, http.StatusNotFound, "unknown_piece")

	// A plain create, then terminate it with the payer's consent.
	create2 := signCreate(t, dom, payer, payee, 8, nil)
	craw, _ := extradata.EncodeCreateDataSet(create2)
	loc = r.doJSON("POST", "/pdp/data-sets", map[string]any{"recordKeeper": rk, "extraData": hexOf(craw)}).want(t, http.StatusCreated).Header.Get("Location")
	var created2 CreatedStatus
	r.do("GET", loc, nil).want(t, http.StatusOK).decode(t, &created2)
	id2 := created2.DataSetID
	if id2 == id || created2.PiecesAdded || !created2.DataSetCreated {
		t.Fatalf("second create %+v", created2)
	}
	var empty DataSetResponse
	r.do("GET", fmt.Sprintf("/pdp/data-sets/%d", id2), nil).want(t, http.StatusOK).decode(t, &empty)
	if empty.Pieces == nil || len(empty.Pieces) != 0 {
		t.Fatalf("empty data set pieces %v (must be [] not null)", empty.Pieces)
	}
	r.do("GET", fmt.Sprintf("/pdp/data-sets/%d/terminate", id2), nil).wantError(t, http.StatusNotFound, "unknown_termination")
	tsig, _ := dom.Sign(payer, eip712.TerminateService{DataSetID: new(big.Int).SetUint64(id2)})
	traw, _ := extradata.EncodeSignature(tsig)
	r.doJSON("POST", fmt.Sprintf("/pdp/data-sets/%d/terminate", id2), map[string]any{"extraData": hexOf(traw)}).want(t, http.StatusAccepted)
	var ts TerminateStatus
	tr := r.do("GET", fmt.Sprintf("/pdp/data-sets/%d/terminate", id2), nil).want(t, http.StatusOK)
	tr.decode(t, &ts)
	if !ts.FWSSTerminated || ts.ServiceTerminationEpoch == nil || ts.TxStatus != "confirmed" || ts.TxSuccess == nil || !*ts.TxSuccess || !strings.HasPrefix(ts.TerminationTxHash, "0x") {
		t.Fatalf("terminate status %s", tr.body)
	}
	conflict := r.doJSON("POST", fmt.Sprintf("/pdp/data-sets/%d/terminate", id2), map[string]any{"extraData": hexOf(traw)}).want(t, http.StatusConflict)
	var cb struct {
		Error string `json:"error"`
		Epoch *int64 `json:"serviceTerminationEpoch"`
	}
	if err := json.Unmarshal(conflict.body, &cb); err != nil || cb.Error != "data_set_already_terminated" || cb.Epoch == nil || *cb.Epoch != *ts.ServiceTerminationEpoch {
		t.Fatalf("409 body %s", conflict.body)
	}
	// A create-and-add that adds nothing is not a create-and-add.
	r.doJSON("POST", "/pdp/data-sets", map[string]any{"recordKeeper": rk, "extraData": hexOf(craw), "pieces": addItems(a)}).wantError(t, http.StatusBadRequest, "bad_request")
}

// A provider without a chain serves uploads and retrieval and refuses data-set routes clearly.
func TestDataSetRoutesWithoutChain(t *testing.T) {
	r := newAPIRig(t, nil, 1, nil)
	r.doJSON("POST", "/pdp/data-sets", map[string]any{"recordKeeper": common.Address{}.Hex(), "extraData": "0x00"}).wantError(t, http.StatusServiceUnavailable, "no_chain")
	r.do("GET", "/pdp/data-sets/1", nil).wantError(t, http.StatusServiceUnavailable, "no_chain")
}

// After a restart on the same store and chain: sessions waiting for data survive, an upload
// cut by the restart is dropped, status URLs answer again (rebuilt from chain events) and
// references are kept.
func TestRestartKeepsSessionsAndStatus(t *testing.T) {
	c := newAPIChain(t)
	r := newAPIRig(t, c, 1, nil)
	payer := apiKey(t, 50)
	c.fundPayer(t, payer)
	data := apiPayload(60, 7000)
	piece := r.upload(data)
	dom := c.domain()
	extra, _ := extradata.EncodeCreateAndAdd(signCreate(t, dom, payer, r.p.Address(), 9, nil), signAdd(t, dom, payer, 9, 1, []pdp.PieceCID{piece}, nil))
	loc := r.doJSON("POST", "/pdp/data-sets/create-and-add", map[string]any{
		"recordKeeper": c.info.WarmStorage.Hex(), "pieces": addItems(piece), "extraData": hexOf(extra),
	}).want(t, http.StatusCreated).Header.Get("Location")
	other := apiPayload(61, 3000)
	waiting := r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": commPOf(t, other).String()}).want(t, http.StatusCreated).Header.Get("Location")
	cut, err := r.store.CreateSession(storage.Session{State: sessionUploading})
	if err != nil {
		t.Fatal(err)
	}

	r.srv.Close()
	r.p.Close()
	p2, err := New(Config{Store: r.store, Chain: c.client, Key: r.key, Now: r.clock.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	r.p = p2
	r.srv = httptest.NewServer(p2.Handler())
	defer r.srv.Close()

	if _, err := r.store.Session(cut.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("interrupted upload session survived the restart: %v", err)
	}
	r.do("PUT", waiting, bytes.NewReader(other)).want(t, http.StatusNoContent)
	waitUntil(t, "status rebuilt from chain events", func() bool {
		return r.do("GET", loc, nil).StatusCode == http.StatusOK
	})
	var st CreatedStatus
	r.do("GET", loc, nil).want(t, http.StatusOK).decode(t, &st)
	if !st.DataSetCreated || st.DataSetID != 1 {
		t.Fatalf("status after restart %+v", st)
	}
	if refs := storeRefs(t, r.store, piece); len(refs) != 1 {
		t.Fatalf("refs after restart %v", refs)
	}
}

// When the chain is down, data-set routes answer 502 with a message; uploads keep working.
func TestChainUnreachableIs502(t *testing.T) {
	c := newAPIChain(t)
	r := newAPIRig(t, c, 1, nil)
	c.srv.Close()
	r.do("GET", "/pdp/data-sets/1", nil).wantError(t, http.StatusBadGateway, "chain_unreachable")
	r.upload(apiPayload(70, 1000))
}

// A create-and-add whose add signature is bad is refused before the data set is created.
func TestCreateAndAddChecksAddBeforeCreating(t *testing.T) {
	c := newAPIChain(t)
	r := newAPIRig(t, c, 1, nil)
	payer := apiKey(t, 50)
	c.fundPayer(t, payer)
	dom := c.domain()
	a := r.upload(apiPayload(90, 2000))
	b := r.upload(apiPayload(91, 2000))
	// The add is signed for piece b, the request adds piece a.
	extra, _ := extradata.EncodeCreateAndAdd(signCreate(t, dom, payer, r.p.Address(), 5, nil), signAdd(t, dom, payer, 5, 1, []pdp.PieceCID{b}, nil))
	r.doJSON("POST", "/pdp/data-sets/create-and-add", map[string]any{
		"recordKeeper": c.info.WarmStorage.Hex(), "pieces": addItems(a), "extraData": hexOf(extra),
	}).wantError(t, http.StatusBadRequest, "bad_signature")
	sets, err := c.client.DataSets(context.Background(), r.p.Address(), common.Address{})
	if err != nil || len(sets) != 0 {
		t.Fatalf("data sets after a refused create-and-add: %v, %v", sets, err)
	}
}
