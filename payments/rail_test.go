package payments

import (
	"errors"
	"testing"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"
)

func TestCreateRailRules(t *testing.T) {
	tests := []struct {
		name      string
		approve   bool
		payer     Address
		payee     Address
		validator Address
		bps       uint64
		recipient Address
		rule      Rule
	}{
		{"no approval", false, payerA, payeeA, Address{}, 0, Address{}, ErrNotApproved},
		{"zero payer", true, Address{}, payeeA, Address{}, 0, Address{}, ErrZeroAddress},
		{"zero payee", true, payerA, Address{}, Address{}, 0, Address{}, ErrZeroAddress},
		{"commission over 100%", true, payerA, payeeA, Address{}, 10_001, feeRecipA, ErrCommissionTooHigh},
		{"commission without recipient", true, payerA, payeeA, Address{}, 10, Address{}, ErrMissingFeeRecipient},
		{"unregistered validator", true, payerA, payeeA, stranger, 0, Address{}, ErrUnknownValidator},
		{"ok", true, payerA, payeeA, validA, 10_000, feeRecipA, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.approve {
				f.ok(f.l.SetOperatorApproval(tok, tc.payer, operatorA, true, ta(1), ta(1), 1, 0))
			}
			create := func() error {
				_, err := f.l.CreateRail(operatorA, tok, tc.payer, tc.payee, tc.validator, tc.bps, tc.recipient, 5)
				return err
			}
			if tc.rule != "" {
				f.refused(tc.rule, create)
				return
			}
			id, err := f.l.CreateRail(operatorA, tok, tc.payer, tc.payee, tc.validator, tc.bps, tc.recipient, 5)
			f.ok(err)
			r := f.rail(id)
			if id != 1 || r.SettledUpTo != 5 || r.PaymentRate.Sign() != 0 || r.LockupFixed.Sign() != 0 || r.Operator != operatorA {
				t.Fatalf("%+v", r)
			}
			id2, err := f.l.CreateRail(operatorA, tok, tc.payer, tc.payee, tc.validator, tc.bps, tc.recipient, 5)
			f.ok(err)
			if id2 != 2 {
				t.Fatalf("second rail id %d", id2)
			}
		})
	}
}

func TestRailLookupAndCallerRules(t *testing.T) {
	f := newFixture(t)
	id := f.setup(10_000, Address{}, 10, 0, 1)
	f.refused(ErrRailNotFound, func() error { _, err := f.l.SettleRail(99, 1, 1); return err })
	f.refused(ErrNotOperator, func() error { return f.l.ModifyRailLockup(payerA, id, 10, ta(0), 1) })
	f.refused(ErrNotOperator, func() error { _, err := f.l.ModifyRailPayment(payeeA, id, ta(1), ta(0), 1); return err })
	f.refused(ErrNotPayerOrOperator, func() error { return f.l.TerminateRail(payeeA, id, 1) })
	f.refused(ErrInvalidLockupPeriod, func() error { return f.l.ModifyRailLockup(operatorA, id, -1, ta(0), 1) })
	f.refused(ErrInvalidAmount, func() error { return f.l.ModifyRailLockup(operatorA, id, 1, ta(-1), 1) })
	f.refused(ErrInvalidAmount, func() error { _, err := f.l.ModifyRailPayment(operatorA, id, ta(-1), ta(0), 1); return err })
	f.refused(ErrSettleFutureEpoch, func() error { _, err := f.l.SettleRail(id, 2, 1); return err })
	f.refused(ErrRailNotTerminated, func() error { return f.l.FinalizeRail(id, 1) })
	f.refused(ErrRailNotTerminated, func() error { _, err := f.l.SettleTerminatedRailWithoutValidation(payerA, id, 1); return err })
	if _, err := f.l.Rail(99); !errors.Is(err, ErrRailNotFound) {
		t.Fatalf("Rail(99): %v", err)
	}
}

func TestOperatorAllowances(t *testing.T) {
	f := newFixture(t)
	f.ok(f.l.Deposit(tok, payerA, ta(1_000_000), 0))
	f.ok(f.l.SetOperatorApproval(tok, payerA, operatorA, true, ta(100), ta(1000), 50, 0))
	id, err := f.l.CreateRail(operatorA, tok, payerA, payeeA, Address{}, 0, Address{}, 0)
	f.ok(err)

	f.refused(ErrLockupPeriodTooLong, func() error { return f.l.ModifyRailLockup(operatorA, id, 51, ta(0), 0) })
	f.ok(f.l.ModifyRailLockup(operatorA, id, 50, ta(0), 0))
	f.refused(ErrRateAllowanceExceeded, func() error { _, err := f.l.ModifyRailPayment(operatorA, id, ta(101), ta(0), 0); return err })
	// Rate 21 would lock 21 × 50 = 1050 > 1000.
	f.refused(ErrLockupAllowanceExceeded, func() error { _, err := f.l.ModifyRailPayment(operatorA, id, ta(21), ta(0), 0); return err })
	_, err = f.l.ModifyRailPayment(operatorA, id, ta(20), ta(0), 0)
	f.ok(err)
	f.refused(ErrLockupAllowanceExceeded, func() error { return f.l.ModifyRailLockup(operatorA, id, 50, ta(1), 0) })
	ap, err := f.l.Approval(tok, payerA, operatorA)
	f.ok(err)
	eqAmount(t, "rate usage", ap.RateUsage, 20)
	eqAmount(t, "lockup usage", ap.LockupUsage, 1000)

	// Allowances may drop below usage: decreases still succeed, increases do not.
	f.ok(f.l.SetOperatorApproval(tok, payerA, operatorA, true, ta(0), ta(0), 10, 1))
	_, err = f.l.ModifyRailPayment(operatorA, id, ta(10), ta(0), 1)
	f.ok(err)
	f.ok(f.l.ModifyRailLockup(operatorA, id, 40, ta(0), 1)) // shorter period: fine above the max too
	f.refused(ErrRateAllowanceExceeded, func() error { _, err := f.l.ModifyRailPayment(operatorA, id, ta(11), ta(0), 1); return err })
	ap, err = f.l.Approval(tok, payerA, operatorA)
	f.ok(err)
	eqAmount(t, "rate usage", ap.RateUsage, 10)
	eqAmount(t, "lockup usage", ap.LockupUsage, 400)

	// IncreaseOperatorApproval adds to the allowances.
	f.ok(f.l.IncreaseOperatorApproval(tok, payerA, operatorA, ta(15), ta(500), 1))
	_, err = f.l.ModifyRailPayment(operatorA, id, ta(11), ta(0), 1) // +1 rate, +40 lockup
	f.ok(err)
	ap, err = f.l.Approval(tok, payerA, operatorA)
	f.ok(err)
	eqAmount(t, "rate allowance", ap.RateAllowance, 15)
	eqAmount(t, "lockup allowance", ap.LockupAllowance, 500)
	eqAmount(t, "rate usage", ap.RateUsage, 11)
	eqAmount(t, "lockup usage", ap.LockupUsage, 440)

	// A revoked approval stops new rails, not the existing one.
	f.ok(f.l.SetOperatorApproval(tok, payerA, operatorA, false, ta(100), ta(10_000), 100, 2))
	f.refused(ErrNotApproved, func() error {
		_, err := f.l.CreateRail(operatorA, tok, payerA, payeeA, Address{}, 0, Address{}, 2)
		return err
	})
	f.refused(ErrNotApproved, func() error { return f.l.IncreaseOperatorApproval(tok, payerA, operatorA, ta(1), ta(1), 2) })
	_, err = f.l.ModifyRailPayment(operatorA, id, ta(12), ta(0), 2)
	f.ok(err)
	f.refused(ErrInvalidAmount, func() error {
		return f.l.SetOperatorApproval(tok, payerA, operatorA, true, ta(-1), ta(0), 1, 2)
	})
	f.refused(ErrInvalidLockupPeriod, func() error {
		return f.l.SetOperatorApproval(tok, payerA, operatorA, true, ta(1), ta(0), -1, 2)
	})
}

func TestModifyLockupWhileInDebt(t *testing.T) {
	f := newFixture(t)
	id := f.setup(2000, Address{}, 100, 100, 10) // lockup 1100; funded until 90
	const now = 200
	f.refused(ErrNotFullySettled, func() error { return f.l.ModifyRailLockup(operatorA, id, 50, ta(100), now) })
	f.refused(ErrNotFullySettled, func() error { return f.l.ModifyRailLockup(operatorA, id, 100, ta(101), now) })
	f.refused(ErrNotFullySettled, func() error { _, err := f.l.ModifyRailPayment(operatorA, id, ta(5), ta(0), now); return err })
	// Lowering the fixed lockup frees funds, so the accrual advances: 50 more → 5 epochs.
	f.ok(f.l.ModifyRailLockup(operatorA, id, 100, ta(50), now))
	if a := f.account(payerA, now); a.LockupLastSettledAt != 95 {
		t.Fatalf("funded until %d, want 95", a.LockupLastSettledAt)
	}
	// A one-time payment at the same rate is still allowed.
	p, err := f.l.ModifyRailPayment(operatorA, id, ta(10), ta(10), now)
	f.ok(err)
	eqAmount(t, "one-time gross", p.Gross, 10)
}

func TestModifyLockupNeedsFunds(t *testing.T) {
	f := newFixture(t)
	id := f.setup(2000, Address{}, 100, 0, 10)
	f.refused(ErrInsufficientFunds, func() error { return f.l.ModifyRailLockup(operatorA, id, 100, ta(1001), 0) })
	f.refused(ErrInsufficientFunds, func() error { return f.l.ModifyRailLockup(operatorA, id, 201, ta(0), 0) })
	f.refused(ErrInsufficientFunds, func() error { _, err := f.l.ModifyRailPayment(operatorA, id, ta(21), ta(0), 0); return err })
	f.ok(f.l.ModifyRailLockup(operatorA, id, 100, ta(1000), 0))
	eqAmount(t, "available", f.account(payerA, 0).Available, 0)
}

func TestOneTimePayment(t *testing.T) {
	f := newFixture(t)
	f.ok(f.l.Deposit(tok, payerA, ta(10_000), 0))
	f.ok(f.l.SetOperatorApproval(tok, payerA, operatorA, true, ta(0), ta(1000), 10, 0))
	id, err := f.l.CreateRail(operatorA, tok, payerA, payeeA, Address{}, 1000, feeRecipA, 0)
	f.ok(err)
	f.ok(f.l.ModifyRailLockup(operatorA, id, 10, ta(500), 0))
	f.refused(ErrOneTimeExceedsFixed, func() error { _, err := f.l.ModifyRailPayment(operatorA, id, ta(0), ta(501), 1); return err })
	p, err := f.l.ModifyRailPayment(operatorA, id, ta(0), ta(200), 1)
	f.ok(err)
	// 200: fee ceil(1) = 1, commission floor(199 × 10%) = 19, payee 180.
	eqAmount(t, "fee", p.NetworkFee, 1)
	eqAmount(t, "commission", p.Commission, 19)
	eqAmount(t, "payee", p.NetPayee, 180)
	a := f.account(payerA, 1)
	eqAmount(t, "payer funds", a.Funds, 9800)
	eqAmount(t, "payer lockup", a.LockupCurrent, 300)
	eqAmount(t, "payee funds", f.account(payeeA, 1).Funds, 180)
	eqAmount(t, "recipient funds", f.account(feeRecipA, 1).Funds, 19)
	fees, err := f.l.NetworkFees(tok)
	f.ok(err)
	eqAmount(t, "network fees", fees, 1)
	eqAmount(t, "fixed lockup", f.rail(id).LockupFixed, 300)
	// The one-time payment consumed lockup allowance for good.
	ap, err := f.l.Approval(tok, payerA, operatorA)
	f.ok(err)
	eqAmount(t, "lockup usage", ap.LockupUsage, 300)
	eqAmount(t, "lockup allowance", ap.LockupAllowance, 800)
}

func TestRateChangeQueue(t *testing.T) {
	t.Run("one entry per epoch", func(t *testing.T) {
		f := newFixture(t)
		id := f.setup(100_000, Address{}, 100, 0, 10)
		for _, rate := range []int64{20, 30} {
			_, err := f.l.ModifyRailPayment(operatorA, id, ta(rate), ta(0), 10)
			f.ok(err)
		}
		q, err := f.l.RateChanges(id)
		f.ok(err)
		if len(q) != 1 || !q[0].Rate.Equals(ta(10)) || q[0].UntilEpoch != 10 {
			t.Fatalf("queue %+v", q)
		}
		// Lockup: 30 × 100 streaming + 10 × 10 accrued.
		eqAmount(t, "lockup", f.account(payerA, 10).LockupCurrent, 3100)
		s, err := f.l.SettleRail(id, 20, 20)
		f.ok(err)
		eqAmount(t, "paid", s.Gross, 10*10+30*10)
		if s.Segments != 2 {
			t.Fatalf("segments %d", s.Segments)
		}
		q, err = f.l.RateChanges(id)
		f.ok(err)
		if len(q) != 0 {
			t.Fatalf("queue not drained: %+v", q)
		}
		eqAmount(t, "lockup after settlement", f.account(payerA, 20).LockupCurrent, 3000)
	})
	t.Run("unchanged rate queues nothing", func(t *testing.T) {
		f := newFixture(t)
		id := f.setup(100_000, Address{}, 100, 0, 10)
		_, err := f.l.ModifyRailPayment(operatorA, id, ta(10), ta(0), 10)
		f.ok(err)
		if r := f.rail(id); r.QueueTail != r.QueueHead {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("a rail settled up to now queues nothing", func(t *testing.T) {
		f := newFixture(t)
		id := f.setup(100_000, Address{}, 100, 0, 10)
		_, err := f.l.SettleRail(id, 10, 10)
		f.ok(err)
		_, err = f.l.ModifyRailPayment(operatorA, id, ta(20), ta(0), 10)
		f.ok(err)
		if r := f.rail(id); r.QueueTail != r.QueueHead || r.SettledUpTo != 10 {
			t.Fatalf("%+v", r)
		}
		s, err := f.l.SettleRail(id, 15, 15)
		f.ok(err)
		eqAmount(t, "paid at the new rate", s.Gross, 100)
	})
	t.Run("zero-rate prefix is skipped", func(t *testing.T) {
		f := newFixture(t)
		id := f.setup(100_000, validA, 100, 0, 0)
		_, err := f.l.ModifyRailPayment(operatorA, id, ta(10), ta(0), 100)
		f.ok(err)
		if r := f.rail(id); r.SettledUpTo != 100 || r.QueueTail != 0 {
			t.Fatalf("%+v", r)
		}
		s, err := f.l.SettleRail(id, 150, 150)
		f.ok(err)
		eqAmount(t, "paid", s.Gross, 500)
		if f.val.calls != 1 {
			t.Fatalf("validator calls %d", f.val.calls)
		}
	})
	t.Run("zero-rate segment inside the queue skips the validator", func(t *testing.T) {
		f := newFixture(t)
		id := f.setup(100_000, validA, 100, 0, 10)
		_, err := f.l.ModifyRailPayment(operatorA, id, ta(0), ta(0), 10)
		f.ok(err)
		_, err = f.l.ModifyRailPayment(operatorA, id, ta(5), ta(0), 20)
		f.ok(err)
		s, err := f.l.SettleRail(id, 30, 30)
		f.ok(err)
		eqAmount(t, "paid", s.Gross, 100+50)
		if s.Segments != 3 || f.val.calls != 2 || s.SettledUpTo != 30 {
			t.Fatalf("segments %d calls %d settled %d", s.Segments, f.val.calls, s.SettledUpTo)
		}
	})
}

func TestSettlementWithValidator(t *testing.T) {
	t.Run("withheld epochs return to the payer", func(t *testing.T) {
		f := newFixture(t)
		id := f.setup(100_000, validA, 100, 0, 10)
		for e := abi.ChainEpoch(11); e <= 20; e++ {
			f.val.unpaid[e] = true
		}
		s, err := f.l.SettleRail(id, 50, 50)
		f.ok(err)
		eqAmount(t, "paid", s.Gross, 400)
		eqAmount(t, "withheld", s.Withheld, 100)
		if s.SettledUpTo != 50 || s.Note != "unproven epochs withheld" {
			t.Fatalf("%+v", s)
		}
		a := f.account(payerA, 50)
		eqAmount(t, "payer funds", a.Funds, 100_000-400)
		eqAmount(t, "payer lockup", a.LockupCurrent, 1000) // only the streaming lockup remains
		eqAmount(t, "payee funds", f.account(payeeA, 50).Funds, 400-2)
	})
	t.Run("validator stops inside the segment", func(t *testing.T) {
		f := newFixture(t)
		id := f.setup(100_000, validA, 100, 0, 10)
		f.val.stop = 30
		s, err := f.l.SettleRail(id, 50, 50)
		f.ok(err)
		if s.SettledUpTo != 30 {
			t.Fatalf("settled %d", s.SettledUpTo)
		}
		eqAmount(t, "paid", s.Gross, 300)
		eqAmount(t, "lockup", f.account(payerA, 50).LockupCurrent, 1000+200) // epochs 31..50 still locked
	})
	t.Run("no progress on a single segment is refused", func(t *testing.T) {
		f := newFixture(t)
		id := f.setup(100_000, validA, 100, 0, 10)
		f.val.stop = 0
		f.refused(ErrNoProgress, func() error { _, err := f.l.SettleRail(id, 50, 50); return err })
	})
	t.Run("validator stops early in a queued segment", func(t *testing.T) {
		f := newFixture(t)
		id := f.setup(100_000, validA, 100, 0, 10)
		_, err := f.l.ModifyRailPayment(operatorA, id, ta(20), ta(0), 20)
		f.ok(err)
		f.val.stop = 10
		s, err := f.l.SettleRail(id, 50, 50)
		f.ok(err)
		if s.SettledUpTo != 10 || s.Segments != 1 {
			t.Fatalf("%+v", s)
		}
		eqAmount(t, "paid", s.Gross, 100)
		// No progress at all with a queue: not an error, nothing paid.
		f.val.stop = 10
		s, err = f.l.SettleRail(id, 50, 50)
		f.ok(err)
		if s.SettledUpTo != 10 || s.Gross.Sign() != 0 {
			t.Fatalf("%+v", s)
		}
		f.val.stop = -1
		s, err = f.l.SettleRail(id, 50, 50)
		f.ok(err)
		eqAmount(t, "paid", s.Gross, 10*10+20*30)
		if s.SettledUpTo != 50 || s.Segments != 2 {
			t.Fatalf("%+v", s)
		}
	})
	t.Run("validator errors and lies are refused", func(t *testing.T) {
		f := newFixture(t)
		id := f.setup(100_000, validA, 100, 0, 10)
		f.val.overpay = true
		f.refused(ErrValidatorOverpay, func() error { _, err := f.l.SettleRail(id, 50, 50); return err })
		f.val.overpay, f.val.outOfRange = false, true
		f.refused(ErrValidatorRange, func() error { _, err := f.l.SettleRail(id, 50, 50); return err })
		f.val.outOfRange, f.val.err = false, errDisk
		f.refused(ErrValidatorFailed, func() error { _, err := f.l.SettleRail(id, 50, 50); return err })
		if _, err := f.l.SettleRail(id, 50, 50); !errors.Is(err, errDisk) {
			t.Fatalf("validator's error not wrapped: %v", err)
		}
	})
	t.Run("settling twice pays once", func(t *testing.T) {
		f := newFixture(t)
		id := f.setup(100_000, Address{}, 100, 0, 10)
		s, err := f.l.SettleRail(id, 40, 60)
		f.ok(err)
		eqAmount(t, "paid", s.Gross, 400)
		s, err = f.l.SettleRail(id, 40, 60)
		f.ok(err)
		if s.Gross.Sign() != 0 || s.SettledUpTo != 40 {
			t.Fatalf("%+v", s)
		}
		s, err = f.l.SettleRail(id, 30, 60) // an earlier target is a no-op too
		f.ok(err)
		if s.Gross.Sign() != 0 || s.SettledUpTo != 40 {
			t.Fatalf("%+v", s)
		}
	})
}

func TestUnderfundedRailStopsAtFundedUntil(t *testing.T) {
	f := newFixture(t)
	id := f.setup(10_000, Address{}, 100, 50, 10) // funded until 895
	s, err := f.l.SettleRail(id, 1000, 1000)
	f.ok(err)
	if s.SettledUpTo != 895 {
		t.Fatalf("settled to %d, want the funded-until epoch 895", s.SettledUpTo)
	}
	eqAmount(t, "paid", s.Gross, 8950)
	eqAmount(t, "fee", s.NetworkFee, 45)
	eqAmount(t, "payee", s.NetPayee, 8905)

	// The payer in debt cannot terminate; the operator can. End = 895 + 100.
	f.refused(ErrNotFullySettled, func() error { return f.l.TerminateRail(payerA, id, 1000) })
	f.ok(f.l.TerminateRail(operatorA, id, 1000))
	r := f.rail(id)
	if !r.Terminated || r.EndEpoch != 995 {
		t.Fatalf("%+v", r)
	}
	f.refused(ErrRailTerminated, func() error { return f.l.TerminateRail(operatorA, id, 1000) })
	if a := f.account(payerA, 1000); !a.LockupRate.IsZero() {
		t.Fatalf("lockup rate %s after termination", a.LockupRate)
	}
	// The lockup pays the payee through the end epoch, then the rail finalizes.
	s, err = f.l.SettleRail(id, 1000, 1000)
	f.ok(err)
	eqAmount(t, "paid after termination", s.Gross, 1000)
	if !s.Finalized || s.SettledUpTo != 995 {
		t.Fatalf("%+v", s)
	}
	a := f.account(payerA, 1000)
	eqAmount(t, "payer funds", a.Funds, 50)
	eqAmount(t, "payer lockup", a.LockupCurrent, 0) // fixed lockup 50 returned
	f.refused(ErrRailFinalized, func() error { _, err := f.l.SettleRail(id, 1000, 1000); return err })
	f.refused(ErrRailFinalized, func() error { return f.l.TerminateRail(operatorA, id, 1000) })
	if r := f.rail(id); !r.Finalized {
		t.Fatalf("%+v", r)
	}
}

func TestTerminatedRail(t *testing.T) {
	f := newFixture(t)
	id := f.setup(100_000, validA, 100, 40, 10)
	f.ok(f.l.TerminateRail(payerA, id, 10)) // fully settled payer: end = 10 + 100
	if r := f.rail(id); r.EndEpoch != 110 || len(f.val.terminated) != 1 || f.val.terminated[0] != 110 {
		t.Fatalf("%+v, listener saw %v", r, f.val.terminated)
	}
	ap, err := f.l.Approval(tok, payerA, operatorA)
	f.ok(err)
	eqAmount(t, "rate usage after termination", ap.RateUsage, 0)

	f.refused(ErrTerminatedPeriodChange, func() error { return f.l.ModifyRailLockup(operatorA, id, 50, ta(40), 20) })
	f.refused(ErrTerminatedLockupIncrease, func() error { return f.l.ModifyRailLockup(operatorA, id, 100, ta(41), 20) })
	f.refused(ErrTerminatedRateIncrease, func() error { _, err := f.l.ModifyRailPayment(operatorA, id, ta(11), ta(0), 50); return err })
	f.ok(f.l.ModifyRailLockup(operatorA, id, 100, ta(30), 20))
	// Rate 10 → 4 at epoch 50: lockup drops by 6 × (110 − 50).
	before := f.account(payerA, 50).LockupCurrent
	_, err = f.l.ModifyRailPayment(operatorA, id, ta(4), ta(10), 50)
	f.ok(err)
	after := f.account(payerA, 50).LockupCurrent
	eqAmount(t, "lockup drop", big.Sub(before, after), 6*60+10)
	f.refused(ErrRailEnded, func() error { _, err := f.l.ModifyRailPayment(operatorA, id, ta(4), ta(0), 110); return err })
	f.refused(ErrRailNotSettled, func() error { return f.l.FinalizeRail(id, 60) })

	s, err := f.l.SettleRail(id, 200, 200)
	f.ok(err)
	eqAmount(t, "paid", s.Gross, 10*50+4*60)
	if !s.Finalized || s.SettledUpTo != 110 {
		t.Fatalf("%+v", s)
	}
	a := f.account(payerA, 200)
	eqAmount(t, "payer lockup", a.LockupCurrent, 0)
	eqAmount(t, "payer funds", a.Funds, 100_000-740-10)
	// FilecoinPayV1 quirk (filecoin-pay#274): a rate cut during the termination window
	// leaves (10 − 4) × (100 − 60) = 240 of phantom lockup usage.
	ap, err = f.l.Approval(tok, payerA, operatorA)
	f.ok(err)
	eqAmount(t, "phantom lockup usage", ap.LockupUsage, 240)
}

func TestTerminationListenerCanRefuse(t *testing.T) {
	f := newFixture(t)
	id := f.setup(100_000, validA, 100, 0, 10)
	f.val.refuseTerm = errors.New("only through terminateService")
	f.refused(ErrTerminationRefused, func() error { return f.l.TerminateRail(operatorA, id, 10) })
}

func TestExplicitFinalize(t *testing.T) {
	f := newFixture(t)
	id := f.setup(100_000, Address{}, 0, 70, 10)
	f.ok(f.l.TerminateRail(operatorA, id, 10)) // period 0: ends now
	// Settle manually in two steps; the second reaches the end and finalizes.
	s, err := f.l.SettleRail(id, 5, 10)
	f.ok(err)
	if s.Finalized {
		t.Fatal("finalized early")
	}
	f.refused(ErrRailNotSettled, func() error { return f.l.FinalizeRail(id, 10) })
	s, err = f.l.SettleRail(id, 10, 10)
	f.ok(err)
	if !s.Finalized {
		t.Fatalf("%+v", s)
	}
	eqAmount(t, "payer lockup", f.account(payerA, 10).LockupCurrent, 0)
	f.refused(ErrRailFinalized, func() error { return f.l.FinalizeRail(id, 10) })
}

func TestSettleWithoutValidation(t *testing.T) {
	f := newFixture(t)
	id := f.setup(100_000, validA, 100, 0, 10)
	f.ok(f.l.TerminateRail(operatorA, id, 10))
	f.val.err = errors.New("validator broken")
	f.refused(ErrValidatorFailed, func() error { _, err := f.l.SettleRail(id, 50, 50); return err })
	f.refused(ErrNotPayer, func() error { _, err := f.l.SettleTerminatedRailWithoutValidation(operatorA, id, 200); return err })
	f.refused(ErrEndEpochNotReached, func() error { _, err := f.l.SettleTerminatedRailWithoutValidation(payerA, id, 110); return err })
	s, err := f.l.SettleTerminatedRailWithoutValidation(payerA, id, 111)
	f.ok(err)
	eqAmount(t, "paid", s.Gross, 1100)
	if !s.Finalized || s.SettledUpTo != 110 {
		t.Fatalf("%+v", s)
	}
}

func TestCommissionOnSettlement(t *testing.T) {
	f := newFixture(t)
	f.ok(f.l.Deposit(tok, payerA, ta(100_000), 0))
	f.ok(f.l.SetOperatorApproval(tok, payerA, operatorA, true, ta(100), ta(100_000), 100, 0))
	id, err := f.l.CreateRail(operatorA, tok, payerA, payeeA, Address{}, 500, feeRecipA, 0)
	f.ok(err)
	_, err = f.l.ModifyRailPayment(operatorA, id, ta(10), ta(0), 0)
	f.ok(err)
	s, err := f.l.SettleRail(id, 100, 100)
	f.ok(err)
	eqAmount(t, "fee", s.NetworkFee, 5)
	eqAmount(t, "commission", s.Commission, 49)
	eqAmount(t, "payee", s.NetPayee, 946)
	eqAmount(t, "recipient", f.account(feeRecipA, 100).Funds, 49)
}

func TestStateDoesNotShareCallerAmounts(t *testing.T) {
	f := newFixture(t)
	id := f.setup(100_000, Address{}, 10, 0, 0)
	rate, fixed, allowance := ta(5), ta(7), ta(1000)
	_, err := f.l.ModifyRailPayment(operatorA, id, rate, ta(0), 1)
	f.ok(err)
	f.ok(f.l.ModifyRailLockup(operatorA, id, 10, fixed, 1))
	f.ok(f.l.SetOperatorApproval(tok, payerA, operatorA, true, allowance, allowance, 10, 1))
	rate.SetInt64(999)
	fixed.SetInt64(999)
	allowance.SetInt64(1)
	r := f.rail(id)
	eqAmount(t, "rate", r.PaymentRate, 5)
	eqAmount(t, "fixed", r.LockupFixed, 7)
	ap, err := f.l.Approval(tok, payerA, operatorA)
	f.ok(err)
	eqAmount(t, "rate allowance", ap.RateAllowance, 1000)
}
