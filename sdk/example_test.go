package sdk_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/provider"
	"github.com/warmstore/warmstore/sdk"
	"github.com/warmstore/warmstore/storage"
)

// Store a payload on two providers of a throwaway chain, then read back a verified byte range.
func Example() {
	dir, _ := os.MkdirTemp("", "sdk-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// A chain and two providers on loopback (what 'sp devnet' runs).
	ledger, err := chain.Open(filepath.Join(dir, "chain"), chain.Options{Clock: chain.NewManualClock(10)})
	if err != nil {
		log.Fatal(err)
	}
	defer ledger.Close()
	chainSrv := httptest.NewServer(chain.NewServer(ledger))
	defer chainSrv.Close()
	for i := range 2 {
		store, err := storage.Open(filepath.Join(dir, fmt.Sprint("sp", i)), storage.Options{})
		if err != nil {
			log.Fatal(err)
		}
		defer store.Close()
		key, _ := crypto.GenerateKey()
		mux := http.NewServeMux()
		srv := httptest.NewServer(mux)
		defer srv.Close()
		p, err := provider.New(provider.Config{Store: store, Chain: chain.NewClient(chainSrv.URL, nil), Key: key, ServiceURL: srv.URL,
			SweepInterval: -1, Pull: provider.PullConfig{AllowHTTP: true, AllowPrivateHosts: true}})
		if err != nil {
			log.Fatal(err)
		}
		defer p.Close()
		mux.Handle("/", p.Handler())
		if _, err := chain.NewClient(chainSrv.URL, nil).RegisterProvider(ctx, key, chain.RegisterProviderBody{ServiceURL: srv.URL, Name: fmt.Sprint("sp", i)}); err != nil {
			log.Fatal(err)
		}
	}

	// The client: fund, approve, upload, download a range.
	key, _ := crypto.GenerateKey()
	c, err := sdk.New(ctx, sdk.Config{ChainURL: chainSrv.URL, Key: key})
	if err != nil {
		log.Fatal(err)
	}
	ten := big.Mul(big.NewInt(10), big.NewInt(1e18))
	if _, err := c.Faucet(ctx, ten); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Deposit(ctx, ten); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Approve(ctx, sdk.Allowances{}); err != nil {
		log.Fatal(err)
	}
	payload := bytes.Repeat([]byte("warm storage, verified. "), 10000)
	res, err := c.Upload(ctx, bytes.NewReader(payload), sdk.UploadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("piece:", res.Piece)
	fmt.Println("copies:", len(res.Copies), "complete:", res.Complete, "second pulled:", res.Copies[1].Pulled)

	var out bytes.Buffer
	dr, err := c.DownloadRange(ctx, res.Piece, 24*5000, 24*5000+23, &out, sdk.DownloadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("range: %q (%d range proof)\n", out.String(), dr.RangeProofs)
	// Output:
	// piece: bafkzcibeqcoqcdoccqx43i64rfhegutn6z4sfw36ngwdkzgpuegz77dhbvfgwx6ibm
	// copies: 2 complete: true second pulled: true
	// range: "warm storage, verified." (1 range proof)
}
