package chain

import (
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"
)

// Config is the genesis configuration of a ledger. It is written into the state at genesis and
// cannot change afterwards: a replay must run under the same rules.
type Config struct {
	// ChainID separates ledgers: it is in every transaction's signing hash and in the EIP-712
	// domain of client authorizations.
	ChainID uint64 `json:"chainId"`
	// WarmStorage is the address of the warm-storage service: the EIP-712 verifyingContract,
	// the payments operator of every data-set rail and the validator of PDP rails.
	WarmStorage common.Address `json:"warmStorage"`
	// Token is the payment token (USDFC, 18 decimals).
	Token common.Address `json:"token"`
	// FilBeam is the payee of CDN egress rails.
	FilBeam common.Address `json:"filBeam"`
	// Edges may report CDN usage.
	Edges []common.Address `json:"edges"`

	ProvingPeriod     abi.ChainEpoch `json:"provingPeriod"`     // M
	ChallengeWindow   abi.ChainEpoch `json:"challengeWindow"`   // W
	ChallengeFinality abi.ChainEpoch `json:"challengeFinality"` // min epochs between scheduling and the challenge epoch

	// Faucet enables the devnet faucet; FaucetLimit caps one faucet transaction.
	Faucet      bool    `json:"faucet"`
	FaucetLimit big.Int `json:"faucetLimit"`
}

// Protocol constants (reference §1.1, §5.1).
const (
	NumChallenges     = 5
	MaxFinality       = abi.ChainEpoch(43200)
	MaxRemovals       = 2000
	InactivityWindow  = abi.ChainEpoch(86400) // epochs without a proof after which a data set may be abandoned
	EpochsPerMonth    = abi.ChainEpoch(86400)
	PDPLockupPeriod   = abi.ChainEpoch(86400)
	CDNLockupPeriod   = abi.ChainEpoch(14400)
	maxMetadataKeys   = 10
	maxMetadataKey    = 32
	maxMetadataValue  = 96
	maxPieceMetaKeys  = 3
	maxPiecesPerAdd   = 1000
	maxServiceURLSize = 256
)

// usdfc returns n × 10^-decimals USDFC in base units (10^-18).
func usdfc(n int64, decimals int) big.Int {
	v := big.Mul(big.NewInt(n), big.Exp(big.NewInt(10), big.NewInt(int64(18-decimals))))
	return v
}

// Prices and fees of the warm-storage service (USDFC base units).
var (
	StoragePricePerTiBMonth = usdfc(25, 1) // 2.5
	DataSetFeePerEpoch      = big.NewInt(277777777777)
	CDNPricePerTiB          = usdfc(7, 0)
	CacheMissPricePerTiB    = usdfc(7, 0)
	DefaultCDNLockup        = usdfc(7, 1)   // 0.7
	DefaultCacheMissLockup  = usdfc(3, 1)   // 0.3
	CreateDataSetFee        = usdfc(25, 3)  // 0.025
	AddPiecesBaseFee        = usdfc(5, 4)   // 0.0005
	AddPiecesPerPieceFee    = usdfc(3, 4)   // 0.0003
	ScheduleRemovalsFee     = usdfc(2, 3)   // 0.002
	TerminateFee            = usdfc(112, 5) // 0.00112
	LifecycleReserveTarget  = usdfc(1, 1)   // 0.10
	ReplenishThreshold      = usdfc(5, 3)   // 0.005
	DataSetFeeMonth         = usdfc(24, 3)  // 0.024
)

// DefaultConfig is the configuration of a devnet: Filecoin's hourly proving period (120 epochs)
// with a 20-epoch window, a small challenge finality, the faucet on.
func DefaultConfig() Config {
	return Config{
		ChainID:           31415926,
		WarmStorage:       NamedAddress("warmstore/warm-storage-service"),
		Token:             NamedAddress("warmstore/usdfc"),
		FilBeam:           NamedAddress("warmstore/filbeam"),
		ProvingPeriod:     120,
		ChallengeWindow:   20,
		ChallengeFinality: 2,
		Faucet:            true,
		FaucetLimit:       usdfc(1000, 0),
	}
}

// NamedAddress derives a fixed address from a name (the last 20 bytes of its keccak256), for
// the ledger's built-in "contracts", which have no keys.
func NamedAddress(name string) common.Address {
	return common.BytesToAddress(crypto.Keccak256([]byte(name))[12:])
}

// Validate checks the configuration's invariants.
func (c Config) Validate() error {
	switch {
	case c.ChainID == 0:
		return fmt.Errorf("%w: chain id 0", ErrInvalidArgument)
	case c.ProvingPeriod <= 0:
		return fmt.Errorf("%w: proving period %d", ErrInvalidArgument, c.ProvingPeriod)
	case c.ChallengeWindow <= 0 || c.ChallengeWindow >= c.ProvingPeriod:
		return fmt.Errorf("%w: challenge window %d must be in (0, proving period %d)", ErrInvalidArgument, c.ChallengeWindow, c.ProvingPeriod)
	case c.ChallengeFinality < 0 || c.ChallengeFinality >= MaxFinality/10:
		return fmt.Errorf("%w: challenge finality %d", ErrInvalidArgument, c.ChallengeFinality)
	case c.ChallengeFinality > c.ProvingPeriod-c.ChallengeWindow:
		return fmt.Errorf("%w: challenge finality %d leaves no room to schedule inside a %d-epoch period with a %d-epoch window",
			ErrInvalidArgument, c.ChallengeFinality, c.ProvingPeriod, c.ChallengeWindow)
	case c.WarmStorage == (common.Address{}) || c.Token == (common.Address{}):
		return fmt.Errorf("%w: warm-storage and token addresses must be set", ErrInvalidArgument)
	case c.Faucet && (c.FaucetLimit.Int == nil || c.FaucetLimit.Sign() <= 0):
		return fmt.Errorf("%w: faucet enabled with no limit", ErrInvalidArgument)
	}
	return nil
}

// StorageRate is the per-epoch price of a data set holding leafCount leaves (reference §5.1):
// 0 for an empty set, else floor(rawBytes × 2.5 USDFC / (2^40 × 86400)) + the data-set fee,
// with rawBytes = floor(leafCount × 32 × 127 / 128).
func StorageRate(leafCount uint64) abi.TokenAmount {
	if leafCount == 0 {
		return big.Zero()
	}
	raw := big.Div(big.Mul(big.NewIntUnsigned(leafCount), big.NewInt(127)), big.NewInt(4))
	perEpoch := big.Div(big.Mul(raw, StoragePricePerTiBMonth), big.Mul(big.NewInt(1<<40), big.NewInt(int64(EpochsPerMonth))))
	return big.Add(perEpoch, DataSetFeePerEpoch)
}

// EgressCharge is the price of bytes at pricePerTiB, rounded down.
func EgressCharge(bytes uint64, pricePerTiB abi.TokenAmount) abi.TokenAmount {
	return big.Div(big.Mul(big.NewIntUnsigned(bytes), pricePerTiB), big.NewInt(1<<40))
}
