package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/chain/extradata"
	"github.com/warmstore/warmstore/pdp"
)

// Pull statuses, per piece and overall (the reference's vocabulary).
const (
	PullPending    = "pending"
	PullInProgress = "inProgress"
	PullRetrying   = "retrying"
	PullComplete   = "complete"
	PullFailed     = "failed"
)

// pullRequestBody is POST /pdp/piece/pull. dataSetId 0 (or absent) means the pieces are meant
// for a new data set, and extraData is then the create-and-add payload.
type pullRequestBody struct {
	ExtraData    string          `json:"extraData"`
	DataSetID    uint64          `json:"dataSetId,omitempty"`
	RecordKeeper string          `json:"recordKeeper,omitempty"`
	Pieces       []pullPieceItem `json:"pieces"`
}

type pullPieceItem struct {
	PieceCID  string `json:"pieceCid"`
	SourceURL string `json:"sourceUrl"`
}

// PullResponse is the answer to every POST /pdp/piece/pull: the status of the pull that the
// request names (the same request again polls it).
type PullResponse struct {
	Status string            `json:"status"`
	Pieces []PullPieceStatus `json:"pieces"`
}

// PullPieceStatus is one piece of a pull.
type PullPieceStatus struct {
	PieceCID string `json:"pieceCid"`
	Status   string `json:"status"`
	Error    string `json:"error,omitempty"`
}

type pullJob struct {
	key      string
	created  time.Time
	finished time.Time // zero while a piece is not final
	pieces   []*pullPiece
}

type pullPiece struct {
	piece  pdp.PieceCID
	source string
	status string
	err    string
}

// pullJobs holds pull jobs by idempotency key. One mutex guards the map and every status.
type pullJobs struct {
	mu   sync.Mutex
	jobs map[string]*pullJob
}

func newPullJobs() *pullJobs { return &pullJobs{jobs: map[string]*pullJob{}} }

func (j *pullJobs) snapshot(job *pullJob) PullResponse {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := PullResponse{Pieces: make([]PullPieceStatus, len(job.pieces))}
	var failed, complete, inProgress, retrying int
	for i, pp := range job.pieces {
		out.Pieces[i] = PullPieceStatus{PieceCID: pp.piece.String(), Status: pp.status, Error: pp.err}
		switch pp.status {
		case PullFailed:
			failed++
		case PullComplete:
			complete++
		case PullInProgress:
			inProgress++
		case PullRetrying:
			retrying++
		}
	}
	switch {
	case failed > 0:
		out.Status = PullFailed
	case complete == len(job.pieces):
		out.Status = PullComplete
	case inProgress > 0:
		out.Status = PullInProgress
	case retrying > 0:
		out.Status = PullRetrying
	default:
		out.Status = PullPending
	}
	return out
}

func (j *pullJobs) set(job *pullJob, pp *pullPiece, status, errMsg string, now time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	pp.status, pp.err = status, errMsg
	for _, q := range job.pieces {
		if q.status != PullComplete && q.status != PullFailed {
			return
		}
	}
	job.finished = now
}

// expire forgets finished jobs that finished before cutoff.
func (j *pullJobs) expire(cutoff time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for k, job := range j.jobs {
		if !job.finished.IsZero() && job.finished.Before(cutoff) {
			delete(j.jobs, k)
		}
	}
}

// maxPullJobs bounds the jobs in memory; past it new pulls are refused with 429 until old ones
// finish and expire.
const maxPullJobs = 10_000

// POST /pdp/piece/pull: fetch pieces from other providers' /piece/{cid}, verifying commP while
// storing. The extraData must carry the payer's valid signature for adding exactly these pieces
// (to the data set, or to a new one), so that nobody makes a provider fetch data no client will
// pay for. The same request again returns the current status.
func (p *Provider) handlePull(w http.ResponseWriter, r *http.Request) error {
	resp, err := p.pull(w, r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (p *Provider) pull(w http.ResponseWriter, r *http.Request) (PullResponse, error) {
	var req pullRequestBody
	if err := decodeJSON(w, r, &req); err != nil {
		return PullResponse{}, err
	}
	if err := p.needChain(); err != nil {
		return PullResponse{}, err
	}
	if len(req.Pieces) == 0 {
		return PullResponse{}, errorf(http.StatusBadRequest, "no_pieces", "pieces is empty")
	}
	if len(req.Pieces) > p.cfg.MaxPiecesPerAdd {
		return PullResponse{}, errorf(http.StatusBadRequest, "too_many_pieces", "%d pieces in one pull, max %d", len(req.Pieces), p.cfg.MaxPiecesPerAdd)
	}
	ctx := r.Context()
	if err := p.checkRecordKeeper(ctx, req.RecordKeeper, false); err != nil {
		return PullResponse{}, err
	}
	pieces := make([]pdp.PieceCID, len(req.Pieces))
	for i, it := range req.Pieces {
		c, err := parsePieceV2(it.PieceCID)
		if err != nil {
			return PullResponse{}, err
		}
		if c.RawSize() > p.cfg.MaxPieceSize {
			return PullResponse{}, errorf(http.StatusRequestEntityTooLarge, "too_large", "piece %v has %d raw bytes, above this provider's limit of %d", c, c.RawSize(), p.cfg.MaxPieceSize)
		}
		if err := p.checkSourceURL(it.SourceURL, it.PieceCID); err != nil {
			return PullResponse{}, err
		}
		pieces[i] = c
	}
	raw, err := decodeHexExtra(req.ExtraData, extradata.MaxCreateSize+extradata.MaxAddSize+256)
	if err != nil {
		return PullResponse{}, err
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%x|%d|%s", raw, req.DataSetID, strings.ToLower(req.RecordKeeper))))
	key := hex.EncodeToString(sum[:])

	p.pulls.mu.Lock()
	job, ok := p.pulls.jobs[key]
	p.pulls.mu.Unlock()
	if ok {
		return p.pulls.snapshot(job), nil
	}
	if err := p.checkPullAuthorization(ctx, req.DataSetID, raw, pieces); err != nil {
		return PullResponse{}, err
	}

	job = &pullJob{key: key, created: p.now()}
	for i, c := range pieces {
		job.pieces = append(job.pieces, &pullPiece{piece: c, source: req.Pieces[i].SourceURL, status: PullPending})
	}
	p.pulls.mu.Lock()
	if existing, ok := p.pulls.jobs[key]; ok { // a concurrent identical request won
		p.pulls.mu.Unlock()
		return p.pulls.snapshot(existing), nil
	}
	if len(p.pulls.jobs) >= maxPullJobs {
		p.pulls.mu.Unlock()
		return PullResponse{}, errorf(http.StatusTooManyRequests, "too_many_pulls", "%d pulls are tracked; retry later", maxPullJobs)
	}
	p.pulls.jobs[key] = job
	p.mu.Lock()
	closed := p.closed
	if !closed {
		p.wg.Add(len(job.pieces))
	}
	p.mu.Unlock()
	p.pulls.mu.Unlock()
	if closed {
		return PullResponse{}, errorf(http.StatusServiceUnavailable, "shutting_down", "the provider is shutting down")
	}
	for _, pp := range job.pieces {
		go p.runPull(job, pp)
	}
	p.log.Info("pull accepted", "pieces", len(pieces), "dataSet", req.DataSetID, "job", key[:12])
	return p.pulls.snapshot(job), nil
}

// checkSourceURL applies the reference's rules: https (http only when allowed), a path ending in
// /piece/{pieceCid}, and no loopback/private/link-local host unless allowed.
func (p *Provider) checkSourceURL(s, pieceCID string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return errorf(http.StatusBadRequest, "bad_source_url", "sourceUrl %q is not an absolute URL", truncate(s, 200))
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.cfg.Pull.AllowHTTP:
	default:
		return errorf(http.StatusBadRequest, "bad_source_url", "sourceUrl %q must be https", truncate(s, 200))
	}
	if !strings.HasSuffix(u.Path, "/piece/"+pieceCID) {
		return errorf(http.StatusBadRequest, "bad_source_url", "sourceUrl %q must end in /piece/%s", truncate(s, 200), pieceCID)
	}
	if !p.cfg.Pull.AllowPrivateHosts {
		host := strings.ToLower(u.Hostname())
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			return errorf(http.StatusBadRequest, "bad_source_url", "sourceUrl host %q is local", host)
		}
		if ip, err := netip.ParseAddr(host); err == nil && !publicAddr(ip) {
			return errorf(http.StatusBadRequest, "bad_source_url", "sourceUrl host %s is not a public address", ip)
		}
	}
	return nil
}

func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && !ip.IsLoopback() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast() &&
		!ip.IsLinkLocalMulticast() && !ip.IsUnspecified() && !ip.IsMulticast()
}

// publicOnlyDialer refuses connections to non-public addresses after DNS resolution, so a
// hostname cannot smuggle a pull to the provider's own network.
func publicOnlyDialer() *net.Dialer {
	return &net.Dialer{
		Timeout: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("provider: pull dial %s: %w", address, err)
			}
			if !publicAddr(ap.Addr()) {
				return fmt.Errorf("provider: pull refuses non-public address %s", ap.Addr())
			}
			return nil
		},
	}
}

// verifyAddAuth checks that payer signed the addition of exactly these pieces (with the
// extraData's nonce and metadata) to the client data set clientID, as the chain will.
func verifyAddAuth(dom eip712.Domain, clientID *big.Int, payer common.Address, add extradata.AddPieces, pieces []pdp.PieceCID) error {
	data := make([][]byte, len(pieces))
	for i, c := range pieces {
		data[i] = c.CID().Bytes()
	}
	meta := add.PieceMetadata
	if len(meta) == 0 {
		meta = make([][]eip712.MetadataEntry, len(pieces))
	} else if len(meta) != len(pieces) {
		return errorf(http.StatusBadRequest, "bad_extra_data", "extraData has metadata for %d pieces, the request has %d", len(meta), len(pieces))
	}
	m := eip712.AddPieces{ClientDataSetID: orZero(clientID), Nonce: orZero(add.Nonce), PieceData: data, PieceMetadata: meta}
	if err := dom.Verify(m, add.Signature, payer); err != nil {
		return errorf(http.StatusBadRequest, "bad_signature", "extraData's AddPieces signature is not the payer's for these pieces: %v", err)
	}
	return nil
}

// checkPullAuthorization verifies that the payer signed the addition of exactly these pieces:
// AddPieces for an existing data set of this provider, or CreateDataSet + AddPieces for a new
// one. It stands in for the reference's eth_call simulation of addPieces.
func (p *Provider) checkPullAuthorization(ctx context.Context, dataSetID uint64, raw []byte, pieces []pdp.PieceCID) error {
	dom, err := p.chain.Domain(ctx)
	if err != nil {
		return chainError("read chain info", err)
	}
	if dataSetID != 0 {
		ds, err := p.ownDataSet(ctx, dataSetID)
		if err != nil {
			return err
		}
		add, err := extradata.DecodeAddPieces(raw)
		if err != nil {
			return extraError(err)
		}
		return verifyAddAuth(dom, ds.ClientDataSetID.Int, ds.Payer, add, pieces)
	}
	create, add, err := extradata.DecodeCreateAndAdd(raw)
	if err != nil {
		return extraError(err)
	}
	prov, err := p.chain.Provider(ctx, p.address)
	if err != nil {
		return chainError("read provider registration", err)
	}
	cm := eip712.CreateDataSet{ClientDataSetID: orZero(create.ClientDataSetID), Payee: prov.Payee, Metadata: create.Metadata}
	if err := dom.Verify(cm, create.Signature, create.Payer); err != nil {
		return errorf(http.StatusBadRequest, "bad_signature", "extraData's CreateDataSet signature is not the payer's: %v", err)
	}
	return verifyAddAuth(dom, create.ClientDataSetID, create.Payer, add, pieces)
}

// runPull fetches one piece with retries.
func (p *Provider) runPull(job *pullJob, pp *pullPiece) {
	defer p.wg.Done()
	if has, err := p.store.Has(pp.piece); err == nil && has {
		p.pulls.set(job, pp, PullComplete, "", p.now())
		p.metrics.pullPieces.WithLabelValues("already_stored").Inc()
		return
	}
	select {
	case p.pullSem <- struct{}{}:
		defer func() { <-p.pullSem }()
	case <-p.ctx.Done():
		p.pulls.set(job, pp, PullFailed, "provider shut down", p.now())
		return
	}
	cfg := p.cfg.Pull
	var lastErr error
	for attempt := 1; attempt <= cfg.Attempts; attempt++ {
		p.pulls.set(job, pp, PullInProgress, "", p.now())
		err := p.fetchPiece(pp)
		if err == nil {
			p.pulls.set(job, pp, PullComplete, "", p.now())
			p.metrics.pullPieces.WithLabelValues("ok").Inc()
			p.log.Info("piece pulled", "piece", pp.piece.String(), "source", pp.source, "attempt", attempt)
			return
		}
		lastErr = err
		p.log.Warn("pull attempt failed", "piece", pp.piece.String(), "source", pp.source, "attempt", attempt, "err", err)
		if attempt == cfg.Attempts || p.ctx.Err() != nil {
			break
		}
		p.pulls.set(job, pp, PullRetrying, err.Error(), p.now())
		select {
		case <-p.ctx.Done():
		case <-time.After(cfg.RetryDelay * time.Duration(attempt)):
		}
	}
	p.pulls.set(job, pp, PullFailed, lastErr.Error(), p.now())
	p.metrics.pullPieces.WithLabelValues("failed").Inc()
}

// fetchPiece downloads one piece and stores it, verifying its commitment while ingesting.
func (p *Provider) fetchPiece(pp *pullPiece) error {
	cfg := p.cfg.Pull
	ctx, cancel := context.WithTimeout(p.ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pp.source, nil)
	if err != nil {
		return fmt.Errorf("pull request: %w", err)
	}
	start := time.Now()
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("pull %s: %w", pp.source, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("pull %s: status %s", pp.source, resp.Status)
	}
	if resp.ContentLength >= 0 && uint64(resp.ContentLength) != pp.piece.RawSize() {
		return fmt.Errorf("pull %s: Content-Length %d, piece %v has %d bytes", pp.source, resp.ContentLength, pp.piece, pp.piece.RawSize())
	}
	body := &idleCancelReader{r: resp.Body, idle: cfg.IdleTimeout, cancel: cancel}
	body.timer = time.AfterFunc(cfg.IdleTimeout, func() { body.fire() })
	defer body.timer.Stop()
	info, err := p.store.Ingest(ctx, body, &pp.piece)
	p.metrics.uploadBytes.WithLabelValues(kindPull).Add(float64(body.n))
	if err != nil {
		p.metrics.uploadDuration.WithLabelValues(kindPull, "error").Observe(time.Since(start).Seconds())
		if body.stalled() {
			return fmt.Errorf("pull %s: no bytes for %v", pp.source, cfg.IdleTimeout)
		}
		return fmt.Errorf("pull %s: %w", pp.source, err)
	}
	p.metrics.uploadDuration.WithLabelValues(kindPull, "ok").Observe(time.Since(start).Seconds())
	p.roots.add(info.Piece)
	return nil
}

// idleCancelReader cancels the fetch when no byte arrives for idle (the client side of a
// request unblocks on context cancellation).
type idleCancelReader struct {
	r      io.Reader
	idle   time.Duration
	cancel context.CancelFunc
	timer  *time.Timer
	n      uint64

	mu    sync.Mutex
	fired bool
}

func (b *idleCancelReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.n += uint64(n)
		b.timer.Reset(b.idle)
	}
	return n, err
}

func (b *idleCancelReader) fire() {
	b.mu.Lock()
	b.fired = true
	b.mu.Unlock()
	b.cancel()
}

func (b *idleCancelReader) stalled() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fired
}
