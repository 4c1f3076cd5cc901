package payments

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"
)

// Scripts under testdata/ drive a Ledger command by command and compare each command's
// output with the text after its "----" line. A refused command must also leave the
// state unchanged. Run with -rewrite to regenerate the expected outputs (then read the
// diff: the outputs are the test).
var rewrite = flag.Bool("rewrite", false, "rewrite the expected outputs of testdata scripts")

var ruleNames = map[Rule]string{}

func init() {
	for name, r := range map[string]Rule{
		"ErrInvalidAmount": ErrInvalidAmount, "ErrInvalidEpoch": ErrInvalidEpoch, "ErrZeroAddress": ErrZeroAddress,
		"ErrInsufficientFunds": ErrInsufficientFunds, "ErrNotFullySettled": ErrNotFullySettled,
		"ErrWithdrawExceedsAvailable": ErrWithdrawExceedsAvailable, "ErrNotApproved": ErrNotApproved,
		"ErrRateAllowanceExceeded": ErrRateAllowanceExceeded, "ErrLockupAllowanceExceeded": ErrLockupAllowanceExceeded,
		"ErrLockupPeriodTooLong": ErrLockupPeriodTooLong, "ErrInvalidLockupPeriod": ErrInvalidLockupPeriod,
		"ErrCommissionTooHigh": ErrCommissionTooHigh, "ErrMissingFeeRecipient": ErrMissingFeeRecipient,
		"ErrUnknownValidator": ErrUnknownValidator, "ErrRailNotFound": ErrRailNotFound, "ErrRailFinalized": ErrRailFinalized,
		"ErrNotOperator": ErrNotOperator, "ErrNotPayerOrOperator": ErrNotPayerOrOperator, "ErrNotPayer": ErrNotPayer,
		"ErrRailTerminated": ErrRailTerminated, "ErrRailNotTerminated": ErrRailNotTerminated,
		"ErrTerminatedPeriodChange": ErrTerminatedPeriodChange, "ErrTerminatedLockupIncrease": ErrTerminatedLockupIncrease,
		"ErrTerminatedRateIncrease": ErrTerminatedRateIncrease, "ErrRailEnded": ErrRailEnded,
		"ErrOneTimeExceedsFixed": ErrOneTimeExceedsFixed, "ErrTerminationRefused": ErrTerminationRefused,
		"ErrSettleFutureEpoch": ErrSettleFutureEpoch, "ErrNoProgress": ErrNoProgress, "ErrValidatorRange": ErrValidatorRange,
		"ErrValidatorOverpay": ErrValidatorOverpay, "ErrValidatorFailed": ErrValidatorFailed,
		"ErrEndEpochNotReached": ErrEndEpochNotReached, "ErrRailNotSettled": ErrRailNotSettled, "ErrInvariant": ErrInvariant,
	} {
		ruleNames[r] = name
	}
}

// scriptNames are the participants a script can name.
var scriptNames = map[string]Address{
	"payer": payerA, "payee": payeeA, "op": operatorA, "val": validA, "fee": feeRecipA, "stranger": stranger,
	"payer2": addr(7), "op2": addr(8), "none": {},
}

func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

type scriptBlock struct {
	line     int
	command  string
	expected string
}

func parseScript(t *testing.T, file string) []scriptBlock {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []scriptBlock
	var cur *scriptBlock
	inExpected := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && (strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#")):
		case cur == nil:
			blocks = append(blocks, scriptBlock{line: n, command: line})
			cur = &blocks[len(blocks)-1]
		case !inExpected && line == "----":
			inExpected = true
		case !inExpected:
			t.Fatalf("%s:%d: expected ---- after the command", file, n)
		case strings.TrimSpace(line) == "":
			cur, inExpected = nil, false
		default:
			cur.expected += line + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

func runScript(t *testing.T, file string) {
	blocks := parseScript(t, file)
	st := NewMemState()
	val := newRangeValidator()
	l := NewLedger(st, ValidatorMap{validA: val})
	var out strings.Builder
	for i := range blocks {
		b := &blocks[i]
		before := st.Clone()
		got, refused := runCommand(t, l, val, b.command)
		if refused && !reflect.DeepEqual(before, st) {
			t.Fatalf("%s:%d: refused command changed the state", file, b.line)
		}
		if *rewrite {
			b.expected = got
		} else if got != b.expected {
			t.Errorf("%s:%d: %s\ngot:\n%swant:\n%s", file, b.line, b.command, got, b.expected)
		}
		fmt.Fprintf(&out, "%s\n----\n%s\n", b.command, b.expected)
	}
	if *rewrite {
		// Keep the leading comment block.
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var header strings.Builder
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.HasPrefix(line, "#") {
				break
			}
			header.WriteString(line + "\n")
		}
		if header.Len() > 0 {
			header.WriteString("\n")
		}
		if err := os.WriteFile(file, []byte(header.String()+out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// scriptArgs splits "cmd a b k=v @e" into positional args, key=values and the epoch.
type scriptArgs struct {
	t     *testing.T
	cmd   string
	pos   []string
	kv    map[string]string
	epoch abi.ChainEpoch
}

func (a *scriptArgs) fail(format string, args ...any) {
	a.t.Helper()
	a.t.Fatalf("%s: "+format, append([]any{a.cmd}, args...)...)
}

func (a *scriptArgs) addr(i int) Address {
	a.t.Helper()
	if i >= len(a.pos) {
		a.fail("missing argument %d", i)
	}
	ad, ok := scriptNames[a.pos[i]]
	if !ok {
		a.fail("unknown participant %q", a.pos[i])
	}
	return ad
}

func (a *scriptArgs) num(s string) int64 {
	a.t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		a.fail("bad number %q", s)
	}
	return n
}

func (a *scriptArgs) rail(i int) RailID {
	a.t.Helper()
	if i >= len(a.pos) {
		a.fail("missing rail")
	}
	return RailID(a.num(a.pos[i]))
}

func (a *scriptArgs) amount(key string) abi.TokenAmount {
	a.t.Helper()
	v, ok := a.kv[key]
	if !ok {
		return big.Zero()
	}
	return big.NewInt(a.num(v))
}

func (a *scriptArgs) epochArg(key string) abi.ChainEpoch {
	a.t.Helper()
	v, ok := a.kv[key]
	if !ok {
		a.fail("missing %s=", key)
	}
	return abi.ChainEpoch(a.num(v))
}

func runCommand(t *testing.T, l *Ledger, val *rangeValidator, line string) (out string, refused bool) {
	t.Helper()
	fields := strings.Fields(line)
	a := &scriptArgs{t: t, cmd: line, kv: map[string]string{}}
	for _, f := range fields[1:] {
		switch {
		case strings.HasPrefix(f, "@"):
			a.epoch = abi.ChainEpoch(a.num(f[1:]))
		case strings.Contains(f, "="):
			k, v, _ := strings.Cut(f, "=")
			a.kv[k] = v
		default:
			a.pos = append(a.pos, f)
		}
	}
	result := func(s string, err error) (string, bool) {
		if err != nil {
			var re *RefusalError
			if !errors.As(err, &re) {
				t.Fatalf("%s: not a refusal: %v", line, err)
			}
			return "refused " + ruleNames[re.Rule] + ": " + err.Error() + "\n", true
		}
		return s, false
	}
	switch fields[0] {
	case "deposit":
		return result("ok\n", l.Deposit(tok, a.addr(0), big.NewInt(a.num(a.pos[1])), a.epoch))
	case "withdraw":
		return result("ok\n", l.Withdraw(tok, a.addr(0), big.NewInt(a.num(a.pos[1])), a.epoch))
	case "approve":
		_, revoked := a.kv["revoked"]
		return result("ok\n", l.SetOperatorApproval(tok, a.addr(0), a.addr(1), !revoked, a.amount("rate"), a.amount("lockup"), a.epochArg("period"), a.epoch))
	case "increase":
		return result("ok\n", l.IncreaseOperatorApproval(tok, a.addr(0), a.addr(1), a.amount("rate"), a.amount("lockup"), a.epoch))
	case "create":
		v, recipient := Address{}, Address{}
		if name, ok := a.kv["validator"]; ok {
			v = scriptNames[name]
		}
		if name, ok := a.kv["recipient"]; ok {
			recipient = scriptNames[name]
		}
		id, err := l.CreateRail(a.addr(0), tok, a.addr(1), a.addr(2), v, uint64(a.amount("bps").Int64()), recipient, a.epoch)
		return result(fmt.Sprintf("rail %d\n", id), err)
	case "lockup":
		return result("ok\n", l.ModifyRailLockup(a.addr(0), a.rail(1), a.epochArg("period"), a.amount("fixed"), a.epoch))
	case "rate":
		p, err := l.ModifyRailPayment(a.addr(0), a.rail(1), a.amount("rate"), a.amount("once"), a.epoch)
		if err == nil && p.Gross.Sign() > 0 {
			return fmt.Sprintf("one-time paid=%s fee=%s commission=%s payee=%s\n", p.Gross, p.NetworkFee, p.Commission, p.NetPayee), false
		}
		return result("ok\n", err)
	case "settle", "settle-unvalidated":
		var s Settlement
		var err error
		if fields[0] == "settle" {
			s, err = l.SettleRail(a.rail(0), a.epochArg("until"), a.epoch)
		} else {
			s, err = l.SettleTerminatedRailWithoutValidation(a.addr(0), a.rail(1), a.epoch)
		}
		return result(fmt.Sprintf("settled-up-to=%d paid=%s withheld=%s fee=%s commission=%s payee=%s segments=%d finalized=%v note=%q\n",
			s.SettledUpTo, s.Gross, s.Withheld, s.NetworkFee, s.Commission, s.NetPayee, s.Segments, s.Finalized, s.Note), err)
	case "terminate":
		err := l.TerminateRail(a.addr(0), a.rail(1), a.epoch)
		if err != nil {
			return result("", err)
		}
		r, _ := l.Rail(a.rail(1))
		return fmt.Sprintf("end-epoch=%d\n", r.EndEpoch), false
	case "finalize":
		return result("ok\n", l.FinalizeRail(a.rail(0), a.epoch))
	case "account":
		ai, err := l.Account(tok, a.addr(0), a.epoch)
		funded := "forever"
		if ai.FundedUntil != MaxEpoch {
			funded = strconv.FormatInt(int64(ai.FundedUntil), 10)
		}
		return result(fmt.Sprintf("funds=%s lockup=%s rate=%s available=%s settled-at=%d funded-until=%s fully-settled=%v\n",
			ai.Funds, ai.LockupCurrent, ai.LockupRate, ai.Available, ai.LockupLastSettledAt, funded, ai.FullySettled), err)
	case "approval":
		ap, err := l.Approval(tok, a.addr(0), a.addr(1))
		return result(fmt.Sprintf("approved=%v rate-allowance=%s rate-usage=%s lockup-allowance=%s lockup-usage=%s max-period=%d\n",
			ap.Approved, ap.RateAllowance, ap.RateUsage, ap.LockupAllowance, ap.LockupUsage, ap.MaxLockupPeriod), err)
	case "rail":
		r, err := l.Rail(a.rail(0))
		if err != nil {
			return result("", err)
		}
		q, err := l.RateChanges(r.ID)
		if err != nil {
			t.Fatal(err)
		}
		var qs []string
		for _, rc := range q {
			qs = append(qs, fmt.Sprintf("%s..%d", rc.Rate, rc.UntilEpoch))
		}
		return fmt.Sprintf("rate=%s period=%d fixed=%s settled-up-to=%d terminated=%v end-epoch=%d finalized=%v queue=[%s]\n",
			r.PaymentRate, r.LockupPeriod, r.LockupFixed, r.SettledUpTo, r.Terminated, r.EndEpoch, r.Finalized, strings.Join(qs, " ")), false
	case "fees":
		f, err := l.NetworkFees(tok)
		return result(fmt.Sprintf("network-fees=%s\n", f), err)
	case "validator":
		// validator unpaid=11-20 stop=30 | validator reset
		if len(a.pos) > 0 && a.pos[0] == "reset" {
			*val = *newRangeValidator()
		}
		if r, ok := a.kv["unpaid"]; ok {
			lo, hi, _ := strings.Cut(r, "-")
			for e := a.num(lo); e <= a.num(hi); e++ {
				val.unpaid[abi.ChainEpoch(e)] = true
			}
		}
		if s, ok := a.kv["stop"]; ok {
			val.stop = abi.ChainEpoch(a.num(s))
		}
		return "ok\n", false
	}
	t.Fatalf("unknown command %q", line)
	return "", false
}
