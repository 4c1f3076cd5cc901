package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/warmstore/warmstore/provider"
)

func loadCommand() *cli.Command {
	return &cli.Command{
		Name:  "load",
		Usage: "load-test a /piece URL (or any HTTP file that answers Range requests)",
		Description: "Starts --concurrency workers at once, each sending Range requests of --range-size bytes at random\n" +
			"offsets until --requests have been sent, and reports the success rate (206 with exactly the\n" +
			"requested bytes), time to first byte (p50, p99, max) and throughput.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Required: true, EnvVars: env("load-url"), Usage: "URL to fetch, e.g. http://127.0.0.1:4701/piece/bafkzcib…"},
			&cli.IntFlag{Name: "concurrency", Value: 1000, EnvVars: env("load-concurrency"), Usage: "concurrent workers"},
			&cli.IntFlag{Name: "requests", EnvVars: env("load-requests"), Usage: "total requests (default 4 × concurrency)"},
			&cli.StringFlag{Name: "range-size", Value: "1MiB", EnvVars: env("load-range-size"), Usage: "bytes per Range request (e.g. 64KiB, 1MiB)"},
			&cli.Uint64Flag{Name: "seed", EnvVars: env("load-seed"), Usage: "seed of the random offsets"},
			&cli.BoolFlag{Name: "json", EnvVars: env("load-json"), Usage: "print the result as one JSON object"},
		},
		Action: func(c *cli.Context) error {
			size, err := humanize.ParseBytes(c.String("range-size"))
			if err != nil || size == 0 {
				return fmt.Errorf("--range-size %q: want a positive size such as 1MiB", c.String("range-size"))
			}
			conc := c.Int("concurrency")
			if conc <= 0 {
				return fmt.Errorf("--concurrency %d: must be at least 1", conc)
			}
			reqs := c.Int("requests")
			if reqs <= 0 {
				reqs = 4 * conc
			}
			res, err := provider.LoadTest(c.Context, c.String("url"), conc, provider.LoadOptions{Requests: reqs, RangeSize: int64(size), Seed: c.Uint64("seed")})
			if err != nil {
				return err
			}
			mibps := 0.0
			if res.Duration > 0 {
				mibps = float64(res.Bytes) / res.Duration.Seconds() / (1 << 20)
			}
			out := c.App.Writer
			if c.Bool("json") {
				return json.NewEncoder(out).Encode(map[string]any{
					"url": res.URL, "concurrency": res.Concurrency, "requests": res.Requests, "succeeded": res.Succeeded, "failed": res.Failed,
					"successRate": res.SuccessRate, "bytes": res.Bytes, "seconds": res.Duration.Seconds(),
					"ttfbP50Ms": ms(res.TTFBP50), "ttfbP99Ms": ms(res.TTFBP99), "ttfbMaxMs": ms(res.TTFBMax),
					"throughputMiBps": mibps, "errors": res.Errors,
				})
			}
			fmt.Fprintf(out, "url          %s\n", res.URL)
			fmt.Fprintf(out, "requests     %d (%d concurrent, %s each)\n", res.Requests, res.Concurrency, humanize.IBytes(size))
			fmt.Fprintf(out, "success      %.2f%% (%d ok, %d failed)\n", 100*res.SuccessRate, res.Succeeded, res.Failed)
			fmt.Fprintf(out, "ttfb         p50 %v  p99 %v  max %v\n", res.TTFBP50.Round(time.Microsecond), res.TTFBP99.Round(time.Microsecond), res.TTFBMax.Round(time.Microsecond))
			fmt.Fprintf(out, "throughput   %.1f MiB/s (%s in %v)\n", mibps, humanize.IBytes(uint64(res.Bytes)), res.Duration.Round(time.Millisecond))
			for what, n := range res.Errors {
				fmt.Fprintf(out, "error        %d × %s\n", n, what)
			}
			if res.Failed > 0 {
				return cli.Exit(fmt.Sprintf("%d of %d requests failed", res.Failed, res.Requests), 2)
			}
			return nil
		},
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
