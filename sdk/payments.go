package sdk

import (
	"context"
	"fmt"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/payments"
)

// Faucet mints devnet tokens into the payer's wallet (only on chains with the faucet on).
func (c *Client) Faucet(ctx context.Context, amount abi.TokenAmount) (*chain.Receipt, error) {
	r, err := c.chain.Faucet(ctx, c.key, chain.FaucetBody{To: c.address, Amount: amount})
	if err != nil {
		return nil, fmt.Errorf("sdk: faucet: %w", err)
	}
	return r, nil
}

// Deposit moves amount from the payer's wallet into its payments account.
func (c *Client) Deposit(ctx context.Context, amount abi.TokenAmount) (*chain.Receipt, error) {
	acc, err := c.chain.Account(ctx, c.address)
	if err != nil {
		return nil, fmt.Errorf("sdk: read account: %w", err)
	}
	if acc.Wallet.LessThan(amount) {
		return nil, &InsufficientFundsError{Op: "deposit", Need: amount, Available: acc.Wallet}
	}
	r, err := c.chain.Deposit(ctx, c.key, chain.DepositBody{To: c.address, Amount: amount})
	if err != nil {
		return nil, fmt.Errorf("sdk: deposit: %w", err)
	}
	return r, nil
}

// Allowances are the limits of an operator approval.
type Allowances struct {
	Rate            abi.TokenAmount // per-epoch rate the operator may set across rails
	Lockup          abi.TokenAmount // total lockup the operator may hold
	MaxLockupPeriod abi.ChainEpoch
}

// DefaultAllowances are generous limits for the warm-storage service: rate of 10 USDFC per
// epoch, lockup of 1,000,000 USDFC, and the 30-day lockup period storage rails need.
func DefaultAllowances() Allowances {
	unit := big.NewInt(1e18)
	return Allowances{Rate: big.Mul(big.NewInt(10), unit), Lockup: big.Mul(big.NewInt(1_000_000), unit), MaxLockupPeriod: chain.PDPLockupPeriod}
}

// Approve approves the warm-storage service as operator of the payer's funds with the given
// allowances (zero fields take DefaultAllowances').
func (c *Client) Approve(ctx context.Context, a Allowances) (*chain.Receipt, error) {
	def := DefaultAllowances()
	if a.Rate.Int == nil {
		a.Rate = def.Rate
	}
	if a.Lockup.Int == nil {
		a.Lockup = def.Lockup
	}
	if a.MaxLockupPeriod == 0 {
		a.MaxLockupPeriod = def.MaxLockupPeriod
	}
	r, err := c.chain.SetOperatorApproval(ctx, c.key, chain.SetOperatorApprovalBody{
		Operator: c.info.WarmStorage, Approved: true, RateAllowance: a.Rate, LockupAllowance: a.Lockup, MaxLockupPeriod: a.MaxLockupPeriod})
	if err != nil {
		return nil, fmt.Errorf("sdk: approve %s: %w", c.info.WarmStorage.Hex(), err)
	}
	return r, nil
}

// RailStatus is one payment rail the payer pays.
type RailStatus struct {
	ID          uint64          `json:"id"`
	DataSetID   uint64          `json:"dataSetId"`
	Kind        string          `json:"kind"` // "pdp", "cdn", "cache-miss"
	Payee       string          `json:"payee"`
	Rate        abi.TokenAmount `json:"rate"`
	LockupFixed abi.TokenAmount `json:"lockupFixed"`
	SettledUpTo abi.ChainEpoch  `json:"settledUpTo"`
	Terminated  bool            `json:"terminated"`
	EndEpoch    abi.ChainEpoch  `json:"endEpoch,omitempty"`
}

// PaymentStatus is the payer's financial position.
type PaymentStatus struct {
	Address     string             `json:"address"`
	Epoch       abi.ChainEpoch     `json:"epoch"`
	Wallet      abi.TokenAmount    `json:"wallet"`
	Funds       abi.TokenAmount    `json:"funds"`
	Lockup      abi.TokenAmount    `json:"lockup"`
	LockupRate  abi.TokenAmount    `json:"lockupRate"`
	Available   abi.TokenAmount    `json:"available"`
	FundedUntil abi.ChainEpoch     `json:"fundedUntil"`
	Approval    *payments.Approval `json:"approval"`
	Rails       []RailStatus       `json:"rails"`
}

// Status reads balances, lockup, the funded-until epoch, the warm-storage approval and the
// rails of the payer's data sets.
func (c *Client) Status(ctx context.Context) (*PaymentStatus, error) {
	acc, err := c.chain.Account(ctx, c.address)
	if err != nil {
		return nil, fmt.Errorf("sdk: read account: %w", err)
	}
	ap, err := c.chain.Approval(ctx, c.address, c.info.WarmStorage)
	if err != nil {
		return nil, fmt.Errorf("sdk: read approval: %w", err)
	}
	head, err := c.chain.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("sdk: read head: %w", err)
	}
	st := &PaymentStatus{Address: c.address.Hex(), Epoch: head.Epoch, Wallet: acc.Wallet,
		Funds: acc.Payments.Funds, Lockup: acc.Payments.LockupCurrent, LockupRate: acc.Payments.LockupRate,
		Available: acc.Payments.Available, FundedUntil: acc.Payments.FundedUntil, Approval: ap, Rails: []RailStatus{}}
	sets, err := c.chain.DataSets(ctx, [20]byte{}, c.address)
	if err != nil {
		return nil, fmt.Errorf("sdk: list data sets: %w", err)
	}
	for _, ds := range sets {
		for _, r := range []struct {
			id   uint64
			kind string
		}{{ds.PDPRail, "pdp"}, {ds.CDNRail, "cdn"}, {ds.CacheMissRail, "cache-miss"}} {
			if r.id == 0 && r.kind != "pdp" {
				continue
			}
			ri, err := c.chain.Rail(ctx, r.id)
			if err != nil {
				return nil, fmt.Errorf("sdk: read rail %d: %w", r.id, err)
			}
			st.Rails = append(st.Rails, RailStatus{ID: r.id, DataSetID: ds.ID, Kind: r.kind, Payee: ri.To.Hex(),
				Rate: ri.PaymentRate, LockupFixed: ri.LockupFixed, SettledUpTo: ri.SettledUpTo, Terminated: ri.Terminated, EndEpoch: ri.EndEpoch})
		}
	}
	return st, nil
}

// Withdraw moves amount from the payments account back to the wallet. It fails with
// *InsufficientFundsError when more than the available (unlocked) funds are asked for.
func (c *Client) Withdraw(ctx context.Context, amount abi.TokenAmount) (*chain.Receipt, error) {
	acc, err := c.chain.Account(ctx, c.address)
	if err != nil {
		return nil, fmt.Errorf("sdk: read account: %w", err)
	}
	if acc.Payments.Available.LessThan(amount) {
		return nil, &InsufficientFundsError{Op: "withdraw", Need: amount, Available: acc.Payments.Available}
	}
	r, err := c.chain.Withdraw(ctx, c.key, chain.WithdrawBody{Amount: amount})
	if err != nil {
		return nil, fmt.Errorf("sdk: withdraw: %w", err)
	}
	return r, nil
}

// Settle settles a rail up to the current epoch (or until, when non-zero); anyone may settle.
func (c *Client) Settle(ctx context.Context, railID uint64, until abi.ChainEpoch) (*chain.Receipt, error) {
	if until == 0 {
		h, err := c.chain.Head(ctx)
		if err != nil {
			return nil, fmt.Errorf("sdk: read head: %w", err)
		}
		until = h.Epoch
	}
	r, err := c.chain.SettleRail(ctx, c.key, chain.SettleRailBody{RailID: railID, UntilEpoch: until})
	if err != nil {
		return nil, fmt.Errorf("sdk: settle rail %d: %w", railID, err)
	}
	return r, nil
}
