package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/urfave/cli/v2"

	"github.com/warmstore/warmstore/provider"
)

func devnetCommand() *cli.Command {
	return &cli.Command{
		Name:  "devnet",
		Usage: "run a chain and N providers in one process on loopback, with a funded demo wallet",
		Description: "Starts a devnet chain (1 s epochs by default; the proving rules are the real ones: 120-epoch\n" +
			"periods, 20-epoch windows) and --providers providers, each registered on chain, proving and\n" +
			"settling, and prints their URLs and a demo wallet (private key and address) funded from the faucet,\n" +
			"with funds deposited and the warm-storage service approved. Reusing --dir resumes the same devnet.\n" +
			"There is no beam CDN edge yet (sp beam does not exist in this build): retrieve pieces from the\n" +
			"providers' /piece/{cid} directly.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: defaultDir("devnet"), EnvVars: env("devnet-dir"), Usage: "devnet data directory"},
			&cli.IntFlag{Name: "providers", Value: 2, EnvVars: env("providers"), Usage: "number of providers"},
			&cli.StringFlag{Name: "host", Value: "127.0.0.1", EnvVars: env("devnet-host"), Usage: "address to listen on"},
			&cli.IntFlag{Name: "port", Value: 7700, EnvVars: env("devnet-port"), Usage: "chain port; provider i listens on port+i (0: random ports)"},
			&cli.DurationFlag{Name: "epoch", Value: time.Second, EnvVars: env("epoch"), Usage: "epoch duration"},
			&cli.DurationFlag{Name: "settle-interval", Value: time.Minute, EnvVars: env("settle-interval"), Usage: "how often providers settle their rails"},
			logLevelFlag,
		},
		Action: func(c *cli.Context) error {
			log, err := newLogger(c, c.App.ErrWriter)
			if err != nil {
				return err
			}
			d, err := provider.StartDevnet(c.Context, provider.DevnetConfig{
				Dir: c.String("dir"), Providers: c.Int("providers"), Host: c.String("host"), ChainPort: c.Int("port"),
				EpochDuration: c.Duration("epoch"), SettleInterval: c.Duration("settle-interval"), Logger: log,
			})
			if err != nil {
				return err
			}
			out := c.App.Writer
			g := d.Ledger.Config()
			fmt.Fprintf(out, "warmstore devnet (data in %s)\n", c.String("dir"))
			fmt.Fprintf(out, "chain       %s  (chain id %d, epoch %v, proving period %d epochs, window %d)\n", d.ChainURL(), g.ChainID, c.Duration("epoch"), g.ProvingPeriod, g.ChallengeWindow)
			for i, n := range d.Providers {
				fmt.Fprintf(out, "provider %d  %s  %s\n", i+1, n.URL(), n.Address().Hex())
			}
			fmt.Fprintf(out, "wallet      %s  (demo client wallet, funded from the faucet, deposit made, warm storage approved)\n", d.WalletAddress().Hex())
			fmt.Fprintf(out, "private key 0x%s\n", hex.EncodeToString(crypto.FromECDSA(d.Wallet)))
			wallet, _ := filepath.Abs(filepath.Join(c.String("dir"), "wallet.key"))
			fmt.Fprintf(out, "client env  export WARMSTORE_CHAIN=%s WARMSTORE_WALLET=%s\n", d.ChainURL(), wallet)
			fmt.Fprintln(out, "beam CDN edge: not available yet (sp beam is not built); fetch pieces from a provider's /piece/{cid}")
			fmt.Fprintln(out, "ready; Ctrl-C stops the devnet")
			<-c.Context.Done()
			fmt.Fprintln(out, "shutting down")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return d.Close(ctx)
		},
	}
}
