package payments

import (
	"github.com/ethereum/go-ethereum/common"
	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"
)

// Address identifies an account owner, an operator, a validator or a token. It is the
// go-ethereum address so that chain signers, payers and payees share one type. The zero
// address as a token means the native token (FIL).
type Address = common.Address

// RailID names a payment rail. Rail ids start at 1; 0 is never a valid rail.
type RailID uint64

// Protocol constants of Filecoin Pay (reference §4.1, §4.7).
const (
	// CommissionMaxBps is the largest operator commission, in basis points (100%).
	CommissionMaxBps = 10000
	// NetworkFeeNumerator / NetworkFeeDenominator is the network fee taken from every
	// payment (0.5%), rounded up.
	NetworkFeeNumerator   = 1
	NetworkFeeDenominator = 200
)

// Account is the state of one (token, owner) account.
//
// Funds are all tokens held; LockupCurrent is the part reserved for rails (never more than
// Funds after any operation). LockupRate is the sum of the payment rates of the owner's live
// rails: every epoch that passes moves LockupRate more tokens into LockupCurrent, lazily, when
// the account is next settled. LockupLastSettledAt is the epoch up to which that accrual has
// been done; when the funds ran out it stays behind the current epoch and is then the epoch
// the account is funded until ("in debt").
type Account struct {
	Funds               abi.TokenAmount
	LockupCurrent       abi.TokenAmount
	LockupRate          abi.TokenAmount
	LockupLastSettledAt abi.ChainEpoch
}

// AccountInfo is an account as it would be after lockup settlement at some epoch, as
// returned by Ledger.Account.
type AccountInfo struct {
	Account
	// Available is Funds − LockupCurrent: what the owner could withdraw if fully settled.
	Available abi.TokenAmount
	// FundedUntil is the last epoch the account's funds cover at its current lockup rate;
	// MaxEpoch when the lockup rate is zero.
	FundedUntil abi.ChainEpoch
	// FullySettled reports whether the lockup accrual reached the queried epoch (the
	// account is not in debt). Withdrawals, rate changes and payer terminations need it.
	FullySettled bool
}

// MaxEpoch stands for "forever" in FundedUntil.
const MaxEpoch = abi.ChainEpoch(1<<63 - 1)

// Approval is what a client allows one operator to do with the client's account in one
// token. Allowances are checked only when usage grows; decreases always succeed and usage
// never goes below zero. Approved=false only stops new rails; existing rails keep working.
type Approval struct {
	Approved        bool
	RateAllowance   abi.TokenAmount
	LockupAllowance abi.TokenAmount
	RateUsage       abi.TokenAmount
	LockupUsage     abi.TokenAmount
	MaxLockupPeriod abi.ChainEpoch
}

// Rail is a payment stream from a payer (From) to a payee (To), managed by an operator.
//
// The payer pays PaymentRate per epoch. LockupPeriod epochs of that rate plus LockupFixed
// are kept locked in the payer's account, so that a payee is guaranteed payment for
// LockupPeriod epochs after the payer stops funding the account. SettledUpTo is the epoch
// up to and including which the rail has been paid. Rate changes that have not been
// settled yet wait in the rail's rate-change queue, stored in State at indices
// [QueueHead, QueueTail).
type Rail struct {
	ID                  RailID
	Token               Address
	From                Address
	To                  Address
	Operator            Address
	Validator           Address // zero: every epoch is paid in full
	PaymentRate         abi.TokenAmount
	LockupPeriod        abi.ChainEpoch
	LockupFixed         abi.TokenAmount
	SettledUpTo         abi.ChainEpoch
	CommissionBps       uint64
	ServiceFeeRecipient Address
	// Terminated rails stop accruing lockup and are paid up to EndEpoch at most.
	Terminated bool
	EndEpoch   abi.ChainEpoch
	// Finalized rails are settled to EndEpoch and their fixed lockup was returned; no
	// operation accepts them any more.
	Finalized bool
	QueueHead uint64
	QueueTail uint64
}

// RateChange is one entry of a rail's rate-change queue: Rate applied to the rail's
// epochs up to and including UntilEpoch. The rail's current PaymentRate applies after the
// last entry.
type RateChange struct {
	Rate       abi.TokenAmount
	UntilEpoch abi.ChainEpoch
}

// Payment is how one gross amount taken from a payer was split.
type Payment struct {
	// Gross is what left the payer's funds.
	Gross abi.TokenAmount
	// NetworkFee is ceil(Gross × 1/200); it leaves circulation (burned).
	NetworkFee abi.TokenAmount
	// Commission is floor((Gross − NetworkFee) × CommissionBps / 10000), paid to the
	// rail's ServiceFeeRecipient.
	Commission abi.TokenAmount
	// NetPayee is Gross − NetworkFee − Commission, credited to the payee.
	NetPayee abi.TokenAmount
}

// Settlement is the outcome of settling one rail, for events.
type Settlement struct {
	RailID RailID
	Payment
	// Withheld is what validators declined to pay for the epochs that were settled; it
	// stays with the payer (its lockup was released into the payer's available funds).
	Withheld abi.TokenAmount
	// SettledUpTo is the rail's settled epoch after the operation.
	SettledUpTo abi.ChainEpoch
	// Segments counts the rate segments walked (including zero-rate ones).
	Segments int
	// Note joins the non-empty notes the validator returned, separated by "; ".
	Note string
	// Finalized reports that the rail was finalized by this settlement.
	Finalized bool
}

func zeroPayment() Payment {
	return Payment{Gross: big.Zero(), NetworkFee: big.Zero(), Commission: big.Zero(), NetPayee: big.Zero()}
}

func zeroAccount() Account {
	return Account{Funds: big.Zero(), LockupCurrent: big.Zero(), LockupRate: big.Zero()}
}

func zeroApproval() Approval {
	return Approval{RateAllowance: big.Zero(), LockupAllowance: big.Zero(), RateUsage: big.Zero(), LockupUsage: big.Zero()}
}
