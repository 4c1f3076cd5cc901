// Package chain is warmstore's trusted single-node ledger: a stand-in for the Filecoin
// contracts PDPVerifier, FilecoinWarmStorageService (FWSS), FilecoinPay and the provider
// registry, with their rules.
//
// # Shape
//
// The rules are a pure core. Engine.Apply takes the committed state (a Store of ordered
// key/value pairs), one signed Tx, the current epoch and a Beacon, and returns the
// transaction's write set and events, or an error that wraps one of the package's sentinel
// errors (ErrBadNonce, ErrInvalidProof, ErrTooLate, …) in which case nothing may be committed.
// It does no I/O and reads no clock, so the rules are tested with an in-memory MemStore and a
// hand-moved epoch, and replaying the transaction log from genesis reproduces the state hash.
// Payments are the payments package's Ledger over the same state, with the warm-storage
// service as the validator of PDP rails.
//
// Ledger is the shell: pebble (each accepted transaction is appended to the log and committed
// with its state writes and events as one synced batch), a Clock (RealClock with 30 s epochs by
// default, 1 s on a devnet, ManualClock in tests), a Beacon (SecretBeacon: HMAC-SHA256 of a
// secret the ledger keeps, so the randomness of an epoch cannot be known before it), and the
// event stream. Server serves a Ledger as JSON over HTTP (routes in server.go); Client is its Go
// client, used by the provider, the edge and the SDK.
//
// # Rules in brief
//
//   - Every transaction is signed (secp256k1) by its sender over SigningHash, which binds the
//     chain id, kind, sender, nonce and exact body bytes; the sender's nonce must be the next
//     one. Client authorizations (CreateDataSet, AddPieces, SchedulePieceRemovals,
//     TerminateService) are EIP-712 signatures by the payer under the FWSS domain (package
//     chain/eip712) with single-use nonces / client data-set ids.
//   - A registered provider creates a data set with the payer's signed CreateDataSet: this opens
//     the payer → provider PDP rail (validator: the service) with a 30-day streaming lockup and a
//     0.10 USDFC lifecycle reserve, and the two CDN rails when the metadata has "withCDN".
//     AddPieces sets the rail's rate to StorageRate(leaf count) and pays the per-call fees.
//   - Proving (period M, window W, both from Config): NextProvingPeriod freezes the challenge
//     range, applies scheduled removals and picks a challenge epoch inside the next window, at
//     least ChallengeFinality ahead. ProvePossession must come inside [challenge epoch,
//     deadline] with at least 5 proofs; challenge i is keccak256(seed ‖ setId ‖ i) mod range
//     over the beacon value of the challenge epoch, mapped to (piece, leaf) by the sum tree and
//     checked with pdp.VerifyProof. Pieces added during a period are challenged from the next.
//   - A period whose deadline passes without a proof is a fault: recorded (one FaultRecord per
//     period) when the next period is scheduled, when the rail is settled past it, or when
//     anyone sends RecordFaults. The validator pays rate × proven epochs: faulted periods settle
//     at zero, and settlement stops at the open period.
//
// Amounts are abi.TokenAmount in 10^-18 USDFC; addresses are go-ethereum common.Address.
package chain
