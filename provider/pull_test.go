package provider

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/chain/extradata"
	"github.com/warmstore/warmstore/storage"

	"github.com/warmstore/warmstore/pdp"
)

// pullUntilDone repeats the same pull request (the reference's idempotent polling) until the
// pull is complete or failed.
func pullUntilDone(t *testing.T, r *apiRig, body map[string]any) PullResponse {
	t.Helper()
	var out PullResponse
	waitUntil(t, "pull finished", func() bool {
		out = PullResponse{}
		r.doJSON("POST", "/pdp/piece/pull", body).want(t, http.StatusOK).decode(t, &out)
		return out.Status == PullComplete || out.Status == PullFailed
	})
	return out
}

// A second provider on loopback pulls a piece from the first one's /piece/{cid}, verifying
// commP while ingesting, then commits it with the same signed extraData.
func TestPullFromAnotherProvider(t *testing.T) {
	c := newAPIChain(t)
	src := newAPIRig(t, c, 1, nil)
	dst := newAPIRig(t, c, 2, func(cfg *Config) { cfg.Pull.Attempts = 2 })
	payer := apiKey(t, 50)
	c.fundPayer(t, payer)
	dom := c.domain()

	data := apiPayload(20, 1<<20+300)
	piece := src.upload(data)
	create := signCreate(t, dom, payer, dst.p.Address(), 41, nil)
	add := signAdd(t, dom, payer, 41, 1, []pdp.PieceCID{piece}, nil)
	extra, _ := extradata.EncodeCreateAndAdd(create, add)
	body := map[string]any{
		"extraData": hexOf(extra), "recordKeeper": c.info.WarmStorage.Hex(),
		"pieces": []map[string]string{{"pieceCid": piece.String(), "sourceUrl": src.srv.URL + "/piece/" + piece.String()}},
	}
	res := pullUntilDone(t, dst, body)
	if res.Status != PullComplete || len(res.Pieces) != 1 || res.Pieces[0].PieceCID != piece.String() || res.Pieces[0].Status != PullComplete {
		t.Fatalf("pull result %+v", res)
	}
	if got := dst.do("GET", "/piece/"+piece.String(), nil).want(t, http.StatusOK).body; !bytes.Equal(got, data) {
		t.Fatal("pulled piece has other bytes")
	}
	// The pre-signed extraData commits the pulled piece on the destination.
	dst.doJSON("POST", "/pdp/data-sets/create-and-add", map[string]any{
		"recordKeeper": c.info.WarmStorage.Hex(), "pieces": addItems(piece), "extraData": hexOf(extra),
	}).want(t, http.StatusCreated)
	if refs := storeRefs(t, dst.store, piece); len(refs) != 1 {
		t.Fatalf("committed pulled piece refs %v", refs)
	}

	t.Run("bytes that do not match the CID fail and are not kept", func(t *testing.T) {
		wrong := apiPayload(21, 5000)
		claimed := commPOf(t, apiPayload(22, 5000))
		liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write(wrong)
		}))
		defer liar.Close()
		add := signAdd(t, dom, payer, 42, 1, []pdp.PieceCID{claimed}, nil)
		extra, _ := extradata.EncodeCreateAndAdd(signCreate(t, dom, payer, dst.p.Address(), 42, nil), add)
		res := pullUntilDone(t, dst, map[string]any{
			"extraData": hexOf(extra),
			"pieces":    []map[string]string{{"pieceCid": claimed.String(), "sourceUrl": liar.URL + "/piece/" + claimed.String()}},
		})
		if res.Status != PullFailed || res.Pieces[0].Status != PullFailed || !strings.Contains(res.Pieces[0].Error, "mismatch") {
			t.Fatalf("pull of lying source %+v", res)
		}
		for _, pc := range []pdp.PieceCID{claimed, commPOf(t, wrong)} {
			if storeHas(t, dst.store, pc) {
				t.Fatalf("lying source's bytes kept as %v", pc)
			}
		}
	})

	t.Run("existing data set", func(t *testing.T) {
		other := src.upload(apiPayload(23, 9000))
		// Data set 1 on the destination is the one created above with client id 41.
		add := signAdd(t, dom, payer, 41, 2, []pdp.PieceCID{other}, nil)
		raw, _ := extradata.EncodeAddPieces(add)
		res := pullUntilDone(t, dst, map[string]any{
			"extraData": hexOf(raw), "dataSetId": 1,
			"pieces": []map[string]string{{"pieceCid": other.String(), "sourceUrl": src.srv.URL + "/piece/" + other.String()}},
		})
		if res.Status != PullComplete {
			t.Fatalf("pull into existing data set %+v", res)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		src2 := src.srv.URL + "/piece/" + piece.String()
		one := func(cid, url string) []map[string]string {
			return []map[string]string{{"pieceCid": cid, "sourceUrl": url}}
		}
		// Signed by someone who is not the payer of these pieces.
		forged, _ := extradata.EncodeCreateAndAdd(signCreate(t, dom, apiKey(t, 90), dst.p.Address(), 43, nil),
			signAdd(t, dom, payer, 43, 1, []pdp.PieceCID{piece}, nil))
		dst.doJSON("POST", "/pdp/piece/pull", map[string]any{"extraData": hexOf(forged), "pieces": one(piece.String(), src2)}).wantError(t, http.StatusBadRequest, "bad_signature")
		// Signed for other pieces.
		dst.doJSON("POST", "/pdp/piece/pull", map[string]any{"extraData": hexOf(extra), "pieces": one(commPOf(t, []byte("x")).String(), src.srv.URL+"/piece/"+commPOf(t, []byte("x")).String())}).wantError(t, http.StatusBadRequest, "bad_signature")
		dst.doJSON("POST", "/pdp/piece/pull", map[string]any{"extraData": hexOf(extra), "pieces": one("garbage", src2)}).wantError(t, http.StatusBadRequest, "bad_piece_cid")
		dst.doJSON("POST", "/pdp/piece/pull", map[string]any{"extraData": hexOf(extra), "pieces": one(piece.String(), src.srv.URL+"/elsewhere")}).wantError(t, http.StatusBadRequest, "bad_source_url")
		dst.doJSON("POST", "/pdp/piece/pull", map[string]any{"extraData": "0x", "pieces": one(piece.String(), src2)}).wantError(t, http.StatusBadRequest, "bad_extra_data")
		dst.doJSON("POST", "/pdp/piece/pull", map[string]any{"extraData": hexOf(extra)}).wantError(t, http.StatusBadRequest, "no_pieces")

		strict := newAPIRig(t, c, 3, func(cfg *Config) { cfg.Pull = PullConfig{} })
		strict.doJSON("POST", "/pdp/piece/pull", map[string]any{"extraData": hexOf(extra), "pieces": one(piece.String(), src2)}).wantError(t, http.StatusBadRequest, "bad_source_url")
		httpOK := newAPIRig(t, c, 4, func(cfg *Config) { cfg.Pull = PullConfig{AllowHTTP: true} })
		httpOK.doJSON("POST", "/pdp/piece/pull", map[string]any{"extraData": hexOf(extra), "pieces": one(piece.String(), src2)}).wantError(t, http.StatusBadRequest, "bad_source_url")
		httpOK.doJSON("POST", "/pdp/piece/pull", map[string]any{"extraData": hexOf(extra), "pieces": one(piece.String(), "http://localhost:1/piece/"+piece.String())}).wantError(t, http.StatusBadRequest, "bad_source_url")
	})
}

// The pull client's dialer refuses non-public addresses even behind a hostname.
func TestPullDialerRefusesPrivateAddresses(t *testing.T) {
	d := publicOnlyDialer()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	conn, err := d.Dial("tcp", srv.Listener.Addr().String())
	if err == nil {
		conn.Close()
		t.Fatal("dialer connected to a loopback address")
	}
}

// Close stops every goroutine the provider started: the sweep, the chain follower and pulls
// still waiting to retry.
func TestCloseStopsBackgroundWork(t *testing.T) {
	c := newAPIChain(t)
	src := newAPIRig(t, c, 1, nil)
	payer := apiKey(t, 50)
	c.fundPayer(t, payer)
	piece := src.upload(apiPayload(40, 3000))
	key := apiKey(t, 5)
	if _, err := c.client.RegisterProvider(t.Context(), key, chain.RegisterProviderBody{ServiceURL: "http://127.0.0.1:1", Name: "sp5"}); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
	time.Sleep(100 * time.Millisecond) // let the servers notice the closed connections
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	st, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	chainHTTP := &http.Client{Transport: &http.Transport{}}
	defer chainHTTP.CloseIdleConnections()
	p, err := New(Config{Store: st, Chain: chain.NewClient(c.srv.URL, chainHTTP), Key: key, SweepInterval: time.Millisecond,
		Pull: PullConfig{AllowHTTP: true, AllowPrivateHosts: true, RetryDelay: time.Hour, Attempts: 5}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	extra, _ := extradata.EncodeCreateAndAdd(signCreate(t, c.domain(), payer, p.Address(), 44, nil),
		signAdd(t, c.domain(), payer, 44, 1, []pdp.PieceCID{piece}, nil))
	// The source answers 404, so the pull sits in its hour-long retry delay when Close comes.
	b, _ := json.Marshal(map[string]any{"extraData": hexOf(extra),
		"pieces": []map[string]string{{"pieceCid": piece.String(), "sourceUrl": src.srv.URL + "/nothing/piece/" + piece.String()}}})
	resp, err := http.Post(srv.URL+"/pdp/piece/pull", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pull: %d", resp.StatusCode)
	}
	time.Sleep(50 * time.Millisecond)
	srv.Close()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
}
