package payments

import "fmt"

// Rule is a payment rule an operation broke. Every refusal wraps exactly one Rule, so
// callers test for a rule with errors.Is(err, payments.ErrNotFullySettled) and get the
// operation and details with errors.As(err, &*payments.RefusalError).
type Rule string

func (r Rule) Error() string { return "payments: " + string(r) }

// The rules. Their text is stable: chain/ may show it to users.
const (
	ErrInvalidAmount     Rule = "amount must be a non-negative integer"
	ErrInvalidEpoch      Rule = "epoch is negative or earlier than a recorded epoch"
	ErrZeroAddress       Rule = "address must not be zero (payer, payee, deposit recipient, operator)"
	ErrInsufficientFunds Rule = "funds would not cover the lockup"
	// ErrNotFullySettled: the payer's lockup accrual is behind the current epoch (the
	// account is in debt), so withdrawals, rate changes, lockup-period changes, fixed
	// lockup increases and payer terminations are refused until it is topped up.
	ErrNotFullySettled          Rule = "payer account is not fully settled (funded-until epoch is in the past)"
	ErrWithdrawExceedsAvailable Rule = "withdrawal exceeds available funds (funds − lockup)"

	ErrNotApproved             Rule = "operator is not approved by the client"
	ErrRateAllowanceExceeded   Rule = "operator rate allowance exceeded"
	ErrLockupAllowanceExceeded Rule = "operator lockup allowance exceeded"
	ErrLockupPeriodTooLong     Rule = "lockup period exceeds the operator's maximum lockup period"
	ErrInvalidLockupPeriod     Rule = "lockup period must not be negative"

	ErrCommissionTooHigh   Rule = "commission exceeds 10000 basis points"
	ErrMissingFeeRecipient Rule = "a commission needs a non-zero service fee recipient"
	ErrUnknownValidator    Rule = "rail validator is not registered"

	ErrRailNotFound             Rule = "rail does not exist"
	ErrRailFinalized            Rule = "rail is finalized"
	ErrNotOperator              Rule = "only the rail operator may do this"
	ErrNotPayerOrOperator       Rule = "only the payer or the operator may terminate a rail"
	ErrNotPayer                 Rule = "only the payer may do this"
	ErrRailTerminated           Rule = "rail is already terminated"
	ErrRailNotTerminated        Rule = "rail is not terminated"
	ErrTerminatedPeriodChange   Rule = "lockup period of a terminated rail cannot change"
	ErrTerminatedLockupIncrease Rule = "fixed lockup of a terminated rail can only decrease"
	ErrTerminatedRateIncrease   Rule = "payment rate of a terminated rail can only decrease"
	ErrRailEnded                Rule = "terminated rail has reached its end epoch"
	ErrOneTimeExceedsFixed      Rule = "one-time payment exceeds the rail's fixed lockup"
	ErrTerminationRefused       Rule = "rail validator refused the termination"

	ErrSettleFutureEpoch  Rule = "cannot settle past the current epoch"
	ErrNoProgress         Rule = "settlement made no progress"
	ErrValidatorRange     Rule = "validator settled outside the proposed segment"
	ErrValidatorOverpay   Rule = "validator approved more than the rate allows for the settled epochs"
	ErrValidatorFailed    Rule = "validator failed"
	ErrEndEpochNotReached Rule = "terminated rail's end epoch has not passed"
	ErrRailNotSettled     Rule = "rail is not settled to its end epoch, or rate changes are still queued"

	// ErrInvariant means stored state broke an invariant the rules maintain (for example a
	// lockup smaller than what settlement releases). It indicates corrupt state or a bug;
	// the operation is refused and nothing changes.
	ErrInvariant Rule = "payments invariant violated"
)

// RefusalError is returned for every refused operation. It names the operation, the rule
// (Unwrap returns it) and the values that broke it.
type RefusalError struct {
	Op     string
	Rule   Rule
	Detail string
	// Cause is an underlying error (a validator's or the State's), if any.
	Cause error
}

func (e *RefusalError) Error() string {
	s := "payments: " + e.Op + ": " + string(e.Rule)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the rule and, if present, the cause.
func (e *RefusalError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Rule, e.Cause}
	}
	return []error{e.Rule}
}

func refuse(op string, rule Rule, format string, args ...any) error {
	return &RefusalError{Op: op, Rule: rule, Detail: fmt.Sprintf(format, args...)}
}

// StateError wraps an error returned by the State: the operation was abandoned and
// nothing was written.
type StateError struct {
	Op  string
	Err error
}

func (e *StateError) Error() string { return "payments: " + e.Op + ": state: " + e.Err.Error() }
func (e *StateError) Unwrap() error { return e.Err }
