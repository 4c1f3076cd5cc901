package sdk

import (
	"errors"
	"fmt"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"
)

// Sentinel errors; every error the SDK returns that is about one of these conditions wraps it,
// so callers test with errors.Is.
var (
	// ErrNoProvider: no registered provider answered its health check (or none is left after
	// exclusions), so nothing can be stored.
	ErrNoProvider = errors.New("sdk: no provider reachable")
	// ErrVerification: downloaded bytes do not hash to the piece CID.
	ErrVerification = errors.New("sdk: downloaded bytes do not match the piece CID")
	// ErrNoCopy: every known copy of a piece failed (wrong bytes, truncation, stall, absence).
	ErrNoCopy = errors.New("sdk: no copy of the piece could be downloaded and verified")
	// ErrBadRange: a byte range is empty or outside the piece.
	ErrBadRange = errors.New("sdk: bad byte range")
	// ErrInsufficientFunds is wrapped by *InsufficientFundsError.
	ErrInsufficientFunds = errors.New("sdk: insufficient funds")
	// ErrNotApproved: the warm-storage service is not approved as an operator of the payer's
	// funds (run Approve).
	ErrNotApproved = errors.New("sdk: warm-storage service not approved as payments operator")
	// ErrProvider: a provider answered an unexpected HTTP status; wrapped by *ProviderError.
	ErrProvider = errors.New("sdk: provider error")
	// ErrStall: a transfer made no progress for Config.StallTimeout.
	ErrStall = errors.New("sdk: transfer stalled")
	// ErrTruncated: a provider ended a response before the promised length.
	ErrTruncated = errors.New("sdk: response truncated")
	// ErrNotFound: the piece, data set or provider is unknown.
	ErrNotFound = errors.New("sdk: not found")
)

// InsufficientFundsError says how much more must be deposited before an operation can succeed.
type InsufficientFundsError struct {
	Op        string
	Need      abi.TokenAmount // total available funds the operation needs
	Available abi.TokenAmount // the payer's available funds now
}

func (e *InsufficientFundsError) Error() string {
	m := FormatUSDFC(e.Missing())
	return fmt.Sprintf("%s needs %s USDFC available in payments but the account has %s: deposit at least %s more (client pay deposit %s)",
		e.Op, FormatUSDFC(e.Need), FormatUSDFC(e.Available), m, m)
}

// Missing is Need − Available.
func (e *InsufficientFundsError) Missing() abi.TokenAmount {
	return big.Sub(e.Need, e.Available)
}

func (e *InsufficientFundsError) Unwrap() error { return ErrInsufficientFunds }

// ProviderError is an unexpected HTTP answer from a provider.
type ProviderError struct {
	URL    string
	Op     string
	Status int
	Body   string
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("provider %s: %s: HTTP %d: %s", e.URL, e.Op, e.Status, e.Body)
}

func (e *ProviderError) Unwrap() error {
	if e.Status == 404 {
		return errors.Join(ErrProvider, ErrNotFound)
	}
	return ErrProvider
}
