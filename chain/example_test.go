package chain_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"os"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain"
)

// A ledger in a directory, served over HTTP, funded through the devnet faucet by a client.
func Example() {
	dir, err := os.MkdirTemp("", "chain-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	clock := chain.NewManualClock(10)
	l, err := chain.Open(dir, chain.Options{Clock: clock})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	srv := httptest.NewServer(chain.NewServer(l))
	defer srv.Close()

	ctx := context.Background()
	c := chain.NewClient(srv.URL, nil)
	key, _ := crypto.GenerateKey()
	amount := big.Mul(big.NewInt(5), big.NewInt(1e18))
	if _, err := c.Faucet(ctx, key, chain.FaucetBody{Amount: amount}); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Deposit(ctx, key, chain.DepositBody{Amount: big.NewInt(1e18)}); err != nil {
		log.Fatal(err)
	}
	acc, _ := c.Account(ctx, crypto.PubkeyToAddress(key.PublicKey))
	fmt.Println("wallet", acc.Wallet, "payments", acc.Payments.Funds)

	evs, _ := c.Events(ctx, 0, 10, 0)
	for _, e := range evs {
		fmt.Println(e.Seq, e.Kind, e.Epoch)
	}
	// Output:
	// wallet 4000000000000000000 payments 1000000000000000000
	// 1 Faucet 10
	// 2 Deposit 10
}
