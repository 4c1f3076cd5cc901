package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"sort"
	"sync"
)

// Store is committed ledger state as ordered key/value pairs. The rule engine reads it through a
// Txn and never writes it directly: a transaction's writes are collected and committed only when
// the whole transaction succeeded, so a refused transaction changes nothing.
type Store interface {
	// Get returns a copy of the value of key, or ok=false when absent.
	Get(key []byte) (value []byte, ok bool, err error)
	// Iterate calls fn for every key with the prefix, in ascending key order.
	Iterate(prefix []byte, fn func(key, value []byte) error) error
}

// MemStore is an in-memory Store for rule tests and benchmarks.
type MemStore struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore { return &MemStore{m: map[string][]byte{}} }

// Get implements Store.
func (s *MemStore) Get(key []byte) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.m[string(key)]
	if !ok {
		return nil, false, nil
	}
	return append([]byte(nil), v...), true, nil
}

// Iterate implements Store.
func (s *MemStore) Iterate(prefix []byte, fn func(key, value []byte) error) error {
	s.mu.RLock()
	keys := make([]string, 0)
	for k := range s.m {
		if bytes.HasPrefix([]byte(k), prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = s.m[k]
	}
	s.mu.RUnlock()
	for i, k := range keys {
		if err := fn([]byte(k), vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// Commit applies a transaction's write set.
func (s *MemStore) Commit(w *Txn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range w.writes {
		if v == nil {
			delete(s.m, k)
		} else {
			s.m[k] = v
		}
	}
}

// Txn is the write set of one transaction over a Store: reads see the transaction's own writes.
type Txn struct {
	base   Store
	writes map[string][]byte // nil value = delete
}

// NewTxn starts a write set over base.
func NewTxn(base Store) *Txn { return &Txn{base: base, writes: map[string][]byte{}} }

// Get reads key, seeing this transaction's writes first.
func (t *Txn) Get(key []byte) ([]byte, bool, error) {
	if v, ok := t.writes[string(key)]; ok {
		if v == nil {
			return nil, false, nil
		}
		return v, true, nil
	}
	return t.base.Get(key)
}

// Set records a write.
func (t *Txn) Set(key, value []byte) {
	t.writes[string(key)] = append([]byte{}, value...)
}

// Delete records a deletion.
func (t *Txn) Delete(key []byte) { t.writes[string(key)] = nil }

// Iterate merges base and writes in key order.
func (t *Txn) Iterate(prefix []byte, fn func(key, value []byte) error) error {
	merged := map[string][]byte{}
	if err := t.base.Iterate(prefix, func(k, v []byte) error {
		merged[string(k)] = append([]byte(nil), v...)
		return nil
	}); err != nil {
		return err
	}
	for k, v := range t.writes {
		if !bytes.HasPrefix([]byte(k), prefix) {
			continue
		}
		if v == nil {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn([]byte(k), merged[k]); err != nil {
			return err
		}
	}
	return nil
}

// Writes returns the write set sorted by key (value nil = delete), for committing.
func (t *Txn) Writes() []KV {
	out := make([]KV, 0, len(t.writes))
	for k, v := range t.writes {
		out = append(out, KV{Key: []byte(k), Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Key, out[j].Key) < 0 })
	return out
}

// KV is one key/value pair.
type KV struct {
	Key, Value []byte
}

// StateHash is SHA-256 over every key/value pair of s in key order, each framed as
// uvarint(len key) ‖ key ‖ uvarint(len value) ‖ value. Values are canonical encodings, so two
// ledgers with the same state have the same hash whatever store backs them.
func StateHash(s Store) ([32]byte, error) {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	err := s.Iterate(nil, func(k, v []byte) error {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(k)))])
		h.Write(k)
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(v)))])
		h.Write(v)
		return nil
	})
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, err
}
