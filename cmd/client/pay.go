package main

import (
	"fmt"
	"strconv"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/urfave/cli/v2"

	"github.com/warmstore/warmstore/sdk"
)

func payCommand() *cli.Command {
	amountAction := func(op string, do func(c *cli.Context, cl *sdk.Client, amount abi.TokenAmount) (any, error)) cli.ActionFunc {
		return func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit(fmt.Sprintf("%s: give one amount in USDFC (e.g. 'client pay %s 5')", op, op), exitUsage)
			}
			amount, err := sdk.ParseUSDFC(c.Args().First())
			if err != nil {
				return cli.Exit(fmt.Sprintf("%s: %v", op, err), exitUsage)
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			r, err := do(c, cl, amount)
			if err != nil {
				return exitFor(err)
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, map[string]any{"op": op, "amount": amount, "receipt": r})
			}
			_, err = fmt.Fprintf(c.App.Writer, "%s %s USDFC: done\n", op, sdk.FormatUSDFC(amount))
			return err
		}
	}
	return &cli.Command{
		Name:  "pay",
		Usage: "fund, approve and inspect payments",
		Subcommands: []*cli.Command{
			{
				Name: "faucet", Usage: "mint devnet USDFC into the wallet", ArgsUsage: "AMOUNT",
				Flags: connFlags(),
				Action: amountAction("faucet", func(c *cli.Context, cl *sdk.Client, a abi.TokenAmount) (any, error) {
					return cl.Faucet(c.Context, a)
				}),
			},
			{
				Name: "deposit", Usage: "move USDFC from the wallet into the payments account", ArgsUsage: "AMOUNT",
				Flags: connFlags(),
				Action: amountAction("deposit", func(c *cli.Context, cl *sdk.Client, a abi.TokenAmount) (any, error) {
					return cl.Deposit(c.Context, a)
				}),
			},
			{
				Name: "withdraw", Usage: "move available USDFC back to the wallet", ArgsUsage: "AMOUNT",
				Flags: connFlags(),
				Action: amountAction("withdraw", func(c *cli.Context, cl *sdk.Client, a abi.TokenAmount) (any, error) {
					return cl.Withdraw(c.Context, a)
				}),
			},
			{
				Name:  "approve",
				Usage: "approve the warm-storage service as operator of the payments account",
				Flags: append(connFlags(),
					&cli.StringFlag{Name: "rate", Usage: "rate allowance, USDFC per epoch (default 10)"},
					&cli.StringFlag{Name: "lockup", Usage: "lockup allowance, USDFC (default 1000000)"},
					&cli.Int64Flag{Name: "max-lockup-period", Usage: "max lockup period in epochs (default 86400)"},
				),
				Action: func(c *cli.Context) error {
					var a sdk.Allowances
					var err error
					if s := c.String("rate"); s != "" {
						if a.Rate, err = sdk.ParseUSDFC(s); err != nil {
							return cli.Exit("approve: --rate: "+err.Error(), exitUsage)
						}
					}
					if s := c.String("lockup"); s != "" {
						if a.Lockup, err = sdk.ParseUSDFC(s); err != nil {
							return cli.Exit("approve: --lockup: "+err.Error(), exitUsage)
						}
					}
					a.MaxLockupPeriod = abi.ChainEpoch(c.Int64("max-lockup-period"))
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					r, err := cl.Approve(c.Context, a)
					if err != nil {
						return exitFor(err)
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, map[string]any{"op": "approve", "operator": cl.ChainInfo().WarmStorage, "receipt": r})
					}
					_, err = fmt.Fprintf(c.App.Writer, "approved warm-storage service %s\n", cl.ChainInfo().WarmStorage.Hex())
					return err
				},
			},
			{
				Name: "status", Usage: "balances, lockup, funded-until, approval and rails",
				Flags: connFlags(),
				Action: func(c *cli.Context) error {
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					st, err := cl.Status(c.Context)
					if err != nil {
						return exitFor(err)
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, st)
					}
					w := c.App.Writer
					fmt.Fprintf(w, "address       %s (epoch %d)\n", st.Address, st.Epoch)
					fmt.Fprintf(w, "wallet        %s USDFC\n", sdk.FormatUSDFC(st.Wallet))
					fmt.Fprintf(w, "funds         %s USDFC\n", sdk.FormatUSDFC(st.Funds))
					fmt.Fprintf(w, "lockup        %s USDFC (+%s per epoch)\n", sdk.FormatUSDFC(st.Lockup), sdk.FormatUSDFC(st.LockupRate))
					fmt.Fprintf(w, "available     %s USDFC\n", sdk.FormatUSDFC(st.Available))
					fmt.Fprintf(w, "funded until  %s\n", fundedUntil(st.FundedUntil))
					if st.Approval != nil && st.Approval.Approved {
						fmt.Fprintf(w, "approval      rate %s/epoch, lockup %s, max period %d (used: rate %s, lockup %s)\n",
							sdk.FormatUSDFC(st.Approval.RateAllowance), sdk.FormatUSDFC(st.Approval.LockupAllowance), st.Approval.MaxLockupPeriod,
							sdk.FormatUSDFC(st.Approval.RateUsage), sdk.FormatUSDFC(st.Approval.LockupUsage))
					} else {
						fmt.Fprintln(w, "approval      none (run 'client pay approve')")
					}
					for _, r := range st.Rails {
						fmt.Fprintf(w, "rail %-4d %-10s data set %-4d rate %s/epoch settled to %d%s\n", r.ID, r.Kind, r.DataSetID, sdk.FormatUSDFC(r.Rate), r.SettledUpTo, terminated(r.Terminated, r.EndEpoch))
					}
					return nil
				},
			},
			{
				Name: "settle", Usage: "settle a payment rail up to now", ArgsUsage: "RAIL_ID",
				Flags: connFlags(),
				Action: func(c *cli.Context) error {
					id, err := strconv.ParseUint(c.Args().First(), 10, 64)
					if c.NArg() != 1 || err != nil {
						return cli.Exit("settle: give one rail id (see 'client pay status')", exitUsage)
					}
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					r, err := cl.Settle(c.Context, id, 0)
					if err != nil {
						return exitFor(err)
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, map[string]any{"op": "settle", "railId": id, "receipt": r})
					}
					_, err = fmt.Fprintf(c.App.Writer, "settled rail %d at epoch %d\n", id, r.Epoch)
					return err
				},
			},
		},
	}
}

func fundedUntil(e abi.ChainEpoch) string {
	if e >= abi.ChainEpoch(1)<<62 {
		return "forever (nothing is being paid)"
	}
	return fmt.Sprintf("epoch %d", e)
}

func terminated(t bool, end abi.ChainEpoch) string {
	if !t {
		return ""
	}
	return fmt.Sprintf(" (terminated, ends %d)", end)
}
