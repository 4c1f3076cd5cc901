package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/warmstore/warmstore/beam"
	"github.com/warmstore/warmstore/provider"
)

func beamCommand() *cli.Command {
	return &cli.Command{
		Name:  "beam",
		Usage: "run the metered CDN edge: GET|HEAD /{payer}/{pieceCid}, /metrics, /stats, /dashboard",
		Description: "Serves pieces of CDN-enabled data sets from a disk cache, fetching misses from the provider\n" +
			"with the best measured time to first byte and verifying them against their piece CID. Egress is\n" +
			"metered per payer and data set and reported to the chain, which pays the edge and, for misses,\n" +
			"the provider. The edge key (edge.key in --data-dir, created on first start) must be one of the\n" +
			"chain's genesis edges; the address is printed at start.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "chain", EnvVars: env("chain"), Usage: "chain API URL (required), e.g. http://127.0.0.1:7700"},
			&cli.StringFlag{Name: "data-dir", Value: defaultDir("beam"), EnvVars: env("data-dir"), Usage: "edge key, piece cache and usage meter"},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:7800", EnvVars: env("listen"), Usage: "HTTP address"},
			&cli.StringFlag{Name: "cache-size", Value: "10GiB", EnvVars: env("cache-size"), Usage: "piece cache bound"},
			&cli.StringFlag{Name: "domain", EnvVars: env("domain"), Usage: "also serve {payer}.<domain>/{pieceCid}"},
			&cli.DurationFlag{Name: "report-interval", Value: time.Minute, EnvVars: env("report-interval"), Usage: "how often usage is reported to the chain"},
			&cli.DurationFlag{Name: "probe-interval", EnvVars: env("probe-interval"), Usage: "synthetic probe of every provider this often (0: off)"},
			&cli.Float64Flag{Name: "rps", Value: 20, EnvVars: env("rps"), Usage: "requests per second per requester (negative: unlimited)"},
			&cli.IntFlag{Name: "burst", Value: 40, EnvVars: env("burst"), Usage: "request burst per requester"},
			&cli.StringFlag{Name: "egress-rate", Value: "64MiB", EnvVars: env("egress-rate"), Usage: "egress bytes per second per requester (\"unlimited\" for none)"},
			&cli.BoolFlag{Name: "trust-forwarded-for", EnvVars: env("trust-forwarded-for"), Usage: "key requesters by X-Forwarded-For (behind a proxy)"},
			&cli.BoolFlag{Name: "allow-unauthorized", EnvVars: env("allow-unauthorized"), Usage: "serve even if the chain does not list this edge (its usage reports will be refused)"},
			logLevelFlag,
		},
		Action: func(c *cli.Context) error {
			if c.String("chain") == "" {
				return errors.New("--chain is required")
			}
			log, err := newLogger(c, c.App.ErrWriter)
			if err != nil {
				return err
			}
			cacheSize, err := humanize.ParseBytes(c.String("cache-size"))
			if err != nil || cacheSize == 0 {
				return fmt.Errorf("--cache-size %q: want a size like 10GiB", c.String("cache-size"))
			}
			egress := -1.0
			if s := c.String("egress-rate"); s != "unlimited" {
				v, err := humanize.ParseBytes(s)
				if err != nil || v == 0 {
					return fmt.Errorf("--egress-rate %q: want a size per second like 64MiB, or unlimited", s)
				}
				egress = float64(v)
			}
			dir := c.String("data-dir")
			key, _, err := provider.LoadOrCreateKey(filepath.Join(dir, "edge.key"))
			if err != nil {
				return err
			}
			edge, err := beam.New(beam.Config{ChainURL: c.String("chain"), Key: key, Dir: dir, CacheBytes: int64(cacheSize),
				Domain: c.String("domain"), ReportInterval: c.Duration("report-interval"), ProbeInterval: c.Duration("probe-interval"),
				RequestsPerSecond: c.Float64("rps"), RequestBurst: c.Int("burst"), EgressBytesPerSecond: egress,
				TrustForwardedFor: c.Bool("trust-forwarded-for"), Logger: log})
			if err != nil {
				return err
			}
			defer edge.Close()
			if err := edge.CheckAuthorized(c.Context); err != nil {
				if !c.Bool("allow-unauthorized") || !errors.Is(err, beam.ErrNotAuthorized) {
					return fmt.Errorf("%w (add %s to the chain's genesis edges, or pass --allow-unauthorized)", err, edge.Address().Hex())
				}
				log.Warn("serving without authorization: usage reports will be refused", "err", err)
			}
			ln, err := net.Listen("tcp", c.String("listen"))
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(c.Context)
			defer cancel()
			runDone := make(chan error, 1)
			go func() { runDone <- edge.Run(ctx) }()
			srv := &http.Server{Handler: edge.Handler(), ReadHeaderTimeout: 30 * time.Second}
			srvDone := make(chan error, 1)
			go func() { srvDone <- srv.Serve(ln) }()
			fmt.Fprintf(c.App.Writer, "beam edge %s at http://%s (chain %s, cache %s in %s)\n",
				edge.Address().Hex(), ln.Addr(), c.String("chain"), humanize.IBytes(cacheSize), dir)
			fmt.Fprintf(c.App.Writer, "dashboard http://%s/dashboard, stats /stats, metrics /metrics\n", ln.Addr())
			var serveErr error
			select {
			case serveErr = <-srvDone:
			case <-c.Context.Done():
			}
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := srv.Shutdown(sctx); err != nil {
				_ = srv.Close()
			}
			scancel()
			cancel() // Run sends a last usage report before it returns
			runErr := <-runDone
			if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
				return serveErr
			}
			return runErr
		},
	}
}
