package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/warmstore/warmstore/pdp"
)

func commpCommand() *cli.Command {
	return &cli.Command{
		Name:      "commp",
		Usage:     "compute the piece CID of files",
		ArgsUsage: "FILE...",
		Description: "Prints one line per file: <pieceCIDv2> <file>. With --json, one object per line:\n" +
			`{"pieceCid","pieceCidV1","rawSize","paddedSize","file"}. A file that cannot be read is` + "\n" +
			"reported on stderr and the others are still processed; the exit status is then 1.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per line"},
		},
		Action: runCommP,
	}
}

// commpResult is the --json line of one file.
type commpResult struct {
	PieceCID   string `json:"pieceCid"`
	PieceCIDV1 string `json:"pieceCidV1"`
	RawSize    uint64 `json:"rawSize"`
	PaddedSize uint64 `json:"paddedSize"`
	File       string `json:"file"`
}

func runCommP(c *cli.Context) error {
	files := c.Args().Slice()
	if len(files) == 0 {
		return cli.Exit("commp: no files given (usage: client commp [--json] FILE...)", 2)
	}
	out, errOut := c.App.Writer, c.App.ErrWriter
	enc := json.NewEncoder(out)
	failed := 0
	for _, name := range files {
		p, err := commpFile(name)
		if err != nil {
			fmt.Fprintf(errOut, "client commp: %s: %v\n", name, err)
			failed++
			continue
		}
		if c.Bool("json") {
			err = enc.Encode(commpResult{
				PieceCID:   p.String(),
				PieceCIDV1: p.V1().String(),
				RawSize:    p.RawSize(),
				PaddedSize: p.PaddedSize(),
				File:       name,
			})
		} else {
			_, err = fmt.Fprintf(out, "%s %s\n", p, name)
		}
		if err != nil {
			return fmt.Errorf("commp: writing output: %w", err)
		}
	}
	if failed > 0 {
		return cli.Exit(fmt.Sprintf("commp: %d of %d files failed", failed, len(files)), 1)
	}
	return nil
}

// commpFile streams one file through pdp.CommP.
func commpFile(name string) (pdp.PieceCID, error) {
	f, err := os.Open(name)
	if err != nil {
		return pdp.PieceCID{}, err
	}
	defer f.Close()
	return pdp.CommP(f)
}
