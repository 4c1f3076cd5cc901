// Package payments is warmstore's payment ledger: the rules of Filecoin Pay
// (FilecoinPayV1) as a pure, deterministic state machine.
//
// # Model
//
// Accounts are kept per (token, owner). An account's Funds are all it holds; its
// LockupCurrent is the part reserved for the rails it pays. A payer approves operators
// (the warm-storage service, the CDN) with a rate allowance, a lockup allowance and a
// maximum lockup period; an approved operator opens rails from the payer to a payee.
//
// A rail streams PaymentRate tokens per epoch. Its lockup is LockupFixed (a budget for
// one-time payments) plus PaymentRate × LockupPeriod (a guarantee to the payee: if the
// payer stops funding, the payee can still be paid for LockupPeriod more epochs). The
// payer's LockupRate (the sum of its live rails' rates) moves into LockupCurrent epoch by
// epoch, lazily: each operation first "settles" the account's lockup up to the current
// epoch, or as far as its funds reach. The epoch it reached is the funded-until epoch; an
// account that did not reach the current epoch is in debt and may not withdraw, change
// rates or grow lockups until topped up.
//
// Settlement pays a rail from SettledUpTo to a target epoch. Rate changes are queued
// (at most one entry per epoch), so settlement walks segments of constant rate and, for
// every segment with a non-zero rate, asks the rail's Validator how much to pay and how
// far to settle. The lockup of every settled epoch is released in full, so what the
// validator withholds stays with the payer. This is how the warm-storage service pays
// only for proven epochs. A live rail is never settled past the payer's funded-until
// epoch. Each payment loses a 0.5% network fee (rounded up) and an optional operator
// commission in basis points.
//
// Terminating a rail fixes its EndEpoch at the payer's funded-until epoch plus the lockup
// period; the payee can still be paid up to it from the lockup. Once settled to its end
// the rail is finalized and its unused fixed lockup returns to the payer.
//
// # Shape
//
// A Ledger applies the rules to a State (an interface: MemState keeps it in memory,
// chain/ keeps it in pebble). Every operation takes the current epoch as an argument;
// there is no clock here. An operation buffers its writes and writes them to the State
// only if it succeeds, so a refused operation changes nothing. Refusals are
// *RefusalError values wrapping a Rule such as ErrNotFullySettled.
//
// # Where this differs from FilecoinPayV1
//
//   - Settlement follows the contract's current source rather than deployed v1.0.0: the
//     validator notes of all segments are kept (joined), and the lockup check compares
//     against rate × settled epochs.
//   - Network fees are added to a per-token total (Ledger.NetworkFees) and leave
//     circulation; there is no Dutch auction.
//   - A finalized rail stays readable with Finalized set instead of being zeroed; every
//     operation on it is refused with ErrRailFinalized.
//   - A rail's validator must be registered when the rail is created (ErrUnknownValidator).
//   - Deposit and Withdraw only move ledger balances; the token transfer, permits and
//     withdraw-to addresses are chain/'s business.
//   - Reproduced on purpose: a rate cut during a terminated rail's window leaves phantom
//     operator lockup usage (filecoin-pay#274), as the deployed contract does.
//
// All amounts are abi.TokenAmount integers (10^-18 units); nothing uses floating point.
package payments
