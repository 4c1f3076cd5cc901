package payments

import (
	"fmt"
	mathbig "math/big"
	"strconv"
	"strings"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"
)

// Ledger applies the Filecoin Pay rules to a State. It holds no clock: every operation
// takes the current epoch, and callers must pass epochs that never go backwards.
//
// Every operation either succeeds and writes all its changes, or returns an error and
// writes nothing. Refusals are *RefusalError values wrapping a Rule; State failures are
// *StateError values.
//
// A Ledger is not safe for concurrent use; chain/ serializes transactions anyway.
type Ledger struct {
	state      State
	validators ValidatorRegistry
}

// NewLedger returns a Ledger over state. validators resolves rail validator addresses;
// nil means no validator is registered (rails must then have none).
func NewLedger(state State, validators ValidatorRegistry) *Ledger {
	if validators == nil {
		validators = ValidatorMap(nil)
	}
	return &Ledger{state: state, validators: validators}
}

// tx is one operation in progress: its name (for errors), the epoch and its write set.
type tx struct {
	op    string
	epoch abi.ChainEpoch
	ws    *writeSet
}

func (l *Ledger) begin(op string, epoch abi.ChainEpoch) (*tx, error) {
	if epoch < 0 {
		return nil, refuse(op, ErrInvalidEpoch, "epoch %d", epoch)
	}
	return &tx{op: op, epoch: epoch, ws: newWriteSet(l.state)}, nil
}

func (t *tx) stateErr(err error) error { return &StateError{Op: t.op, Err: err} }

// commit settles the lockup of every account the operation touched (the "after" half
// of the contract's settle-before-and-after), checks funds ≥ lockup for each, and
// writes everything.
func (t *tx) commit() error {
	for _, k := range t.ws.order {
		ak, ok := k.(accountKey)
		if !ok {
			continue
		}
		a := t.ws.accounts[ak]
		if err := settleLockup(t.op, &a, t.epoch); err != nil {
			return err
		}
		if a.Funds.LessThan(a.LockupCurrent) {
			return refuse(t.op, ErrInsufficientFunds, "account %s token %s: funds %s < lockup %s", ak.owner, ak.token, a.Funds, a.LockupCurrent)
		}
		t.ws.accounts[ak] = a
	}
	if err := t.ws.commit(); err != nil {
		return t.stateErr(err)
	}
	return nil
}

// settledAccount loads an account and settles its lockup to the operation's epoch.
func (t *tx) settledAccount(token, owner Address) (Account, error) {
	a, err := t.ws.account(token, owner)
	if err != nil {
		return Account{}, t.stateErr(err)
	}
	if err := settleLockup(t.op, &a, t.epoch); err != nil {
		return Account{}, err
	}
	return a, nil
}

// settleLockup moves the lockup that accrued since LockupLastSettledAt into
// LockupCurrent, as far as the funds allow (reference §4.2).
func settleLockup(op string, a *Account, epoch abi.ChainEpoch) error {
	if epoch < a.LockupLastSettledAt {
		return refuse(op, ErrInvalidEpoch, "epoch %d is before the account's settled epoch %d", epoch, a.LockupLastSettledAt)
	}
	elapsed := epoch - a.LockupLastSettledAt
	if elapsed == 0 {
		return nil
	}
	if a.LockupRate.Sign() == 0 {
		a.LockupLastSettledAt = epoch
		return nil
	}
	need := big.Add(a.LockupCurrent, times(a.LockupRate, elapsed))
	if a.Funds.GreaterThanEqual(need) {
		a.LockupCurrent = need
		a.LockupLastSettledAt = epoch
		return nil
	}
	free := big.Sub(a.Funds, a.LockupCurrent)
	if free.Sign() <= 0 {
		return nil
	}
	n := big.Div(free, a.LockupRate).Int64() // < elapsed, so it fits
	a.LockupCurrent = big.Add(a.LockupCurrent, times(a.LockupRate, abi.ChainEpoch(n)))
	a.LockupLastSettledAt += abi.ChainEpoch(n)
	return nil
}

func fundedUntil(a Account) abi.ChainEpoch {
	if a.LockupRate.Sign() == 0 {
		return MaxEpoch
	}
	free := big.Sub(a.Funds, a.LockupCurrent)
	if free.Sign() <= 0 {
		return a.LockupLastSettledAt
	}
	n := big.Div(free, a.LockupRate)
	if !n.IsInt64() || n.Int64() > int64(MaxEpoch-a.LockupLastSettledAt) {
		return MaxEpoch
	}
	return a.LockupLastSettledAt + abi.ChainEpoch(n.Int64())
}

// --- accounts ---------------------------------------------------------------------------

// Deposit credits amount of token to the account of to. Anyone may fund anyone; the
// tokens come from outside the ledger (chain/ debits the sender). A deposit into an
// account in debt lets its lockup accrual catch up.
func (l *Ledger) Deposit(token, to Address, amount abi.TokenAmount, epoch abi.ChainEpoch) error {
	t, err := l.begin("deposit", epoch)
	if err != nil {
		return err
	}
	if !validAmount(amount) {
		return refuse(t.op, ErrInvalidAmount, "amount %v", amount)
	}
	if to == (Address{}) {
		return refuse(t.op, ErrZeroAddress, "deposit to the zero address")
	}
	a, err := t.settledAccount(token, to)
	if err != nil {
		return err
	}
	a.Funds = big.Add(a.Funds, amount)
	t.ws.putAccount(token, to, a)
	return t.commit()
}

// Withdraw takes amount of token out of owner's account (the caller is the owner; chain/
// credits the destination). The account must be fully settled and amount must not exceed
// the available funds (funds − lockup).
func (l *Ledger) Withdraw(token, owner Address, amount abi.TokenAmount, epoch abi.ChainEpoch) error {
	t, err := l.begin("withdraw", epoch)
	if err != nil {
		return err
	}
	if !validAmount(amount) {
		return refuse(t.op, ErrInvalidAmount, "amount %v", amount)
	}
	a, err := t.settledAccount(token, owner)
	if err != nil {
		return err
	}
	if a.LockupLastSettledAt != epoch {
		return refuse(t.op, ErrNotFullySettled, "funded until %d, now %d", a.LockupLastSettledAt, epoch)
	}
	avail := big.Sub(a.Funds, a.LockupCurrent)
	if amount.GreaterThan(avail) {
		return refuse(t.op, ErrWithdrawExceedsAvailable, "amount %s > available %s", amount, avail)
	}
	a.Funds = big.Sub(a.Funds, amount)
	t.ws.putAccount(token, owner, a)
	return t.commit()
}

// Account returns owner's account in token as it would be after lockup settlement at
// epoch, without changing anything.
func (l *Ledger) Account(token, owner Address, epoch abi.ChainEpoch) (AccountInfo, error) {
	a, err := loadAccount(l.state, token, owner)
	if err != nil {
		return AccountInfo{}, &StateError{Op: "account", Err: err}
	}
	if err := settleLockup("account", &a, epoch); err != nil {
		return AccountInfo{}, err
	}
	return AccountInfo{
		Account:      a,
		Available:    big.Sub(a.Funds, a.LockupCurrent),
		FundedUntil:  fundedUntil(a),
		FullySettled: a.LockupLastSettledAt == epoch,
	}, nil
}

// NetworkFees returns the total network fee collected in token.
func (l *Ledger) NetworkFees(token Address) (abi.TokenAmount, error) {
	f, err := loadNetworkFees(l.state, token)
	if err != nil {
		return abi.TokenAmount{}, &StateError{Op: "network fees", Err: err}
	}
	return f, nil
}

// --- operator approvals -----------------------------------------------------------------

// SetOperatorApproval sets what operator may do with client's account in token
// (reference §4.3). Allowances may be set below current usage: that only blocks further
// increases. Usage is kept.
func (l *Ledger) SetOperatorApproval(token, client, operator Address, approved bool, rateAllowance, lockupAllowance abi.TokenAmount, maxLockupPeriod abi.ChainEpoch, epoch abi.ChainEpoch) error {
	t, err := l.begin("set operator approval", epoch)
	if err != nil {
		return err
	}
	if !validAmount(rateAllowance) || !validAmount(lockupAllowance) {
		return refuse(t.op, ErrInvalidAmount, "rate allowance %v, lockup allowance %v", rateAllowance, lockupAllowance)
	}
	if maxLockupPeriod < 0 {
		return refuse(t.op, ErrInvalidLockupPeriod, "max lockup period %d", maxLockupPeriod)
	}
	if operator == (Address{}) {
		return refuse(t.op, ErrZeroAddress, "operator")
	}
	ap, err := t.ws.approval(token, client, operator)
	if err != nil {
		return t.stateErr(err)
	}
	ap.Approved = approved
	// Copies: the caller keeps its big integers, the state must not share them.
	ap.RateAllowance = rateAllowance.Copy()
	ap.LockupAllowance = lockupAllowance.Copy()
	ap.MaxLockupPeriod = maxLockupPeriod
	t.ws.putApproval(token, client, operator, ap)
	return t.commit()
}

// IncreaseOperatorApproval raises an existing approval's allowances.
func (l *Ledger) IncreaseOperatorApproval(token, client, operator Address, rateIncrease, lockupIncrease abi.TokenAmount, epoch abi.ChainEpoch) error {
	t, err := l.begin("increase operator approval", epoch)
	if err != nil {
		return err
	}
	if !validAmount(rateIncrease) || !validAmount(lockupIncrease) {
		return refuse(t.op, ErrInvalidAmount, "rate increase %v, lockup increase %v", rateIncrease, lockupIncrease)
	}
	if operator == (Address{}) {
		return refuse(t.op, ErrZeroAddress, "operator")
	}
	ap, err := t.ws.approval(token, client, operator)
	if err != nil {
		return t.stateErr(err)
	}
	if !ap.Approved {
		return refuse(t.op, ErrNotApproved, "client %s operator %s", client, operator)
	}
	ap.RateAllowance = big.Add(ap.RateAllowance, rateIncrease)
	ap.LockupAllowance = big.Add(ap.LockupAllowance, lockupIncrease)
	t.ws.putApproval(token, client, operator, ap)
	return t.commit()
}

// Approval returns client's approval of operator in token (all zero if never set).
func (l *Ledger) Approval(token, client, operator Address) (Approval, error) {
	ap, err := loadApproval(l.state, token, client, operator)
	if err != nil {
		return Approval{}, &StateError{Op: "approval", Err: err}
	}
	return ap, nil
}

// --- rails ------------------------------------------------------------------------------

// CreateRail opens a rail from payer to payee in token, operated by operator (the caller),
// which the payer must have approved. The rail starts with rate 0 and no lockup;
// SettledUpTo starts at epoch. validator may be the zero address (pay in full); otherwise
// it must be registered. A commission needs a fee recipient.
func (l *Ledger) CreateRail(operator, token, payer, payee, validator Address, commissionBps uint64, serviceFeeRecipient Address, epoch abi.ChainEpoch) (RailID, error) {
	t, err := l.begin("create rail", epoch)
	if err != nil {
		return 0, err
	}
	if payer == (Address{}) || payee == (Address{}) {
		return 0, refuse(t.op, ErrZeroAddress, "payer %s payee %s", payer, payee)
	}
	if commissionBps > CommissionMaxBps {
		return 0, refuse(t.op, ErrCommissionTooHigh, "%d bps", commissionBps)
	}
	if commissionBps > 0 && serviceFeeRecipient == (Address{}) {
		return 0, refuse(t.op, ErrMissingFeeRecipient, "%d bps", commissionBps)
	}
	if validator != (Address{}) {
		if _, ok := l.validators.Validator(validator); !ok {
			return 0, refuse(t.op, ErrUnknownValidator, "validator %s", validator)
		}
	}
	ap, err := t.ws.approval(token, payer, operator)
	if err != nil {
		return 0, t.stateErr(err)
	}
	if !ap.Approved {
		return 0, refuse(t.op, ErrNotApproved, "payer %s operator %s", payer, operator)
	}
	a, err := t.settledAccount(token, payer)
	if err != nil {
		return 0, err
	}
	t.ws.putAccount(token, payer, a)
	id, err := t.ws.nextID()
	if err != nil {
		return 0, t.stateErr(err)
	}
	t.ws.putNextID(id + 1)
	t.ws.putRail(Rail{
		ID: id, Token: token, From: payer, To: payee, Operator: operator, Validator: validator,
		PaymentRate: big.Zero(), LockupFixed: big.Zero(), SettledUpTo: epoch,
		CommissionBps: commissionBps, ServiceFeeRecipient: serviceFeeRecipient,
	})
	if err := t.commit(); err != nil {
		return 0, err
	}
	return id, nil
}

// Rail returns a rail (finalized rails included, with Finalized set).
func (l *Ledger) Rail(id RailID) (Rail, error) {
	r, found, err := loadRail(l.state, id)
	if err != nil {
		return Rail{}, &StateError{Op: "rail", Err: err}
	}
	if !found {
		return Rail{}, refuse("rail", ErrRailNotFound, "rail %d", id)
	}
	return r, nil
}

// RateChanges returns a rail's queued (not yet settled) rate changes, oldest first.
func (l *Ledger) RateChanges(id RailID) ([]RateChange, error) {
	r, err := l.Rail(id)
	if err != nil {
		return nil, err
	}
	out := make([]RateChange, 0, r.QueueTail-r.QueueHead)
	for i := r.QueueHead; i < r.QueueTail; i++ {
		rc, found, err := l.state.RateChange(id, i)
		if err != nil {
			return nil, &StateError{Op: "rate changes", Err: err}
		}
		if !found {
			return nil, refuse("rate changes", ErrInvariant, "rail %d queue entry %d missing", id, i)
		}
		out = append(out, rc)
	}
	return out, nil
}

// liveRail loads a rail that exists and is not finalized.
func (t *tx) liveRail(id RailID) (Rail, error) {
	r, found, err := t.ws.rail(id)
	if err != nil {
		return Rail{}, t.stateErr(err)
	}
	if !found {
		return Rail{}, refuse(t.op, ErrRailNotFound, "rail %d", id)
	}
	if r.Finalized {
		return Rail{}, refuse(t.op, ErrRailFinalized, "rail %d", id)
	}
	return r, nil
}

// ModifyRailLockup sets a rail's lockup period and fixed lockup (operator only,
// reference §4.4). On a terminated rail the period cannot change and the fixed lockup
// can only decrease. On a live rail whose payer is in debt, the period cannot change and
// the fixed lockup cannot increase; a longer period must stay within the operator's
// maximum; lockup increases count against the lockup allowance; the payer's funds must
// cover the new lockup.
func (l *Ledger) ModifyRailLockup(caller Address, id RailID, period abi.ChainEpoch, lockupFixed abi.TokenAmount, epoch abi.ChainEpoch) error {
	t, err := l.begin("modify rail lockup", epoch)
	if err != nil {
		return err
	}
	if !validAmount(lockupFixed) {
		return refuse(t.op, ErrInvalidAmount, "fixed lockup %v", lockupFixed)
	}
	if period < 0 {
		return refuse(t.op, ErrInvalidLockupPeriod, "period %d", period)
	}
	r, payer, err := t.operatedRail(caller, id)
	if err != nil {
		return err
	}
	ap, err := t.ws.approval(r.Token, r.From, r.Operator)
	if err != nil {
		return t.stateErr(err)
	}
	if r.Terminated {
		if period != r.LockupPeriod {
			return refuse(t.op, ErrTerminatedPeriodChange, "rail %d period %d -> %d", id, r.LockupPeriod, period)
		}
		if lockupFixed.GreaterThan(r.LockupFixed) {
			return refuse(t.op, ErrTerminatedLockupIncrease, "rail %d fixed %s -> %s", id, r.LockupFixed, lockupFixed)
		}
		cut := big.Sub(r.LockupFixed, lockupFixed)
		if payer.LockupCurrent.LessThan(cut) {
			return refuse(t.op, ErrInvariant, "payer lockup %s < released fixed lockup %s", payer.LockupCurrent, cut)
		}
		payer.LockupCurrent = big.Sub(payer.LockupCurrent, cut)
		ap.LockupUsage = subFloor(ap.LockupUsage, cut)
	} else {
		if payer.LockupLastSettledAt != epoch {
			if period != r.LockupPeriod {
				return refuse(t.op, ErrNotFullySettled, "rail %d period change %d -> %d while payer funded until %d", id, r.LockupPeriod, period, payer.LockupLastSettledAt)
			}
			if lockupFixed.GreaterThan(r.LockupFixed) {
				return refuse(t.op, ErrNotFullySettled, "rail %d fixed lockup increase while payer funded until %d", id, payer.LockupLastSettledAt)
			}
		}
		if period > r.LockupPeriod && period > ap.MaxLockupPeriod {
			return refuse(t.op, ErrLockupPeriodTooLong, "period %d > max %d", period, ap.MaxLockupPeriod)
		}
		oldLockup := big.Add(r.LockupFixed, times(r.PaymentRate, r.LockupPeriod))
		newLockup := big.Add(lockupFixed, times(r.PaymentRate, period))
		var err error
		if ap.LockupUsage, err = adjustUsage(t.op, ErrLockupAllowanceExceeded, ap.LockupUsage, ap.LockupAllowance, oldLockup, newLockup); err != nil {
			return err
		}
		payer.LockupCurrent = big.Add(payer.LockupCurrent, big.Sub(newLockup, oldLockup))
		if payer.LockupCurrent.Sign() < 0 {
			return refuse(t.op, ErrInvariant, "payer lockup would go negative")
		}
		if payer.Funds.LessThan(payer.LockupCurrent) {
			return refuse(t.op, ErrInsufficientFunds, "funds %s < lockup %s", payer.Funds, payer.LockupCurrent)
		}
	}
	r.LockupPeriod = period
	r.LockupFixed = lockupFixed.Copy()
	t.stageRail(r, payer, ap)
	return t.commit()
}

// stageRail stages a rail with its payer's account and the payer's approval of its operator:
// the three records every rail-changing operation writes together.
func (t *tx) stageRail(r Rail, payer Account, ap Approval) {
	t.ws.putAccount(r.Token, r.From, payer)
	t.ws.putApproval(r.Token, r.From, r.Operator, ap)
	t.ws.putRail(r)
}

// operatedRail loads a live rail that caller operates, and its payer's account settled to
// the operation's epoch.
func (t *tx) operatedRail(caller Address, id RailID) (Rail, Account, error) {
	r, err := t.liveRail(id)
	if err != nil {
		return Rail{}, Account{}, err
	}
	if caller != r.Operator {
		return Rail{}, Account{}, refuse(t.op, ErrNotOperator, "caller %s, operator %s", caller, r.Operator)
	}
	payer, err := t.settledAccount(r.Token, r.From)
	if err != nil {
		return Rail{}, Account{}, err
	}
	return r, payer, nil
}

// adjustUsage moves a usage counter from old to new: an increase must fit the allowance,
// a decrease saturates at zero.
func adjustUsage(op string, rule Rule, usage, allowance, oldV, newV abi.TokenAmount) (abi.TokenAmount, error) {
	if newV.GreaterThan(oldV) {
		u := big.Add(usage, big.Sub(newV, oldV))
		if u.GreaterThan(allowance) {
			return abi.TokenAmount{}, refuse(op, rule, "usage would be %s, allowance %s", u, allowance)
		}
		return u, nil
	}
	return subFloor(usage, big.Sub(oldV, newV)), nil
}

// ModifyRailPayment sets a rail's payment rate and makes a one-time payment out of its
// fixed lockup (operator only, reference §4.4). The old rate keeps applying to the epochs
// up to and including epoch; newRate applies from epoch+1. A live rail's rate can change
// only while its payer is fully settled; a terminated rail's rate can only decrease, and
// only before its end epoch. The returned Payment splits the one-time payment.
func (l *Ledger) ModifyRailPayment(caller Address, id RailID, newRate, oneTimePayment abi.TokenAmount, epoch abi.ChainEpoch) (Payment, error) {
	t, err := l.begin("modify rail payment", epoch)
	if err != nil {
		return Payment{}, err
	}
	if !validAmount(newRate) || !validAmount(oneTimePayment) {
		return Payment{}, refuse(t.op, ErrInvalidAmount, "rate %v, one-time payment %v", newRate, oneTimePayment)
	}
	r, payer, err := t.operatedRail(caller, id)
	if err != nil {
		return Payment{}, err
	}
	oldRate := r.PaymentRate
	if r.Terminated {
		if epoch >= r.EndEpoch {
			return Payment{}, refuse(t.op, ErrRailEnded, "rail %d ended at %d, now %d", id, r.EndEpoch, epoch)
		}
		if newRate.GreaterThan(oldRate) {
			return Payment{}, refuse(t.op, ErrTerminatedRateIncrease, "rail %d rate %s -> %s", id, oldRate, newRate)
		}
	} else if !newRate.Equals(oldRate) && payer.LockupLastSettledAt != epoch {
		return Payment{}, refuse(t.op, ErrNotFullySettled, "rail %d rate change while payer funded until %d, now %d", id, payer.LockupLastSettledAt, epoch)
	}
	if oneTimePayment.GreaterThan(r.LockupFixed) {
		return Payment{}, refuse(t.op, ErrOneTimeExceedsFixed, "one-time payment %s > fixed lockup %s", oneTimePayment, r.LockupFixed)
	}
	if r.SettledUpTo > epoch {
		return Payment{}, refuse(t.op, ErrInvalidEpoch, "rail %d settled up to %d, after now %d", id, r.SettledUpTo, epoch)
	}
	ap, err := t.ws.approval(r.Token, r.From, r.Operator)
	if err != nil {
		return Payment{}, t.stateErr(err)
	}

	effectivePeriod := r.LockupPeriod
	if r.Terminated {
		effectivePeriod = r.EndEpoch - epoch
	}
	rateDelta := big.Sub(newRate, oldRate)
	if !r.Terminated {
		if ap.RateUsage, err = adjustUsage(t.op, ErrRateAllowanceExceeded, ap.RateUsage, ap.RateAllowance, oldRate, newRate); err != nil {
			return Payment{}, err
		}
		payer.LockupRate = big.Add(payer.LockupRate, rateDelta)
		if payer.LockupRate.Sign() < 0 {
			return Payment{}, refuse(t.op, ErrInvariant, "payer lockup rate would go negative")
		}
	}
	oldStream := times(oldRate, effectivePeriod)
	newStream := times(newRate, effectivePeriod)
	if ap.LockupUsage, err = adjustUsage(t.op, ErrLockupAllowanceExceeded, ap.LockupUsage, ap.LockupAllowance, oldStream, newStream); err != nil {
		return Payment{}, err
	}
	if oneTimePayment.Sign() > 0 {
		ap.LockupUsage = subFloor(ap.LockupUsage, oneTimePayment)
		ap.LockupAllowance = subFloor(ap.LockupAllowance, oneTimePayment)
	}
	payer.LockupCurrent = big.Sub(big.Add(payer.LockupCurrent, big.Sub(newStream, oldStream)), oneTimePayment)
	if payer.LockupCurrent.Sign() < 0 {
		return Payment{}, refuse(t.op, ErrInvariant, "payer lockup would go negative")
	}
	payer.Funds = big.Sub(payer.Funds, oneTimePayment)
	if payer.Funds.LessThan(payer.LockupCurrent) {
		return Payment{}, refuse(t.op, ErrInsufficientFunds, "funds %s < lockup %s", payer.Funds, payer.LockupCurrent)
	}

	if !rateDelta.IsZero() {
		if err := t.enqueueRateChange(&r, oldRate); err != nil {
			return Payment{}, err
		}
	}
	r.PaymentRate = newRate.Copy()
	r.LockupFixed = big.Sub(r.LockupFixed, oneTimePayment)
	t.stageRail(r, payer, ap)
	pay, err := t.distribute(r, oneTimePayment)
	if err != nil {
		return Payment{}, err
	}
	if err := t.commit(); err != nil {
		return Payment{}, err
	}
	return pay, nil
}

// enqueueRateChange records that oldRate applies to the rail's unsettled epochs up to
// and including now (reference §4.4). One entry per epoch at most: a second change in
// the same epoch leaves the queue alone, because the intermediate rate applied to no
// epoch. A zero-rate prefix is skipped by advancing SettledUpTo instead.
func (t *tx) enqueueRateChange(r *Rail, oldRate abi.TokenAmount) error {
	if r.SettledUpTo == t.epoch {
		return nil
	}
	if r.QueueHead == r.QueueTail {
		if oldRate.Sign() == 0 {
			r.SettledUpTo = t.epoch
			return nil
		}
	} else {
		last, found, err := t.ws.rateChange(r.ID, r.QueueTail-1)
		if err != nil {
			return t.stateErr(err)
		}
		if !found {
			return refuse(t.op, ErrInvariant, "rail %d queue entry %d missing", r.ID, r.QueueTail-1)
		}
		if last.UntilEpoch == t.epoch {
			return nil
		}
		if last.UntilEpoch > t.epoch {
			return refuse(t.op, ErrInvalidEpoch, "rail %d has a rate change until %d, after now %d", r.ID, last.UntilEpoch, t.epoch)
		}
	}
	t.ws.putRateChange(r.ID, r.QueueTail, RateChange{Rate: oldRate, UntilEpoch: t.epoch})
	r.QueueTail++
	return nil
}

// distribute takes gross (already debited from the payer) and credits the network fee,
// the commission and the payee (reference §4.7).
func (t *tx) distribute(r Rail, gross abi.TokenAmount) (Payment, error) {
	pay := SplitPayment(gross, r.CommissionBps)
	if gross.Sign() == 0 {
		return pay, nil
	}
	if err := t.credit(r.Token, r.To, pay.NetPayee); err != nil {
		return Payment{}, err
	}
	if pay.Commission.Sign() > 0 {
		if err := t.credit(r.Token, r.ServiceFeeRecipient, pay.Commission); err != nil {
			return Payment{}, err
		}
	}
	fees, err := t.ws.networkFees(r.Token)
	if err != nil {
		return Payment{}, t.stateErr(err)
	}
	t.ws.putNetworkFees(r.Token, big.Add(fees, pay.NetworkFee))
	return pay, nil
}

func (t *tx) credit(token, owner Address, amount abi.TokenAmount) error {
	a, err := t.settledAccount(token, owner)
	if err != nil {
		return err
	}
	a.Funds = big.Add(a.Funds, amount)
	t.ws.putAccount(token, owner, a)
	return nil
}

// TerminateRail ends a rail (reference §4.8). The payer may terminate only while fully
// settled; the operator always may. EndEpoch = the payer's funded-until epoch + the lockup
// period: the streaming lockup stays locked and pays that window. The payer's lockup rate
// and the operator's rate usage drop by the rail's rate. A validator that implements
// TerminationListener is told last and may refuse.
func (l *Ledger) TerminateRail(caller Address, id RailID, epoch abi.ChainEpoch) error {
	t, err := l.begin("terminate rail", epoch)
	if err != nil {
		return err
	}
	r, err := t.liveRail(id)
	if err != nil {
		return err
	}
	if r.Terminated {
		return refuse(t.op, ErrRailTerminated, "rail %d ended at %d", id, r.EndEpoch)
	}
	payer, err := t.settledAccount(r.Token, r.From)
	if err != nil {
		return err
	}
	switch caller {
	case r.Operator:
	case r.From:
		if payer.LockupLastSettledAt != epoch {
			return refuse(t.op, ErrNotFullySettled, "payer funded until %d, now %d", payer.LockupLastSettledAt, epoch)
		}
	default:
		return refuse(t.op, ErrNotPayerOrOperator, "caller %s", caller)
	}
	ap, err := t.ws.approval(r.Token, r.From, r.Operator)
	if err != nil {
		return t.stateErr(err)
	}
	payer.LockupRate = big.Sub(payer.LockupRate, r.PaymentRate)
	if payer.LockupRate.Sign() < 0 {
		return refuse(t.op, ErrInvariant, "payer lockup rate would go negative")
	}
	ap.RateUsage = subFloor(ap.RateUsage, r.PaymentRate)
	r.Terminated = true
	r.EndEpoch = payer.LockupLastSettledAt + r.LockupPeriod
	if r.Validator != (Address{}) {
		v, ok := l.validators.Validator(r.Validator)
		if !ok {
			return refuse(t.op, ErrUnknownValidator, "validator %s", r.Validator)
		}
		if tl, ok := v.(TerminationListener); ok {
			if err := tl.RailTerminated(r, caller, r.EndEpoch); err != nil {
				return &RefusalError{Op: t.op, Rule: ErrTerminationRefused, Detail: "rail " + strconv.FormatUint(uint64(id), 10), Cause: err}
			}
		}
	}
	t.stageRail(r, payer, ap)
	return t.commit()
}

// SettleRail pays a rail up to untilEpoch (≤ epoch), segment by segment through its rate
// changes, asking the validator about every segment with a non-zero rate (reference
// §4.5). A live rail never settles past the payer's funded-until epoch; a terminated one
// never past its end epoch, and is finalized once settled there. Anyone may call it.
// Settling again to the same epoch is a no-op.
func (l *Ledger) SettleRail(id RailID, untilEpoch abi.ChainEpoch, epoch abi.ChainEpoch) (Settlement, error) {
	return l.settleRail("settle rail", id, untilEpoch, epoch, true, Address{})
}

// SettleTerminatedRailWithoutValidation is the payer's escape hatch from a broken
// validator: once a terminated rail's end epoch has passed, the payer settles it to the
// end epoch at full rate, without asking the validator, and it is finalized.
func (l *Ledger) SettleTerminatedRailWithoutValidation(caller Address, id RailID, epoch abi.ChainEpoch) (Settlement, error) {
	return l.settleRail("settle terminated rail without validation", id, epoch, epoch, false, caller)
}

func (l *Ledger) settleRail(op string, id RailID, untilEpoch, epoch abi.ChainEpoch, validate bool, caller Address) (Settlement, error) {
	t, err := l.begin(op, epoch)
	if err != nil {
		return Settlement{}, err
	}
	if untilEpoch > epoch {
		return Settlement{}, refuse(op, ErrSettleFutureEpoch, "until %d > now %d", untilEpoch, epoch)
	}
	r, err := t.liveRail(id)
	if err != nil {
		return Settlement{}, err
	}
	if !validate {
		if caller != r.From {
			return Settlement{}, refuse(op, ErrNotPayer, "caller %s, payer %s", caller, r.From)
		}
		if !r.Terminated {
			return Settlement{}, refuse(op, ErrRailNotTerminated, "rail %d", id)
		}
		if epoch <= r.EndEpoch {
			return Settlement{}, refuse(op, ErrEndEpochNotReached, "end %d, now %d", r.EndEpoch, epoch)
		}
		untilEpoch = r.EndEpoch
	}
	payer, err := t.settledAccount(r.Token, r.From)
	if err != nil {
		return Settlement{}, err
	}
	s := Settlement{RailID: id, Payment: zeroPayment(), Withheld: big.Zero(), SettledUpTo: r.SettledUpTo}

	limit := minEpoch(untilEpoch, payer.LockupLastSettledAt)
	if r.Terminated {
		limit = minEpoch(untilEpoch, r.EndEpoch)
	}
	if !(r.Terminated && r.SettledUpTo >= r.EndEpoch) && r.SettledUpTo < limit {
		var v Validator
		if validate && r.Validator != (Address{}) {
			var ok bool
			if v, ok = l.validators.Validator(r.Validator); !ok {
				return Settlement{}, refuse(op, ErrUnknownValidator, "validator %s", r.Validator)
			}
		}
		w := segmentWalk{t: t, rail: &r, payer: &payer, validator: v}
		queueWasEmpty := r.QueueHead == r.QueueTail
		start := r.SettledUpTo
		if err := w.run(limit); err != nil {
			return Settlement{}, err
		}
		if queueWasEmpty && r.SettledUpTo == start {
			return Settlement{}, refuse(op, ErrNoProgress, "rail %d settled up to %d, target %d", id, start, limit)
		}
		t.ws.putAccount(r.Token, r.From, payer)
		t.ws.putRail(r)
		paid, withheld := w.totals()
		pay, err := t.distribute(r, paid)
		if err != nil {
			return Settlement{}, err
		}
		s.Payment = pay
		s.Withheld = withheld
		s.Segments = w.segments
		s.Note = strings.Join(w.notes, "; ")
		s.SettledUpTo = r.SettledUpTo
	}
	if r.Terminated && r.SettledUpTo >= r.EndEpoch && r.QueueHead == r.QueueTail {
		if err := t.finalize(&r); err != nil {
			return Settlement{}, err
		}
		s.Finalized = true
	}
	if err := t.commit(); err != nil {
		return Settlement{}, err
	}
	return s, nil
}

// segmentWalk settles a rail segment by segment. It sums what it pays and what it
// releases in private accumulators and applies them to the payer once at the end: with
// 100,000 segments, per-segment account updates would dominate.
type segmentWalk struct {
	t         *tx
	rail      *Rail
	payer     *Account
	validator Validator // nil: pay in full
	notes     []string
	segments  int

	paid, released   mathbig.Int
	span, maxAllowed mathbig.Int // scratch
}

// run settles toward limit, stops early where a validator stops, and then debits the
// payer: funds by what was paid, lockup by the full rate × epochs settled.
func (w *segmentWalk) run(limit abi.ChainEpoch) error {
	r := w.rail
	for r.SettledUpTo < limit {
		segEnd, rate := limit, r.PaymentRate
		queued := r.QueueHead < r.QueueTail
		var head RateChange
		if queued {
			var found bool
			var err error
			head, found, err = w.t.ws.rateChange(r.ID, r.QueueHead)
			if err != nil {
				return w.t.stateErr(err)
			}
			if !found {
				return refuse(w.t.op, ErrInvariant, "rail %d queue entry %d missing", r.ID, r.QueueHead)
			}
			if head.UntilEpoch <= r.SettledUpTo {
				// Already covered (the rules never leave such an entry; never loop on one).
				w.t.ws.dequeueRateChange(r.ID, r.QueueHead)
				r.QueueHead++
				continue
			}
			segEnd, rate = minEpoch(limit, head.UntilEpoch), head.Rate
		}
		w.segments++
		reached, err := w.segment(r.SettledUpTo, segEnd, rate)
		if err != nil {
			return err
		}
		r.SettledUpTo = reached
		if queued && reached >= head.UntilEpoch {
			w.t.ws.dequeueRateChange(r.ID, r.QueueHead)
			r.QueueHead++
		}
		if reached < segEnd {
			break
		}
	}
	// Views of the accumulators, not copies: big.Sub allocates its results, so the payer's
	// new amounts share nothing with the walk. totals copies what leaves the walk.
	paid := abi.TokenAmount{Int: &w.paid}
	released := abi.TokenAmount{Int: &w.released}
	if w.payer.LockupCurrent.LessThan(released) || w.payer.Funds.LessThan(paid) {
		return refuse(w.t.op, ErrInvariant, "rail %d: payer lockup %s funds %s cannot release %s and pay %s", r.ID, w.payer.LockupCurrent, w.payer.Funds, released, paid)
	}
	w.payer.Funds = big.Sub(w.payer.Funds, paid)
	w.payer.LockupCurrent = big.Sub(w.payer.LockupCurrent, released)
	return nil
}

func (w *segmentWalk) totals() (paid, withheld abi.TokenAmount) {
	return abi.TokenAmount{Int: new(mathbig.Int).Set(&w.paid)},
		abi.TokenAmount{Int: new(mathbig.Int).Sub(&w.released, &w.paid)}
}

// segment settles (from, to] at rate and returns the epoch reached.
func (w *segmentWalk) segment(from, to abi.ChainEpoch, rate abi.TokenAmount) (abi.ChainEpoch, error) {
	if rate.Sign() == 0 {
		return to, nil
	}
	w.span.SetInt64(int64(to - from))
	gross := abi.TokenAmount{Int: new(mathbig.Int).Mul(rate.Int, &w.span)}
	if w.validator == nil {
		w.paid.Add(&w.paid, gross.Int)
		w.released.Add(&w.released, gross.Int)
		return to, nil
	}
	res, err := w.validator.ValidatePayment(*w.rail, gross, from, to, rate)
	if err != nil {
		return 0, &RefusalError{Op: w.t.op, Rule: ErrValidatorFailed, Detail: segmentDetail(w.rail.ID, from, to), Cause: err}
	}
	if res.SettleUpTo < from || res.SettleUpTo > to {
		return 0, refuse(w.t.op, ErrValidatorRange, "%s: settled up to %d", segmentDetail(w.rail.ID, from, to), res.SettleUpTo)
	}
	w.span.SetInt64(int64(res.SettleUpTo - from))
	w.maxAllowed.Mul(rate.Int, &w.span)
	if !validAmount(res.Amount) || res.Amount.Int.Cmp(&w.maxAllowed) > 0 {
		return 0, refuse(w.t.op, ErrValidatorOverpay, "%s: amount %v for %d epochs at rate %s", segmentDetail(w.rail.ID, from, to), res.Amount, res.SettleUpTo-from, rate)
	}
	if res.Note != "" {
		w.notes = append(w.notes, res.Note)
	}
	w.paid.Add(&w.paid, res.Amount.Int)
	w.released.Add(&w.released, &w.maxAllowed)
	return res.SettleUpTo, nil
}

func segmentDetail(id RailID, from, to abi.ChainEpoch) string {
	return fmt.Sprintf("rail %d segment (%d, %d]", id, from, to)
}

// FinalizeRail finalizes a terminated rail that is settled to its end epoch with no
// queued rate changes (SettleRail does this by itself; this is for callers that want it
// explicitly). The unused fixed lockup returns to the payer's available funds.
func (l *Ledger) FinalizeRail(id RailID, epoch abi.ChainEpoch) error {
	t, err := l.begin("finalize rail", epoch)
	if err != nil {
		return err
	}
	r, err := t.liveRail(id)
	if err != nil {
		return err
	}
	if !r.Terminated {
		return refuse(t.op, ErrRailNotTerminated, "rail %d", id)
	}
	if r.SettledUpTo < r.EndEpoch || r.QueueHead != r.QueueTail {
		return refuse(t.op, ErrRailNotSettled, "rail %d settled up to %d, end %d, %d queued rate changes", id, r.SettledUpTo, r.EndEpoch, r.QueueTail-r.QueueHead)
	}
	if err := t.finalize(&r); err != nil {
		return err
	}
	return t.commit()
}

// finalize returns the rail's fixed lockup to the payer, releases the operator's lockup
// usage (as FilecoinPayV1 does: fixed + rate × period with the final rate) and marks the
// rail finalized.
func (t *tx) finalize(r *Rail) error {
	payer, err := t.settledAccount(r.Token, r.From)
	if err != nil {
		return err
	}
	if payer.LockupCurrent.LessThan(r.LockupFixed) {
		return refuse(t.op, ErrInvariant, "payer lockup %s < rail %d fixed lockup %s", payer.LockupCurrent, r.ID, r.LockupFixed)
	}
	payer.LockupCurrent = big.Sub(payer.LockupCurrent, r.LockupFixed)
	ap, err := t.ws.approval(r.Token, r.From, r.Operator)
	if err != nil {
		return t.stateErr(err)
	}
	ap.LockupUsage = subFloor(ap.LockupUsage, big.Add(r.LockupFixed, times(r.PaymentRate, r.LockupPeriod)))
	r.Finalized = true
	r.LockupFixed = big.Zero()
	t.stageRail(*r, payer, ap)
	return nil
}
