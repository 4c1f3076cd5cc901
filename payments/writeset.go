package payments

import (
	"errors"

	"github.com/filecoin-project/go-state-types/abi"
)

// writeSet buffers one operation's writes over a State. Reads see the buffered writes;
// commit applies them to the State in the order they were first made, and only a
// successful operation commits. That is what makes every refused operation change nothing.
type writeSet struct {
	base State

	accounts    map[accountKey]Account
	approvals   map[approvalKey]Approval
	rails       map[RailID]Rail
	rateChanges map[rateChangeKey]RateChange
	fees        map[Address]abi.TokenAmount
	nextRailID  RailID // 0: unchanged
	// dequeues are ranges of rate-change entries removed from the head of a queue; a
	// settlement walk removes thousands at once, so they are not tracked one by one.
	dequeues []dequeueRange

	// order records the first write of each key, so commit is deterministic.
	order []any
}

type dequeueRange struct {
	rail     RailID
	from, to uint64 // [from, to)
}

// dequeueKey marks, in writeSet.order, the position of dequeues[i].
type dequeueKey int

func newWriteSet(base State) *writeSet {
	return &writeSet{
		base:        base,
		accounts:    map[accountKey]Account{},
		approvals:   map[approvalKey]Approval{},
		rails:       map[RailID]Rail{},
		rateChanges: map[rateChangeKey]RateChange{},
		fees:        map[Address]abi.TokenAmount{},
	}
}

func (w *writeSet) account(token, owner Address) (Account, error) {
	k := accountKey{token, owner}
	if a, ok := w.accounts[k]; ok {
		return a, nil
	}
	return loadAccount(w.base, token, owner)
}

// loadAccount reads an account from s, checked for missing amounts; an account never
// written is all zero.
func loadAccount(s State, token, owner Address) (Account, error) {
	a, found, err := s.Account(token, owner)
	if err != nil {
		return Account{}, err
	}
	if !found {
		return zeroAccount(), nil
	}
	return a, a.check()
}

func (w *writeSet) putAccount(token, owner Address, a Account) {
	k := accountKey{token, owner}
	if _, ok := w.accounts[k]; !ok {
		w.order = append(w.order, k)
	}
	w.accounts[k] = a
}

func (w *writeSet) approval(token, client, operator Address) (Approval, error) {
	k := approvalKey{token, client, operator}
	if a, ok := w.approvals[k]; ok {
		return a, nil
	}
	return loadApproval(w.base, token, client, operator)
}

// loadApproval reads an approval from s, checked for missing amounts; an approval never
// set is all zero.
func loadApproval(s State, token, client, operator Address) (Approval, error) {
	a, found, err := s.Approval(token, client, operator)
	if err != nil {
		return Approval{}, err
	}
	if !found {
		return zeroApproval(), nil
	}
	return a, a.check()
}

func (w *writeSet) putApproval(token, client, operator Address, a Approval) {
	k := approvalKey{token, client, operator}
	if _, ok := w.approvals[k]; !ok {
		w.order = append(w.order, k)
	}
	w.approvals[k] = a
}

func (w *writeSet) rail(id RailID) (Rail, bool, error) {
	if r, ok := w.rails[id]; ok {
		return r, true, nil
	}
	return loadRail(w.base, id)
}

// loadRail reads a rail from s, checked for missing amounts.
func loadRail(s State, id RailID) (Rail, bool, error) {
	r, found, err := s.Rail(id)
	if err == nil && found {
		err = r.check()
	}
	return r, found, err
}

func (w *writeSet) putRail(r Rail) {
	if _, ok := w.rails[r.ID]; !ok {
		w.order = append(w.order, r.ID)
	}
	w.rails[r.ID] = r
}

func (w *writeSet) rateChange(id RailID, index uint64) (RateChange, bool, error) {
	for _, d := range w.dequeues {
		if d.rail == id && index >= d.from && index < d.to {
			return RateChange{}, false, nil
		}
	}
	if c, ok := w.rateChanges[rateChangeKey{id, index}]; ok {
		return c, true, nil
	}
	rc, found, err := w.base.RateChange(id, index)
	if err == nil && found && rc.Rate.Int == nil {
		err = ErrCorruptRecord
	}
	return rc, found, err
}

// dequeueRateChange removes the entry at index, the head of rail id's queue.
func (w *writeSet) dequeueRateChange(id RailID, index uint64) {
	if n := len(w.dequeues); n > 0 {
		if d := &w.dequeues[n-1]; d.rail == id && d.to == index {
			d.to++
			return
		}
	}
	w.order = append(w.order, dequeueKey(len(w.dequeues)))
	w.dequeues = append(w.dequeues, dequeueRange{rail: id, from: index, to: index + 1})
}

func (w *writeSet) putRateChange(id RailID, index uint64, rc RateChange) {
	k := rateChangeKey{id, index}
	if _, ok := w.rateChanges[k]; !ok {
		w.order = append(w.order, k)
	}
	w.rateChanges[k] = rc
}

func (w *writeSet) nextID() (RailID, error) {
	if w.nextRailID != 0 {
		return w.nextRailID, nil
	}
	return w.base.NextRailID()
}

func (w *writeSet) putNextID(id RailID) { w.nextRailID = id }

func (w *writeSet) networkFees(token Address) (abi.TokenAmount, error) {
	if f, ok := w.fees[token]; ok {
		return f, nil
	}
	return loadNetworkFees(w.base, token)
}

// loadNetworkFees reads the network fees collected in token from s, refusing a missing
// amount.
func loadNetworkFees(s State, token Address) (abi.TokenAmount, error) {
	f, err := s.NetworkFees(token)
	if err == nil && f.Int == nil {
		err = ErrCorruptRecord
	}
	return f, err
}

func (w *writeSet) putNetworkFees(token Address, total abi.TokenAmount) {
	if _, ok := w.fees[token]; !ok {
		w.order = append(w.order, feeKey{token})
	}
	w.fees[token] = total
}

type feeKey struct{ token Address }

// commit writes the buffered changes to the base State.
func (w *writeSet) commit() error {
	for _, k := range w.order {
		var err error
		switch k := k.(type) {
		case accountKey:
			err = w.base.PutAccount(k.token, k.owner, w.accounts[k])
		case approvalKey:
			err = w.base.PutApproval(k.token, k.client, k.operator, w.approvals[k])
		case RailID:
			err = w.base.PutRail(w.rails[k])
		case rateChangeKey:
			err = w.base.PutRateChange(k.rail, k.index, w.rateChanges[k])
		case dequeueKey:
			d := w.dequeues[k]
			for i := d.from; i < d.to && err == nil; i++ {
				err = w.base.DeleteRateChange(d.rail, i)
			}
		case feeKey:
			err = w.base.PutNetworkFees(k.token, w.fees[k.token])
		}
		if err != nil {
			return err
		}
	}
	if w.nextRailID != 0 {
		return w.base.PutNextRailID(w.nextRailID)
	}
	return nil
}

// ErrCorruptRecord is wrapped in a *StateError when the State returns a record with a
// missing (nil) amount; the operation is abandoned rather than guessing a value.
var ErrCorruptRecord = errors.New("payments: stored record has a missing amount")

func (a Account) check() error {
	if a.Funds.Int == nil || a.LockupCurrent.Int == nil || a.LockupRate.Int == nil {
		return ErrCorruptRecord
	}
	return nil
}

func (a Approval) check() error {
	if a.RateAllowance.Int == nil || a.LockupAllowance.Int == nil || a.RateUsage.Int == nil || a.LockupUsage.Int == nil {
		return ErrCorruptRecord
	}
	return nil
}

func (r Rail) check() error {
	if r.PaymentRate.Int == nil || r.LockupFixed.Int == nil {
		return ErrCorruptRecord
	}
	return nil
}
