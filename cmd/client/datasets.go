package main

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/warmstore/warmstore/sdk"
)

func datasetsCommand() *cli.Command {
	return &cli.Command{
		Name:  "datasets",
		Usage: "list the wallet's data sets",
		Flags: connFlags(),
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			sets, err := cl.DataSets(c.Context)
			if err != nil {
				return exitFor(err)
			}
			for _, ds := range sets {
				if c.Bool("json") {
					if err := printJSON(c.App.Writer, ds); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(c.App.Writer, "%-4d %-16s pieces %-4d leaves %-10d faults %-3d rail %-4d %s\n", ds.ID, ds.ProviderName, ds.PieceCount, ds.LeafCount, ds.Faults, ds.PDPRail, ds.Proving)
			}
			return nil
		},
	}
}

func parseID(c *cli.Context, what string, i int) (uint64, error) {
	id, err := strconv.ParseUint(c.Args().Get(i), 10, 64)
	if err != nil {
		return 0, cli.Exit(fmt.Sprintf("%s %q is not a number", what, c.Args().Get(i)), exitUsage)
	}
	return id, nil
}

// dataSetAndClient reads the one data set id a command takes and connects to the chain.
func dataSetAndClient(c *cli.Context, command string) (uint64, *sdk.Client, error) {
	if c.NArg() != 1 {
		return 0, nil, cli.Exit(command+": give one data set id", exitUsage)
	}
	id, err := parseID(c, "data set id", 0)
	if err != nil {
		return 0, nil, err
	}
	cl, err := newClient(c)
	if err != nil {
		return 0, nil, err
	}
	return id, cl, nil
}

func datasetCommand() *cli.Command {
	return &cli.Command{
		Name:  "dataset",
		Usage: "inspect one data set",
		Subcommands: []*cli.Command{{
			Name: "show", Usage: "pieces, proving status, faults and rail", ArgsUsage: "ID",
			Flags: connFlags(),
			Action: func(c *cli.Context) error {
				id, cl, err := dataSetAndClient(c, "dataset show")
				if err != nil {
					return err
				}
				ds, err := cl.DataSet(c.Context, id)
				if err != nil {
					return exitFor(err)
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, ds)
				}
				w := c.App.Writer
				fmt.Fprintf(w, "data set %d on %s (%s, %s)\n", ds.ID, ds.ProviderName, ds.Provider.Hex(), ds.ServiceURL)
				fmt.Fprintf(w, "proving   %s; last proven epoch %d; faults %d\n", ds.Proving, ds.LastProvenEpoch, ds.Faults)
				if ds.Rail != nil {
					fmt.Fprintf(w, "rail      %d: rate %s USDFC/epoch, settled to %d%s\n", ds.Rail.ID, sdk.FormatUSDFC(ds.Rail.PaymentRate), ds.Rail.SettledUpTo, terminated(ds.Rail.Terminated, ds.Rail.EndEpoch))
				}
				for _, p := range ds.Pieces {
					state := ""
					if p.Removed {
						state = " (removed)"
					}
					fmt.Fprintf(w, "piece %-4d %s %d bytes added at %d%s\n", p.ID, p.CID, p.CID.RawSize(), p.Added, state)
				}
				return nil
			},
		}},
	}
}

func rmCommand() *cli.Command {
	return &cli.Command{
		Name: "rm", Usage: "schedule removal of pieces from a data set", ArgsUsage: "DATASET_ID PIECE_ID...",
		Flags: connFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return cli.Exit("rm: give a data set id and at least one piece id", exitUsage)
			}
			id, err := parseID(c, "data set id", 0)
			if err != nil {
				return err
			}
			var pieces []uint64
			for i := 1; i < c.NArg(); i++ {
				p, err := parseID(c, "piece id", i)
				if err != nil {
					return err
				}
				pieces = append(pieces, p)
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			answer, err := cl.RemovePieces(c.Context, id, pieces)
			if err != nil {
				return exitFor(err)
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, map[string]any{"dataSetId": id, "pieceIds": pieces, "provider": answer})
			}
			_, err = fmt.Fprintf(c.App.Writer, "removal of %d piece(s) from data set %d scheduled; they leave at the next proving period\n", len(pieces), id)
			return err
		},
	}
}

func terminateCommand() *cli.Command {
	return &cli.Command{
		Name: "terminate", Usage: "end the storage service of a data set", ArgsUsage: "DATASET_ID",
		Flags: connFlags(),
		Action: func(c *cli.Context) error {
			id, cl, err := dataSetAndClient(c, "terminate")
			if err != nil {
				return err
			}
			r, end, err := cl.Terminate(c.Context, id)
			if err != nil {
				return exitFor(err)
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, map[string]any{"dataSetId": id, "endEpoch": end, "receipt": r})
			}
			_, err = fmt.Fprintf(c.App.Writer, "data set %d terminated; service (and payment) ends at epoch %d\n", id, end)
			return err
		},
	}
}
