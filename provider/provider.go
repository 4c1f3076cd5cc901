// Package provider is the storage provider daemon's HTTP side: the reference provider's PDP API
// (the one the Synapse SDK speaks) over a storage.Store and the chain ledger, the /piece
// retrieval endpoint, provider-to-provider pulls, Prometheus metrics and health.
//
// A piece is retrievable the moment its upload returns: Ingest makes it durable and indexed
// before the 204, so there is no parking step between upload and the first download.
// Data-set changes arrive as the payer's EIP-712 signatures inside ABI-encoded extraData; the
// provider decodes them (extradata.go) into the chain's transaction bodies and sends them with
// its own key as sender. The chain applies transactions synchronously, so every status URL
// the API hands out already describes a confirmed (or refused) transaction.
package provider

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/ipfs"
	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage"
)

// Defaults of Config's zero fields.
const (
	DefaultUploadIdleTimeout = 30 * time.Second
	DefaultSessionTTL        = time.Hour
	DefaultSweepInterval     = time.Minute
	DefaultMaxPieceReads     = 256
	DefaultPieceReadWait     = 10 * time.Second
	DefaultMaxSessions       = 100_000
	DefaultMaxPiecesPerAdd   = 40
	DefaultMaxRemovals       = 35
	DefaultPullAttempts      = 3
	DefaultPullIdleTimeout   = 2 * time.Minute
	DefaultPullTimeout       = 10 * time.Minute
	DefaultPullRetryDelay    = 30 * time.Second
	DefaultPullRecordTTL     = 5 * 24 * time.Hour
	DefaultPullConcurrency   = 4

	// PingBody is what GET /pdp/ping answers; reachability probes compare it byte for byte.
	PingBody = "curio-pdp"
	// ServiceName is the PDP service name reported in status bodies (the reference's only
	// service, with JWT auth off, is "public").
	ServiceName = "public"
)

// Config configures a Provider. Store is required; everything else has a default.
type Config struct {
	// Store keeps the pieces.
	Store *storage.Store
	// Chain is the ledger client. Nil disables the data-set routes (they answer 503) and the
	// reference follower; uploads, pulls and retrieval still work.
	Chain *chain.Client
	// Key is the provider's secp256k1 key: it signs the chain transactions the API sends.
	Key *ecdsa.PrivateKey
	// ServiceURL is the provider's public base URL (e.g. "https://sp.example"), for logs; the
	// chain registration that publishes it is the daemon's business.
	ServiceURL string
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the provider's Prometheus collectors. Gatherer is what /metrics
	// exposes. When Registerer is a *prometheus.Registry it is also the Gatherer. Both nil: a
	// private registry.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer

	// MaxPieceSize caps a piece's raw payload; 0 means pdp.MaxRawSize (64 GiB padded).
	MaxPieceSize uint64
	// UploadIdleTimeout aborts an upload (and drops its session) when no byte arrives for
	// this long; 0 means DefaultUploadIdleTimeout.
	UploadIdleTimeout time.Duration
	// SessionTTL is how long an upload session may sit unfinished (or finished but not
	// finalized) before it is deleted; 0 means DefaultSessionTTL.
	SessionTTL time.Duration
	// MaxSessions caps the upload sessions kept at once (open, or finished and waiting for
	// the sweep); past it new uploads get 429 until sessions finish or expire. Sessions cost
	// no memory, but an unauthenticated client could otherwise fill the index. 0 means
	// DefaultMaxSessions.
	MaxSessions int
	// SweepInterval is how often expired sessions and pull records are removed; 0 means
	// DefaultSweepInterval, negative disables the background sweep (tests call Sweep).
	SweepInterval time.Duration
	// MaxPieceReads caps concurrent /piece requests (each holds a file and a copy buffer);
	// 0 means DefaultMaxPieceReads. Requests beyond it queue for up to PieceReadWait, then get
	// 429, so a burst larger than the cap is served rather than refused.
	MaxPieceReads int
	// PieceReadWait is how long a /piece request may wait for a free slot; 0 means
	// DefaultPieceReadWait, negative means no wait (429 at once, as the reference does).
	PieceReadWait time.Duration
	// MaxPiecesPerAdd caps pieces per add request; 0 means DefaultMaxPiecesPerAdd.
	MaxPiecesPerAdd int
	// MaxRemovals caps piece ids per delete request; 0 means DefaultMaxRemovals.
	MaxRemovals int

	// Pull configures provider-to-provider pulls.
	Pull PullConfig

	// IPFS, when set, indexes the blocks of CAR pieces added to this provider's data sets
	// whose metadata has withIPFSIndexing, drops them when the pieces leave, and serves them
	// at GET /ipfs/{cid} through boxo's trustless gateway. The caller owns (and closes) it.
	IPFS *ipfs.Index

	// Now is the clock; nil means time.Now. It stamps transaction and pull records and
	// decides when pull records expire. Session expiry uses the store's clock, so tests give
	// both the same function.
	Now func() time.Time
}

// PullConfig configures POST /pdp/piece/pull.
type PullConfig struct {
	// AllowHTTP accepts http:// source URLs (the reference requires https).
	AllowHTTP bool
	// AllowPrivateHosts accepts loopback, private and link-local source hosts (a devnet on one
	// machine); the reference refuses them.
	AllowPrivateHosts bool
	// Client fetches sources; nil means a client with sane transport timeouts.
	Client *http.Client
	// Attempts per piece; 0 means DefaultPullAttempts.
	Attempts int
	// Timeout per attempt; 0 means DefaultPullTimeout.
	Timeout time.Duration
	// IdleTimeout aborts an attempt when no byte arrives for this long; 0 means
	// DefaultPullIdleTimeout.
	IdleTimeout time.Duration
	// RetryDelay between attempts; 0 means DefaultPullRetryDelay.
	RetryDelay time.Duration
	// RecordTTL is how long a finished pull's status is kept; 0 means DefaultPullRecordTTL.
	RecordTTL time.Duration
	// Concurrency is how many pieces are fetched at once; 0 means DefaultPullConcurrency.
	Concurrency int
}

// Provider serves the PDP HTTP API. Create it with New, serve Handler, stop it with Close.
type Provider struct {
	cfg     Config
	store   *storage.Store
	chain   *chain.Client
	log     *slog.Logger
	now     func() time.Time
	address common.Address
	metrics *metrics
	handler http.Handler

	pieceReads chan struct{} // semaphore of concurrent /piece requests

	roots *rootIndex // v1 CID (root only) → stored piece

	ipfsGateway http.Handler // nil without Config.IPFS
	ipfsMetrics *ipfsMetrics

	mu       sync.Mutex
	active   map[string]bool // upload sessions with a PUT in progress (never swept)
	sessions int             // upload sessions in the store
	txs      *txLog
	pulls    *pullJobs
	pullSem  chan struct{}

	ownClient bool // the pull client was made here, so Close releases its connections

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed bool
}

// New builds a Provider and starts its background work (session sweep, chain follower).
func New(cfg Config) (*Provider, error) {
	if cfg.Store == nil {
		return nil, errors.New("provider: Config.Store is required")
	}
	if cfg.Chain != nil && cfg.Key == nil {
		return nil, errors.New("provider: Config.Key is required when Config.Chain is set")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxPieceSize == 0 || cfg.MaxPieceSize > pdp.MaxRawSize {
		cfg.MaxPieceSize = pdp.MaxRawSize
	}
	if cfg.UploadIdleTimeout <= 0 {
		cfg.UploadIdleTimeout = DefaultUploadIdleTimeout
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.MaxPieceReads <= 0 {
		cfg.MaxPieceReads = DefaultMaxPieceReads
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.PieceReadWait == 0 {
		cfg.PieceReadWait = DefaultPieceReadWait
	}
	if cfg.MaxPiecesPerAdd <= 0 {
		cfg.MaxPiecesPerAdd = DefaultMaxPiecesPerAdd
	}
	if cfg.MaxRemovals <= 0 {
		cfg.MaxRemovals = DefaultMaxRemovals
	}
	pc := &cfg.Pull
	if pc.Attempts <= 0 {
		pc.Attempts = DefaultPullAttempts
	}
	if pc.Timeout <= 0 {
		pc.Timeout = DefaultPullTimeout
	}
	if pc.IdleTimeout <= 0 {
		pc.IdleTimeout = DefaultPullIdleTimeout
	}
	if pc.RetryDelay <= 0 {
		pc.RetryDelay = DefaultPullRetryDelay
	}
	if pc.RecordTTL <= 0 {
		pc.RecordTTL = DefaultPullRecordTTL
	}
	if pc.Concurrency <= 0 {
		pc.Concurrency = DefaultPullConcurrency
	}
	ownClient := pc.Client == nil
	if pc.Client == nil {
		dialer := &net.Dialer{Timeout: 30 * time.Second}
		if !pc.AllowPrivateHosts {
			dialer = publicOnlyDialer()
		}
		pc.Client = &http.Client{Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			ResponseHeaderTimeout: 2 * time.Minute,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			MaxIdleConnsPerHost:   8,
		}}
	}
	reg, gat := cfg.Registerer, cfg.Gatherer
	if reg == nil && gat == nil {
		r := prometheus.NewRegistry()
		reg, gat = r, r
	}
	if gat == nil {
		if g, ok := reg.(prometheus.Gatherer); ok {
			gat = g
		} else {
			gat = prometheus.NewRegistry()
		}
	}
	if reg == nil {
		reg = prometheus.NewRegistry() // collectors registered nowhere visible: caller chose a Gatherer only
	}

	p := &Provider{
		cfg:        cfg,
		store:      cfg.Store,
		chain:      cfg.Chain,
		log:        cfg.Logger,
		now:        cfg.Now,
		pieceReads: make(chan struct{}, cfg.MaxPieceReads),
		active:     map[string]bool{},
		txs:        newTxLog(100_000),
		pulls:      newPullJobs(),
		pullSem:    make(chan struct{}, pc.Concurrency),
		ownClient:  ownClient,
	}
	if cfg.Key != nil {
		p.address = crypto.PubkeyToAddress(cfg.Key.PublicKey)
	}
	roots, err := newRootIndex(cfg.Store)
	if err != nil {
		return nil, err
	}
	p.roots = roots
	m, err := newMetrics(reg, cfg.Store, roots.bytesAtStart)
	if err != nil {
		return nil, err
	}
	p.metrics = m
	if err := p.dropInterruptedUploads(); err != nil {
		return nil, err
	}
	if cfg.IPFS != nil {
		if p.ipfsGateway, err = ipfs.NewGateway(cfg.IPFS, ipfs.GatewayConfig{Registerer: reg}); err != nil {
			return nil, err
		}
		if p.ipfsMetrics, err = newIPFSMetrics(reg); err != nil {
			return nil, err
		}
	}
	p.handler = p.routes(gat)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if cfg.SweepInterval > 0 {
		p.wg.Add(1)
		go p.sweepLoop(cfg.SweepInterval)
	}
	if p.chain != nil {
		p.wg.Add(1)
		go p.followChain()
		if cfg.IPFS != nil {
			p.wg.Add(1)
			go p.followIPFS()
		}
	}
	p.log.Info("provider API ready", "address", p.address.Hex(), "serviceURL", cfg.ServiceURL,
		"maxPieceSize", cfg.MaxPieceSize, "uploadIdleTimeout", cfg.UploadIdleTimeout, "chain", p.chain != nil)
	return p, nil
}

// Handler returns the provider's HTTP handler: the PDP API under /pdp, /piece/{cid},
// /metrics and /healthz, and /ipfs/{cid} with Config.IPFS.
func (p *Provider) Handler() http.Handler { return p.handler }

// Address is the provider's chain address (zero without a key).
func (p *Provider) Address() common.Address { return p.address }

// Close stops background work (sweeps, pulls, the chain follower) and waits for it. It does
// not close the Store, which the caller owns.
func (p *Provider) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	if p.ownClient {
		p.cfg.Pull.Client.CloseIdleConnections()
	}
	return nil
}

func (p *Provider) sweepLoop(every time.Duration) {
	defer p.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			if _, err := p.Sweep(p.ctx); err != nil && p.ctx.Err() == nil {
				p.log.Warn("sweep failed", "err", err)
			}
		}
	}
}

// Sweep deletes upload sessions not updated within SessionTTL (except those receiving bytes
// right now) and forgets pull records older than Pull.RecordTTL. It returns how many sessions
// it deleted. The background loop calls it every SweepInterval.
func (p *Provider) Sweep(ctx context.Context) (int, error) {
	expired, err := p.store.ExpiredSessions(p.cfg.SessionTTL)
	if err != nil {
		return 0, fmt.Errorf("provider: list expired sessions: %w", err)
	}
	n := 0
	for _, s := range expired {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		// Check and delete under p.mu: a PUT marks its session busy under p.mu before claiming
		// it, so a session receiving bytes is never deleted under it.
		p.mu.Lock()
		if p.active[s.ID] {
			p.mu.Unlock()
			continue
		}
		err := p.store.DeleteSession(s.ID)
		if err == nil {
			p.sessions--
		}
		p.mu.Unlock()
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return n, fmt.Errorf("provider: delete session %s: %w", s.ID, err)
		}
		n++
		p.metrics.sessionsExpired.Inc()
		p.log.Info("upload session expired", "session", s.ID, "state", s.State, "updated", s.Updated)
	}
	p.pulls.expire(p.now().Add(-p.cfg.Pull.RecordTTL))
	return n, nil
}

// dropInterruptedUploads deletes the sessions a previous run left receiving bytes: that upload
// died with the process, and its client must start again (a PUT to it would otherwise be a
// conflict until the session expired).
func (p *Provider) dropInterruptedUploads() error {
	all, err := p.store.ExpiredSessions(-100 * 365 * 24 * time.Hour) // every session
	if err != nil {
		return fmt.Errorf("provider: list upload sessions: %w", err)
	}
	p.mu.Lock()
	p.sessions = len(all)
	p.mu.Unlock()
	for _, s := range all {
		if s.State != sessionUploading {
			continue
		}
		if err := p.deleteSession(s.ID); err != nil {
			return fmt.Errorf("provider: drop interrupted upload %s: %w", s.ID, err)
		}
		p.log.Info("dropped upload interrupted by a restart", "session", s.ID)
	}
	return nil
}

// createSession persists a new upload session unless MaxSessions are kept already.
func (p *Provider) createSession(sess storage.Session) (storage.Session, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sessions >= p.cfg.MaxSessions {
		return storage.Session{}, errorf(http.StatusTooManyRequests, "too_many_uploads",
			"%d upload sessions are open; finish or let some expire first", p.sessions)
	}
	out, err := p.store.CreateSession(sess)
	if err != nil {
		return storage.Session{}, fmt.Errorf("create upload session: %w", err)
	}
	p.sessions++
	return out, nil
}

// deleteSession deletes an upload session; one already gone is not an error.
func (p *Provider) deleteSession(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.store.DeleteSession(id)
	if err == nil {
		p.sessions--
		return nil
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}
