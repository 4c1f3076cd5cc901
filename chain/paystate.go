package chain

import (
	"fmt"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/payments"
)

// payState is payments.State over the ledger's key/value state, under the "pay/" prefix.
// Records are JSON (token amounts as decimal strings), which is deterministic and so part of
// the canonical state hash.
type payState struct{ s rw }

var _ payments.State = payState{}

func keyPayAccount(token, owner payments.Address) []byte {
	k := append([]byte("pay/acct/"), token[:]...)
	return append(k, owner[:]...)
}

func keyPayApproval(token, client, operator payments.Address) []byte {
	k := append([]byte("pay/appr/"), token[:]...)
	k = append(k, client[:]...)
	return append(k, operator[:]...)
}

func keyPayRail(id payments.RailID) []byte { return u64([]byte("pay/rail/"), uint64(id)) }

func keyPayRateChange(id payments.RailID, index uint64) []byte {
	return u64(u64([]byte("pay/rc/"), uint64(id)), index)
}

func keyPayFees(token payments.Address) []byte { return append([]byte("pay/fees/"), token[:]...) }

var keyPayNextRail = []byte("pay/nextrail")

func (p payState) Account(token, owner payments.Address) (payments.Account, bool, error) {
	var a payments.Account
	ok, err := getJSON(p.s, keyPayAccount(token, owner), &a)
	return a, ok, err
}

func (p payState) PutAccount(token, owner payments.Address, acct payments.Account) error {
	return putJSON(p.s, keyPayAccount(token, owner), acct)
}

func (p payState) Approval(token, client, operator payments.Address) (payments.Approval, bool, error) {
	var a payments.Approval
	ok, err := getJSON(p.s, keyPayApproval(token, client, operator), &a)
	return a, ok, err
}

func (p payState) PutApproval(token, client, operator payments.Address, appr payments.Approval) error {
	return putJSON(p.s, keyPayApproval(token, client, operator), appr)
}

func (p payState) Rail(id payments.RailID) (payments.Rail, bool, error) {
	var r payments.Rail
	ok, err := getJSON(p.s, keyPayRail(id), &r)
	return r, ok, err
}

func (p payState) PutRail(rail payments.Rail) error { return putJSON(p.s, keyPayRail(rail.ID), rail) }

func (p payState) RateChange(id payments.RailID, index uint64) (payments.RateChange, bool, error) {
	var rc payments.RateChange
	ok, err := getJSON(p.s, keyPayRateChange(id, index), &rc)
	return rc, ok, err
}

func (p payState) PutRateChange(id payments.RailID, index uint64, rc payments.RateChange) error {
	return putJSON(p.s, keyPayRateChange(id, index), rc)
}

func (p payState) DeleteRateChange(id payments.RailID, index uint64) error {
	p.s.Delete(keyPayRateChange(id, index))
	return nil
}

func (p payState) NextRailID() (payments.RailID, error) {
	v, err := getU64(p.s, keyPayNextRail)
	if err != nil {
		return 0, err
	}
	if v == 0 {
		return 1, nil
	}
	return payments.RailID(v), nil
}

func (p payState) PutNextRailID(id payments.RailID) error {
	if id == 0 {
		return fmt.Errorf("%w: rail id 0", ErrInternal)
	}
	putU64(p.s, keyPayNextRail, uint64(id))
	return nil
}

func (p payState) NetworkFees(token payments.Address) (abi.TokenAmount, error) {
	return getAmount(p.s, keyPayFees(token))
}

func (p payState) PutNetworkFees(token payments.Address, total abi.TokenAmount) error {
	return putAmount(p.s, keyPayFees(token), big.Int(total))
}
