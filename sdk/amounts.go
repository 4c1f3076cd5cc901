package sdk

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/filecoin-project/go-state-types/abi"
)

// usdfcUnit is 10^18, the number of token units in one USDFC.
var usdfcUnit = new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)

// FormatUSDFC renders an amount of 10^-18 units as a decimal USDFC string without trailing
// zeros ("1.5", "0.000000000000000001", "0").
func FormatUSDFC(a abi.TokenAmount) string {
	if a.Int == nil {
		return "0"
	}
	v := new(big.Int).Set(a.Int)
	sign := ""
	if v.Sign() < 0 {
		sign = "-"
		v.Neg(v)
	}
	q, r := new(big.Int).QuoRem(v, usdfcUnit, new(big.Int))
	if r.Sign() == 0 {
		return sign + q.String()
	}
	frac := strings.TrimRight(fmt.Sprintf("%018s", r.String()), "0")
	return sign + q.String() + "." + frac
}

// ParseUSDFC parses a decimal USDFC amount ("2", "0.5", "1e-3" is not accepted) into 10^-18
// units. At most 18 fractional digits; negative amounts are refused.
func ParseUSDFC(s string) (abi.TokenAmount, error) {
	s = strings.TrimSpace(s)
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" {
		whole = "0"
	}
	if len(frac) > 18 || strings.HasPrefix(whole, "-") || strings.HasPrefix(whole, "+") {
		return abi.TokenAmount{}, fmt.Errorf("amount %q: want a non-negative decimal with at most 18 fractional digits", s)
	}
	w, ok := new(big.Int).SetString(whole, 10)
	if !ok {
		return abi.TokenAmount{}, fmt.Errorf("amount %q: not a decimal number", s)
	}
	f := big.NewInt(0)
	if frac != "" {
		if f, ok = new(big.Int).SetString(frac+strings.Repeat("0", 18-len(frac)), 10); !ok || f.Sign() < 0 {
			return abi.TokenAmount{}, fmt.Errorf("amount %q: not a decimal number", s)
		}
	}
	w.Mul(w, usdfcUnit).Add(w, f)
	return abi.TokenAmount{Int: w}, nil
}
