package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/warmstore/warmstore/pdp"
)

// DownloadOptions tune Download and DownloadRange.
type DownloadOptions struct {
	// Sources are provider base URLs to try first (e.g. "http://127.0.0.1:7701"), before the
	// providers the chain says hold the piece.
	Sources []string
	// NoBeam skips the CDN edge even when Config.BeamURL is set.
	NoBeam bool
	// Progress receives events from the download's goroutine.
	Progress func(DownloadEvent)
}

// DownloadEventKind names a download event.
type DownloadEventKind string

// Download events.
const (
	// EventVerified: Bytes more bytes were verified and written (Total so far).
	EventVerified DownloadEventKind = "verified"
	// EventSourceFailed: a copy failed (wrong bytes, truncation, stall, absence) and is
	// avoided from now on.
	EventSourceFailed DownloadEventKind = "source-failed"
)

// DownloadEvent is one progress report.
type DownloadEvent struct {
	Kind   DownloadEventKind
	Source string
	Bytes  uint64
	Total  uint64
	Err    error
}

// SourceFailure records a copy that was abandoned and why.
type SourceFailure struct {
	Source string `json:"source"`
	Error  string `json:"error"`
}

// DownloadResult reports a finished download.
type DownloadResult struct {
	Piece pdp.PieceCID `json:"pieceCid"`
	Start uint64       `json:"start"`
	End   uint64       `json:"end"`
	Bytes uint64       `json:"bytes"`
	// Sources that delivered verified bytes, in first-use order.
	Sources []string `json:"sources"`
	// Failures are the copies abandoned on the way.
	Failures []SourceFailure `json:"failures"`
	// RangeProofs is how many range proofs were checked (0 for a whole small piece).
	RangeProofs int `json:"rangeProofs"`
}

// source is one place the piece's bytes can come from.
type source struct {
	name      string // for reports
	pieceURL  string // GET with Range
	proofBase string // provider base URL for range proofs; "" when the source has none
	bad       bool
	noProof   bool
}

// Download writes the whole piece to w. Bytes are fetched in verified windows
// (Config.Window): each window is hashed up to the piece root with a range proof before it is
// written, so w only ever receives verified bytes. A copy that sends a wrong byte, truncates,
// stalls or lacks the piece is abandoned and the window is fetched from the next copy (the
// other providers holding the piece, then the beam edge). It fails with ErrNoCopy when every
// copy failed.
func (c *Client) Download(ctx context.Context, piece pdp.PieceCID, w io.Writer, opts DownloadOptions) (*DownloadResult, error) {
	return c.DownloadRange(ctx, piece, 0, piece.RawSize(), w, opts)
}

// DownloadRange writes raw bytes [start, end) of the piece to w, verified with Merkle proofs
// from the providers (GET /pdp/piece/{cid}/proof): only the fr32 chunks covering the range
// are downloaded, then hashed together with the two boundary proofs up to the piece root.
func (c *Client) DownloadRange(ctx context.Context, piece pdp.PieceCID, start, end uint64, w io.Writer, opts DownloadOptions) (*DownloadResult, error) {
	if err := piece.Validate(); err != nil {
		return nil, fmt.Errorf("sdk: download: %w", err)
	}
	if _, _, _, _, err := rangeSpan(piece, start, end); err != nil {
		return nil, err
	}
	srcs, err := c.sources(ctx, piece, opts)
	if err != nil {
		return nil, err
	}
	d := &downloader{c: c, piece: piece, srcs: srcs, opts: opts,
		res: &DownloadResult{Piece: piece, Start: start, End: end, Sources: []string{}, Failures: []SourceFailure{}}}
	return d.run(ctx, start, end, w)
}

type downloader struct {
	c     *Client
	piece pdp.PieceCID
	srcs  []*source
	opts  DownloadOptions
	res   *DownloadResult
}

func (d *downloader) fail(s *source, err error) {
	s.bad = true
	d.res.Failures = append(d.res.Failures, SourceFailure{Source: s.name, Error: err.Error()})
	if d.opts.Progress != nil {
		d.opts.Progress(DownloadEvent{Kind: EventSourceFailed, Source: s.name, Err: err})
	}
}

type window struct {
	data     []byte // verified bytes to write
	err      error
	fallback bool
}

func (d *downloader) run(ctx context.Context, start, end uint64, w io.Writer) (*DownloadResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	win := d.c.cfg.Window
	// A producer fetches and verifies the next window while the caller's writer drains the
	// previous one. Only the producer touches the sources.
	ch := make(chan window, 1)
	go func() {
		defer close(ch)
		for ws := start; ws < end; {
			we := min(end, (ws/win+1)*win)
			data, err := d.window(ctx, ws, we)
			if errors.Is(err, errNoProofSource) {
				select {
				case ch <- window{fallback: true}:
				case <-ctx.Done():
				}
				return
			}
			select {
			case ch <- window{data: data, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
			ws = we
		}
	}()
	for wd := range ch {
		if wd.fallback {
			if err := d.wholeFallback(ctx, start+d.res.Bytes, end, w); err != nil {
				return d.res, err
			}
			return d.res, nil
		}
		if wd.err != nil {
			return d.res, wd.err
		}
		if _, err := w.Write(wd.data); err != nil {
			return d.res, fmt.Errorf("sdk: download: write: %w", err)
		}
		d.res.Bytes += uint64(len(wd.data))
		if d.opts.Progress != nil {
			d.opts.Progress(DownloadEvent{Kind: EventVerified, Bytes: uint64(len(wd.data)), Total: d.res.Bytes})
		}
	}
	if err := ctx.Err(); err != nil {
		return d.res, err
	}
	return d.res, nil
}

var errNoProofSource = errors.New("sdk: no source serves range proofs")

// window fetches raw bytes [ws, we) and verifies them, switching sources on failure.
func (d *downloader) window(ctx context.Context, ws, we uint64) ([]byte, error) {
	rawStart, rawEnd, _, _, err := rangeSpan(d.piece, ws, we)
	if err != nil {
		return nil, err
	}
	var rp *RangeProof
	if needsProof(d.piece, rawStart, rawEnd) {
		if rp, err = d.proof(ctx, rawStart, rawEnd); err != nil {
			return nil, err
		}
	}
	for _, s := range d.srcs {
		if s.bad {
			continue
		}
		data, err := d.c.fetchBytes(ctx, s.pieceURL, rawStart, rawEnd-rawStart, d.piece.RawSize(), nil)
		if err == nil {
			err = verifySpan(d.piece, rawStart, data, rp)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, ErrBadProof) {
				return nil, err
			}
			d.fail(s, err)
			continue
		}
		d.used(s)
		return data[ws-rawStart : we-rawStart], nil
	}
	return nil, d.noCopy()
}

func (d *downloader) noCopy() error {
	var b strings.Builder
	for _, f := range d.res.Failures {
		fmt.Fprintf(&b, "\n  %s: %s", f.Source, f.Error)
	}
	if len(d.srcs) == 0 {
		return fmt.Errorf("%w: no provider is known to hold %v (pass a source, or check the CID)", ErrNoCopy, d.piece)
	}
	return fmt.Errorf("%w: %v: every copy failed:%s", ErrNoCopy, d.piece, b.String())
}

func (d *downloader) used(s *source) {
	for _, n := range d.res.Sources {
		if n == s.name {
			return
		}
	}
	d.res.Sources = append(d.res.Sources, s.name)
}

// proof gets a checked range proof from the first provider that serves a valid one.
func (d *downloader) proof(ctx context.Context, rawStart, rawEnd uint64) (*RangeProof, error) {
	for _, s := range d.srcs {
		if s.noProof || s.proofBase == "" {
			continue
		}
		rp, err := d.c.fetchProof(ctx, s.proofBase, d.piece, rawStart, rawEnd)
		if err == nil {
			err = checkRangeProof(d.piece, rp, rawStart, rawEnd)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			s.noProof = true
			// A provider that proves wrongly is not trusted for bytes either; one that merely
			// lacks the route (404 on a piece it serves) may still serve bytes.
			if errors.Is(err, ErrBadProof) {
				d.fail(s, err)
			}
			continue
		}
		d.res.RangeProofs++
		return rp, nil
	}
	return nil, errNoProofSource
}

// wholeFallback is used when no source serves range proofs (providers without the route):
// the whole piece is streamed once into a temporary file while its commitment is computed and,
// when it matches, the asked bytes are copied out. w still only receives verified bytes.
func (d *downloader) wholeFallback(ctx context.Context, start, end uint64, w io.Writer) error {
	for _, s := range d.srcs {
		if s.bad {
			continue
		}
		err := d.wholeFrom(ctx, s, start, end, w)
		if err == nil {
			d.used(s)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var we *writeError
		if errors.As(err, &we) {
			return err
		}
		d.fail(s, err)
	}
	return d.noCopy()
}

type writeError struct{ err error }

func (e *writeError) Error() string { return fmt.Sprintf("sdk: download: write: %v", e.err) }
func (e *writeError) Unwrap() error { return e.err }

func (d *downloader) wholeFrom(ctx context.Context, s *source, start, end uint64, w io.Writer) error {
	tmp, err := os.CreateTemp("", "warmstore-download-*")
	if err != nil {
		return &writeError{err}
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	calc := pdp.NewCalc(0)
	defer calc.Reset()
	raw := d.piece.RawSize()
	const chunk = 4 << 20
	buf := make([]byte, chunk)
	for off := uint64(0); off < raw; {
		n := min(uint64(chunk), raw-off)
		data, err := d.c.fetchBytes(ctx, s.pieceURL, off, n, raw, buf)
		if err != nil {
			return err
		}
		_, _ = calc.Write(data)
		if _, err := tmp.Write(data); err != nil {
			return &writeError{err}
		}
		off += n
	}
	cm, err := calc.Finish()
	if err != nil {
		return err
	}
	if cm.Piece != d.piece {
		return fmt.Errorf("%w: %s sent bytes hashing to %v", ErrVerification, s.name, cm.Piece)
	}
	if _, err := tmp.Seek(int64(start), io.SeekStart); err != nil {
		return &writeError{err}
	}
	n, err := io.CopyN(w, tmp, int64(end-start))
	d.res.Bytes += uint64(n)
	if err != nil {
		return &writeError{err}
	}
	if d.opts.Progress != nil {
		d.opts.Progress(DownloadEvent{Kind: EventVerified, Bytes: uint64(n), Total: d.res.Bytes})
	}
	return nil
}

// sources lists where the piece can be fetched: explicit sources, then the providers of the
// payer's data sets that hold the piece (fastest first), then the edge. When the chain knows no
// holder, every healthy provider is tried.
func (c *Client) sources(ctx context.Context, piece pdp.PieceCID, opts DownloadOptions) ([]*source, error) {
	var out []*source
	seen := map[string]bool{}
	add := func(base string) {
		base = strings.TrimRight(base, "/")
		if base == "" || seen[base] {
			return
		}
		seen[base] = true
		out = append(out, &source{name: base, pieceURL: base + "/piece/" + piece.String(), proofBase: base})
	}
	for _, s := range opts.Sources {
		add(s)
	}
	provs, err := c.cachedProviders(ctx)
	if err != nil {
		return nil, err
	}
	holders, err := c.holders(ctx, piece)
	if err != nil {
		return nil, err
	}
	for _, p := range provs { // latency order, healthy first
		if p.Healthy && holders[p.Address] {
			add(p.ServiceURL)
		}
	}
	for _, p := range provs {
		if holders[p.Address] {
			add(p.ServiceURL)
		}
	}
	if len(holders) == 0 {
		for _, p := range provs {
			if p.Healthy {
				add(p.ServiceURL)
			}
		}
	}
	if c.cfg.BeamURL != "" && !opts.NoBeam {
		out = append(out, &source{name: c.cfg.BeamURL, pieceURL: fmt.Sprintf("%s/%s/%s", c.cfg.BeamURL, c.address.Hex(), piece)})
	}
	return out, nil
}

// holders returns the providers whose data sets (of this payer) list the piece live.
func (c *Client) holders(ctx context.Context, piece pdp.PieceCID) (map[common.Address]bool, error) {
	sets, err := c.chain.DataSets(ctx, common.Address{}, c.address)
	if err != nil {
		return nil, fmt.Errorf("sdk: list data sets: %w", err)
	}
	out := map[common.Address]bool{}
	for _, ds := range sets {
		if out[ds.Provider] {
			continue
		}
		pieces, err := c.chain.Pieces(ctx, ds.ID)
		if err != nil {
			return nil, fmt.Errorf("sdk: list pieces of data set %d: %w", ds.ID, err)
		}
		for _, p := range pieces {
			if p.CID == piece && !p.Removed {
				out[ds.Provider] = true
				break
			}
		}
	}
	return out, nil
}
