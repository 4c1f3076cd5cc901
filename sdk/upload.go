package sdk

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	fbig "github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/chain/extradata"
	"github.com/warmstore/warmstore/pdp"
)

// MaxSecondaryAttempts is how many providers an upload tries for the copies after the first
// before it reports the missing copies as failed.
const MaxSecondaryAttempts = 5

// UploadOptions tune Upload. The zero value stores DefaultCopies copies on auto-selected
// providers.
type UploadOptions struct {
	// Copies is how many providers should hold the piece; 0 means DefaultCopies.
	Copies int
	// WithCDN creates (or reuses) data sets served through the beam edge.
	WithCDN bool
	// WithIPFSIndexing creates (or reuses) data sets whose metadata has withIPFSIndexing:
	// their providers index CAR pieces and serve the blocks at /ipfs/{cid}. AddPath sets it.
	WithIPFSIndexing bool
	// Providers, when set, are used in this order and never substituted.
	Providers []common.Address
	// Exclude lists providers never to use.
	Exclude []common.Address
	// PieceMetadata is attached to the piece in every data set (at most 3 keys).
	PieceMetadata []eip712.MetadataEntry
	// Size is the payload size when known (-1 or 0 with a non-seekable reader: unknown). It
	// lets the upload send a Content-Length and check funds before sending a byte.
	Size int64
	// Progress receives events; it is called from the upload's goroutines, one at a time.
	Progress func(UploadEvent)
	// PieceCID, when the caller already knows it (e.g. from 'client commp'), skips hashing on
	// the client: the provider still computes the commitment and refuses the upload if it
	// differs, so a wrong value costs a failed upload, never a wrong commit.
	PieceCID *pdp.PieceCID
}

// UploadEventKind names a step of an upload.
type UploadEventKind string

// Upload events, in the order they usually happen.
const (
	EventProviderSelected UploadEventKind = "provider-selected"
	EventBytes            UploadEventKind = "bytes" // Bytes = payload bytes sent so far
	EventStored           UploadEventKind = "stored"
	EventPullStatus       UploadEventKind = "pull-status"
	EventPiecesAdded      UploadEventKind = "pieces-added"
	EventCopyComplete     UploadEventKind = "copy-complete"
	EventCopyFailed       UploadEventKind = "copy-failed"
)

// UploadEvent is one progress report.
type UploadEvent struct {
	Kind      UploadEventKind
	Provider  common.Address
	Role      string // "primary" or "secondary"
	Bytes     int64
	Piece     pdp.PieceCID
	DataSetID uint64
	Status    string
	Err       error
}

// CopyResult is one stored and committed copy.
type CopyResult struct {
	Provider     common.Address `json:"provider"`
	ProviderID   uint64         `json:"providerId"`
	ProviderName string         `json:"providerName"`
	Role         string         `json:"role"`
	DataSetID    uint64         `json:"dataSetId"`
	PieceID      uint64         `json:"pieceId"`
	NewDataSet   bool           `json:"newDataSet"`
	RetrievalURL string         `json:"retrievalUrl"`
	// Pulled is true when the provider fetched the piece from another provider.
	Pulled bool `json:"pulled"`
}

// FailedAttempt is a provider that did not end up holding a committed copy.
type FailedAttempt struct {
	Provider common.Address `json:"provider"`
	Role     string         `json:"role"`
	Stage    string         `json:"stage"` // "store", "pull", "commit"
	Error    string         `json:"error"`
}

// UploadResult reports an upload. Complete is true when RequestedCopies copies are committed;
// a partial upload is not an error: Failed says what went wrong where.
type UploadResult struct {
	Piece           pdp.PieceCID    `json:"pieceCid"`
	Size            uint64          `json:"size"`
	RequestedCopies int             `json:"requestedCopies"`
	Complete        bool            `json:"complete"`
	Copies          []CopyResult    `json:"copies"`
	Failed          []FailedAttempt `json:"failed"`
}

// StoreError: no provider accepted the bytes, so nothing is stored anywhere.
type StoreError struct{ Attempts []FailedAttempt }

func (e *StoreError) Error() string {
	return fmt.Sprintf("sdk: upload failed on every provider tried: %v", e.Attempts)
}

// CommitError: the piece is stored but no copy could be committed to a data set.
type CommitError struct{ Result *UploadResult }

func (e *CommitError) Error() string {
	return fmt.Sprintf("sdk: piece %v stored but not committed on any provider: %v", e.Result.Piece, e.Result.Failed)
}

// target is one provider chosen for a copy, with the data set the copy goes into.
type target struct {
	p        Provider
	ds       *chain.DataSet // nil: a new data set is created with the commit
	clientID *big.Int
}

// Upload stores the payload of r as one piece on opts.Copies distinct providers. It reads r
// once while computing the piece CID and streaming it to the first provider; the other copies
// are pulled provider-to-provider (or, when a pull fails and r is an io.ReadSeeker, uploaded
// again). Each copy is then committed: the payer signs CreateDataSet+AddPieces (new data set)
// or AddPieces (reused data set), the provider submits, and Upload waits for the chain to show
// the piece. It fails only when no provider stored the bytes (*StoreError), when none committed
// them (*CommitError), on insufficient funds (*InsufficientFundsError) or when no provider is
// reachable (ErrNoProvider).
func (c *Client) Upload(ctx context.Context, r io.Reader, opts UploadOptions) (*UploadResult, error) {
	copies := opts.Copies
	if copies <= 0 {
		copies = DefaultCopies
	}
	var mu sync.Mutex
	emit := func(ev UploadEvent) {
		if opts.Progress != nil {
			mu.Lock()
			defer mu.Unlock()
			opts.Progress(ev)
		}
	}
	size := opts.Size // -1: unknown
	if size <= 0 {
		size = -1
	}
	seeker, seekable := r.(io.ReadSeeker)
	if seekable && size < 0 {
		if end, err := seeker.Seek(0, io.SeekEnd); err == nil {
			if _, err := seeker.Seek(0, io.SeekStart); err != nil {
				return nil, fmt.Errorf("sdk: upload: rewind input: %w", err)
			}
			size = end
		} else {
			seekable = false
		}
	}
	if size > 0 && uint64(size) > pdp.MaxRawSize {
		return nil, fmt.Errorf("sdk: upload: %d bytes is more than the %d-byte piece limit", size, pdp.MaxRawSize)
	}

	candidates, err := c.candidates(ctx, opts)
	if err != nil {
		return nil, err
	}
	res := &UploadResult{RequestedCopies: copies, Copies: []CopyResult{}, Failed: []FailedAttempt{}}
	// Funds for what can be known before the bytes: the data sets to create and, with a
	// known size, the storage lockup.
	if size > 0 {
		if err := c.checkFunds(ctx, candidates[:min(copies, len(candidates))], opts.WithCDN, leavesOf(uint64(size))); err != nil {
			return nil, err
		}
	}

	// 1. Primary: stream the bytes once, computing the piece CID on the way.
	var primary *target
	var piece pdp.PieceCID
	next := 0
	for next < len(candidates) {
		t := candidates[next]
		next++
		emit(UploadEvent{Kind: EventProviderSelected, Provider: t.p.Address, Role: "primary"})
		var calc *pdp.Calc
		src := r
		if opts.PieceCID == nil {
			calc = pdp.NewCalc(0)
			src = io.TeeReader(r, calc)
		}
		body := &progressReader{r: src, onAdd: func(n int64) {
			emit(UploadEvent{Kind: EventBytes, Provider: t.p.Address, Role: "primary", Bytes: n})
		}}
		p, err := c.storeStreaming(ctx, t.p.ServiceURL, body, size, func() (pdp.PieceCID, error) {
			if calc == nil {
				return *opts.PieceCID, nil
			}
			cm, err := calc.Finish()
			return cm.Piece, err
		})
		if calc != nil {
			calc.Reset()
		}
		if err == nil {
			piece, primary = p, t
			break
		}
		res.Failed = append(res.Failed, FailedAttempt{Provider: t.p.Address, Role: "primary", Stage: "store", Error: err.Error()})
		emit(UploadEvent{Kind: EventCopyFailed, Provider: t.p.Address, Role: "primary", Err: err})
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if body.n > 0 {
			if !seekable {
				return nil, &StoreError{Attempts: res.Failed}
			}
			if _, err := seeker.Seek(0, io.SeekStart); err != nil {
				return nil, fmt.Errorf("sdk: upload: rewind input for the next provider: %w", err)
			}
		}
	}
	if primary == nil {
		return nil, &StoreError{Attempts: res.Failed}
	}
	res.Piece, res.Size = piece, piece.RawSize()
	emit(UploadEvent{Kind: EventStored, Provider: primary.p.Address, Role: "primary", Piece: piece})

	// With the size known, check funds for the copies before signing anything; when the size
	// was known up front the same check (same targets, same leaves) already ran above.
	chosen := []*target{primary}
	if size <= 0 || uint64(size) != piece.RawSize() {
		if err := c.checkFunds(ctx, candidates[:min(copies, len(candidates))], opts.WithCDN, piece.LeafCount()); err != nil {
			return nil, err
		}
	}

	// 2. Secondaries: pull from the primary; fall back to uploading again when possible.
	roles := map[*target]string{primary: "primary"}
	pulled := map[*target]bool{}
	sourceURL := primary.p.ServiceURL + "/piece/" + piece.String()
	attempts := 0
	for len(chosen) < copies && next < len(candidates) && attempts < MaxSecondaryAttempts {
		t := candidates[next]
		next++
		attempts++
		emit(UploadEvent{Kind: EventProviderSelected, Provider: t.p.Address, Role: "secondary"})
		stage, err := c.replicate(ctx, t, piece, sourceURL, opts, seeker, seekable, emit)
		if err != nil {
			res.Failed = append(res.Failed, FailedAttempt{Provider: t.p.Address, Role: "secondary", Stage: stage, Error: err.Error()})
			emit(UploadEvent{Kind: EventCopyFailed, Provider: t.p.Address, Role: "secondary", Err: err})
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		pulled[t] = stage == "pull"
		roles[t] = "secondary"
		chosen = append(chosen, t)
	}

	// 3. Commit every copy in parallel.
	type outcome struct {
		cr  CopyResult
		err error
	}
	outs := make([]outcome, len(chosen))
	var wg sync.WaitGroup
	for i, t := range chosen {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cr, err := c.commit(ctx, t, piece, opts)
			cr.Role, cr.Pulled = roles[t], pulled[t]
			if err == nil {
				emit(UploadEvent{Kind: EventPiecesAdded, Provider: t.p.Address, Role: roles[t], Piece: piece, DataSetID: cr.DataSetID})
				emit(UploadEvent{Kind: EventCopyComplete, Provider: t.p.Address, Role: roles[t], Piece: piece, DataSetID: cr.DataSetID})
			} else {
				emit(UploadEvent{Kind: EventCopyFailed, Provider: t.p.Address, Role: roles[t], Err: err})
			}
			outs[i] = outcome{cr, err}
		}()
	}
	wg.Wait()
	for i, o := range outs {
		if o.err != nil {
			res.Failed = append(res.Failed, FailedAttempt{Provider: chosen[i].p.Address, Role: roles[chosen[i]], Stage: "commit", Error: o.err.Error()})
			continue
		}
		res.Copies = append(res.Copies, o.cr)
	}
	res.Complete = len(res.Copies) >= copies
	if len(res.Copies) == 0 {
		return res, &CommitError{Result: res}
	}
	return res, nil
}

// replicate puts piece on t: a provider-to-provider pull from sourceURL, or a second upload
// from the rewound input when the pull fails. It returns the stage that succeeded or failed.
func (c *Client) replicate(ctx context.Context, t *target, piece pdp.PieceCID, sourceURL string, opts UploadOptions, seeker io.ReadSeeker, seekable bool, emit func(UploadEvent)) (string, error) {
	if has, err := c.hasPiece(ctx, t.p.ServiceURL, piece); err == nil && has {
		return "pull", nil
	}
	extra, err := c.signCommit(t, piece, opts)
	if err != nil {
		return "pull", err
	}
	req := pullRequest{ExtraData: extra.extraData, RecordKeeper: c.info.WarmStorage.Hex(),
		Pieces: []pullPiece{{PieceCID: piece.String(), SourceURL: sourceURL}}}
	if t.ds != nil {
		id := t.ds.ID
		req.DataSetID = &id
	}
	perr := c.pull(ctx, t.p.ServiceURL, req, func(s string) {
		emit(UploadEvent{Kind: EventPullStatus, Provider: t.p.Address, Role: "secondary", Piece: piece, Status: s})
	})
	if perr == nil {
		if has, err := c.hasPiece(ctx, t.p.ServiceURL, piece); err != nil || !has {
			perr = fmt.Errorf("%w: provider %s reported the pull complete but does not hold the piece", ErrProvider, t.p.ServiceURL)
		} else {
			return "pull", nil
		}
	}
	if !seekable {
		return "pull", perr
	}
	if _, err := seeker.Seek(0, io.SeekStart); err != nil {
		return "pull", errors.Join(perr, err)
	}
	body := &progressReader{r: seeker, onAdd: func(n int64) {
		emit(UploadEvent{Kind: EventBytes, Provider: t.p.Address, Role: "secondary", Bytes: n})
	}}
	got, err := c.storeStreaming(ctx, t.p.ServiceURL, body, int64(piece.RawSize()), func() (pdp.PieceCID, error) { return piece, nil })
	if err != nil {
		return "store", fmt.Errorf("pull failed (%v); upload failed too: %w", perr, err)
	}
	if got != piece {
		return "store", fmt.Errorf("%w: the input changed between copies", ErrVerification)
	}
	emit(UploadEvent{Kind: EventStored, Provider: t.p.Address, Role: "secondary", Piece: piece})
	return "store", nil
}

// signedCommit is the payer's authorization for one copy, ready for the provider.
type signedCommit struct {
	extraData []byte
	clientID  *big.Int
}

// signCommit signs AddPieces (and CreateDataSet for a new data set) for piece on t. The same
// extraData serves the pull (which validates it) and the commit.
func (c *Client) signCommit(t *target, piece pdp.PieceCID, opts UploadOptions) (signedCommit, error) {
	if t.clientID == nil {
		if t.ds != nil {
			t.clientID = t.ds.ClientDataSetID.Int
		} else {
			t.clientID = randomUint256()
		}
	}
	nonce := randomUint256()
	meta := [][]eip712.MetadataEntry{nonNilMeta(opts.PieceMetadata)}
	addSig, err := c.domain.Sign(c.key, eip712.AddPieces{ClientDataSetID: t.clientID, Nonce: nonce,
		PieceData: [][]byte{piece.CID().Bytes()}, PieceMetadata: meta})
	if err != nil {
		return signedCommit{}, fmt.Errorf("sdk: sign AddPieces: %w", err)
	}
	addX := extradata.AddPieces{Nonce: nonce, PieceMetadata: meta, Signature: addSig}
	add, err := extradata.EncodeAddPieces(addX)
	if err != nil {
		return signedCommit{}, err
	}
	if t.ds != nil {
		return signedCommit{extraData: add, clientID: t.clientID}, nil
	}
	dsMeta := c.dataSetMetadata(opts.WithCDN, opts.WithIPFSIndexing)
	createSig, err := c.domain.Sign(c.key, eip712.CreateDataSet{ClientDataSetID: t.clientID, Payee: t.p.Payee, Metadata: dsMeta})
	if err != nil {
		return signedCommit{}, fmt.Errorf("sdk: sign CreateDataSet: %w", err)
	}
	both, err := extradata.EncodeCreateAndAdd(extradata.CreateDataSet{Payer: c.address, ClientDataSetID: t.clientID, Metadata: dsMeta, Signature: createSig}, addX)
	if err != nil {
		return signedCommit{}, err
	}
	return signedCommit{extraData: both, clientID: t.clientID}, nil
}

func nonNilMeta(m []eip712.MetadataEntry) []eip712.MetadataEntry {
	if m == nil {
		return []eip712.MetadataEntry{}
	}
	return m
}

func (c *Client) dataSetMetadata(withCDN, withIPFS bool) []eip712.MetadataEntry {
	m := []eip712.MetadataEntry{{Key: "source", Value: c.cfg.Source}}
	if withCDN {
		m = append(m, eip712.MetadataEntry{Key: "withCDN", Value: ""})
	}
	if withIPFS {
		m = append(m, eip712.MetadataEntry{Key: IPFSIndexingKey, Value: ""})
	}
	return m
}

func randomUint256() *big.Int {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("sdk: crypto/rand failed: %v", err))
	}
	return new(big.Int).SetBytes(b[:])
}

type addPiecesRequest struct {
	RecordKeeper string          `json:"recordKeeper,omitempty"`
	Pieces       []addPieceEntry `json:"pieces"`
	ExtraData    hexutil.Bytes   `json:"extraData"`
}

type addPieceEntry struct {
	PieceCID  string          `json:"pieceCid"`
	SubPieces []subPieceEntry `json:"subPieces"`
}

type subPieceEntry struct {
	SubPieceCID string `json:"subPieceCid"`
}

// commit asks t's provider to add piece to its data set (creating it when needed) and waits
// until the chain shows the piece.
func (c *Client) commit(ctx context.Context, t *target, piece pdp.PieceCID, opts UploadOptions) (CopyResult, error) {
	cr := CopyResult{Provider: t.p.Address, ProviderID: t.p.ID, ProviderName: t.p.Name,
		RetrievalURL: t.p.ServiceURL + "/piece/" + piece.String(), NewDataSet: t.ds == nil}
	signed, err := c.signCommit(t, piece, opts)
	if err != nil {
		return cr, err
	}
	body := addPiecesRequest{Pieces: []addPieceEntry{{PieceCID: piece.String(), SubPieces: []subPieceEntry{{SubPieceCID: piece.String()}}}}, ExtraData: signed.extraData}
	u := t.p.ServiceURL + "/pdp/data-sets/create-and-add"
	if t.ds != nil {
		u = fmt.Sprintf("%s/pdp/data-sets/%d/pieces", t.p.ServiceURL, t.ds.ID)
	} else {
		body.RecordKeeper = c.info.WarmStorage.Hex()
	}
	resp, _, err := c.call(ctx, http.MethodPost, u, "commit", body, http.StatusCreated, http.StatusOK, http.StatusAccepted)
	if err != nil {
		return cr, c.explainCommitError(ctx, err)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		if err := c.checkTxStatus(ctx, t.p.ServiceURL, loc); err != nil {
			return cr, err
		}
	}
	// The chain is the source of truth: wait until it lists the piece in the data set.
	ctx, cancel := context.WithTimeout(ctx, c.cfg.WaitTimeout)
	defer cancel()
	for {
		ds, pieceID, err := c.findCommitted(ctx, t, signed.clientID, piece)
		if err == nil {
			cr.DataSetID, cr.PieceID = ds.ID, pieceID
			if t.ds == nil {
				t.ds = ds
			}
			return cr, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return cr, err
		}
		if err := sleepCtx(ctx, c.cfg.PollInterval); err != nil {
			return cr, fmt.Errorf("sdk: provider %s accepted the commit but the chain does not show piece %v: %w", t.p.ServiceURL, piece, err)
		}
	}
}

// checkTxStatus reads a status URL once and fails when it reports a failed transaction.
func (c *Client) checkTxStatus(ctx context.Context, base, loc string) error {
	u, err := resolve(base, loc)
	if err != nil {
		return nil
	}
	_, b, err := c.call(ctx, http.MethodGet, u, "transaction status", nil, http.StatusOK)
	if err != nil {
		return nil // the chain check below decides
	}
	var st map[string]any
	if json.Unmarshal(b, &st) != nil {
		return nil
	}
	failed := st["txStatus"] == "failed" || st["ok"] == false || st["addMessageOk"] == false
	if failed {
		return fmt.Errorf("%w: provider %s: transaction failed: %s", ErrProvider, base, string(b))
	}
	return nil
}

// findCommitted looks the committed piece up on the chain.
func (c *Client) findCommitted(ctx context.Context, t *target, clientID *big.Int, piece pdp.PieceCID) (*chain.DataSet, uint64, error) {
	ds := t.ds
	if ds == nil {
		sets, err := c.chain.DataSets(ctx, t.p.Address, c.address)
		if err != nil {
			return nil, 0, fmt.Errorf("sdk: list data sets: %w", err)
		}
		for i := range sets {
			if sets[i].ClientDataSetID.Int != nil && sets[i].ClientDataSetID.Int.Cmp(clientID) == 0 {
				ds = &sets[i]
			}
		}
		if ds == nil {
			return nil, 0, ErrNotFound
		}
	}
	pieces, err := c.chain.Pieces(ctx, ds.ID)
	if err != nil {
		return nil, 0, fmt.Errorf("sdk: list pieces of data set %d: %w", ds.ID, err)
	}
	for i := len(pieces) - 1; i >= 0; i-- {
		if pieces[i].CID == piece && !pieces[i].Removed {
			return ds, pieces[i].ID, nil
		}
	}
	return nil, 0, ErrNotFound
}

// explainCommitError turns a provider's refusal into an actionable error where it can.
func (c *Client) explainCommitError(ctx context.Context, err error) error {
	var pe *ProviderError
	if !errors.As(err, &pe) {
		return err
	}
	if acc, aerr := c.chain.Account(ctx, c.address); aerr == nil && containsAny(pe.Body, "insufficient", "funds") {
		return fmt.Errorf("%w (payments available: %s USDFC; run 'client pay deposit')", err, FormatUSDFC(acc.Payments.Available))
	}
	if containsAny(pe.Body, "approve") {
		return fmt.Errorf("%w: %w (run 'client pay approve')", err, ErrNotApproved)
	}
	return err
}

// candidates returns the providers to try in order: explicit ones, or healthy ones with a
// reusable data set first, then by latency.
func (c *Client) candidates(ctx context.Context, opts UploadOptions) ([]*target, error) {
	all, err := c.Providers(ctx)
	if err != nil {
		return nil, err
	}
	sets, err := c.chain.DataSets(ctx, common.Address{}, c.address)
	if err != nil {
		return nil, fmt.Errorf("sdk: list data sets: %w", err)
	}
	reuse := map[common.Address]*chain.DataSet{}
	for i := range sets {
		ds := &sets[i]
		if ds.EndEpoch != 0 || ds.Deleted || !c.metadataMatches(ds.Metadata, opts.WithCDN, opts.WithIPFSIndexing) {
			continue
		}
		if cur, ok := reuse[ds.Provider]; !ok || ds.ID < cur.ID {
			reuse[ds.Provider] = ds
		}
	}
	byAddr := map[common.Address]Provider{}
	for _, p := range all {
		byAddr[p.Address] = p
	}
	var out []*target
	if len(opts.Providers) > 0 {
		for _, a := range opts.Providers {
			p, ok := byAddr[a]
			if !ok {
				return nil, fmt.Errorf("%w: provider %s is not registered", ErrNotFound, a.Hex())
			}
			out = append(out, &target{p: p, ds: reuse[a]})
		}
		return out, nil
	}
	var unhealthy []string
	for _, p := range all {
		if slices.Contains(opts.Exclude, p.Address) {
			continue
		}
		if !p.Healthy {
			unhealthy = append(unhealthy, fmt.Sprintf("%s (%s): %s", p.Name, p.ServiceURL, p.Error))
			continue
		}
		out = append(out, &target{p: p, ds: reuse[p.Address]})
	}
	if len(out) == 0 {
		if len(all) == 0 {
			return nil, fmt.Errorf("%w: the registry lists no provider (is the devnet running with providers?)", ErrNoProvider)
		}
		return nil, fmt.Errorf("%w: %d registered, none answered /pdp/ping: %v", ErrNoProvider, len(all), unhealthy)
	}
	// Stable: providers with a reusable data set first, latency order otherwise.
	slices.SortStableFunc(out, func(a, b *target) int {
		switch {
		case a.ds != nil && b.ds == nil:
			return -1
		case a.ds == nil && b.ds != nil:
			return 1
		}
		return 0
	})
	return out, nil
}

func (c *Client) metadataMatches(m []eip712.MetadataEntry, withCDN, withIPFS bool) bool {
	src, cdn, ipfs := "", false, false
	for _, e := range m {
		switch e.Key {
		case "source":
			src = e.Value
		case "withCDN":
			cdn = true
		case IPFSIndexingKey:
			ipfs = true
		}
	}
	return src == c.cfg.Source && cdn == withCDN && ipfs == withIPFS
}

// leavesOf is the leaf count of a piece of rawSize bytes (what the chain charges for).
func leavesOf(rawSize uint64) uint64 {
	p, err := pdp.NewPieceCID(pdp.Node{}, max(rawSize, 1))
	if err != nil {
		return 0
	}
	return p.LeafCount()
}

// checkFunds checks that the payer's available funds cover committing a piece of leaves
// leaves to each target, and that the warm-storage service is approved. It mirrors the
// chain's rules: a new data set needs a month of data-set fee plus the lifecycle reserve (plus
// the CDN lockups), every add pays its fees, and the rail's streaming lockup grows by the rate
// increase times the lockup period.
func (c *Client) checkFunds(ctx context.Context, targets []*target, withCDN bool, leaves uint64) error {
	need := fbig.Zero()
	for _, t := range targets {
		oldLeaves := uint64(0)
		if t.ds == nil {
			need = fbig.Sum(need, chain.DataSetFeeMonth, chain.LifecycleReserveTarget, chain.CreateDataSetFee)
			if withCDN {
				need = fbig.Sum(need, chain.DefaultCDNLockup, chain.DefaultCacheMissLockup)
			}
		} else {
			oldLeaves = t.ds.LeafCount
		}
		delta := fbig.Sub(chain.StorageRate(oldLeaves+leaves), chain.StorageRate(oldLeaves))
		need = fbig.Sum(need, chain.AddPiecesBaseFee, chain.AddPiecesPerPieceFee, fbig.Mul(delta, fbig.NewInt(int64(chain.PDPLockupPeriod))))
	}
	acc, err := c.chain.Account(ctx, c.address)
	if err != nil {
		return fmt.Errorf("sdk: read account: %w", err)
	}
	if acc.Payments.Available.LessThan(need) {
		return &InsufficientFundsError{Op: fmt.Sprintf("storing %d cop%s", len(targets), plural(len(targets), "y", "ies")), Need: need, Available: acc.Payments.Available}
	}
	ap, err := c.chain.Approval(ctx, c.address, c.info.WarmStorage)
	if err != nil {
		return fmt.Errorf("sdk: read operator approval: %w", err)
	}
	if !ap.Approved || ap.MaxLockupPeriod < chain.PDPLockupPeriod {
		return fmt.Errorf("%w: approve %s with a max lockup period of at least %d epochs (client pay approve)", ErrNotApproved, c.info.WarmStorage.Hex(), chain.PDPLockupPeriod)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(strings.ToLower(s), x) {
			return true
		}
	}
	return false
}
