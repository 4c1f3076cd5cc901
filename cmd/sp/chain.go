package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/ethereum/go-ethereum/common"
	"net"
	"net/http"
	"time"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/urfave/cli/v2"

	"github.com/warmstore/warmstore/chain"
)

func chainCommand() *cli.Command {
	return &cli.Command{
		Name:  "chain",
		Usage: "run the standalone ledger server",
		Description: "Opens (or creates) a ledger in --data-dir and serves its JSON API. The genesis flags (chain id,\n" +
			"proving period, window, finality, faucet) only apply when the ledger is created; an existing\n" +
			"ledger keeps its genesis. The epoch clock starts at the ledger's creation time.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: defaultDir("chain"), EnvVars: env("data-dir"), Usage: "ledger directory"},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:7700", EnvVars: env("listen"), Usage: "HTTP address"},
			&cli.DurationFlag{Name: "epoch", Value: chain.DefaultEpochDuration, EnvVars: env("epoch"), Usage: "epoch duration, 1s on a devnet (keep it across restarts: epochs count from the ledger's creation)"},
			&cli.Uint64Flag{Name: "chain-id", Value: chain.DefaultConfig().ChainID, EnvVars: env("chain-id"), Usage: "chain id (genesis)"},
			&cli.Int64Flag{Name: "proving-period", Value: int64(chain.DefaultConfig().ProvingPeriod), EnvVars: env("proving-period"), Usage: "proving period in epochs (genesis)"},
			&cli.Int64Flag{Name: "challenge-window", Value: int64(chain.DefaultConfig().ChallengeWindow), EnvVars: env("challenge-window"), Usage: "challenge window in epochs (genesis)"},
			&cli.Int64Flag{Name: "challenge-finality", Value: int64(chain.DefaultConfig().ChallengeFinality), EnvVars: env("challenge-finality"), Usage: "minimum epochs between scheduling and a challenge (genesis)"},
			&cli.BoolFlag{Name: "no-faucet", EnvVars: env("no-faucet"), Usage: "disable the devnet faucet (genesis)"},
			&cli.StringSliceFlag{Name: "edge", EnvVars: env("edge"), Usage: "address of a beam CDN edge allowed to report usage (genesis; repeatable)"},
			logLevelFlag,
		},
		Action: func(c *cli.Context) error {
			cfg := chain.DefaultConfig()
			cfg.ChainID = c.Uint64("chain-id")
			cfg.ProvingPeriod = abi.ChainEpoch(c.Int64("proving-period"))
			cfg.ChallengeWindow = abi.ChainEpoch(c.Int64("challenge-window"))
			cfg.ChallengeFinality = abi.ChainEpoch(c.Int64("challenge-finality"))
			cfg.Faucet = !c.Bool("no-faucet")
			for _, e := range c.StringSlice("edge") {
				if !common.IsHexAddress(e) {
					return fmt.Errorf("--edge %q is not an address (0x followed by 40 hex digits)", e)
				}
				cfg.Edges = append(cfg.Edges, common.HexToAddress(e))
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if c.Duration("epoch") <= 0 {
				return fmt.Errorf("--epoch %v must be positive", c.Duration("epoch"))
			}
			// The epoch duration is part of the genesis: pass it only when the operator set it,
			// so reopening an existing ledger uses the duration it was created with.
			opts := chain.Options{Config: &cfg}
			if c.IsSet("epoch") {
				opts.EpochDuration = c.Duration("epoch")
			}
			l, err := chain.Open(c.String("data-dir"), opts)
			if err != nil {
				return err
			}
			defer l.Close()
			ln, err := net.Listen("tcp", c.String("listen"))
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: chain.NewServer(l), ReadHeaderTimeout: 30 * time.Second}
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			g := l.Config()
			fmt.Fprintf(c.App.Writer, "chain %d at http://%s (data in %s)\n", g.ChainID, ln.Addr(), c.String("data-dir"))
			fmt.Fprintf(c.App.Writer, "epoch %v, proving period %d epochs, challenge window %d, finality %d, faucet %v, head epoch %d\n",
				l.EpochDuration(), g.ProvingPeriod, g.ChallengeWindow, g.ChallengeFinality, g.Faucet, l.Epoch())
			select {
			case err := <-done:
				return err
			case <-c.Context.Done():
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				// Event long-polls still open after the grace period are cut.
				if !errors.Is(err, context.DeadlineExceeded) {
					return err
				}
				_ = srv.Close()
			}
			return nil
		},
	}
}
