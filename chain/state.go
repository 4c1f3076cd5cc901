package chain

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/pdp"
)

// Key layout of the ledger state (all integers big-endian so ranges sort):
//
//	cfg                          Config (genesis)
//	seq/<name>                   id counters
//	nonce/<addr>                 next transaction nonce of a sender
//	wallet/<addr>                token balance outside Filecoin Pay
//	prov/<addr>                  Provider
//	ds/<id>                      DataSet
//	piece/<id>/<pieceID>         Piece
//	counts/<id>                  leaf count per piece id (8 bytes each), the sum tree's input
//	proven/<id>/<period/256>     bitmap of proven periods (32 bytes)
//	auth/<payer>/<kind>/<n32>    used client authorization nonces
//	railds/<railID>              data set id paying through the rail
//	pay/...                      Filecoin Pay state (payments.State)
var (
	keyConfig = []byte("cfg")
)

func u64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func keyNonce(a common.Address) []byte    { return append([]byte("nonce/"), a[:]...) }
func keyWallet(a common.Address) []byte   { return append([]byte("wallet/"), a[:]...) }
func keyProvider(a common.Address) []byte { return append([]byte("prov/"), a[:]...) }
func keyDataSet(id uint64) []byte         { return u64([]byte("ds/"), id) }
func keyPiece(set, piece uint64) []byte   { return u64(u64([]byte("piece/"), set), piece) }
func keyPiecePrefix(set uint64) []byte    { return u64([]byte("piece/"), set) }
func keyCounts(set uint64) []byte         { return u64([]byte("counts/"), set) }
func keyProven(set, word uint64) []byte   { return u64(u64([]byte("proven/"), set), word) }
func keyRailDataSet(rail uint64) []byte   { return u64([]byte("railds/"), rail) }
func keySeq(name string) []byte           { return []byte("seq/" + name) }
func keyAuth(payer common.Address, kind string, n big.Int) []byte {
	k := append([]byte("auth/"), payer[:]...)
	k = append(k, '/')
	k = append(k, kind...)
	k = append(k, '/')
	var w [32]byte
	n.Int.FillBytes(w[:])
	return append(k, w[:]...)
}

// Provider is a registered storage provider.
type Provider struct {
	ID         uint64         `json:"id"`
	Address    common.Address `json:"address"`
	Payee      common.Address `json:"payee"`
	ServiceURL string         `json:"serviceUrl"`
	Name       string         `json:"name"`
	Registered abi.ChainEpoch `json:"registered"`
}

// DataSet is the verifier's and the warm-storage service's view of one data set.
type DataSet struct {
	ID              uint64                 `json:"id"`
	Provider        common.Address         `json:"provider"`
	Payer           common.Address         `json:"payer"`
	Payee           common.Address         `json:"payee"`
	ClientDataSetID big.Int                `json:"clientDataSetId"`
	Metadata        []eip712.MetadataEntry `json:"metadata"`
	WithCDN         bool                   `json:"withCDN"`
	Created         abi.ChainEpoch         `json:"created"`

	PDPRail       uint64 `json:"pdpRail"`
	CDNRail       uint64 `json:"cdnRail,omitempty"`
	CacheMissRail uint64 `json:"cacheMissRail,omitempty"`

	// Verifier state.
	PieceCount         uint64         `json:"pieceCount"` // piece ids handed out
	LeafCount          uint64         `json:"leafCount"`  // live leaves, including this period's additions
	ChallengeRange     uint64         `json:"challengeRange"`
	NextChallengeEpoch abi.ChainEpoch `json:"nextChallengeEpoch"` // 0 = none scheduled
	Removals           []uint64       `json:"removals"`
	LastProvenEpoch    abi.ChainEpoch `json:"lastProvenEpoch"`

	// Warm-storage proving state: period N is (Activation+N·M, Activation+(N+1)·M].
	Activation       abi.ChainEpoch `json:"activation"` // 0 = never activated
	Deadline         abi.ChainEpoch `json:"deadline"`   // 0 = no period open
	ProvenThisPeriod bool           `json:"provenThisPeriod"`
	// FaultsThrough is the deadline up to which missed periods have been recorded as faults.
	FaultsThrough abi.ChainEpoch `json:"faultsThrough"`
	Faults        uint64         `json:"faults"`

	// Warm-storage fees.
	PendingFees big.Int        `json:"pendingFees"`
	Reserve     big.Int        `json:"reserve"`
	EndEpoch    abi.ChainEpoch `json:"endEpoch"` // pdpEndEpoch; 0 = not terminated
	Deleted     bool           `json:"deleted"`
}

// Piece is one piece of a data set. A removed piece keeps its id and counts zero leaves.
type Piece struct {
	ID        uint64                 `json:"id"`
	CID       pdp.PieceCID           `json:"cid"`
	LeafCount uint64                 `json:"leafCount"`
	Metadata  []eip712.MetadataEntry `json:"metadata,omitempty"`
	Added     abi.ChainEpoch         `json:"added"`
	Removed   bool                   `json:"removed,omitempty"`
}

// rw is what the rule engine reads and writes.
type rw interface {
	Store
	Set(key, value []byte)
	Delete(key []byte)
}

func jsonUnmarshal(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: decode: %v", ErrInternal, err)
	}
	return nil
}

func getJSON(s Store, key []byte, v any) (bool, error) {
	raw, ok, err := s.Get(key)
	if err != nil || !ok {
		return ok, err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("%w: decode %q: %v", ErrInternal, key, err)
	}
	return true, nil
}

func putJSON(s rw, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: encode %q: %v", ErrInternal, key, err)
	}
	s.Set(key, raw)
	return nil
}

func getU64(s Store, key []byte) (uint64, error) {
	raw, ok, err := s.Get(key)
	if err != nil || !ok {
		return 0, err
	}
	if len(raw) != 8 {
		return 0, fmt.Errorf("%w: %q holds %d bytes, want 8", ErrInternal, key, len(raw))
	}
	return binary.BigEndian.Uint64(raw), nil
}

func putU64(s rw, key []byte, v uint64) { s.Set(key, u64(nil, v)) }

// nextID increments the counter name and returns its new value (ids start at 1).
func nextID(s rw, name string) (uint64, error) {
	v, err := getU64(s, keySeq(name))
	if err != nil {
		return 0, err
	}
	v++
	putU64(s, keySeq(name), v)
	return v, nil
}

func getAmount(s Store, key []byte) (big.Int, error) {
	raw, ok, err := s.Get(key)
	if err != nil {
		return big.Zero(), err
	}
	if !ok {
		return big.Zero(), nil
	}
	v, err := big.FromBytes(raw)
	if err != nil {
		return big.Zero(), fmt.Errorf("%w: decode amount %q: %v", ErrInternal, key, err)
	}
	return v, nil
}

func putAmount(s rw, key []byte, v big.Int) error {
	if v.IsZero() {
		s.Delete(key)
		return nil
	}
	raw, err := v.Bytes()
	if err != nil {
		return fmt.Errorf("%w: encode amount: %v", ErrInternal, err)
	}
	s.Set(key, raw)
	return nil
}

func getDataSet(s Store, id uint64) (*DataSet, error) {
	var ds DataSet
	ok, err := getJSON(s, keyDataSet(id), &ds)
	if err != nil {
		return nil, err
	}
	if !ok || ds.Deleted {
		return nil, fmt.Errorf("%w: data set %d", ErrNotFound, id)
	}
	return &ds, nil
}

func getCounts(s Store, set uint64) ([]uint64, error) {
	raw, _, err := s.Get(keyCounts(set))
	if err != nil {
		return nil, err
	}
	if len(raw)%8 != 0 {
		return nil, fmt.Errorf("%w: leaf counts of data set %d are %d bytes", ErrInternal, set, len(raw))
	}
	out := make([]uint64, len(raw)/8)
	for i := range out {
		out[i] = binary.BigEndian.Uint64(raw[i*8:])
	}
	return out, nil
}

func putCounts(s rw, set uint64, counts []uint64) {
	b := make([]byte, 0, 8*len(counts))
	for _, c := range counts {
		b = u64(b, c)
	}
	s.Set(keyCounts(set), b)
}

func isProven(s Store, set uint64, period uint64) (bool, error) {
	raw, ok, err := s.Get(keyProven(set, period/256))
	if err != nil || !ok {
		return false, err
	}
	bit := period % 256
	return raw[bit/8]&(1<<(bit%8)) != 0, nil
}

func markProven(s rw, set uint64, period uint64) error {
	raw, ok, err := s.Get(keyProven(set, period/256))
	if err != nil {
		return err
	}
	w := make([]byte, 32)
	if ok {
		copy(w, raw)
	}
	bit := period % 256
	w[bit/8] |= 1 << (bit % 8)
	s.Set(keyProven(set, period/256), w)
	return nil
}
