package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/urfave/cli/v2"

	"github.com/warmstore/warmstore/beam"
	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/provider"
)

func devnetCommand() *cli.Command {
	return &cli.Command{
		Name:  "devnet",
		Usage: "run a chain, N providers and a beam CDN edge in one process on loopback, with a funded demo wallet",
		Description: "Starts a devnet chain (1 s epochs by default; the proving rules are the real ones: 120-epoch\n" +
			"periods, 20-epoch windows) and --providers providers, each registered on chain, proving and\n" +
			"settling, and prints their URLs and a demo wallet (private key and address) funded from the faucet,\n" +
			"with funds deposited and the warm-storage service approved, and a beam CDN edge (authorized at\n" +
			"genesis) serving /{payer}/{pieceCid} for data sets uploaded with --cdn. Reusing --dir resumes the\n" +
			"same devnet.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: defaultDir("devnet"), EnvVars: env("devnet-dir"), Usage: "devnet data directory"},
			&cli.IntFlag{Name: "providers", Value: 2, EnvVars: env("providers"), Usage: "number of providers"},
			&cli.StringFlag{Name: "host", Value: "127.0.0.1", EnvVars: env("devnet-host"), Usage: "address to listen on"},
			&cli.IntFlag{Name: "port", Value: 7700, EnvVars: env("devnet-port"), Usage: "chain port; provider i listens on port+i (0: random ports)"},
			&cli.DurationFlag{Name: "epoch", Value: time.Second, EnvVars: env("epoch"), Usage: "epoch duration"},
			&cli.IntFlag{Name: "beam-port", Value: 7800, EnvVars: env("beam-port"), Usage: "beam CDN edge port (0: a random port)"},
			&cli.DurationFlag{Name: "settle-interval", Value: time.Minute, EnvVars: env("settle-interval"), Usage: "how often providers settle their rails"},
			logLevelFlag,
		},
		Action: func(c *cli.Context) error {
			log, err := newLogger(c, c.App.ErrWriter)
			if err != nil {
				return err
			}
			// The edge's key must exist before the chain's genesis, which lists the edges allowed
			// to report usage.
			dir := c.String("dir")
			edgeKey, _, err := provider.LoadOrCreateKey(filepath.Join(dir, "beam", "edge.key"))
			if err != nil {
				return err
			}
			genesis := chain.DefaultConfig()
			genesis.Edges = []common.Address{crypto.PubkeyToAddress(edgeKey.PublicKey)}
			d, err := provider.StartDevnet(c.Context, provider.DevnetConfig{
				Dir: dir, Providers: c.Int("providers"), Host: c.String("host"), ChainPort: c.Int("port"),
				EpochDuration: c.Duration("epoch"), SettleInterval: c.Duration("settle-interval"), Logger: log,
				ChainConfig: &genesis,
			})
			if err != nil {
				return err
			}
			beamPort := c.Int("beam-port")
			if c.Int("port") == 0 {
				beamPort = 0
			}
			edge, err := beam.Start(c.Context, net.JoinHostPort(c.String("host"), strconv.Itoa(beamPort)), beam.Config{
				ChainURL: d.ChainURL(), Key: edgeKey, Dir: filepath.Join(dir, "beam"),
				ReportInterval: 10 * time.Second, ProbeInterval: 30 * time.Second, Logger: log,
			})
			if err != nil {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_ = d.Close(ctx)
				if errors.Is(err, beam.ErrNotAuthorized) {
					return fmt.Errorf("%w: this devnet directory was created before its beam edge; start a new one with another --dir", err)
				}
				return fmt.Errorf("beam edge: %w", err)
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
			fmt.Fprintf(out, "beam        %s  %s  (CDN edge: /{payer}/{pieceCid}, /dashboard)\n", edge.URL(), crypto.PubkeyToAddress(edgeKey.PublicKey).Hex())
			fmt.Fprintln(out, "ready; Ctrl-C stops the devnet")
			<-c.Context.Done()
			fmt.Fprintln(out, "shutting down")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// The edge goes first so its last usage report still reaches the chain.
			return errors.Join(edge.Close(ctx), d.Close(ctx))
		},
	}
}
