package chain

import (
	"crypto/ecdsa"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/pdp"
)

// testPiece is a piece with its whole Merkle tree in memory, so tests can prove any leaf.
type testPiece struct {
	cid    pdp.PieceCID
	layers [][]pdp.Node // layers[0] = leaves
}

// makePiece builds a piece of 127·2^k/4 raw bytes (2^k leaves, no zero padding).
func makePiece(t testing.TB, seed uint64, leaves int) testPiece {
	t.Helper()
	raw := make([]byte, leaves/4*127)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := 0; i < len(raw); i += 8 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.Uint64())
		copy(raw[i:], b[:])
	}
	padded := make([]byte, leaves*32)
	pdp.Pad(padded, raw)
	layer := make([]pdp.Node, leaves)
	for i := range layer {
		copy(layer[i][:], padded[i*32:])
	}
	p := testPiece{layers: [][]pdp.Node{layer}}
	for len(layer) > 1 {
		up := make([]pdp.Node, len(layer)/2)
		for i := range up {
			up[i] = pdp.HashNode(&layer[2*i], &layer[2*i+1])
		}
		p.layers = append(p.layers, up)
		layer = up
	}
	cid, err := pdp.NewPieceCID(layer[0], uint64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	p.cid = cid
	return p
}

func (p testPiece) prove(leaf uint64) pdp.Proof {
	pr := pdp.Proof{Leaf: p.layers[0][leaf]}
	pos := leaf
	for h := 0; h < len(p.layers)-1; h++ {
		pr.Path = append(pr.Path, p.layers[h][pos^1])
		pos >>= 1
	}
	return pr
}

// world drives the pure engine over an in-memory state with a hand-moved epoch.
type world struct {
	t      testing.TB
	eng    *Engine
	st     *MemStore
	beacon Beacon
	now    abi.ChainEpoch
	nonces map[common.Address]uint64

	payer, sp, edge, other *ecdsa.PrivateKey
	pieces                 map[pdp.PieceCID]testPiece
	addNonce               int64

	// When led is set, transactions go through the persistent ledger at clock = now.
	led   *Ledger
	clock *ManualClock
}

func newKey(t testing.TB, n byte) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(common.LeftPadBytes([]byte{n, 0x5e}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func addr(k *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(k.PublicKey) }

func tokens(n int64) abi.TokenAmount { return big.Mul(big.NewInt(n), big.NewInt(1e18)) }

func newWorld(t testing.TB) *world {
	cfg := DefaultConfig()
	w := &world{t: t, now: 100, nonces: map[common.Address]uint64{}, pieces: map[pdp.PieceCID]testPiece{}}
	w.payer, w.sp, w.edge, w.other = newKey(t, 1), newKey(t, 2), newKey(t, 3), newKey(t, 4)
	cfg.Edges = []common.Address{addr(w.edge)}
	eng, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.eng = eng
	w.st = NewMemStore()
	g := NewTxn(w.st)
	if err := putJSON(g, keyConfig, cfg); err != nil {
		t.Fatal(err)
	}
	w.st.Commit(g)
	w.beacon, _ = NewSecretBeacon([]byte("0123456789abcdef0123456789abcdef"))
	return w
}

func (w *world) cfg() Config { return w.eng.Config() }

func (w *world) tx(key *ecdsa.PrivateKey, kind TxKind, body any) *Tx {
	tx, err := NewTx(key, w.cfg().ChainID, kind, w.nonces[addr(key)], body)
	if err != nil {
		w.t.Fatal(err)
	}
	return tx
}

// apply applies tx and commits it on success.
func (w *world) apply(tx *Tx) ([]Event, error) {
	if w.led != nil {
		w.clock.Set(w.now)
		rc, err := w.led.Submit(tx)
		if err != nil {
			return nil, err
		}
		// The receipt and every event name the transaction by its Hash.
		want := tx.Hash(w.cfg().ChainID)
		if rc.Hash != want.Hex() {
			w.t.Fatalf("receipt hash %s, want %s", rc.Hash, want.Hex())
		}
		for _, ev := range rc.Events {
			if ev.Tx != want {
				w.t.Fatalf("event %s names tx %s, want %s", ev.Kind, ev.Tx.Hex(), want.Hex())
			}
		}
		w.nonces[tx.From]++
		return rc.Events, nil
	}
	ws, evs, err := w.eng.Apply(w.st, tx, w.now, w.beacon)
	if err != nil {
		return nil, err
	}
	w.st.Commit(ws)
	w.nonces[tx.From]++
	return evs, nil
}

func (w *world) send(key *ecdsa.PrivateKey, kind TxKind, body any) ([]Event, error) {
	return w.apply(w.tx(key, kind, body))
}

func (w *world) must(key *ecdsa.PrivateKey, kind TxKind, body any) []Event {
	w.t.Helper()
	evs, err := w.send(key, kind, body)
	if err != nil {
		w.t.Fatalf("%s: %v", kind, err)
	}
	return evs
}

func (w *world) view() *View {
	if w.led != nil {
		return NewView(w.led.store(), w.cfg(), w.now, w.beacon)
	}
	return NewView(w.st, w.cfg(), w.now, w.beacon)
}

func (w *world) hash() [32]byte {
	if w.led != nil {
		h, err := w.led.StateHash()
		if err != nil {
			w.t.Fatal(err)
		}
		return h
	}
	h, err := StateHash(w.st)
	if err != nil {
		w.t.Fatal(err)
	}
	return h
}

func (w *world) dataSet(id uint64) *DataSet {
	ds, err := w.view().DataSet(id)
	if err != nil {
		w.t.Fatal(err)
	}
	return ds
}

// setup funds the payer, approves the service, registers the provider and creates a data set
// (with the CDN when cdn is set). It returns the data set id.
func (w *world) setup(cdn bool) uint64 {
	fws := w.cfg().WarmStorage
	w.must(w.payer, TxFaucet, FaucetBody{Amount: tokens(500)})
	w.must(w.payer, TxDeposit, DepositBody{Amount: tokens(400)})
	w.must(w.payer, TxSetOperatorApproval, SetOperatorApprovalBody{Operator: fws, Approved: true,
		RateAllowance: tokens(1), LockupAllowance: tokens(1000), MaxLockupPeriod: PDPLockupPeriod})
	w.must(w.sp, TxRegisterProvider, RegisterProviderBody{ServiceURL: "http://sp.example:4000", Name: "sp1"})
	var meta []eip712.MetadataEntry
	if cdn {
		meta = []eip712.MetadataEntry{{Key: "withCDN", Value: ""}}
	}
	return w.createDataSet(1, meta)
}

func (w *world) createDataSet(clientID int64, meta []eip712.MetadataEntry) uint64 {
	sig, err := w.eng.Domain().Sign(w.payer, eip712.CreateDataSet{ClientDataSetID: big.NewInt(clientID).Int, Payee: addr(w.sp), Metadata: meta})
	if err != nil {
		w.t.Fatal(err)
	}
	evs := w.must(w.sp, TxCreateDataSet, CreateDataSetBody{Payer: addr(w.payer), ClientDataSetID: big.NewInt(clientID), Metadata: meta, Signature: sig})
	for _, e := range evs {
		if e.Kind == EvDataSetCreated {
			return e.DataSetID
		}
	}
	w.t.Fatal("no DataSetCreated event")
	return 0
}

// addBody signs an AddPieces for the given pieces with the next nonce.
func (w *world) addBody(id uint64, signer *ecdsa.PrivateKey, ps ...testPiece) AddPiecesBody {
	ds := w.dataSet(id)
	w.addNonce++
	b := AddPiecesBody{DataSetID: id, Nonce: big.NewInt(w.addNonce)}
	for _, p := range ps {
		w.pieces[p.cid] = p
		b.Pieces = append(b.Pieces, p.cid)
	}
	meta := make([][]eip712.MetadataEntry, len(ps))
	b.PieceMetadata = meta
	sig, err := w.eng.Domain().Sign(signer, AddPiecesAuthorization(ds.ClientDataSetID.Int, b.Nonce.Int, b.Pieces, meta))
	if err != nil {
		w.t.Fatal(err)
	}
	b.Signature = sig
	return b
}

func (w *world) addPieces(id uint64, ps ...testPiece) {
	w.t.Helper()
	w.must(w.sp, TxAddPieces, w.addBody(id, w.payer, ps...))
}

// schedule calls NextProvingPeriod choosing the start of the next window as challenge epoch.
func (w *world) schedule(id uint64) []Event {
	w.t.Helper()
	ce, ok := w.cfg().NextChallengeEpoch(w.dataSet(id), w.now)
	if !ok {
		w.t.Fatalf("cannot schedule data set %d at %d", id, w.now)
	}
	return w.must(w.sp, TxNextProvingPeriod, NextProvingPeriodBody{DataSetID: id, ChallengeEpoch: ce})
}

// proofs answers the data set's current challenges honestly.
func (w *world) proofs(id uint64) []pdp.Proof {
	w.t.Helper()
	cs, err := w.view().Challenges(id)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []pdp.Proof
	for _, ch := range cs.Challenges {
		out = append(out, w.pieces[ch.Piece].prove(ch.Offset))
	}
	return out
}

func (w *world) prove(id uint64) error {
	_, err := w.send(w.sp, TxProvePossession, ProvePossessionBody{DataSetID: id, Proofs: w.proofs(id)})
	return err
}

// toChallenge moves the clock to the data set's challenge epoch.
func (w *world) toChallenge(id uint64) {
	ds := w.dataSet(id)
	if w.now < ds.NextChallengeEpoch {
		w.now = ds.NextChallengeEpoch
	}
}

func (w *world) account(a common.Address) *Account {
	acc, err := w.view().Account(a)
	if err != nil {
		w.t.Fatal(err)
	}
	return acc
}

func countKind(evs []Event, k EventKind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func findKind(evs []Event, k EventKind) *Event {
	for i := range evs {
		if evs[i].Kind == k {
			return &evs[i]
		}
	}
	return nil
}
