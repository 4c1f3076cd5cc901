package provider

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"io"
	stdbig "math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/chain/extradata"
	"github.com/warmstore/warmstore/payments"
	"github.com/warmstore/warmstore/pdp"
)

// nodeClient is a client of a provider node's HTTP API, doing what the Synapse SDK does.
type nodeClient struct {
	t    testing.TB
	base string
	hc   *http.Client
}

func (c *nodeClient) do(method, path string, body io.Reader, contentType string) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, b
}

func (c *nodeClient) json(method, path string, in any, wantStatus int, out any) *http.Response {
	c.t.Helper()
	raw, err := json.Marshal(in)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, b := c.do(method, path, bytes.NewReader(raw), "application/json")
	if resp.StatusCode != wantStatus {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return resp
}

// upload stores payload with the one-shot flow (POST /pdp/piece, PUT the bytes).
func (c *nodeClient) upload(payload []byte) pdp.PieceCID {
	c.t.Helper()
	piece, err := pdp.CommP(bytes.NewReader(payload))
	if err != nil {
		c.t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]string{"pieceCid": piece.String()})
	resp, b := c.do("POST", "/pdp/piece", bytes.NewReader(raw), "application/json")
	switch resp.StatusCode {
	case http.StatusOK:
		return piece
	case http.StatusCreated:
	default:
		c.t.Fatalf("POST /pdp/piece: %d %s", resp.StatusCode, b)
	}
	resp, b = c.do("PUT", resp.Header.Get("Location"), bytes.NewReader(payload), "application/octet-stream")
	if resp.StatusCode != http.StatusNoContent {
		c.t.Fatalf("PUT upload: %d %s", resp.StatusCode, b)
	}
	return piece
}

// createAndAdd creates a data set holding pieces, with the payer's signatures in extraData.
func (c *nodeClient) createAndAdd(ch *chain.Client, payer *ecdsa.PrivateKey, payee [20]byte, clientID int64, pieces ...pdp.PieceCID) uint64 {
	c.t.Helper()
	ctx := context.Background()
	in, err := ch.Info(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	dom, _ := ch.Domain(ctx)
	id := stdbig.NewInt(clientID)
	csig, err := dom.Sign(payer, eip712.CreateDataSet{ClientDataSetID: id, Payee: payee})
	if err != nil {
		c.t.Fatal(err)
	}
	data := make([][]byte, len(pieces))
	items := make([]map[string]any, len(pieces))
	for i, p := range pieces {
		data[i] = p.CID().Bytes()
		items[i] = map[string]any{"pieceCid": p.String(), "subPieces": []map[string]string{{"subPieceCid": p.String()}}}
	}
	meta := make([][]eip712.MetadataEntry, len(pieces))
	nonce := stdbig.NewInt(clientID * 1000)
	asig, err := dom.Sign(payer, eip712.AddPieces{ClientDataSetID: id, Nonce: nonce, PieceData: data, PieceMetadata: meta})
	if err != nil {
		c.t.Fatal(err)
	}
	extra, err := extradata.EncodeCreateAndAdd(
		extradata.CreateDataSet{Payer: crypto.PubkeyToAddress(payer.PublicKey), ClientDataSetID: id, Signature: csig},
		extradata.AddPieces{Nonce: nonce, PieceMetadata: meta, Signature: asig})
	if err != nil {
		c.t.Fatal(err)
	}
	resp := c.json("POST", "/pdp/data-sets/create-and-add", map[string]any{"recordKeeper": in.WarmStorage.Hex(), "pieces": items, "extraData": hexutil.Encode(extra)}, http.StatusCreated, nil)
	var st CreatedStatus
	c.json("GET", resp.Header.Get("Location"), nil, http.StatusOK, &st)
	if !st.DataSetCreated || !st.PiecesAdded || len(st.ConfirmedPieceIDs) != len(pieces) {
		c.t.Fatalf("create-and-add status %+v", st)
	}
	return st.DataSetID
}

// TestNodeEndToEnd runs a whole provider node (HTTP API, store, prover, settler, embedded
// chain on a manual clock): a client uploads over HTTP, creates a data set with a piece,
// several periods are proven and settled by the node's own settlement loop, and the payee's
// funds grow by exactly what the chain paid. A piece file removed behind the node's back makes
// the next period fault and go unpaid; once the client uploads the piece again, proving and
// payment resume.
func TestNodeEndToEnd(t *testing.T) {
	ctx := context.Background()
	clock := chain.NewManualClock(1000)
	beacon, _ := chain.NewSecretBeacon([]byte("node e2e beacon secret, fixed!!"))
	cfg := testConfig()
	dir := t.TempDir()
	n, err := StartNode(ctx, NodeConfig{DataDir: dir, Listen: "127.0.0.1:0", ChainListen: "127.0.0.1:0", Name: "e2e",
		ChainConfig: &cfg, Clock: clock, Beacon: beacon, ProvePoll: 5 * time.Millisecond, SettleInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := n.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	// The key file was created with owner-only permissions.
	if fi, err := os.Stat(filepath.Join(dir, "provider.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("provider.key: %v, %v", fi, err)
	}
	c := &nodeClient{t: t, base: n.URL(), hc: &http.Client{Timeout: time.Minute}}
	ch := n.Chain
	m := cfg.ProvingPeriod
	payee := n.Address()
	payerKey := testKey(t, 9)
	if err := fundWallet(ctx, ch, payerKey, tokens(500), tokens(400)); err != nil {
		t.Fatal(err)
	}
	fundsAtStart := accountFunds(t, ch, payee)

	payload := randomPayload(42, 200_000)
	piece := c.upload(payload)
	id := c.createAndAdd(ch, payerKey, payee, 1, piece)

	ds := func() *chain.DataSet {
		d, err := ch.DataSet(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	waitFor(t, "first period scheduled", 10*time.Second, func() bool { return ds().Deadline != 0 })
	activation := ds().Activation
	provedThrough := func() abi.ChainEpoch {
		cur := ds()
		clock.Set(cur.NextChallengeEpoch)
		waitFor(t, "period proven and next scheduled", 20*time.Second, func() bool { return ds().Deadline == cur.Deadline+m })
		return cur.Deadline
	}
	var last abi.ChainEpoch
	for range 3 {
		last = provedThrough()
	}
	// The settlement loop pays up to the last closed deadline once the chain is past it.
	clock.Set(last + 1)
	rail := ds().PDPRail
	waitFor(t, "rail settled to the third deadline", 10*time.Second, func() bool {
		r, err := ch.Rail(ctx, rail)
		return err == nil && r.SettledUpTo == last
	})

	// Lose the piece file.
	blobs, _ := filepath.Glob(filepath.Join(dir, "storage", "blobs", "*.data"))
	if len(blobs) != 1 {
		t.Fatalf("piece files %v, want one", blobs)
	}
	if err := os.Remove(blobs[0]); err != nil {
		t.Fatal(err)
	}
	faulted := ds()
	clock.Set(faulted.NextChallengeEpoch)
	waitFor(t, "the period to fail", 10*time.Second, func() bool { return counterValue(t, n.Prover.m.ProofsFailed) == 1 })
	clock.Set(faulted.Deadline + 1)
	waitFor(t, "rescheduled after the fault", 10*time.Second, func() bool { return ds().Deadline == faulted.Deadline+m })
	// The client notices (the piece is not retrievable) and uploads it again.
	if resp, _ := c.do("GET", "/piece/"+piece.String(), nil, ""); resp.StatusCode == http.StatusOK {
		t.Fatalf("a piece whose file is gone is still served")
	}
	if again := c.upload(payload); again != piece {
		t.Fatal("re-upload produced another piece")
	}
	resumed := provedThrough()
	clock.Set(resumed + 1)
	waitFor(t, "rail settled past the resumed period", 10*time.Second, func() bool {
		r, err := ch.Rail(ctx, rail)
		return err == nil && r.SettledUpTo == resumed
	})

	// Exactly what the chain says: the rail paid rate × proven epochs (3 + 1 periods; the
	// faulted one paid nothing), minus the network fee, and the payee's funds grew by the net
	// of every settlement and one-time payment to it.
	r, err := ch.Rail(ctx, rail)
	if err != nil {
		t.Fatal(err)
	}
	gross, net := big.Zero(), big.Zero()
	var settledTo abi.ChainEpoch
	for _, ev := range allEvents(t, ch) {
		switch {
		case ev.Kind == chain.EvRailSettled && ev.RailID == rail:
			gross = big.Add(gross, *ev.Amount)
			net = big.Add(net, *ev.NetPayee)
			if fee := payments.NetworkFee(*ev.Amount); !ev.NetworkFee.Equals(fee) || !ev.NetPayee.Equals(big.Sub(*ev.Amount, fee)) {
				t.Errorf("settlement %+v: fee should be %v", ev, fee)
			}
			settledTo = max(settledTo, ev.SettledUpTo)
		case ev.Kind == chain.EvOneTimePayment && ev.RailID == rail:
			net = big.Add(net, *ev.NetPayee)
		}
	}
	wantGross := big.Mul(r.PaymentRate, big.NewInt(int64(4*m)))
	if !gross.Equals(wantGross) {
		t.Errorf("settled gross %v, want rate %v × %d proven epochs = %v", gross, r.PaymentRate, 4*m, wantGross)
	}
	if grew := big.Sub(accountFunds(t, ch, payee), fundsAtStart); !grew.Equals(net) {
		t.Errorf("payee funds grew by %v, the chain paid %v net", grew, net)
	}
	if settledTo != resumed {
		t.Errorf("settled to %d, want %d", settledTo, resumed)
	}
	faultPeriod := uint64((faulted.Deadline - activation - 1) / m)
	if ok, _ := ch.IsProven(ctx, id, faultPeriod); ok {
		t.Error("the faulted period is marked proven")
	}
	if got := counterValue(t, n.Prover.m.Faults); got != 1 {
		t.Errorf("faults metric %v, want 1", got)
	}
	// Metrics are exposed on the node's /metrics.
	resp, body := c.do("GET", "/metrics", nil, "")
	for _, name := range []string{"warmstore_provider_proofs_ok_total 4", "warmstore_provider_proofs_failed_total 1", "warmstore_provider_faults_total 1", "warmstore_provider_proof_latency_seconds_count 4"} {
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(name)) {
			t.Errorf("/metrics lacks %q", name)
		}
	}
	// The retrieved piece is the uploaded bytes.
	resp, got := c.do("GET", "/piece/"+piece.String(), nil, "")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, payload) {
		t.Fatalf("GET /piece: %d, %d bytes", resp.StatusCode, len(got))
	}
}

func accountFunds(t testing.TB, ch *chain.Client, a [20]byte) abi.TokenAmount {
	t.Helper()
	acc, err := ch.Account(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	return acc.Payments.Funds
}

func allEvents(t testing.TB, ch *chain.Client) []chain.Event {
	t.Helper()
	var out []chain.Event
	var after uint64
	for {
		evs, err := ch.Events(context.Background(), after, 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
		out = append(out, evs...)
		after = evs[len(evs)-1].Seq
	}
}

// dripReader hands out its bytes in small chunks with pauses: an upload that is still
// streaming when the node is asked to stop.
type dripReader struct {
	b       []byte
	started chan struct{}
	once    bool
}

func (r *dripReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if !r.once {
		r.once = true
		close(r.started)
	}
	n := min(len(p), 16<<10, len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	time.Sleep(2 * time.Millisecond)
	return n, nil
}

// TestNodeCloseFinishesInFlightUpload: Close waits for an upload that is streaming, which
// completes with 204 and is stored after a restart; new connections are refused meanwhile.
func TestNodeCloseFinishesInFlightUpload(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig()
	start := func() *Node {
		n, err := StartNode(ctx, NodeConfig{DataDir: dir, Listen: "127.0.0.1:0", ChainListen: "127.0.0.1:0",
			ChainConfig: &cfg, Clock: chain.NewManualClock(10), ProvePoll: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := start()
	c := &nodeClient{t: t, base: n.URL(), hc: &http.Client{Timeout: time.Minute}}
	payload := randomPayload(5, 1<<20)
	piece, err := pdp.CommP(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	loc := c.json("POST", "/pdp/piece", map[string]string{"pieceCid": piece.String()}, http.StatusCreated, nil).Header.Get("Location")
	body := &dripReader{b: payload, started: make(chan struct{})}
	put := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("PUT", n.URL()+loc, body)
		req.ContentLength = int64(len(payload))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("PUT during shutdown: %v", err)
			put <- -1
			return
		}
		resp.Body.Close()
		put <- resp.StatusCode
	}()
	<-body.started
	// Stop only once the server is receiving the body (a connection still in the accept queue
	// is not in flight: closing the listener refuses it).
	id := loc[strings.LastIndexByte(loc, '/')+1:]
	waitFor(t, "the upload to be received", 10*time.Second, func() bool {
		sess, err := n.Store.Session(id)
		return err == nil && sess.State == sessionUploading
	})
	closed := make(chan error, 1)
	go func() { closed <- n.Close(ctx) }()
	if code := <-put; code != http.StatusNoContent {
		t.Fatalf("in-flight upload ended with %d during shutdown, want 204", code)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := http.Get(n.URL() + "/pdp/ping"); err == nil {
		t.Fatal("the API still answers after Close")
	}
	n = start()
	defer n.Close(ctx)
	if has, err := n.Store.Has(piece); err != nil || !has {
		t.Fatalf("piece uploaded during shutdown: has=%v err=%v", has, err)
	}
}
