package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/warmstore/warmstore/sdk"
)

func addCommand() *cli.Command {
	return &cli.Command{
		Name:      "add",
		Usage:     "store a file or directory as IPFS content (a UnixFS DAG in a CAR piece)",
		ArgsUsage: "PATH",
		Description: "Builds a UnixFS DAG of PATH (CIDv1, raw leaves, 256 KiB chunks), streams it as a\n" +
			"CARv1 piece into data sets marked withIPFSIndexing, and prints the IPFS root CID and\n" +
			"the piece CID (<rootCid> <pieceCid> <copies>/<requested>), or JSON with --json.\n" +
			"The providers then serve it at /ipfs/<rootCid>; fetch it with 'client get'.",
		Flags: append(connFlags(),
			&cli.IntFlag{Name: "copies", Value: sdk.DefaultCopies, Usage: "copies on distinct providers"},
			&cli.BoolFlag{Name: "cdn", Usage: "serve the piece through the beam edge (data sets with withCDN)"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("add: give exactly one PATH (usage: client add [--copies N] PATH)", exitUsage)
			}
			if c.Int("copies") < 1 {
				return cli.Exit("add: --copies must be at least 1", exitUsage)
			}
			path := c.Args().First()
			if _, err := os.Stat(path); err != nil {
				return cli.Exit(fmt.Sprintf("add: %v", err), exitNotFound)
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			res, err := cl.AddPath(c.Context, path, sdk.UploadOptions{Copies: c.Int("copies"), WithCDN: c.Bool("cdn")})
			if err != nil {
				return exitFor(err)
			}
			up := res.Upload
			if c.Bool("json") {
				if err := printJSON(c.App.Writer, struct {
					Path string `json:"path"`
					Root string `json:"rootCid"`
					*sdk.UploadResult
				}{path, res.Root.String(), up}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(c.App.Writer, "%s %s %d/%d\n", res.Root, up.Piece, len(up.Copies), up.RequestedCopies)
				for _, cp := range up.Copies {
					fmt.Fprintf(c.App.Writer, "  %-9s %s data set %d piece %d\n", cp.Role, cp.ProviderName, cp.DataSetID, cp.PieceID)
				}
				for _, f := range up.Failed {
					fmt.Fprintf(c.App.Writer, "  failed    %s %s: %s\n", f.Provider.Hex(), f.Stage, f.Error)
				}
			}
			if !up.Complete {
				return cli.Exit("add: fewer copies than asked (see the failures above)", exitPartial)
			}
			return nil
		},
	}
}
