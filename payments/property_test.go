package payments

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"
	"pgregory.net/rapid"
)

// modThreeValidator pays every epoch not divisible by 3 and settles no further than
// barrier (when barrier ≥ 0). It is deterministic, as a validator must be.
type modThreeValidator struct{ barrier abi.ChainEpoch }

func (v *modThreeValidator) ValidatePayment(_ Rail, _ abi.TokenAmount, from, to abi.ChainEpoch, rate abi.TokenAmount) (ValidationResult, error) {
	upto := to
	if v.barrier >= 0 && v.barrier < upto {
		upto = max(v.barrier, from)
	}
	n := int64(0)
	for e := from + 1; e <= upto; e++ {
		if e%3 != 0 {
			n++
		}
	}
	return ValidationResult{Amount: big.Mul(rate, big.NewInt(n)), SettleUpTo: upto}, nil
}

func (v *modThreeValidator) RailTerminated(Rail, Address, abi.ChainEpoch) error { return nil }

// ledgerModel drives a Ledger with random operations and checks its invariants after
// every one.
type ledgerModel struct {
	st     *MemState
	l      *Ledger
	val    *modThreeValidator
	now    abi.ChainEpoch
	rails  []RailID
	tokens []Address
	owners []Address
	ops    []Address // operators

	deposited, withdrawn map[Address]abi.TokenAmount
	lastSettled          map[RailID]abi.ChainEpoch

	log []loggedOp
}

// loggedOp is one operation as run, for the replay check. op reads m.l and m.now when
// called, so replaying it against another ledger only needs those swapped.
type loggedOp struct {
	op      func() error
	now     abi.ChainEpoch
	barrier abi.ChainEpoch
	failed  bool
}

func (m *ledgerModel) exec(op func() error) error {
	err := op()
	m.log = append(m.log, loggedOp{op: op, now: m.now, barrier: m.val.barrier, failed: err != nil})
	return err
}

// replay runs the log against a fresh ledger: the same operations at the same epochs
// must succeed and fail alike and end in the same state (the ledger is deterministic, so
// chain/ can rebuild it from its transaction log).
func (m *ledgerModel) replay(t *rapid.T) {
	want := dumpState(m.st)
	m.st, m.val = NewMemState(), &modThreeValidator{barrier: -1}
	m.l = NewLedger(m.st, ValidatorMap{propValidator: m.val})
	for i, e := range m.log {
		m.now, m.val.barrier = e.now, e.barrier
		if err := e.op(); (err != nil) != e.failed {
			t.Fatalf("replay of operation %d: error %v, originally failed=%v", i, err, e.failed)
		}
	}
	if got := dumpState(m.st); got != want {
		t.Fatalf("replay diverged:\n%s\nwant:\n%s", got, want)
	}
}

// dumpState renders a MemState canonically (sorted, amounts in decimal).
func dumpState(st *MemState) string {
	var lines []string
	for k, a := range st.accounts {
		lines = append(lines, fmt.Sprintf("acct %s %s: %s %s %s %d", k.token, k.owner, a.Funds, a.LockupCurrent, a.LockupRate, a.LockupLastSettledAt))
	}
	for k, a := range st.approvals {
		lines = append(lines, fmt.Sprintf("appr %s %s %s: %v %s %s %s %s %d", k.token, k.client, k.operator, a.Approved, a.RateAllowance, a.LockupAllowance, a.RateUsage, a.LockupUsage, a.MaxLockupPeriod))
	}
	for _, r := range st.rails {
		lines = append(lines, fmt.Sprintf("rail %d: %+v", r.ID, r))
	}
	for k, rc := range st.rateChanges {
		lines = append(lines, fmt.Sprintf("rc %d %d: %s %d", k.rail, k.index, rc.Rate, rc.UntilEpoch))
	}
	for tk, f := range st.fees {
		lines = append(lines, fmt.Sprintf("fees %s: %s", tk, f))
	}
	lines = append(lines, fmt.Sprintf("next %d", st.nextRailID))
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

var propValidator = addr(20)

func newLedgerModel() *ledgerModel {
	m := &ledgerModel{
		st:          NewMemState(),
		val:         &modThreeValidator{barrier: -1},
		tokens:      []Address{addr(0xF0), addr(0xF1)},
		owners:      []Address{addr(1), addr(2), addr(3)},
		ops:         []Address{addr(10), addr(11)},
		deposited:   map[Address]abi.TokenAmount{},
		withdrawn:   map[Address]abi.TokenAmount{},
		lastSettled: map[RailID]abi.ChainEpoch{},
	}
	m.l = NewLedger(m.st, ValidatorMap{propValidator: m.val})
	for _, tk := range m.tokens {
		m.deposited[tk] = big.Zero()
		m.withdrawn[tk] = big.Zero()
	}
	return m
}

func drawAmount(t *rapid.T, label string, maxV int64) abi.TokenAmount {
	return big.NewInt(rapid.Int64Range(0, maxV).Draw(t, label))
}

// apply runs op; a refusal must be a *RefusalError that is not an invariant violation,
// and must leave the state untouched.
func (m *ledgerModel) apply(t *rapid.T, op func() error) bool {
	before := m.st.Clone()
	err := m.exec(op)
	if err == nil {
		return true
	}
	var re *RefusalError
	if !errors.As(err, &re) {
		t.Fatalf("error is not a refusal: %v", err)
	}
	if errors.Is(err, ErrInvariant) {
		t.Fatalf("invariant violation: %v", err)
	}
	if !reflect.DeepEqual(before, m.st) {
		t.Fatalf("refused operation changed the state: %v", err)
	}
	return false
}

func (m *ledgerModel) pickRail(t *rapid.T) (RailID, bool) {
	if len(m.rails) == 0 {
		return 0, false
	}
	return rapid.SampledFrom(m.rails).Draw(t, "rail"), true
}

func (m *ledgerModel) view(t *rapid.T, token, owner Address) AccountInfo {
	a, err := m.l.Account(token, owner, m.now)
	if err != nil {
		t.Fatalf("account view: %v", err)
	}
	return a
}

func (m *ledgerModel) actions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"advance": func(t *rapid.T) { m.now += abi.ChainEpoch(rapid.IntRange(0, 40).Draw(t, "epochs")) },
		"deposit": func(t *rapid.T) {
			tk, to := rapid.SampledFrom(m.tokens).Draw(t, "token"), rapid.SampledFrom(m.owners).Draw(t, "to")
			amt := drawAmount(t, "amount", 5000)
			if m.apply(t, func() error { return m.l.Deposit(tk, to, amt, m.now) }) {
				m.deposited[tk] = big.Add(m.deposited[tk], amt)
			}
		},
		"withdraw": func(t *rapid.T) {
			tk, owner := rapid.SampledFrom(m.tokens).Draw(t, "token"), rapid.SampledFrom(m.owners).Draw(t, "owner")
			amt := drawAmount(t, "amount", 3000)
			if m.apply(t, func() error { return m.l.Withdraw(tk, owner, amt, m.now) }) {
				m.withdrawn[tk] = big.Add(m.withdrawn[tk], amt)
			}
		},
		"approve": func(t *rapid.T) {
			tk, client, op := rapid.SampledFrom(m.tokens).Draw(t, "token"), rapid.SampledFrom(m.owners).Draw(t, "client"), rapid.SampledFrom(m.ops).Draw(t, "operator")
			approved := rapid.IntRange(0, 4).Draw(t, "approved") > 0
			rate, lockup := drawAmount(t, "rate allowance", 100), drawAmount(t, "lockup allowance", 20_000)
			period := abi.ChainEpoch(rapid.IntRange(0, 60).Draw(t, "max period"))
			m.apply(t, func() error { return m.l.SetOperatorApproval(tk, client, op, approved, rate, lockup, period, m.now) })
		},
		"increase approval": func(t *rapid.T) {
			tk, client, op := rapid.SampledFrom(m.tokens).Draw(t, "token"), rapid.SampledFrom(m.owners).Draw(t, "client"), rapid.SampledFrom(m.ops).Draw(t, "operator")
			rate, lockup := drawAmount(t, "rate", 50), drawAmount(t, "lockup", 5000)
			m.apply(t, func() error { return m.l.IncreaseOperatorApproval(tk, client, op, rate, lockup, m.now) })
		},
		"create rail": func(t *rapid.T) { m.createRail(t) },
		"open rail": func(t *rapid.T) {
			// Create, then give the rail a lockup and a rate, each step checked on its own.
			id, ok := m.createRail(t)
			if !ok {
				return
			}
			r, _ := m.l.Rail(id)
			period := abi.ChainEpoch(rapid.IntRange(0, 30).Draw(t, "period"))
			fixed := drawAmount(t, "fixed", 1000)
			m.apply(t, func() error { return m.l.ModifyRailLockup(r.Operator, id, period, fixed, m.now) })
			m.checkInvariants(t)
			rate := drawAmount(t, "rate", 50)
			m.apply(t, func() error { _, err := m.l.ModifyRailPayment(r.Operator, id, rate, big.Zero(), m.now); return err })
		},
		"modify lockup": func(t *rapid.T) {
			id, ok := m.pickRail(t)
			if !ok {
				return
			}
			caller := m.caller(t, id)
			period := abi.ChainEpoch(rapid.IntRange(0, 60).Draw(t, "period"))
			fixed := drawAmount(t, "fixed", 2000)
			m.apply(t, func() error { return m.l.ModifyRailLockup(caller, id, period, fixed, m.now) })
		},
		"modify payment": func(t *rapid.T) {
			id, ok := m.pickRail(t)
			if !ok {
				return
			}
			caller := m.caller(t, id)
			rate, otp := drawAmount(t, "rate", 50), drawAmount(t, "one-time", 500)
			m.apply(t, func() error { _, err := m.l.ModifyRailPayment(caller, id, rate, otp, m.now); return err })
		},
		"rate changes": func(t *rapid.T) {
			// Several rate changes at successive epochs build a rate-change queue.
			id, ok := m.pickRail(t)
			if !ok {
				return
			}
			r, _ := m.l.Rail(id)
			for range rapid.IntRange(1, 6).Draw(t, "changes") {
				m.now += abi.ChainEpoch(rapid.IntRange(0, 5).Draw(t, "epochs"))
				rate := drawAmount(t, "rate", 30)
				m.apply(t, func() error { _, err := m.l.ModifyRailPayment(r.Operator, id, rate, big.Zero(), m.now); return err })
				m.checkInvariants(t)
			}
		},
		"terminate": func(t *rapid.T) {
			id, ok := m.pickRail(t)
			if !ok {
				return
			}
			r, _ := m.l.Rail(id)
			caller := rapid.SampledFrom([]Address{r.From, r.Operator, r.To}).Draw(t, "caller")
			m.apply(t, func() error { return m.l.TerminateRail(caller, id, m.now) })
		},
		"barrier": func(t *rapid.T) {
			if rapid.Bool().Draw(t, "open") {
				m.val.barrier = -1
				return
			}
			m.val.barrier = max(0, m.now-abi.ChainEpoch(rapid.IntRange(0, 30).Draw(t, "behind")))
		},
		"settle": func(t *rapid.T) {
			id, ok := m.pickRail(t)
			if !ok {
				return
			}
			// Mostly recent targets; sometimes any epoch, or one in the future.
			until := m.now - abi.ChainEpoch(rapid.IntRange(0, 10).Draw(t, "behind"))
			if rapid.IntRange(0, 4).Draw(t, "any target") == 0 {
				until = abi.ChainEpoch(rapid.Int64Range(0, int64(m.now)+2).Draw(t, "until"))
			}
			m.settle(t, id, until, true)
		},
		"settle without validation": func(t *rapid.T) {
			id, ok := m.pickRail(t)
			if !ok {
				return
			}
			m.settle(t, id, m.now, false)
		},
		"finalize": func(t *rapid.T) {
			id, ok := m.pickRail(t)
			if !ok {
				return
			}
			m.apply(t, func() error { return m.l.FinalizeRail(id, m.now) })
		},
	}
}

// actionWeights makes settlement and rate changes common and rare actions rare.
var actionWeights = map[string]int{
	"advance": 4, "deposit": 2, "withdraw": 2, "approve": 1, "increase approval": 1,
	"create rail": 1, "open rail": 3, "modify lockup": 2, "modify payment": 3, "rate changes": 2, "terminate": 1,
	"barrier": 1, "settle": 6, "settle without validation": 1, "finalize": 1,
}

// run funds every owner, approves every operator, then applies a random sequence of
// operations, checking the invariants after each.
func (m *ledgerModel) run(t *rapid.T) {
	for _, tk := range m.tokens {
		for _, o := range m.owners {
			amt := drawAmount(t, "initial deposit", 20_000)
			if m.apply(t, func() error { return m.l.Deposit(tk, o, amt, 0) }) {
				m.deposited[tk] = big.Add(m.deposited[tk], amt)
			}
			for _, op := range m.ops {
				rate, lockup := drawAmount(t, "rate allowance", 100), drawAmount(t, "lockup allowance", 20_000)
				period := abi.ChainEpoch(rapid.IntRange(10, 60).Draw(t, "max period"))
				m.apply(t, func() error { return m.l.SetOperatorApproval(tk, o, op, true, rate, lockup, period, 0) })
			}
		}
	}
	actions := m.actions()
	var names []string
	for name := range actionWeights {
		for range actionWeights[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	m.checkInvariants(t)
	steps := rapid.IntRange(1, 150).Draw(t, "steps")
	for range steps {
		actions[rapid.SampledFrom(names).Draw(t, "action")](t)
		m.checkInvariants(t)
	}
	m.replay(t)
}

func (m *ledgerModel) createRail(t *rapid.T) (RailID, bool) {
	tk, op := rapid.SampledFrom(m.tokens).Draw(t, "token"), rapid.SampledFrom(m.ops).Draw(t, "operator")
	from, to := rapid.SampledFrom(m.owners).Draw(t, "from"), rapid.SampledFrom(m.owners).Draw(t, "to")
	v := rapid.SampledFrom([]Address{{}, propValidator, propValidator}).Draw(t, "validator")
	bps := uint64(rapid.SampledFrom([]int{0, 0, 250, 10_000}).Draw(t, "bps"))
	recipient := rapid.SampledFrom(m.owners).Draw(t, "fee recipient")
	var id RailID
	if !m.apply(t, func() (err error) {
		id, err = m.l.CreateRail(op, tk, from, to, v, bps, recipient, m.now)
		return err
	}) {
		return 0, false
	}
	m.rails = append(m.rails, id)
	m.lastSettled[id] = m.now
	return id, true
}

// caller is usually the rail's operator, sometimes someone else.
func (m *ledgerModel) caller(t *rapid.T, id RailID) Address {
	r, _ := m.l.Rail(id)
	if rapid.IntRange(0, 9).Draw(t, "wrong caller") == 0 {
		return r.From
	}
	return r.Operator
}

// owed is what a rail's rates add up to over (from, to], walking its queue.
func (m *ledgerModel) owed(t *rapid.T, r Rail, queue []RateChange, from, to abi.ChainEpoch) abi.TokenAmount {
	total := big.Zero()
	cur := r.SettledUpTo
	for _, rc := range queue {
		lo, hi := max(cur, from), min(rc.UntilEpoch, to)
		if hi > lo {
			total = big.Add(total, times(rc.Rate, hi-lo))
		}
		cur = max(cur, rc.UntilEpoch)
	}
	if lo := max(cur, from); to > lo {
		total = big.Add(total, times(r.PaymentRate, to-lo))
	}
	return total
}

func (m *ledgerModel) settle(t *rapid.T, id RailID, until abi.ChainEpoch, validate bool) {
	r, err := m.l.Rail(id)
	if err != nil {
		t.Fatal(err)
	}
	queue, err := m.l.RateChanges(id)
	if err != nil {
		t.Fatal(err)
	}
	payerBefore := m.view(t, r.Token, r.From)
	var s Settlement
	ok := m.apply(t, func() (err error) {
		if validate {
			s, err = m.l.SettleRail(id, until, m.now)
		} else {
			s, err = m.l.SettleTerminatedRailWithoutValidation(r.From, id, m.now)
		}
		return err
	})
	if !ok {
		return
	}
	// Fees: Gross = fee + commission + payee share, fee = ceil(0.5%).
	if !big.Add(big.Add(s.NetworkFee, s.Commission), s.NetPayee).Equals(s.Gross) || !s.NetworkFee.Equals(NetworkFee(s.Gross)) {
		t.Fatalf("bad split %+v", s.Payment)
	}
	// Monotonic, and a live rail is never paid past the payer's funded-until epoch.
	if s.SettledUpTo < r.SettledUpTo {
		t.Fatalf("settled up to went back from %d to %d", r.SettledUpTo, s.SettledUpTo)
	}
	if !r.Terminated && s.SettledUpTo > r.SettledUpTo && s.SettledUpTo > payerBefore.LockupLastSettledAt {
		t.Fatalf("live rail settled to %d past the payer's funded-until %d", s.SettledUpTo, payerBefore.LockupLastSettledAt)
	}
	if r.Terminated && s.SettledUpTo > max(r.EndEpoch, r.SettledUpTo) {
		t.Fatalf("terminated rail settled to %d past its end %d", s.SettledUpTo, r.EndEpoch)
	}
	// Everything the rates owe for the settled epochs was either paid or withheld, and
	// the payer's funds dropped by exactly what was paid: the withheld part stayed.
	owed := m.owed(t, r, queue, r.SettledUpTo, s.SettledUpTo)
	if !big.Add(s.Gross, s.Withheld).Equals(owed) || s.Withheld.Sign() < 0 {
		t.Fatalf("paid %s + withheld %s != owed %s over (%d, %d]", s.Gross, s.Withheld, owed, r.SettledUpTo, s.SettledUpTo)
	}
	if !validate && s.Withheld.Sign() != 0 {
		t.Fatalf("settlement without validation withheld %s", s.Withheld)
	}
	payerAfter := m.view(t, r.Token, r.From)
	wantFunds := big.Sub(payerBefore.Funds, s.Gross)
	if r.To == r.From {
		wantFunds = big.Add(wantFunds, s.NetPayee)
	}
	if r.ServiceFeeRecipient == r.From {
		wantFunds = big.Add(wantFunds, s.Commission)
	}
	if !payerAfter.Funds.Equals(wantFunds) {
		t.Fatalf("payer funds %s, want %s (paid %s)", payerAfter.Funds, wantFunds, s.Gross)
	}
	m.lastSettled[id] = s.SettledUpTo
	exercised.note(s)

	// Settling again to the same target never pays again for the same epochs; if the
	// first call reached the target, the second changes nothing at all.
	if !validate {
		return
	}
	views := m.accountViews(t)
	rBefore, _ := m.l.Rail(id)
	var s2 Settlement
	err = m.exec(func() (err error) { s2, err = m.l.SettleRail(id, until, m.now); return err })
	switch {
	case errors.Is(err, ErrRailFinalized) || errors.Is(err, ErrNoProgress):
		return
	case err != nil:
		t.Fatalf("second settlement: %v", err)
	}
	if s2.SettledUpTo < s.SettledUpTo {
		t.Fatalf("second settlement went back to %d", s2.SettledUpTo)
	}
	if s.SettledUpTo == until || s2.SettledUpTo == s.SettledUpTo {
		rAfter, _ := m.l.Rail(id)
		if s2.Gross.Sign() != 0 || s2.SettledUpTo != s.SettledUpTo || !reflect.DeepEqual(views, m.accountViews(t)) ||
			rAfter.SettledUpTo != rBefore.SettledUpTo || rAfter.Finalized != rBefore.Finalized {
			t.Fatalf("repeated settlement changed something: %+v", s2)
		}
	}
	m.lastSettled[id] = s2.SettledUpTo
}

type viewKey struct{ token, owner Address }

func (m *ledgerModel) accountViews(t *rapid.T) map[viewKey]string {
	out := map[viewKey]string{}
	for _, tk := range m.tokens {
		for _, o := range append(append([]Address{}, m.owners...), m.ops...) {
			a := m.view(t, tk, o)
			out[viewKey{tk, o}] = a.Funds.String() + "/" + a.LockupCurrent.String() + "/" + a.LockupRate.String()
		}
	}
	return out
}

func (m *ledgerModel) checkInvariants(t *rapid.T) {
	for _, tk := range m.tokens {
		// Conservation: deposits = balances + fees + withdrawals.
		sum := big.Zero()
		m.st.ForEachAccount(func(token, owner Address, a Account) {
			if token != tk {
				return
			}
			if a.Funds.Sign() < 0 || a.LockupCurrent.Sign() < 0 || a.LockupRate.Sign() < 0 {
				t.Fatalf("negative account %s: %+v", owner, a)
			}
			if a.Funds.LessThan(a.LockupCurrent) {
				t.Fatalf("account %s funds %s < lockup %s", owner, a.Funds, a.LockupCurrent)
			}
			sum = big.Add(sum, a.Funds)
		})
		fees, err := m.l.NetworkFees(tk)
		if err != nil {
			t.Fatal(err)
		}
		if got := big.Add(big.Add(sum, fees), m.withdrawn[tk]); !got.Equals(m.deposited[tk]) {
			t.Fatalf("token %s: balances %s + fees %s + withdrawn %s != deposited %s", tk, sum, fees, m.withdrawn[tk], m.deposited[tk])
		}
		for _, owner := range m.owners {
			m.checkPayer(t, tk, owner)
		}
	}
	for _, id := range m.rails {
		r, err := m.l.Rail(id)
		if err != nil {
			t.Fatal(err)
		}
		if r.SettledUpTo < m.lastSettled[id] {
			t.Fatalf("rail %d settled up to went back from %d to %d", id, m.lastSettled[id], r.SettledUpTo)
		}
		m.lastSettled[id] = r.SettledUpTo
	}
}

// checkPayer checks that a payer's lockup is exactly what its rails need: for each
// unfinalized rail, the fixed lockup, the streaming buffer of a live rail, and the rates
// of every epoch not yet settled (up to the funded-until epoch for a live rail, up to
// the end epoch for a terminated one); and that its lockup rate is the sum of its live
// rails' rates.
func (m *ledgerModel) checkPayer(t *rapid.T, tk, owner Address) {
	a := m.view(t, tk, owner)
	if a.Funds.LessThan(a.LockupCurrent) {
		t.Fatalf("settled view of %s: funds %s < lockup %s", owner, a.Funds, a.LockupCurrent)
	}
	wantLockup, wantRate := big.Zero(), big.Zero()
	m.st.ForEachRail(func(r Rail) {
		if r.Token != tk || r.From != owner || r.Finalized {
			return
		}
		queue, err := m.l.RateChanges(r.ID)
		if err != nil {
			t.Fatal(err)
		}
		end := r.EndEpoch
		wantLockup = big.Add(wantLockup, r.LockupFixed)
		if !r.Terminated {
			end = a.LockupLastSettledAt
			wantRate = big.Add(wantRate, r.PaymentRate)
			wantLockup = big.Add(wantLockup, times(r.PaymentRate, r.LockupPeriod))
			if (r.PaymentRate.Sign() > 0 || len(queue) > 0) && r.SettledUpTo > a.LockupLastSettledAt {
				t.Fatalf("live rail %d settled to %d past payer funded-until %d", r.ID, r.SettledUpTo, a.LockupLastSettledAt)
			}
		}
		wantLockup = big.Add(wantLockup, m.owed(t, r, queue, r.SettledUpTo, end))
	})
	if !a.LockupRate.Equals(wantRate) {
		t.Fatalf("payer %s lockup rate %s, live rails' rates sum to %s", owner, a.LockupRate, wantRate)
	}
	if !a.LockupCurrent.Equals(wantLockup) {
		t.Fatalf("payer %s lockup %s, rails need %s (funded until %d, now %d)", owner, a.LockupCurrent, wantLockup, a.LockupLastSettledAt, m.now)
	}
}

// exercised counts what the random runs reached, so that a generator that stops
// producing real settlements fails the test instead of passing vacuously.
type exercise struct {
	mu                                  sync.Mutex
	paid, withheld, finalized, segments int
}

var exercised exercise

func (e *exercise) note(s Settlement) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.Gross.Sign() > 0 {
		e.paid++
	}
	if s.Withheld.Sign() > 0 {
		e.withheld++
	}
	if s.Finalized {
		e.finalized++
	}
	if s.Segments > 1 {
		e.segments++
	}
}

func TestLedgerProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		newLedgerModel().run(t)
	})
	if exercised.paid == 0 || exercised.withheld == 0 || exercised.finalized == 0 || exercised.segments == 0 {
		t.Fatalf("random runs did not exercise settlement: %d paid, %d withheld, %d finalized, %d multi-segment",
			exercised.paid, exercised.withheld, exercised.finalized, exercised.segments)
	}
}
