package provider

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain"
)

// DevnetConfig configures a devnet: one chain and several providers in one process.
type DevnetConfig struct {
	// Dir holds the chain (chain/), each provider (sp1/, sp2/, …) and the demo wallet key
	// (wallet.key). Reusing it resumes the same devnet.
	Dir string
	// Providers is how many providers to run (default 2).
	Providers int
	// Host is the loopback address everything listens on (default 127.0.0.1).
	Host string
	// ChainPort is the chain's port; providers use ChainPort+1, +2, … (0: random free ports).
	ChainPort int
	// EpochDuration of the chain's clock (default 1 s; the proving rules are not shortened).
	EpochDuration time.Duration
	// ChainConfig is the genesis configuration (chain.DefaultConfig when nil).
	ChainConfig *chain.Config
	// Faucet amounts for the demo wallet: minted, and deposited into its payments account
	// with the warm-storage service approved (defaults 1000 and 100 USDFC).
	WalletFunds, WalletDeposit abi.TokenAmount
	// ProvePoll, SettleInterval: passed to every provider.
	ProvePoll      time.Duration
	SettleInterval time.Duration
	Logger         *slog.Logger
}

// Devnet is a running devnet.
type Devnet struct {
	Ledger    *chain.Ledger
	Providers []*Node
	// Wallet is a funded demo client wallet.
	Wallet *ecdsa.PrivateKey

	chainURL string
	chainSrv *http.Server
	wg       sync.WaitGroup
	once     sync.Once
	err      error
}

// ChainURL is the chain API's base URL.
func (d *Devnet) ChainURL() string { return d.chainURL }

// WalletAddress is the demo wallet's address.
func (d *Devnet) WalletAddress() common.Address { return crypto.PubkeyToAddress(d.Wallet.PublicKey) }

// StartDevnet starts a chain and cfg.Providers providers on loopback ports, and funds a demo
// wallet from the faucet. There is no CDN edge: the beam edge is not part of this build.
func StartDevnet(ctx context.Context, cfg DevnetConfig) (d *Devnet, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("provider: DevnetConfig.Dir is required")
	}
	if cfg.Providers <= 0 {
		cfg.Providers = 2
	}
	if cfg.Providers > 64 {
		return nil, fmt.Errorf("provider: devnet with %d providers: at most 64", cfg.Providers)
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.EpochDuration <= 0 {
		cfg.EpochDuration = time.Second
	}
	if cfg.WalletFunds.Int == nil {
		cfg.WalletFunds = big.Mul(big.NewInt(1000), big.NewInt(1e18))
	}
	if cfg.WalletDeposit.Int == nil {
		cfg.WalletDeposit = big.Mul(big.NewInt(100), big.NewInt(1e18))
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	port := func(i int) string {
		if cfg.ChainPort == 0 {
			return net.JoinHostPort(cfg.Host, "0")
		}
		return net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.ChainPort+i))
	}
	d = &Devnet{}
	defer func() {
		if err != nil {
			d.Close(context.Background())
		}
	}()
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("provider: devnet directory: %w", err)
	}
	d.Ledger, err = chain.Open(filepath.Join(cfg.Dir, "chain"), chain.Options{Config: cfg.ChainConfig, EpochDuration: cfg.EpochDuration})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", port(0))
	if err != nil {
		return nil, fmt.Errorf("provider: devnet chain: %w", err)
	}
	d.chainURL = "http://" + ln.Addr().String()
	d.chainSrv = &http.Server{Handler: chain.NewServer(d.Ledger), ReadHeaderTimeout: 30 * time.Second}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.chainSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("devnet chain server", "err", err)
		}
	}()
	for i := 1; i <= cfg.Providers; i++ {
		n, err := StartNode(ctx, NodeConfig{
			DataDir: filepath.Join(cfg.Dir, fmt.Sprintf("sp%d", i)), Listen: port(i), Name: fmt.Sprintf("devnet-sp%d", i),
			ChainURL: d.chainURL, ProvePoll: cfg.ProvePoll, SettleInterval: cfg.SettleInterval,
			Logger: log.With("provider", i),
			// Providers on one machine pull from each other over plain HTTP on loopback.
			Tune: func(c *Config) { c.Pull.AllowHTTP, c.Pull.AllowPrivateHosts = true, true },
		})
		if err != nil {
			return nil, fmt.Errorf("provider: devnet provider %d: %w", i, err)
		}
		d.Providers = append(d.Providers, n)
	}
	var created bool
	if d.Wallet, created, err = LoadOrCreateKey(filepath.Join(cfg.Dir, "wallet.key")); err != nil {
		return nil, err
	}
	if created {
		if err := fundWallet(ctx, chain.NewClient(d.chainURL, nil), d.Wallet, cfg.WalletFunds, cfg.WalletDeposit); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// fundWallet mints tokens to a wallet from the faucet, deposits part of them into its payments
// account and approves the warm-storage service, so the wallet can create data sets at once.
func fundWallet(ctx context.Context, c *chain.Client, key *ecdsa.PrivateKey, funds, deposit abi.TokenAmount) error {
	in, err := c.Info(ctx)
	if err != nil {
		return err
	}
	if _, err := c.Faucet(ctx, key, chain.FaucetBody{Amount: funds}); err != nil {
		return fmt.Errorf("provider: devnet faucet: %w", err)
	}
	if deposit.Sign() > 0 {
		if _, err := c.Deposit(ctx, key, chain.DepositBody{Amount: deposit}); err != nil {
			return fmt.Errorf("provider: devnet deposit: %w", err)
		}
		if _, err := c.SetOperatorApproval(ctx, key, chain.SetOperatorApprovalBody{Operator: in.WarmStorage, Approved: true,
			RateAllowance: deposit, LockupAllowance: deposit, MaxLockupPeriod: chain.PDPLockupPeriod}); err != nil {
			return fmt.Errorf("provider: devnet approval: %w", err)
		}
	}
	return nil
}

// Close stops every provider, then the chain.
func (d *Devnet) Close(ctx context.Context) error {
	d.once.Do(func() {
		var errs []error
		for _, n := range d.Providers {
			errs = append(errs, n.Close(ctx))
		}
		if d.chainSrv != nil {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := d.chainSrv.Shutdown(sctx); err != nil {
				_ = d.chainSrv.Close()
			}
			cancel()
		}
		d.wg.Wait()
		if d.Ledger != nil {
			errs = append(errs, d.Ledger.Close())
		}
		d.err = errors.Join(errs...)
	})
	return d.err
}
