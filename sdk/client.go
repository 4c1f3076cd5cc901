package sdk

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/chain/eip712"
)

// Defaults of Config's zero fields.
const (
	DefaultCopies       = 2
	DefaultStallTimeout = 20 * time.Second
	DefaultPingTimeout  = 8 * time.Second
	DefaultPollInterval = 500 * time.Millisecond
	DefaultWaitTimeout  = 5 * time.Minute
	// DefaultWindow is the size of the verified windows a download is cut into: 2^16 fr32
	// chunks (≈ 7.9 MiB), one aligned subtree of height 18. Bytes are written out only after
	// their window verified, so memory is bounded by two windows.
	DefaultWindow = 127 << 16
	// DefaultSource is the "source" metadata of data sets the SDK creates, so applications
	// sharing a wallet keep their data sets apart.
	DefaultSource = "warmstore-sdk"
)

// Config configures a Client. ChainURL and Key are required.
type Config struct {
	// ChainURL is the base URL of the chain's HTTP API.
	ChainURL string
	// Key is the payer's secp256k1 key: it signs chain transactions and EIP-712
	// authorizations.
	Key *ecdsa.PrivateKey
	// HTTPClient is used for providers, the chain and the edge; nil means a client without a
	// global timeout (transfers are bounded by StallTimeout instead).
	HTTPClient *http.Client
	// BeamURL is the CDN edge's base URL; downloads use it as one more source when set.
	BeamURL string
	// Source is the "source" metadata of data sets this client creates and reuses; "" means
	// DefaultSource.
	Source string
	// StallTimeout aborts a transfer that receives no byte for this long and moves on to
	// another copy; 0 means DefaultStallTimeout.
	StallTimeout time.Duration
	// PingTimeout bounds a provider health check; 0 means DefaultPingTimeout.
	PingTimeout time.Duration
	// PollInterval and WaitTimeout govern waiting for a provider's transaction status or
	// pull; 0 means the defaults.
	PollInterval time.Duration
	WaitTimeout  time.Duration
	// Window is the verified download window in raw bytes, rounded down to a multiple of 127;
	// 0 means DefaultWindow.
	Window uint64
	// AllowPrivateSources lets providers pull from loopback addresses (a one-machine devnet):
	// the SDK then still asks for a pull; it never changes what providers accept.
	AllowPrivateSources bool
}

// Client is a warmstore client for one payer. It is safe for concurrent use.
type Client struct {
	cfg     Config
	chain   *chain.Client
	http    *http.Client
	key     *ecdsa.PrivateKey
	address common.Address
	info    *chain.Info
	domain  eip712.Domain

	provMu   sync.Mutex
	provList []Provider
	provAt   time.Time
}

// New connects to the chain (one request, to learn its configuration and EIP-712 domain) and
// returns a Client.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.ChainURL == "" {
		return nil, errors.New("sdk: Config.ChainURL is required (the chain's HTTP API, e.g. http://127.0.0.1:7700)")
	}
	if cfg.Key == nil {
		return nil, errors.New("sdk: Config.Key is required (create one with 'client wallet new')")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = DefaultPingTimeout
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = DefaultWaitTimeout
	}
	cfg.Window = cfg.Window / 127 * 127
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	cfg.ChainURL = strings.TrimRight(cfg.ChainURL, "/")
	cfg.BeamURL = strings.TrimRight(cfg.BeamURL, "/")
	c := &Client{
		cfg:     cfg,
		chain:   chain.NewClient(cfg.ChainURL, cfg.HTTPClient),
		http:    cfg.HTTPClient,
		key:     cfg.Key,
		address: crypto.PubkeyToAddress(cfg.Key.PublicKey),
	}
	info, err := c.chain.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("sdk: chain at %s unreachable: %w (is 'sp chain' or 'sp devnet' running, and --chain right?)", cfg.ChainURL, err)
	}
	c.info = info
	c.domain = eip712.Domain{ChainID: info.ChainID, VerifyingContract: info.WarmStorage}
	return c, nil
}

// Address is the payer's address.
func (c *Client) Address() common.Address { return c.address }

// Chain is the underlying chain client, for queries the SDK does not wrap.
func (c *Client) Chain() *chain.Client { return c.chain }

// ChainInfo is the chain's configuration as read by New.
func (c *Client) ChainInfo() chain.Info { return *c.info }
