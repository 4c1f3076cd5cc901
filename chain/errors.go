package chain

import "errors"

// Errors of the ledger. Every refusal wraps one of these, so callers (and the Go client, which
// decodes the server's error code back into them) can test with errors.Is.
var (
	ErrMalformed         = errors.New("malformed transaction")
	ErrBadSignature      = errors.New("bad signature")
	ErrWrongSigner       = errors.New("wrong signer")
	ErrBadNonce          = errors.New("bad nonce")
	ErrNonceUsed         = errors.New("authorization nonce already used")
	ErrUnknownKind       = errors.New("unknown transaction kind")
	ErrNotFound          = errors.New("not found")
	ErrUnauthorized      = errors.New("sender not authorized")
	ErrAlreadyExists     = errors.New("already exists")
	ErrInvalidArgument   = errors.New("invalid argument")
	ErrTooEarly          = errors.New("too early")
	ErrTooLate           = errors.New("too late")
	ErrAlreadyProven     = errors.New("period already proven")
	ErrInvalidProof      = errors.New("invalid proof")
	ErrNotProving        = errors.New("data set has no scheduled challenge")
	ErrTerminated        = errors.New("service terminated")
	ErrInsufficientFunds = errors.New("insufficient funds")
	ErrFaucetDisabled    = errors.New("faucet is disabled on this ledger")
	ErrPayments          = errors.New("payment rule refused")
	ErrFutureEpoch       = errors.New("epoch in the future")
	ErrInternal          = errors.New("internal ledger error")
)

// errorCodes maps each sentinel to a stable wire code for the HTTP API.
var errorCodes = []struct {
	code string
	err  error
}{
	{"malformed", ErrMalformed},
	{"bad_signature", ErrBadSignature},
	{"wrong_signer", ErrWrongSigner},
	{"bad_nonce", ErrBadNonce},
	{"nonce_used", ErrNonceUsed},
	{"unknown_kind", ErrUnknownKind},
	{"not_found", ErrNotFound},
	{"unauthorized", ErrUnauthorized},
	{"already_exists", ErrAlreadyExists},
	{"invalid_argument", ErrInvalidArgument},
	{"too_early", ErrTooEarly},
	{"too_late", ErrTooLate},
	{"already_proven", ErrAlreadyProven},
	{"invalid_proof", ErrInvalidProof},
	{"not_proving", ErrNotProving},
	{"terminated", ErrTerminated},
	{"insufficient_funds", ErrInsufficientFunds},
	{"faucet_disabled", ErrFaucetDisabled},
	{"payments", ErrPayments},
	{"future_epoch", ErrFutureEpoch},
	{"internal", ErrInternal},
}

// ErrorCode returns the wire code of err ("internal" when it wraps none of the sentinels).
func ErrorCode(err error) string {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "internal"
}
