package chain

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
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
	b1, _ := NewSecretBeacon(bytes.Repeat([]byte{1}, 32))
	b2, _ := NewSecretBeacon(bytes.Repeat([]byte{2}, 32))
	r1, _ := b1.Randomness(100)
	r1again, _ := b1.Randomness(100)
	r1next, _ := b1.Randomness(101)
	r2, _ := b2.Randomness(100)
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
	h1, _ := StateHash(base)
	w = NewTxn(base)
	w.Delete([]byte("a"))
	w.Set([]byte("c"), []byte("3"))
	if _, ok, _ := w.Get([]byte("a")); ok {
		t.Fatal("deleted key visible")
	}
	var keys []string
	_ = w.Iterate(nil, func(k, v []byte) error { keys = append(keys, string(k)); return nil })
	if len(keys) != 2 || keys[0] != "b" || keys[1] != "c" {
		t.Fatalf("merged iteration %v", keys)
	}
	if h, _ := StateHash(base); h != h1 {
		t.Fatal("uncommitted write changed the base")
	}
	base.Commit(w)
	if h, _ := StateHash(base); h == h1 {
		t.Fatal("commit did not change the hash")
	}
}
