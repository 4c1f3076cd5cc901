package provider

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/ipfs"
	"github.com/warmstore/warmstore/storage"
)

// ErrKeyFile is wrapped by errors about a key file: unreadable, malformed, or readable by
// others.
var ErrKeyFile = errors.New("provider: bad key file")

// LoadOrCreateKey reads the secp256k1 private key (hex) at path, creating it with a fresh key
// and mode 0600 when the file does not exist. An existing file must not be accessible to
// group or others: a key others can read is refused rather than silently used.
func LoadOrCreateKey(path string) (key *ecdsa.PrivateKey, created bool, err error) {
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		key, err := crypto.GenerateKey()
		if err != nil {
			return nil, false, fmt.Errorf("provider: generate key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, fmt.Errorf("provider: key directory: %w", err)
		}
		if err := writeFileSync(path, []byte(hex.EncodeToString(crypto.FromECDSA(key))+"\n"), 0o600); err != nil {
			return nil, false, fmt.Errorf("provider: write key %s: %w", path, err)
		}
		return key, true, nil
	case err != nil:
		return nil, false, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("%w: %s has mode %#o; it must be 0600 (chmod 600 %s)", ErrKeyFile, path, fi.Mode().Perm(), path)
	}
	key, err = crypto.HexToECDSA(strings.TrimPrefix(strings.TrimSpace(string(raw)), "0x"))
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: not a hex secp256k1 private key: %w", ErrKeyFile, path, err)
	}
	return key, false, nil
}

// writeFileSync writes a new file durably: temporary file, fsync, rename, directory fsync, so
// a crash never leaves a truncated key behind.
func writeFileSync(path string, b []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// NodeConfig configures a provider node: the store, the HTTP API, the prover, the settler
// and, without ChainURL, an embedded chain.
type NodeConfig struct {
	// DataDir holds the provider key (provider.key), the store (storage/) and an embedded
	// chain's ledger (chain/).
	DataDir string
	// Listen is the HTTP API address (default 127.0.0.1:7701; ":0" picks a port).
	Listen string
	// ServiceURL is the public base URL registered on chain; default http://<listen address>.
	ServiceURL string
	// Name is the provider's registered name.
	Name string
	// Key overrides the key file (tests).
	Key *ecdsa.PrivateKey

	// ChainURL is the chain API to use. Empty: run an embedded chain in DataDir/chain served
	// on ChainListen.
	ChainURL string
	// ChainListen is the embedded chain's address (default 127.0.0.1:7700).
	ChainListen string
	// Embedded chain: genesis configuration (chain.DefaultConfig when nil), epoch duration
	// of its real-time clock (30 s when zero), or a Clock and Beacon replacing them (tests).
	ChainConfig   *chain.Config
	EpochDuration time.Duration
	Clock         chain.Clock
	Beacon        chain.Beacon

	// ProvePoll, ProveParallel: see ProverConfig.PollInterval and Parallel.
	ProvePoll     time.Duration
	ProveParallel int
	// SettleInterval between settlement rounds (default 10 min).
	SettleInterval time.Duration
	// ShutdownTimeout bounds how long Close waits for in-flight requests (uploads) to finish
	// before cutting them (default 30 s).
	ShutdownTimeout time.Duration

	// Registry receives every metric (default: a new registry with Go and process metrics).
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Tune adjusts the API configuration before the API starts (pull policy, limits, …).
	Tune func(*Config)
}

// Node is a running provider: everything `sp run` starts.
type Node struct {
	Store   *storage.Store
	API     *Provider
	Prover  *Prover
	Settler *Settler
	// IPFS indexes the blocks of CAR pieces in withIPFSIndexing data sets (DataDir/ipfs-index).
	IPFS     *ipfs.Index
	Chain    *chain.Client
	Ledger   *chain.Ledger // embedded chain; nil with ChainURL
	Key      *ecdsa.PrivateKey
	Registry *prometheus.Registry

	cfg      NodeConfig
	log      *slog.Logger
	url      string
	chainURL string
	srv      *http.Server
	chainSrv *http.Server
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// StartNode opens the data directory, starts (or connects to) the chain, registers the
// provider on chain (idempotently), and starts the HTTP API, the prover and the settler. On
// error everything already started is stopped.
func StartNode(ctx context.Context, cfg NodeConfig) (n *Node, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("provider: NodeConfig.DataDir is required")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:7701"
	}
	if cfg.ChainListen == "" {
		cfg.ChainListen = "127.0.0.1:7700"
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	n = &Node{cfg: cfg, log: cfg.Logger, Registry: cfg.Registry}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.Registry == nil {
		n.Registry = prometheus.NewRegistry()
		n.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	defer func() {
		if err != nil {
			n.Close(context.Background())
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("provider: data directory: %w", err)
	}
	n.Key = cfg.Key
	if n.Key == nil {
		var created bool
		keyPath := filepath.Join(cfg.DataDir, "provider.key")
		if n.Key, created, err = LoadOrCreateKey(keyPath); err != nil {
			return nil, err
		}
		if created {
			n.log.Info("created provider key", "path", keyPath)
		}
	}

	// Chain: connect or embed.
	n.chainURL = cfg.ChainURL
	if n.chainURL == "" {
		if err := n.startEmbeddedChain(); err != nil {
			return nil, err
		}
	}
	n.Chain = chain.NewClient(n.chainURL, &http.Client{Timeout: time.Minute})

	// Store.
	n.Store, err = storage.Open(filepath.Join(cfg.DataDir, "storage"), storage.Options{Logger: n.log.With("component", "storage")})
	if err != nil {
		return nil, err
	}
	if rep := n.Store.StartupReport(); len(rep.Missing) > 0 || len(rep.Damaged) > 0 || len(rep.OrphansRemoved) > 0 {
		n.log.Warn("storage reconciliation", "pieces", rep.Pieces, "missing", len(rep.Missing), "damaged", len(rep.Damaged), "orphansRemoved", len(rep.OrphansRemoved))
	}

	// HTTP listener first: the registered service URL is its address.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("provider: listen %s: %w", cfg.Listen, err)
	}
	n.url = "http://" + ln.Addr().String()
	service := cfg.ServiceURL
	if service == "" {
		service = n.url
	}
	n.IPFS, err = ipfs.OpenIndex(filepath.Join(cfg.DataDir, "ipfs-index"), n.Store, ipfs.IndexOptions{Logger: n.log.With("component", "ipfs")})
	if err != nil {
		ln.Close()
		return nil, err
	}
	apiCfg := Config{Store: n.Store, Chain: n.Chain, Key: n.Key, ServiceURL: service, Logger: n.log.With("component", "api"), Registerer: n.Registry, Gatherer: n.Registry, IPFS: n.IPFS}
	if cfg.Tune != nil {
		cfg.Tune(&apiCfg)
	}
	if n.API, err = New(apiCfg); err != nil {
		ln.Close()
		return nil, err
	}
	n.srv = &http.Server{Handler: n.API.Handler(), ReadHeaderTimeout: 30 * time.Second}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("provider HTTP server", "err", err)
		}
	}()

	if err := n.register(ctx, service); err != nil {
		return nil, err
	}

	metrics, err := NewProvingMetrics(n.Registry)
	if err != nil {
		return nil, err
	}
	n.Prover, err = NewProver(ProverConfig{Chain: n.Chain, Key: n.Key, Store: n.Store, Parallel: cfg.ProveParallel,
		PollInterval: cfg.ProvePoll, Metrics: metrics, Logger: n.log.With("component", "prover")})
	if err != nil {
		return nil, err
	}
	n.Settler, err = NewSettler(SettlerConfig{Chain: n.Chain, Key: n.Key, Interval: cfg.SettleInterval, Metrics: metrics, Logger: n.log.With("component", "settler")})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		if err := n.Prover.Run(runCtx); err != nil && runCtx.Err() == nil {
			n.log.Error("prover stopped", "err", err)
		}
	}()
	go func() {
		defer n.wg.Done()
		// Settling can record faults; start once the prover follows the chain so it counts them.
		select {
		case <-n.Prover.Ready():
		case <-runCtx.Done():
			return
		}
		_ = n.Settler.Run(runCtx)
	}()
	n.log.Info("provider started", "url", n.url, "address", n.Address(), "chain", n.chainURL)
	return n, nil
}

func (n *Node) startEmbeddedChain() error {
	var err error
	n.Ledger, err = chain.Open(filepath.Join(n.cfg.DataDir, "chain"), chain.Options{Config: n.cfg.ChainConfig,
		Clock: n.cfg.Clock, EpochDuration: n.cfg.EpochDuration, Beacon: n.cfg.Beacon})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", n.cfg.ChainListen)
	if err != nil {
		return fmt.Errorf("provider: embedded chain: listen %s: %w", n.cfg.ChainListen, err)
	}
	n.chainURL = "http://" + ln.Addr().String()
	n.chainSrv = &http.Server{Handler: chain.NewServer(n.Ledger), ReadHeaderTimeout: 30 * time.Second}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.chainSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("chain HTTP server", "err", err)
		}
	}()
	return nil
}

// register registers the provider on chain unless it is already registered with the same
// service URL and name, so restarts do not spam the ledger.
func (n *Node) register(ctx context.Context, service string) error {
	addr := n.Address()
	cur, err := n.Chain.Provider(ctx, addr)
	switch {
	case err == nil && cur.ServiceURL == service && cur.Name == n.cfg.Name && cur.Payee == addr:
		return nil
	case err != nil && !errors.Is(err, chain.ErrNotFound):
		return fmt.Errorf("provider: look up registration of %s: %w", addr.Hex(), err)
	}
	if _, err := n.Chain.RegisterProvider(ctx, n.Key, chain.RegisterProviderBody{Payee: addr, ServiceURL: service, Name: n.cfg.Name}); err != nil {
		return fmt.Errorf("provider: register %s on chain: %w", addr.Hex(), err)
	}
	n.log.Info("registered on chain", "address", addr, "serviceURL", service)
	return nil
}

// URL is the HTTP API's base URL.
func (n *Node) URL() string { return n.url }

// ChainURL is the chain API the node uses (its own when embedded).
func (n *Node) ChainURL() string { return n.chainURL }

// Address is the provider's chain address.
func (n *Node) Address() common.Address { return crypto.PubkeyToAddress(n.Key.PublicKey) }

// Close shuts the node down gracefully: it stops accepting requests and waits (up to
// ctx's deadline or ShutdownTimeout) for in-flight ones, such as uploads, to finish; cuts
// those still running (their partial data is discarded by the store); stops the prover and
// settler; then closes the API, the store and the embedded chain.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		var errs []error
		if n.srv != nil {
			sctx, cancel := context.WithTimeout(ctx, n.cfg.ShutdownTimeout)
			if err := n.srv.Shutdown(sctx); err != nil {
				n.log.Warn("in-flight requests cut at shutdown", "err", err)
				_ = n.srv.Close()
			}
			cancel()
		}
		if n.cancel != nil {
			n.cancel()
		}
		if n.API != nil {
			errs = append(errs, n.API.Close())
		}
		if n.chainSrv != nil {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := n.chainSrv.Shutdown(sctx); err != nil {
				_ = n.chainSrv.Close()
			}
			cancel()
		}
		n.wg.Wait()
		if n.IPFS != nil {
			errs = append(errs, n.IPFS.Close())
		}
		if n.Store != nil {
			errs = append(errs, n.Store.Close())
		}
		if n.Ledger != nil {
			errs = append(errs, n.Ledger.Close())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}
