package chain

import (
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/filecoin-project/go-state-types/abi"

	"github.com/warmstore/warmstore/payments"
	"github.com/warmstore/warmstore/pdp"
)

// View answers read-only questions about a state at an epoch. It never writes.
type View struct {
	st     Store
	cfg    Config
	now    abi.ChainEpoch
	beacon Beacon
}

// NewView returns a view of st under cfg at epoch now.
func NewView(st Store, cfg Config, now abi.ChainEpoch, beacon Beacon) *View {
	return &View{st: st, cfg: cfg, now: now, beacon: beacon}
}

func (v *View) pay() *payments.Ledger {
	return payments.NewLedger(payState{NewTxn(v.st)}, nil)
}

// Nonce returns the next transaction nonce of a sender.
func (v *View) Nonce(a common.Address) (uint64, error) { return getU64(v.st, keyNonce(a)) }

// Provider returns a registered provider.
func (v *View) Provider(a common.Address) (*Provider, error) {
	var p Provider
	ok, err := getJSON(v.st, keyProvider(a), &p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: provider %s", ErrNotFound, a.Hex())
	}
	return &p, nil
}

// Providers lists every registered provider by address.
func (v *View) Providers() ([]Provider, error) {
	out := []Provider{}
	err := v.st.Iterate([]byte("prov/"), func(_, val []byte) error {
		var p Provider
		if err := jsonUnmarshal(val, &p); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// DataSet returns a data set (deleted ones are not found).
func (v *View) DataSet(id uint64) (*DataSet, error) { return getDataSet(v.st, id) }

// DataSets lists the live data sets, optionally only those of one provider or payer.
func (v *View) DataSets(provider, payer common.Address) ([]DataSet, error) {
	out := []DataSet{}
	err := v.st.Iterate([]byte("ds/"), func(_, val []byte) error {
		var ds DataSet
		if err := jsonUnmarshal(val, &ds); err != nil {
			return err
		}
		if ds.Deleted || (provider != (common.Address{}) && ds.Provider != provider) || (payer != (common.Address{}) && ds.Payer != payer) {
			return nil
		}
		out = append(out, ds)
		return nil
	})
	return out, err
}

// Pieces lists a data set's pieces (removed ones included, marked).
func (v *View) Pieces(id uint64) ([]Piece, error) {
	if _, err := getDataSet(v.st, id); err != nil {
		return nil, err
	}
	out := []Piece{}
	err := v.st.Iterate(keyPiecePrefix(id), func(_, val []byte) error {
		var p Piece
		if err := jsonUnmarshal(val, &p); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// ChallengeSet is what a provider must prove in the current period.
type ChallengeSet struct {
	DataSetID      uint64           `json:"dataSetId"`
	ChallengeEpoch abi.ChainEpoch   `json:"challengeEpoch"`
	Deadline       abi.ChainEpoch   `json:"deadline"`
	Seed           common.Hash      `json:"seed"`
	ChallengeRange uint64           `json:"challengeRange"`
	Challenges     []PieceChallenge `json:"challenges"`
}

// PieceChallenge is one challenge: prove leaf Offset of piece PieceID (whose CID is Piece).
type PieceChallenge struct {
	PieceID uint64       `json:"pieceId"`
	Piece   pdp.PieceCID `json:"piece"`
	Offset  uint64       `json:"offset"`
}

// Challenges returns the current period's challenges of a data set, once its challenge epoch
// has begun (before that the randomness does not exist yet: ErrFutureEpoch).
func (v *View) Challenges(id uint64) (*ChallengeSet, error) {
	ds, err := getDataSet(v.st, id)
	if err != nil {
		return nil, err
	}
	if ds.NextChallengeEpoch == 0 || ds.Deadline == 0 {
		return nil, fmt.Errorf("%w: data set %d", ErrNotProving, id)
	}
	if v.now < ds.NextChallengeEpoch {
		return nil, fmt.Errorf("%w: challenge epoch %d has not begun (now %d)", ErrFutureEpoch, ds.NextChallengeEpoch, v.now)
	}
	chs, err := deriveChallenges(v.st, v.beacon, ds, NumChallenges)
	if err != nil {
		return nil, err
	}
	seed, err := v.beacon.Randomness(ds.NextChallengeEpoch)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInternal, err)
	}
	out := &ChallengeSet{DataSetID: id, ChallengeEpoch: ds.NextChallengeEpoch, Deadline: ds.Deadline, Seed: seed, ChallengeRange: ds.ChallengeRange}
	for _, ch := range chs {
		out.Challenges = append(out.Challenges, PieceChallenge{PieceID: ch.PieceID, Piece: ch.piece.CID, Offset: ch.Offset})
	}
	return out, nil
}

// Randomness returns the beacon value of an epoch that has begun.
func (v *View) Randomness(e abi.ChainEpoch) (common.Hash, error) {
	if e > v.now {
		return common.Hash{}, fmt.Errorf("%w: epoch %d (now %d)", ErrFutureEpoch, e, v.now)
	}
	r, err := v.beacon.Randomness(e)
	if err != nil {
		return common.Hash{}, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	return r, nil
}

// Account is an owner's wallet balance and payments account.
type Account struct {
	Address  common.Address       `json:"address"`
	Wallet   abi.TokenAmount      `json:"wallet"`
	Payments payments.AccountInfo `json:"payments"`
}

// Account returns an owner's balances as of the view's epoch.
func (v *View) Account(a common.Address) (*Account, error) {
	w, err := getAmount(v.st, keyWallet(a))
	if err != nil {
		return nil, err
	}
	info, err := v.pay().Account(v.cfg.Token, a, v.now)
	if err != nil {
		return nil, payErr(err)
	}
	return &Account{Address: a, Wallet: w, Payments: info}, nil
}

// Approval returns a client's approval of an operator.
func (v *View) Approval(client, operator common.Address) (payments.Approval, error) {
	a, err := v.pay().Approval(v.cfg.Token, client, operator)
	return a, payErr(err)
}

// RailInfo is a rail with its queued rate changes.
type RailInfo struct {
	payments.Rail
	RateChanges []payments.RateChange `json:"rateChanges"`
}

// Rail returns a rail.
func (v *View) Rail(id uint64) (*RailInfo, error) {
	p := v.pay()
	r, err := p.Rail(payments.RailID(id))
	if err != nil {
		if errors.Is(err, payments.ErrRailNotFound) {
			return nil, fmt.Errorf("%w: rail %d: %w", ErrNotFound, id, err)
		}
		return nil, payErr(err)
	}
	q, err := p.RateChanges(r.ID)
	if err != nil {
		return nil, payErr(err)
	}
	return &RailInfo{Rail: r, RateChanges: q}, nil
}

// IsProven reports whether period n of a data set was proven.
func (v *View) IsProven(id uint64, n uint64) (bool, error) { return isProven(v.st, id, n) }
