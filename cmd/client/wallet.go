package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/urfave/cli/v2"
)

func walletCommand() *cli.Command {
	return &cli.Command{
		Name:  "wallet",
		Usage: "create or show the payer key",
		Subcommands: []*cli.Command{
			{
				Name:  "new",
				Usage: "create a new key in the wallet file (refuses to overwrite without --force)",
				Flags: []cli.Flag{walletFlag(), jsonFlag(), &cli.BoolFlag{Name: "force", Usage: "overwrite an existing wallet"}},
				Action: func(c *cli.Context) error {
					path := c.String("wallet")
					if _, err := os.Stat(path); err == nil && !c.Bool("force") {
						return cli.Exit(fmt.Sprintf("wallet %s exists; pass --force to replace it (its funds become unreachable)", path), exitUsage)
					}
					key, err := crypto.GenerateKey()
					if err != nil {
						return err
					}
					if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
						return fmt.Errorf("create wallet directory: %w", err)
					}
					if err := os.WriteFile(path, []byte(hex.EncodeToString(crypto.FromECDSA(key))+"\n"), 0o600); err != nil {
						return fmt.Errorf("write wallet: %w", err)
					}
					return printAddress(c, crypto.PubkeyToAddress(key.PublicKey).Hex(), path)
				},
			},
			{
				Name:  "address",
				Usage: "print the wallet's address",
				Flags: []cli.Flag{walletFlag(), jsonFlag()},
				Action: func(c *cli.Context) error {
					key, err := loadKey(c.String("wallet"))
					if err != nil {
						var ec cli.ExitCoder
						if errors.As(err, &ec) {
							return err
						}
						return cli.Exit(err.Error(), exitError)
					}
					return printAddress(c, crypto.PubkeyToAddress(key.PublicKey).Hex(), c.String("wallet"))
				},
			},
		},
	}
}

func printAddress(c *cli.Context, addr, path string) error {
	if c.Bool("json") {
		return printJSON(c.App.Writer, map[string]string{"address": addr, "wallet": path})
	}
	_, err := fmt.Fprintln(c.App.Writer, addr)
	return err
}
