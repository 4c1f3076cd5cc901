package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"
)

func providersCommand() *cli.Command {
	return &cli.Command{
		Name:  "providers",
		Usage: "list registered providers with health and latency",
		Flags: connFlags(),
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			ps, err := cl.Providers(c.Context)
			if err != nil {
				return exitFor(err)
			}
			if c.Bool("json") {
				for _, p := range ps {
					if err := printJSON(c.App.Writer, p); err != nil {
						return err
					}
				}
				return nil
			}
			for _, p := range ps {
				health := "up"
				if !p.Healthy {
					health = "DOWN: " + p.Error
				}
				fmt.Fprintf(c.App.Writer, "%-4d %-16s %s %-40s %8s %s\n", p.ID, p.Name, p.Address.Hex(), p.ServiceURL, p.Latency.Round(10*time.Microsecond), health)
			}
			return nil
		},
	}
}
