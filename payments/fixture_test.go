package payments

import (
	"errors"
	"reflect"
	"testing"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"
)

func addr(b byte) Address {
	var a Address
	a[19] = b
	return a
}

var (
	tok       = addr(0xF0)
	payerA    = addr(1)
	payeeA    = addr(2)
	operatorA = addr(3)
	validA    = addr(4)
	feeRecipA = addr(5)
	stranger  = addr(6)
)

func ta(n int64) abi.TokenAmount { return big.NewInt(n) }

// rangeValidator pays rate × epochs outside unpaid, and settles no further than stop
// (when stop ≥ 0). It counts its calls.
type rangeValidator struct {
	unpaid     map[abi.ChainEpoch]bool
	stop       abi.ChainEpoch
	calls      int
	err        error
	overpay    bool
	outOfRange bool
	terminated []abi.ChainEpoch
	refuseTerm error
}

func newRangeValidator() *rangeValidator {
	return &rangeValidator{unpaid: map[abi.ChainEpoch]bool{}, stop: -1}
}

func (v *rangeValidator) ValidatePayment(rail Rail, proposed abi.TokenAmount, from, to abi.ChainEpoch, rate abi.TokenAmount) (ValidationResult, error) {
	v.calls++
	if v.err != nil {
		return ValidationResult{}, v.err
	}
	if v.outOfRange {
		return ValidationResult{Amount: big.Zero(), SettleUpTo: to + 1}, nil
	}
	if v.overpay {
		return ValidationResult{Amount: big.Add(proposed, ta(1)), SettleUpTo: to}, nil
	}
	upto := to
	if v.stop >= 0 && v.stop < upto {
		upto = max(v.stop, from)
	}
	n := int64(0)
	for e := from + 1; e <= upto; e++ {
		if !v.unpaid[e] {
			n++
		}
	}
	note := ""
	if n < int64(upto-from) {
		note = "unproven epochs withheld"
	}
	return ValidationResult{Amount: big.Mul(rate, ta(n)), SettleUpTo: upto, Note: note}, nil
}

func (v *rangeValidator) RailTerminated(rail Rail, terminator Address, end abi.ChainEpoch) error {
	if v.refuseTerm != nil {
		return v.refuseTerm
	}
	v.terminated = append(v.terminated, end)
	return nil
}

type fixture struct {
	t   *testing.T
	st  *MemState
	l   *Ledger
	val *rangeValidator
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := NewMemState()
	val := newRangeValidator()
	return &fixture{t: t, st: st, l: NewLedger(st, ValidatorMap{validA: val}), val: val}
}

func (f *fixture) ok(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("unexpected error: %v", err)
	}
}

// refused runs op, which must fail with rule and leave the state exactly as it was.
func (f *fixture) refused(rule Rule, op func() error) {
	f.t.Helper()
	before := f.st.Clone()
	err := op()
	if !errors.Is(err, rule) {
		f.t.Fatalf("error = %v, want rule %q", err, rule)
	}
	var re *RefusalError
	if !errors.As(err, &re) || re.Rule != rule {
		f.t.Fatalf("error %v is not a *RefusalError for %q", err, rule)
	}
	if !reflect.DeepEqual(before, f.st) {
		f.t.Fatalf("refused operation (%v) changed the state", err)
	}
}

// setup funds payerA, approves operatorA generously and opens a rail with the given
// validator (zero: none), period, fixed lockup and rate at epoch 0.
func (f *fixture) setup(funds int64, validator Address, period abi.ChainEpoch, fixed, rate int64) RailID {
	f.t.Helper()
	f.ok(f.l.Deposit(tok, payerA, ta(funds), 0))
	f.ok(f.l.SetOperatorApproval(tok, payerA, operatorA, true, ta(1_000_000), ta(1_000_000_000), 10_000, 0))
	id, err := f.l.CreateRail(operatorA, tok, payerA, payeeA, validator, 0, Address{}, 0)
	f.ok(err)
	f.ok(f.l.ModifyRailLockup(operatorA, id, period, ta(fixed), 0))
	_, err = f.l.ModifyRailPayment(operatorA, id, ta(rate), big.Zero(), 0)
	f.ok(err)
	return id
}

func (f *fixture) account(owner Address, epoch abi.ChainEpoch) AccountInfo {
	f.t.Helper()
	a, err := f.l.Account(tok, owner, epoch)
	f.ok(err)
	return a
}

func (f *fixture) rail(id RailID) Rail {
	f.t.Helper()
	r, err := f.l.Rail(id)
	f.ok(err)
	return r
}

func eqAmount(t *testing.T, what string, got abi.TokenAmount, want int64) {
	t.Helper()
	if !got.Equals(ta(want)) {
		t.Fatalf("%s = %s, want %d", what, got, want)
	}
}
