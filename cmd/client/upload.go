package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/warmstore/warmstore/sdk"
)

func uploadCommand() *cli.Command {
	return &cli.Command{
		Name:      "upload",
		Usage:     "store files as pieces, two copies by default",
		ArgsUsage: "FILE...",
		Description: "Each file is read once while its piece CID is computed and streamed to the first\n" +
			"provider; further copies are pulled provider-to-provider. Prints one line per file\n" +
			"(<pieceCid> <file> <copies>/<requested>), or one JSON object per file with --json.\n" +
			"Exit status 6 when some file got fewer copies than asked, 4 for missing funds.",
		Flags: append(connFlags(),
			&cli.IntFlag{Name: "copies", Value: sdk.DefaultCopies, Usage: "copies on distinct providers"},
			&cli.BoolFlag{Name: "cdn", Usage: "serve through the beam edge (data sets with withCDN)"},
		),
		Action: func(c *cli.Context) error {
			files := c.Args().Slice()
			if len(files) == 0 {
				return cli.Exit("upload: no files given (usage: client upload [--copies N] [--cdn] FILE...)", exitUsage)
			}
			if c.Int("copies") < 1 {
				return cli.Exit("upload: --copies must be at least 1", exitUsage)
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			partial := false
			for _, name := range files {
				f, err := os.Open(name)
				if err != nil {
					return cli.Exit(fmt.Sprintf("upload: %v", err), exitNotFound)
				}
				st, err := f.Stat()
				if err != nil {
					f.Close()
					return err
				}
				var bar *progressBar
				if isTerminal(os.Stdout) && !c.Bool("json") {
					bar = newProgressBar(c.App.ErrWriter, name, st.Size())
				}
				res, err := cl.Upload(c.Context, f, sdk.UploadOptions{
					Copies: c.Int("copies"), WithCDN: c.Bool("cdn"), Size: st.Size(),
					Progress: func(e sdk.UploadEvent) {
						if e.Kind == sdk.EventBytes && e.Role == "primary" {
							bar.set(e.Bytes)
						}
					},
				})
				f.Close()
				bar.done()
				if err != nil {
					return exitFor(fmt.Errorf("upload %s: %w", name, err))
				}
				partial = partial || !res.Complete
				if c.Bool("json") {
					if err := printJSON(c.App.Writer, struct {
						File string `json:"file"`
						*sdk.UploadResult
					}{name, res}); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(c.App.Writer, "%s %s %d/%d\n", res.Piece, name, len(res.Copies), res.RequestedCopies)
				for _, cp := range res.Copies {
					how := "uploaded"
					if cp.Pulled {
						how = "pulled"
					}
					fmt.Fprintf(c.App.Writer, "  %-9s %s data set %d piece %d (%s) %s\n", cp.Role, cp.ProviderName, cp.DataSetID, cp.PieceID, how, cp.RetrievalURL)
				}
				for _, f := range res.Failed {
					fmt.Fprintf(c.App.Writer, "  failed    %s %s: %s\n", f.Provider.Hex(), f.Stage, f.Error)
				}
			}
			if partial {
				return cli.Exit("upload: some files have fewer copies than asked (see the failures above)", exitPartial)
			}
			return nil
		},
	}
}
