package payments_test

import (
	"fmt"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/payments"
)

// provenEpochs is a validator that pays only for epochs it considers proven and settles
// (unpaid) through the others.
type provenEpochs struct{ unproven map[abi.ChainEpoch]bool }

func (v provenEpochs) ValidatePayment(rail payments.Rail, proposed abi.TokenAmount, from, to abi.ChainEpoch, rate abi.TokenAmount) (payments.ValidationResult, error) {
	proven := int64(0)
	for e := from + 1; e <= to; e++ {
		if !v.unproven[e] {
			proven++
		}
	}
	return payments.ValidationResult{Amount: big.Mul(rate, big.NewInt(proven)), SettleUpTo: to}, nil
}

func Example() {
	var (
		usdfc     = payments.Address{0x01}
		client    = payments.Address{0x02}
		provider  = payments.Address{0x03}
		service   = payments.Address{0x04} // operator and validator
		tokens    = func(n int64) abi.TokenAmount { return big.Mul(big.NewInt(n), big.NewInt(1e18)) }
		validator = provenEpochs{unproven: map[abi.ChainEpoch]bool{}}
	)
	st := payments.NewMemState()
	ledger := payments.NewLedger(st, payments.ValidatorMap{service: validator})

	check := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	// Epoch 0: the client deposits 100 tokens and approves the service.
	check(ledger.Deposit(usdfc, client, tokens(100), 0))
	check(ledger.SetOperatorApproval(usdfc, client, service, true, tokens(1), tokens(50), 1000, 0))
	rail, err := ledger.CreateRail(service, usdfc, client, provider, service, 0, payments.Address{}, 0)
	check(err)
	// 0.01 token per epoch, 100 epochs of lockup (1 token), plus 0.5 token for one-time fees.
	rate := big.Div(tokens(1), big.NewInt(100))
	check(ledger.ModifyRailLockup(service, rail, 100, big.Div(tokens(1), big.NewInt(2)), 0))
	_, err = ledger.ModifyRailPayment(service, rail, rate, big.Zero(), 0)
	check(err)

	// Epochs 41..60 were not proven.
	for e := abi.ChainEpoch(41); e <= 60; e++ {
		validator.unproven[e] = true
	}
	s, err := ledger.SettleRail(rail, 100, 100)
	check(err)
	fmt.Println("settled up to", s.SettledUpTo)
	fmt.Println("paid", s.Gross, "withheld", s.Withheld)
	fmt.Println("network fee", s.NetworkFee, "provider gets", s.NetPayee)

	acct, err := ledger.Account(usdfc, client, 100)
	check(err)
	fmt.Println("client funds", acct.Funds, "lockup", acct.LockupCurrent)
	// Output:
	// settled up to 100
	// paid 800000000000000000 withheld 200000000000000000
	// network fee 4000000000000000 provider gets 796000000000000000
	// client funds 99200000000000000000 lockup 1500000000000000000
}

// A payer that stops funding: the rail is paid up to the payer's funded-until epoch,
// the operator terminates it, the streaming lockup pays the remaining lockup period, and
// finalization returns the unused fixed lockup.
func ExampleLedger_TerminateRail() {
	var (
		tok      = payments.Address{0x01}
		payer    = payments.Address{0x02}
		payee    = payments.Address{0x03}
		operator = payments.Address{0x04}
	)
	ledger := payments.NewLedger(payments.NewMemState(), nil)
	check := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	check(ledger.Deposit(tok, payer, big.NewInt(2_000), 0))
	check(ledger.SetOperatorApproval(tok, payer, operator, true, big.NewInt(10), big.NewInt(2_000), 100, 0))
	rail, err := ledger.CreateRail(operator, tok, payer, payee, payments.Address{}, 0, payments.Address{}, 0)
	check(err)
	check(ledger.ModifyRailLockup(operator, rail, 100, big.NewInt(100), 0)) // 100 epochs + 100 fixed
	_, err = ledger.ModifyRailPayment(operator, rail, big.NewInt(10), big.Zero(), 0)
	check(err)

	// 2000 funds − 1100 initial lockup cover 90 more epochs.
	info, err := ledger.Account(tok, payer, 500)
	check(err)
	fmt.Println("funded until", info.FundedUntil, "fully settled", info.FullySettled)

	s, err := ledger.SettleRail(rail, 500, 500)
	check(err)
	fmt.Println("settled to", s.SettledUpTo, "paid", s.Gross)

	check(ledger.TerminateRail(operator, rail, 500))
	r, err := ledger.Rail(rail)
	check(err)
	fmt.Println("end epoch", r.EndEpoch)

	s, err = ledger.SettleRail(rail, 500, 500)
	check(err)
	fmt.Println("settled to", s.SettledUpTo, "paid", s.Gross, "finalized", s.Finalized)
	info, err = ledger.Account(tok, payer, 500)
	check(err)
	fmt.Println("payer funds", info.Funds, "lockup", info.LockupCurrent)
	// Output:
	// funded until 90 fully settled false
	// settled to 90 paid 900
	// end epoch 190
	// settled to 190 paid 1000 finalized true
	// payer funds 100 lockup 0
}
