package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/sdk"
)

func downloadCommand() *cli.Command {
	return &cli.Command{
		Name:      "download",
		Usage:     "fetch a piece or a byte range of it, verifying every byte",
		ArgsUsage: "PIECE_CID",
		Description: "Writes to -o FILE or stdout. --range A-B fetches bytes A..B inclusive (as in HTTP\n" +
			"Range), verified with Merkle proofs. Copies that send wrong bytes, truncate or stall\n" +
			"are skipped. Exit status 5 when no copy could be verified.",
		Flags: append(connFlags(),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output file (default stdout)"},
			&cli.StringFlag{Name: "range", Usage: "byte range A-B (inclusive), A- (to the end) or -N (last N bytes)"},
			&cli.StringSliceFlag{Name: "source", Usage: "provider base URL to try first (repeatable)"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("download: give one piece CID (usage: client download CID [-o FILE] [--range A-B])", exitUsage)
			}
			piece, err := pdp.ParsePieceCID(c.Args().First())
			if err != nil {
				return cli.Exit(fmt.Sprintf("download: %v", err), exitUsage)
			}
			start, end := uint64(0), piece.RawSize()
			if r := c.String("range"); r != "" {
				if start, end, err = parseRange(r, piece.RawSize()); err != nil {
					return cli.Exit(fmt.Sprintf("download: --range %s: %v", r, err), exitUsage)
				}
			}
			if c.String("output") == "" && c.Bool("json") {
				return cli.Exit("download: --json needs -o FILE (stdout carries the JSON report)", exitUsage)
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			var w io.Writer = c.App.Writer
			var f *os.File
			if out := c.String("output"); out != "" {
				if f, err = os.Create(out); err != nil {
					return cli.Exit(fmt.Sprintf("download: %v", err), exitError)
				}
				defer f.Close()
				w = f
			}
			var bar *progressBar
			if f != nil && isTerminal(os.Stdout) && !c.Bool("json") {
				bar = newProgressBar(c.App.ErrWriter, piece.String()[:16]+"…", int64(end-start))
			}
			res, err := cl.DownloadRange(c.Context, piece, start, end, w, sdk.DownloadOptions{
				Sources: c.StringSlice("source"),
				Progress: func(e sdk.DownloadEvent) {
					if e.Kind == sdk.EventVerified {
						bar.set(int64(e.Total))
					} else if e.Kind == sdk.EventSourceFailed && bar != nil {
						fmt.Fprintf(c.App.ErrWriter, "\nskipping %s: %v\n", e.Source, e.Err)
					}
				},
			})
			bar.done()
			if err != nil {
				if f != nil {
					f.Close()
					os.Remove(f.Name())
				}
				return exitFor(err)
			}
			if f != nil {
				if err := f.Close(); err != nil {
					return cli.Exit(fmt.Sprintf("download: %v", err), exitError)
				}
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, res)
			}
			if f != nil {
				fmt.Fprintf(c.App.Writer, "%s: %d verified bytes from %s\n", f.Name(), res.Bytes, strings.Join(res.Sources, ", "))
			}
			return nil
		},
	}
}

// parseRange parses A-B (inclusive), A- and -N into a half-open [start, end).
func parseRange(s string, size uint64) (uint64, uint64, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("want A-B, A- or -N")
	}
	switch {
	case a == "" && b == "":
		return 0, 0, fmt.Errorf("want A-B, A- or -N")
	case a == "":
		n, err := strconv.ParseUint(b, 10, 64)
		if err != nil || n == 0 || n > size {
			return 0, 0, fmt.Errorf("suffix length must be 1..%d", size)
		}
		return size - n, size, nil
	}
	start, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("start %q is not a byte offset", a)
	}
	end := size
	if b != "" {
		last, err := strconv.ParseUint(b, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("end %q is not a byte offset", b)
		}
		end = last + 1
	}
	if start >= end || end > size {
		return 0, 0, fmt.Errorf("outside the piece's %d bytes or empty", size)
	}
	return start, end, nil
}
