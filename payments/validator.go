package payments

import "github.com/filecoin-project/go-state-types/abi"

// Validator decides how much of each settlement segment a rail pays. The warm-storage
// service is one: it pays rate × proven epochs, settles unproven past periods at zero,
// and stops at the still-open proving period.
//
// ValidatePayment is asked about the segment (fromEpoch, toEpoch] at rate, where
// proposedAmount = rate × (toEpoch − fromEpoch). It answers with the amount to pay and
// the epoch the rail is settled up to:
//   - fromEpoch ≤ SettleUpTo ≤ toEpoch (SettleUpTo == fromEpoch means "no progress":
//     settlement stops there);
//   - 0 ≤ Amount ≤ rate × (SettleUpTo − fromEpoch).
//
// The payer's lockup for all epochs up to SettleUpTo is released, so whatever the
// validator withholds returns to the payer's available funds. A returned error refuses
// the whole settlement (nothing changes).
type Validator interface {
	ValidatePayment(rail Rail, proposedAmount abi.TokenAmount, fromEpoch, toEpoch abi.ChainEpoch, rate abi.TokenAmount) (ValidationResult, error)
}

// ValidationResult is a Validator's answer for one segment.
type ValidationResult struct {
	Amount     abi.TokenAmount
	SettleUpTo abi.ChainEpoch
	Note       string
}

// TerminationListener is implemented by validators that must hear about (and may refuse)
// a rail's termination, as the warm-storage service records the end of its paid service.
// The Ledger calls it after every rule has passed; an error refuses the termination and
// nothing changes.
type TerminationListener interface {
	RailTerminated(rail Rail, terminator Address, endEpoch abi.ChainEpoch) error
}

// ValidatorRegistry finds a rail's validator by its address.
type ValidatorRegistry interface {
	Validator(addr Address) (Validator, bool)
}

// ValidatorMap is a ValidatorRegistry backed by a map.
type ValidatorMap map[Address]Validator

// Validator returns the validator registered at addr.
func (m ValidatorMap) Validator(addr Address) (Validator, bool) {
	v, ok := m[addr]
	return v, ok
}
