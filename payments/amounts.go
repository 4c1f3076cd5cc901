package payments

import (
	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"
)

// validAmount reports whether x is a non-nil, non-negative integer.
func validAmount(x abi.TokenAmount) bool { return x.Int != nil && x.Sign() >= 0 }

// times returns rate × n epochs.
func times(rate abi.TokenAmount, n abi.ChainEpoch) abi.TokenAmount {
	if n == 0 || rate.Sign() == 0 {
		return big.Zero()
	}
	return big.Mul(rate, big.NewInt(int64(n)))
}

// subFloor returns max(a − b, 0): usage counters saturate at zero.
func subFloor(a, b abi.TokenAmount) abi.TokenAmount {
	d := big.Sub(a, b)
	if d.Sign() < 0 {
		return big.Zero()
	}
	return d
}

// NetworkFee is the network fee on a payment: ceil(amount × 1/200).
func NetworkFee(amount abi.TokenAmount) abi.TokenAmount {
	if amount.Sign() <= 0 {
		return big.Zero()
	}
	n := big.Mul(amount, big.NewInt(NetworkFeeNumerator))
	return big.Div(big.Add(n, big.NewInt(NetworkFeeDenominator-1)), big.NewInt(NetworkFeeDenominator))
}

// SplitPayment splits a gross payment into network fee, commission and payee share
// (reference §4.7).
func SplitPayment(gross abi.TokenAmount, commissionBps uint64) Payment {
	if gross.Sign() <= 0 {
		return zeroPayment()
	}
	fee := NetworkFee(gross)
	afterFee := big.Sub(gross, fee)
	commission := big.Zero()
	if commissionBps > 0 {
		commission = big.Div(big.Mul(afterFee, big.NewIntUnsigned(commissionBps)), big.NewInt(CommissionMaxBps))
	}
	return Payment{Gross: gross, NetworkFee: fee, Commission: commission, NetPayee: big.Sub(afterFee, commission)}
}

func minEpoch(a, b abi.ChainEpoch) abi.ChainEpoch {
	if a < b {
		return a
	}
	return b
}
