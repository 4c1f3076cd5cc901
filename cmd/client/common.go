package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/urfave/cli/v2"

	"github.com/warmstore/warmstore/sdk"
)

// Exit statuses scripts can rely on.
const (
	exitError        = 1 // anything not listed below
	exitUsage        = 2 // bad flags or arguments
	exitNoProvider   = 3 // no provider reachable
	exitFunds        = 4 // insufficient funds or missing approval
	exitVerification = 5 // no copy delivered verified bytes
	exitPartial      = 6 // upload stored fewer copies than asked
	exitNotFound     = 7 // piece, data set or wallet not found
)

const defaultChainURL = "http://127.0.0.1:7700"

func defaultWalletPath() string {
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".warmstore", "wallet.key")
	}
	return "wallet.key"
}

// connFlags are the flags of every command that talks to the network.
func connFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "chain", Value: defaultChainURL, EnvVars: []string{"WARMSTORE_CHAIN"}, Usage: "chain API base URL"},
		&cli.StringFlag{Name: "beam", EnvVars: []string{"WARMSTORE_BEAM"}, Usage: "beam edge base URL (optional download source)"},
		walletFlag(),
		jsonFlag(),
	}
}

func walletFlag() cli.Flag {
	return &cli.StringFlag{Name: "wallet", Value: defaultWalletPath(), EnvVars: []string{"WARMSTORE_WALLET"}, Usage: "file holding the hex secp256k1 key"}
}

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print JSON instead of text"}
}

func loadKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, cli.Exit(fmt.Sprintf("no wallet at %s: create one with 'client wallet new' or pass --wallet", path), exitNotFound)
		}
		return nil, fmt.Errorf("read wallet %s: %w", path, err)
	}
	key, err := crypto.HexToECDSA(strings.TrimPrefix(strings.TrimSpace(string(b)), "0x"))
	if err != nil {
		return nil, fmt.Errorf("wallet %s does not hold a hex secp256k1 key: %w", path, err)
	}
	return key, nil
}

// newClient connects the SDK from the command's flags.
func newClient(c *cli.Context) (*sdk.Client, error) {
	key, err := loadKey(c.String("wallet"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
	defer cancel()
	cl, err := sdk.New(ctx, sdk.Config{ChainURL: c.String("chain"), BeamURL: c.String("beam"), Key: key})
	if err != nil {
		return nil, cli.Exit(err.Error(), exitError)
	}
	return cl, nil
}

// printJSON writes v as one JSON line.
func printJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// exitFor maps an SDK error to an exit status and a message that says what to do.
func exitFor(err error) error {
	if err == nil {
		return nil
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return err
	}
	var sfe *sdk.InsufficientFundsError
	switch {
	case errors.As(err, &sfe):
		return cli.Exit(err.Error(), exitFunds)
	case errors.Is(err, sdk.ErrNotApproved):
		return cli.Exit(err.Error(), exitFunds)
	case errors.Is(err, sdk.ErrNoProvider):
		return cli.Exit(err.Error()+"\n(start providers with 'sp run' or 'sp devnet', or check --chain)", exitNoProvider)
	case errors.Is(err, sdk.ErrNoCopy), errors.Is(err, sdk.ErrVerification):
		return cli.Exit(err.Error(), exitVerification)
	case errors.Is(err, sdk.ErrNotFound):
		return cli.Exit(err.Error(), exitNotFound)
	case errors.Is(err, sdk.ErrBadRange):
		return cli.Exit(err.Error(), exitUsage)
	}
	return cli.Exit(err.Error(), exitError)
}

// isTerminal reports whether w is a character device (a terminal), where progress bars go.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws a one-line bar on a terminal, at most every 100 ms.
type progressBar struct {
	w     io.Writer
	label string
	total int64
	start time.Time
	last  time.Time
}

func newProgressBar(w io.Writer, label string, total int64) *progressBar {
	return &progressBar{w: w, label: label, total: total, start: time.Now()}
}

func (p *progressBar) set(n int64) {
	if p == nil {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && n != p.total {
		return
	}
	p.last = now
	rate := float64(n) / max(now.Sub(p.start).Seconds(), 1e-3) / (1 << 20)
	if p.total > 0 {
		const width = 30
		done := int(int64(width) * min(n, p.total) / p.total)
		fmt.Fprintf(p.w, "\r%s [%s%s] %5.1f%% %.1f MiB/s ", p.label, strings.Repeat("=", done), strings.Repeat(" ", width-done), 100*float64(n)/float64(p.total), rate)
	} else {
		fmt.Fprintf(p.w, "\r%s %d bytes %.1f MiB/s ", p.label, n, rate)
	}
}

func (p *progressBar) done() {
	if p != nil {
		fmt.Fprintln(p.w)
	}
}
