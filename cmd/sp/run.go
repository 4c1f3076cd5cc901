package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/warmstore/warmstore/provider"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "run a storage provider",
		Description: "Serves the PDP HTTP API (uploads, data sets, /piece retrieval, /metrics), proves every data set\n" +
			"of the provider each period and settles its payment rails. The provider key is created in the data\n" +
			"directory on first run (provider.key, mode 0600) and reused; the provider registers itself on chain.\n" +
			"Without --chain a devnet chain is embedded in the data directory and served on --chain-listen.\n" +
			"SIGINT/SIGTERM stop it gracefully: in-flight uploads get --shutdown-timeout to finish.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: defaultDir("sp"), EnvVars: env("data-dir"), Usage: "directory for the key, the piece store and an embedded chain"},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:7701", EnvVars: env("listen"), Usage: "HTTP API address"},
			&cli.StringFlag{Name: "service-url", EnvVars: env("service-url"), Usage: "public base URL registered on chain (default http://<listen address>)"},
			&cli.StringFlag{Name: "name", Value: "warmstore-sp", EnvVars: env("name"), Usage: "provider name registered on chain"},
			&cli.StringFlag{Name: "chain", EnvVars: env("chain"), Usage: "chain API URL; empty embeds a devnet chain"},
			&cli.StringFlag{Name: "chain-listen", Value: "127.0.0.1:7700", EnvVars: env("chain-listen"), Usage: "embedded chain's HTTP address"},
			&cli.DurationFlag{Name: "epoch", Value: time.Second, EnvVars: env("epoch"), Usage: "embedded chain's epoch duration (keep it across restarts: epochs count from the chain's creation)"},
			&cli.IntFlag{Name: "prove-parallel", Value: 4, EnvVars: env("prove-parallel"), Usage: "data sets proven at once"},
			&cli.DurationFlag{Name: "prove-poll", Value: time.Second, EnvVars: env("prove-poll"), Usage: "how often the prover reads the chain head"},
			&cli.DurationFlag{Name: "settle-interval", Value: 10 * time.Minute, EnvVars: env("settle-interval"), Usage: "how often rails are settled to the last closed deadline"},
			&cli.IntFlag{Name: "max-piece-reads", Value: provider.DefaultMaxPieceReads, EnvVars: env("max-piece-reads"), Usage: "concurrent /piece requests served; more get 429"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: 30 * time.Second, EnvVars: env("shutdown-timeout"), Usage: "how long shutdown waits for in-flight uploads"},
			logLevelFlag,
		},
		Action: func(c *cli.Context) error {
			log, err := newLogger(c, c.App.ErrWriter)
			if err != nil {
				return err
			}
			n, err := provider.StartNode(c.Context, provider.NodeConfig{
				DataDir: c.String("data-dir"), Listen: c.String("listen"), ServiceURL: c.String("service-url"), Name: c.String("name"),
				ChainURL: c.String("chain"), ChainListen: c.String("chain-listen"), EpochDuration: c.Duration("epoch"),
				ProveParallel: c.Int("prove-parallel"), ProvePoll: c.Duration("prove-poll"), SettleInterval: c.Duration("settle-interval"),
				ShutdownTimeout: c.Duration("shutdown-timeout"), Logger: log,
				Tune: func(cfg *provider.Config) { cfg.MaxPieceReads = c.Int("max-piece-reads") },
			})
			if err != nil {
				return err
			}
			out := c.App.Writer
			fmt.Fprintf(out, "provider %s\n", n.Address().Hex())
			fmt.Fprintf(out, "api       %s\n", n.URL())
			fmt.Fprintf(out, "metrics   %s/metrics\n", n.URL())
			if n.Ledger != nil {
				fmt.Fprintf(out, "chain     %s (embedded, data in %s/chain)\n", n.ChainURL(), c.String("data-dir"))
			} else {
				fmt.Fprintf(out, "chain     %s\n", n.ChainURL())
			}
			<-c.Context.Done()
			fmt.Fprintln(out, "shutting down")
			ctx, cancel := context.WithTimeout(context.Background(), c.Duration("shutdown-timeout")+10*time.Second)
			defer cancel()
			return n.Close(ctx)
		},
	}
}
