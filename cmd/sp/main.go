// Command sp is the warmstore storage-provider daemon and its companions:
//
//	sp run      a provider (HTTP API, prover, settler); embeds a devnet chain without --chain
//	sp chain    the standalone ledger server
//	sp devnet   a chain, N providers and a beam edge in one process on loopback, plus a funded demo wallet
//	sp beam     the metered CDN edge
//	sp load     a Range-request load test against a /piece URL (or any HTTP file)
//
// Every flag can also be set through the environment variable named in its help
// (WARMSTORE_…). The wiring lives in package provider (StartNode, StartDevnet) so tests start
// the same thing in-process; this package only reads flags and prints.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line until it finishes or ctx ends (SIGINT/SIGTERM) and returns
// the exit status, so tests drive the whole program in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if err := newApp(stdout, stderr).RunContext(ctx, args); err != nil {
		fmt.Fprintf(stderr, "sp: %v\n", err)
		var ec cli.ExitCoder
		if errors.As(err, &ec) && ec.ExitCode() != 0 {
			return ec.ExitCode()
		}
		return 1
	}
	return 0
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "sp",
		Usage:     "warmstore storage provider: run a provider, a chain, a devnet, or a load test",
		Writer:    stdout,
		ErrWriter: stderr,
		// urfave/cli would call os.Exit from inside Run; run decides the status instead.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands:       []*cli.Command{runCommand(), chainCommand(), devnetCommand(), beamCommand(), loadCommand()},
	}
}

// env names the environment variable of a flag: WARMSTORE_ + upper snake case.
func env(flag string) []string {
	return []string{"WARMSTORE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))}
}

func defaultDir(name string) string {
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".warmstore", name)
	}
	return filepath.Join(".warmstore", name)
}

var logLevelFlag = &cli.StringFlag{Name: "log-level", Value: "info", EnvVars: env("log-level"), Usage: "debug, info, warn or error"}

// newLogger writes text logs to w at the --log-level.
func newLogger(c *cli.Context, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", c.String("log-level"), err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})), nil
}
