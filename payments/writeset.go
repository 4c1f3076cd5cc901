package payments

import (
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
	rateChanges map[rateChangeKey]rateChangeWrite
	fees        map[Address]abi.TokenAmount
	nextRailID  RailID // 0: unchanged

	// order records the first write of each key, so commit is deterministic.
	order []any
}

type rateChangeWrite struct {
	rc      RateChange
	deleted bool
}

func newWriteSet(base State) *writeSet {
	return &writeSet{
		base:        base,
		accounts:    map[accountKey]Account{},
		approvals:   map[approvalKey]Approval{},
		rails:       map[RailID]Rail{},
		rateChanges: map[rateChangeKey]rateChangeWrite{},
		fees:        map[Address]abi.TokenAmount{},
	}
}

func (w *writeSet) account(token, owner Address) (Account, error) {
	k := accountKey{token, owner}
	if a, ok := w.accounts[k]; ok {
		return a, nil
	}
	a, found, err := w.base.Account(token, owner)
	if err != nil {
		return Account{}, err
	}
	if !found {
		return zeroAccount(), nil
	}
	return a, nil
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
	a, found, err := w.base.Approval(token, client, operator)
	if err != nil {
		return Approval{}, err
	}
	if !found {
		return zeroApproval(), nil
	}
	return a, nil
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
	return w.base.Rail(id)
}

func (w *writeSet) putRail(r Rail) {
	if _, ok := w.rails[r.ID]; !ok {
		w.order = append(w.order, r.ID)
	}
	w.rails[r.ID] = r
}

func (w *writeSet) rateChange(id RailID, index uint64) (RateChange, bool, error) {
	if c, ok := w.rateChanges[rateChangeKey{id, index}]; ok {
		return c.rc, !c.deleted, nil
	}
	return w.base.RateChange(id, index)
}

func (w *writeSet) putRateChange(id RailID, index uint64, rc RateChange) {
	k := rateChangeKey{id, index}
	if _, ok := w.rateChanges[k]; !ok {
		w.order = append(w.order, k)
	}
	w.rateChanges[k] = rateChangeWrite{rc: rc}
}

func (w *writeSet) deleteRateChange(id RailID, index uint64) {
	k := rateChangeKey{id, index}
	if _, ok := w.rateChanges[k]; !ok {
		w.order = append(w.order, k)
	}
	w.rateChanges[k] = rateChangeWrite{deleted: true}
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
	return w.base.NetworkFees(token)
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
			c := w.rateChanges[k]
			if c.deleted {
				err = w.base.DeleteRateChange(k.rail, k.index)
			} else {
				err = w.base.PutRateChange(k.rail, k.index, c.rc)
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
