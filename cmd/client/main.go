// Command client is the warmstore client: it computes piece CIDs and talks to providers, the
// chain and the beam edge. Every command prints one line per result, or one JSON object per
// line with --json.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit status, so tests can drive the
// whole program in-process.
func run(args []string, stdout, stderr io.Writer) int {
	if err := newApp(stdout, stderr).Run(args); err != nil {
		fmt.Fprintf(stderr, "client: %v\n", err)
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
		Name:      "client",
		Usage:     "warmstore client: piece CIDs, uploads, downloads",
		Writer:    stdout,
		ErrWriter: stderr,
		// urfave/cli would call os.Exit from inside Run; run decides the status instead.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			commpCommand(),
			walletCommand(),
			payCommand(),
			providersCommand(),
			uploadCommand(),
			downloadCommand(),
			addCommand(),
			getCommand(),
			datasetsCommand(),
			datasetCommand(),
			rmCommand(),
			terminateCommand(),
		},
	}
}
