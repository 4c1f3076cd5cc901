package main

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/urfave/cli/v2"

	"github.com/warmstore/warmstore/ipfs"
	"github.com/warmstore/warmstore/sdk"
)

func getCommand() *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "fetch IPFS content by CID from a provider's trustless gateway, verifying every block",
		ArgsUsage: "CID",
		Description: "Asks providers (or --gateway) for the DAG under CID as a CAR, checks every block\n" +
			"against its CID and that the DAG is complete, then writes the file or directory to\n" +
			"-o (default: the CID). Exit status 5 when no provider sent verifiable content, 7 when\n" +
			"none holds it.",
		Flags: append(connFlags(),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "where to write the file or directory (must not exist)"},
			&cli.StringFlag{Name: "gateway", Usage: "ask only this trustless gateway (base URL)"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("get: give exactly one CID (usage: client get [-o PATH] CID)", exitUsage)
			}
			root, err := cid.Decode(c.Args().First())
			if err != nil {
				return cli.Exit(fmt.Sprintf("get: %q is not a CID: %v", c.Args().First(), err), exitUsage)
			}
			out := c.String("output")
			if out == "" {
				out = root.String()
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			res, err := cl.Get(c.Context, root, out, sdk.GetOptions{Gateway: c.String("gateway")})
			if errors.Is(err, ipfs.ErrBlockMismatch) || errors.Is(err, ipfs.ErrIncomplete) {
				return cli.Exit(fmt.Sprintf("get: %v", err), exitVerification)
			}
			if errors.Is(err, ipfs.ErrNotFound) {
				return cli.Exit(fmt.Sprintf("get: %v", err), exitNotFound)
			}
			if err != nil {
				return exitFor(err)
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, struct {
					Root    string `json:"rootCid"`
					Output  string `json:"output"`
					Blocks  int    `json:"blocks"`
					Bytes   int64  `json:"bytes"`
					Gateway string `json:"gateway"`
				}{root.String(), out, res.Blocks, res.Bytes, res.Gateway})
			}
			fmt.Fprintf(c.App.Writer, "%s %s %d blocks verified from %s\n", root, out, res.Blocks, res.Gateway)
			return nil
		},
	}
}
