package payments

import (
	"errors"
	"testing"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"
)

func TestLazyLockupSettlement(t *testing.T) {
	// Rail: period 100, fixed 50, rate 10 → initial lockup 1050, lockup rate 10.
	tests := []struct {
		name         string
		funds        int64
		epoch        abi.ChainEpoch
		lockup       int64
		settledAt    abi.ChainEpoch
		fundedUntil  abi.ChainEpoch
		available    int64
		fullySettled bool
	}{
		{"at creation", 10_000, 0, 1050, 0, 895, 8950, true},
		{"funded", 10_000, 50, 1550, 50, 895, 8450, true},
		{"exactly funded-until", 10_000, 895, 10_000, 895, 895, 0, true},
		{"underfunded", 10_000, 1000, 10_000, 895, 895, 0, false},
		{"underfunded with a remainder", 10_005, 1000, 10_000, 895, 895, 5, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.setup(tc.funds, Address{}, 100, 50, 10)
			a := f.account(payerA, tc.epoch)
			eqAmount(t, "lockup", a.LockupCurrent, tc.lockup)
			eqAmount(t, "available", a.Available, tc.available)
			if a.LockupLastSettledAt != tc.settledAt || a.FundedUntil != tc.fundedUntil || a.FullySettled != tc.fullySettled {
				t.Fatalf("settled at %d funded until %d fully settled %v, want %d %d %v",
					a.LockupLastSettledAt, a.FundedUntil, a.FullySettled, tc.settledAt, tc.fundedUntil, tc.fullySettled)
			}
		})
	}
}

func TestAccountWithoutRailsIsFundedForever(t *testing.T) {
	f := newFixture(t)
	f.ok(f.l.Deposit(tok, payerA, ta(7), 3))
	a := f.account(payerA, 10)
	if a.FundedUntil != MaxEpoch || !a.FullySettled {
		t.Fatalf("funded until %d, fully settled %v", a.FundedUntil, a.FullySettled)
	}
	eqAmount(t, "available", a.Available, 7)
}

func TestDepositAndWithdraw(t *testing.T) {
	f := newFixture(t)
	f.setup(10_000, Address{}, 100, 50, 10)

	f.refused(ErrInvalidAmount, func() error { return f.l.Deposit(tok, payerA, ta(-1), 1) })
	f.refused(ErrInvalidAmount, func() error { return f.l.Deposit(tok, payerA, abi.TokenAmount{}, 1) })
	f.refused(ErrInvalidAmount, func() error { return f.l.Withdraw(tok, payerA, ta(-1), 1) })
	f.refused(ErrInvalidEpoch, func() error { return f.l.Deposit(tok, payerA, ta(1), -1) })
	f.refused(ErrZeroAddress, func() error { return f.l.Deposit(tok, Address{}, ta(1), 1) })
	f.refused(ErrZeroAddress, func() error {
		return f.l.SetOperatorApproval(tok, payerA, Address{}, true, ta(1), ta(1), 1, 1)
	})
	f.refused(ErrZeroAddress, func() error { return f.l.IncreaseOperatorApproval(tok, payerA, Address{}, ta(1), ta(1), 1) })

	// In debt at 1000 (funded until 895): no withdrawal at all.
	f.refused(ErrNotFullySettled, func() error { return f.l.Withdraw(tok, payerA, ta(1), 1000) })
	// A deposit lets the lockup accrual catch up: lockup 1050 + 10×1000 = 11050.
	f.ok(f.l.Deposit(tok, payerA, ta(2000), 1000))
	a := f.account(payerA, 1000)
	if !a.FullySettled {
		t.Fatalf("account still in debt after top-up: %+v", a)
	}
	eqAmount(t, "lockup", a.LockupCurrent, 11050)
	eqAmount(t, "available", a.Available, 950)
	// Epochs cannot go backwards past what the account recorded.
	f.refused(ErrInvalidEpoch, func() error { return f.l.Deposit(tok, payerA, ta(1), 999) })

	f.refused(ErrWithdrawExceedsAvailable, func() error { return f.l.Withdraw(tok, payerA, ta(951), 1000) })
	f.ok(f.l.Withdraw(tok, payerA, ta(950), 1000))
	a = f.account(payerA, 1000)
	eqAmount(t, "funds", a.Funds, 11050)
	eqAmount(t, "available", a.Available, 0)
}

func TestPartialDepositLeavesAccountInDebt(t *testing.T) {
	f := newFixture(t)
	f.setup(10_000, Address{}, 100, 50, 10)
	f.ok(f.l.Deposit(tok, payerA, ta(1000), 1000)) // covers 100 more epochs: funded until 995
	a := f.account(payerA, 1000)
	if a.FullySettled || a.LockupLastSettledAt != 995 || a.FundedUntil != 995 {
		t.Fatalf("%+v", a)
	}
}

// failingState fails every read, to show State errors surface as *StateError.
type failingState struct{ *MemState }

var errDisk = errors.New("disk on fire")

func (failingState) Account(token, owner Address) (Account, bool, error) {
	return Account{}, false, errDisk
}

func TestStateErrorsSurface(t *testing.T) {
	l := NewLedger(failingState{NewMemState()}, nil)
	err := l.Deposit(tok, payerA, ta(1), 0)
	var se *StateError
	if !errors.As(err, &se) || !errors.Is(err, errDisk) {
		t.Fatalf("error = %v, want a *StateError wrapping errDisk", err)
	}
}

// putFailingState fails the Nth put, to show that a commit failure is reported.
type putFailingState struct {
	*MemState
	puts, failAt int
}

func (p *putFailingState) PutAccount(token, owner Address, acct Account) error {
	p.puts++
	if p.puts == p.failAt {
		return errDisk
	}
	return p.MemState.PutAccount(token, owner, acct)
}

func TestCommitErrorsSurface(t *testing.T) {
	st := &putFailingState{MemState: NewMemState(), failAt: 1}
	l := NewLedger(st, nil)
	if err := l.Deposit(tok, payerA, ta(5), 0); !errors.Is(err, errDisk) {
		t.Fatalf("error = %v, want errDisk", err)
	}
	if a, _, _ := st.MemState.Account(tok, payerA); a.Funds.Int != nil {
		t.Fatalf("failed deposit stored %v", a)
	}
}

func TestSplitPayment(t *testing.T) {
	tests := []struct {
		gross, bps                int64
		fee, commission, netPayee int64
	}{
		{0, 0, 0, 0, 0},
		{1, 0, 1, 0, 0},     // the fee rounds up
		{199, 0, 1, 0, 198}, // 0.995 → 1
		{200, 0, 1, 0, 199},
		{201, 0, 2, 0, 199},
		{8950, 0, 45, 0, 8905},
		{1000, 500, 5, 49, 946}, // commission floor(995 × 0.05) = 49
		{1000, 10_000, 5, 995, 0},
	}
	for _, tc := range tests {
		p := SplitPayment(ta(tc.gross), uint64(tc.bps))
		eqAmount(t, "gross", p.Gross, tc.gross)
		eqAmount(t, "fee", p.NetworkFee, tc.fee)
		eqAmount(t, "commission", p.Commission, tc.commission)
		eqAmount(t, "net", p.NetPayee, tc.netPayee)
	}
	// Real sizes: 0.5% of 10^24 is exact.
	big24 := big.Exp(ta(10), ta(24))
	p := SplitPayment(big24, 0)
	if !p.NetworkFee.Equals(big.Mul(ta(5), big.Exp(ta(10), ta(21)))) || !big.Add(p.NetworkFee, p.NetPayee).Equals(big24) {
		t.Fatalf("%+v", p)
	}
}

func TestErrorMessagesNameOperationRuleAndValues(t *testing.T) {
	f := newFixture(t)
	f.ok(f.l.Deposit(tok, payerA, ta(10), 0))
	err := f.l.Withdraw(tok, payerA, ta(11), 0)
	want := "payments: withdraw: withdrawal exceeds available funds (funds − lockup) (amount 11 > available 10)"
	if err == nil || err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	se := &StateError{Op: "deposit", Err: errDisk}
	if se.Error() != "payments: deposit: state: disk on fire" {
		t.Fatalf("%q", se.Error())
	}
	if ErrNoProgress.Error() != "payments: settlement made no progress" {
		t.Fatalf("%q", ErrNoProgress.Error())
	}
	re := &RefusalError{Op: "settle rail", Rule: ErrValidatorFailed, Detail: "rail 1", Cause: errDisk}
	if re.Error() != "payments: settle rail: validator failed (rail 1): disk on fire" || !errors.Is(re, errDisk) || !errors.Is(re, ErrValidatorFailed) {
		t.Fatalf("%q", re.Error())
	}
}

func TestCorruptRecordsAreRefused(t *testing.T) {
	st := NewMemState()
	l := NewLedger(st, nil)
	_ = st.PutAccount(tok, payerA, Account{Funds: ta(5)}) // lockup fields missing
	for _, err := range []error{
		l.Deposit(tok, payerA, ta(1), 1),
		func() error { _, err := l.Account(tok, payerA, 1); return err }(),
	} {
		var se *StateError
		if !errors.As(err, &se) || !errors.Is(err, ErrCorruptRecord) {
			t.Fatalf("error = %v, want a *StateError wrapping ErrCorruptRecord", err)
		}
	}
	_ = st.PutRail(Rail{ID: 1, From: payerA, To: payeeA})
	if _, err := l.SettleRail(1, 1, 1); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("settle of a corrupt rail: %v", err)
	}
	if _, err := l.Rail(1); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("Rail of a corrupt rail: %v", err)
	}
}
