package payments

import (
	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"
)

// State is where a Ledger keeps its records. Get methods report found=false for a record
// that was never put (or was deleted). The Ledger never mutates a value it got and never
// reuses a value after putting it, so implementations may hand out and keep values
// without copying.
//
// A Ledger operation reads freely but writes only when it succeeds, all at the end, in
// one burst of Put/Delete calls. An implementation over a key-value store (chain/ over
// pebble) should put those writes in one batch and commit it once per transaction, so a
// failing Put cannot leave half an operation behind.
type State interface {
	Account(token, owner Address) (acct Account, found bool, err error)
	PutAccount(token, owner Address, acct Account) error

	Approval(token, client, operator Address) (appr Approval, found bool, err error)
	PutApproval(token, client, operator Address, appr Approval) error

	Rail(id RailID) (rail Rail, found bool, err error)
	PutRail(rail Rail) error

	// RateChange returns entry index of a rail's rate-change queue.
	RateChange(id RailID, index uint64) (rc RateChange, found bool, err error)
	PutRateChange(id RailID, index uint64, rc RateChange) error
	DeleteRateChange(id RailID, index uint64) error

	// NextRailID is the id the next created rail gets; 1 in a fresh state.
	NextRailID() (RailID, error)
	PutNextRailID(id RailID) error

	// NetworkFees is the total network fee collected (burned) in a token.
	NetworkFees(token Address) (abi.TokenAmount, error)
	PutNetworkFees(token Address, total abi.TokenAmount) error
}

type accountKey struct{ token, owner Address }

type approvalKey struct{ token, client, operator Address }

type rateChangeKey struct {
	rail  RailID
	index uint64
}

// MemState is the in-memory State, for tests and single-process use. The zero value is
// not ready; use NewMemState.
type MemState struct {
	accounts    map[accountKey]Account
	approvals   map[approvalKey]Approval
	rails       map[RailID]Rail
	rateChanges map[rateChangeKey]RateChange
	nextRailID  RailID
	fees        map[Address]abi.TokenAmount
}

// NewMemState returns an empty in-memory State.
func NewMemState() *MemState {
	return &MemState{
		accounts:    map[accountKey]Account{},
		approvals:   map[approvalKey]Approval{},
		rails:       map[RailID]Rail{},
		rateChanges: map[rateChangeKey]RateChange{},
		nextRailID:  1,
		fees:        map[Address]abi.TokenAmount{},
	}
}

// Clone returns an independent copy (token amounts are immutable once stored, so they are
// shared).
func (m *MemState) Clone() *MemState {
	c := &MemState{
		accounts:    make(map[accountKey]Account, len(m.accounts)),
		approvals:   make(map[approvalKey]Approval, len(m.approvals)),
		rails:       make(map[RailID]Rail, len(m.rails)),
		rateChanges: make(map[rateChangeKey]RateChange, len(m.rateChanges)),
		nextRailID:  m.nextRailID,
		fees:        make(map[Address]abi.TokenAmount, len(m.fees)),
	}
	for k, v := range m.accounts {
		c.accounts[k] = v
	}
	for k, v := range m.approvals {
		c.approvals[k] = v
	}
	for k, v := range m.rails {
		c.rails[k] = v
	}
	for k, v := range m.rateChanges {
		c.rateChanges[k] = v
	}
	for k, v := range m.fees {
		c.fees[k] = v
	}
	return c
}

// ForEachAccount calls fn for every stored account, in no particular order.
func (m *MemState) ForEachAccount(fn func(token, owner Address, acct Account)) {
	for k, v := range m.accounts {
		fn(k.token, k.owner, v)
	}
}

// ForEachRail calls fn for every stored rail, in no particular order.
func (m *MemState) ForEachRail(fn func(rail Rail)) {
	for _, r := range m.rails {
		fn(r)
	}
}

// Len reports how many records of each kind are stored; tests use it to prove that a
// refused operation wrote nothing.
func (m *MemState) Len() (accounts, approvals, rails, rateChanges int) {
	return len(m.accounts), len(m.approvals), len(m.rails), len(m.rateChanges)
}

// Account implements State.
func (m *MemState) Account(token, owner Address) (Account, bool, error) {
	a, ok := m.accounts[accountKey{token, owner}]
	return a, ok, nil
}

// PutAccount implements State.
func (m *MemState) PutAccount(token, owner Address, acct Account) error {
	m.accounts[accountKey{token, owner}] = acct
	return nil
}

// Approval implements State.
func (m *MemState) Approval(token, client, operator Address) (Approval, bool, error) {
	a, ok := m.approvals[approvalKey{token, client, operator}]
	return a, ok, nil
}

// PutApproval implements State.
func (m *MemState) PutApproval(token, client, operator Address, appr Approval) error {
	m.approvals[approvalKey{token, client, operator}] = appr
	return nil
}

// Rail implements State.
func (m *MemState) Rail(id RailID) (Rail, bool, error) {
	r, ok := m.rails[id]
	return r, ok, nil
}

// PutRail implements State.
func (m *MemState) PutRail(rail Rail) error {
	m.rails[rail.ID] = rail
	return nil
}

// RateChange implements State.
func (m *MemState) RateChange(id RailID, index uint64) (RateChange, bool, error) {
	rc, ok := m.rateChanges[rateChangeKey{id, index}]
	return rc, ok, nil
}

// PutRateChange implements State.
func (m *MemState) PutRateChange(id RailID, index uint64, rc RateChange) error {
	m.rateChanges[rateChangeKey{id, index}] = rc
	return nil
}

// DeleteRateChange implements State.
func (m *MemState) DeleteRateChange(id RailID, index uint64) error {
	delete(m.rateChanges, rateChangeKey{id, index})
	return nil
}

// NextRailID implements State.
func (m *MemState) NextRailID() (RailID, error) { return m.nextRailID, nil }

// PutNextRailID implements State.
func (m *MemState) PutNextRailID(id RailID) error {
	m.nextRailID = id
	return nil
}

// NetworkFees implements State.
func (m *MemState) NetworkFees(token Address) (abi.TokenAmount, error) {
	f, ok := m.fees[token]
	if !ok {
		return big.Zero(), nil
	}
	return f, nil
}

// PutNetworkFees implements State.
func (m *MemState) PutNetworkFees(token Address, total abi.TokenAmount) error {
	m.fees[token] = total
	return nil
}

var _ State = (*MemState)(nil)
