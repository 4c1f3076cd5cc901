package chain

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/filecoin-project/go-state-types/abi"
)

func TestRealClock(t *testing.T) {
	g := time.Unix(1_700_000_000, 0)
	now := g.Add(95 * time.Second)
	c := RealClock{Genesis: g, Now: func() time.Time { return now }}
	if e := c.Epoch(); e != 3 {
		t.Fatalf("30 s epochs: epoch %d after 95 s, want 3", e)
	}
	c.EpochDuration = time.Second
	if e := c.Epoch(); e != 95 {
		t.Fatalf("1 s epochs: epoch %d, want 95", e)
	}
	if !c.TimeOf(95).Equal(g.Add(95 * time.Second)) {
		t.Fatal("TimeOf")
	}
	now = g.Add(-time.Hour)
	if e := c.Epoch(); e != 0 {
		t.Fatalf("before genesis: %d", e)
	}
}

func TestManualClock(t *testing.T) {
	c := NewManualClock(10)
	c.Advance(5)
	c.Set(3) // backwards: ignored
	if c.Epoch() != 15 {
		t.Fatalf("epoch %d", c.Epoch())
	}
}

func TestSecretBeacon(t *testing.T) {
	if _, err := NewSecretBeacon([]byte("short")); err == nil {
		t.Fatal("short secret accepted")
	}
	b1, err := NewSecretBeacon(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	b2, err := NewSecretBeacon(bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	randomness := func(b Beacon, e abi.ChainEpoch) [32]byte {
		t.Helper()
		r, err := b.Randomness(e)
		if err != nil {
			t.Fatalf("randomness at %d: %v", e, err)
		}
		return r
	}
	r1, r1again, r1next, r2 := randomness(b1, 100), randomness(b1, 100), randomness(b1, 101), randomness(b2, 100)
	if r1 != r1again {
		t.Fatal("not deterministic")
	}
	if r1 == r1next || r1 == r2 {
		t.Fatal("randomness does not depend on epoch and secret")
	}
}

func TestTxSignature(t *testing.T) {
	key, _ := crypto.GenerateKey()
	other, _ := crypto.GenerateKey()
	tx, err := NewTx(key, 7, TxDeposit, 3, map[string]string{"amount": "5"})
	if err != nil {
		t.Fatal(err)
	}
	if from, err := tx.Sender(7); err != nil || from != crypto.PubkeyToAddress(key.PublicKey) {
		t.Fatalf("sender %v %v", from, err)
	}
	if _, err := tx.Sender(8); !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("other chain id: %v", err)
	}
	tampered := *tx
	tampered.Body = []byte(`{"amount":"6"}`)
	if _, err := tampered.Sender(7); !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("tampered body: %v", err)
	}
	forged := *tx
	forged.From = crypto.PubkeyToAddress(other.PublicKey)
	if _, err := forged.Sender(7); !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("forged from: %v", err)
	}
	short := *tx
	short.Sig = tx.Sig[:10]
	if _, err := short.Sender(7); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("short signature: %v", err)
	}
}

func TestTxnOverlay(t *testing.T) {
	base := NewMemStore()
	w := NewTxn(base)
	w.Set([]byte("a"), []byte("1"))
	w.Set([]byte("b"), []byte("2"))
	base.Commit(w)
	stateHash := func() [32]byte {
		t.Helper()
		h, err := StateHash(base)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h1 := stateHash()
	w = NewTxn(base)
	w.Delete([]byte("a"))
	w.Set([]byte("c"), []byte("3"))
	if _, ok, err := w.Get([]byte("a")); err != nil || ok {
		t.Fatalf("deleted key visible (%v)", err)
	}
	var keys []string
	if err := w.Iterate(nil, func(k, v []byte) error { keys = append(keys, string(k)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != "b" || keys[1] != "c" {
		t.Fatalf("merged iteration %v", keys)
	}
	if h := stateHash(); h != h1 {
		t.Fatal("uncommitted write changed the base")
	}
	base.Commit(w)
	if h := stateHash(); h == h1 {
		t.Fatal("commit did not change the hash")
	}
}
