package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/warmstore/warmstore/pdp"
)

// This file is the client of the provider's PDP HTTP API (reference curio-pdp-provider.md §1.2)
// plus the range-proof route.

// call sends one request with an optional JSON body and returns the response and its body
// (at most 1 MiB) when the status is one of want; otherwise a *ProviderError.
func (c *Client) call(ctx context.Context, method, u, op string, body any, want ...int) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, fmt.Errorf("sdk: %s: encode request: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("sdk: %s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("sdk: %s: %s: %w", op, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("sdk: %s: read answer: %w", op, err)
	}
	if !slices.Contains(want, resp.StatusCode) {
		return nil, nil, &ProviderError{URL: u, Op: op, Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	return resp, b, nil
}

// resolve makes a Location header absolute against base.
func resolve(base, loc string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	l, err := url.Parse(loc)
	if err != nil {
		return "", err
	}
	return b.ResolveReference(l).String(), nil
}

// progressReader counts bytes read and reports them.
type progressReader struct {
	r     io.Reader
	n     int64
	onAdd func(total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.n += int64(n)
		if p.onAdd != nil {
			p.onAdd(p.n)
		}
	}
	return n, err
}

// storeStreaming uploads body with the streaming flow: POST /pdp/piece/uploads (201 +
// Location), PUT the bytes (204), then POST the piece CID computed while sending (200). The
// piece CID is known only once body is drained, so compute is called after the PUT.
func (c *Client) storeStreaming(ctx context.Context, base string, body io.Reader, size int64, compute func() (pdp.PieceCID, error)) (pdp.PieceCID, error) {
	resp, _, err := c.call(ctx, http.MethodPost, base+"/pdp/piece/uploads", "create upload", nil, http.StatusCreated)
	if err != nil {
		return pdp.PieceCID{}, err
	}
	loc, err := resolve(base, resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return pdp.PieceCID{}, fmt.Errorf("sdk: provider %s: upload created without a usable Location header", base)
	}
	// A provider that stops reading the body for the stall timeout is abandoned. Once the body
	// is sent, it gets twice the stall timeout plus a second per 50 MB to make the piece
	// durable and answer.
	putCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	sr := newStallReader(body, c.cfg.StallTimeout, cancel)
	sr.tail = 2*c.cfg.StallTimeout + time.Duration(max(size, 0)/50e6)*time.Second
	defer sr.stop()
	req, err := http.NewRequestWithContext(putCtx, http.MethodPut, loc, sr)
	if err != nil {
		return pdp.PieceCID{}, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if size > 0 {
		req.ContentLength = size
	}
	put, err := c.http.Do(req)
	if err != nil {
		if sr.isStalled() {
			return pdp.PieceCID{}, fmt.Errorf("%w: provider %s stopped reading the upload, or did not answer after it, for %v", ErrStall, base, c.cfg.StallTimeout)
		}
		return pdp.PieceCID{}, fmt.Errorf("sdk: upload to %s: %w", base, err)
	}
	pb, _ := io.ReadAll(io.LimitReader(put.Body, 1<<16))
	put.Body.Close()
	if put.StatusCode != http.StatusNoContent && put.StatusCode != http.StatusOK {
		return pdp.PieceCID{}, &ProviderError{URL: loc, Op: "upload", Status: put.StatusCode, Body: strings.TrimSpace(string(pb))}
	}
	piece, err := compute()
	if err != nil {
		return pdp.PieceCID{}, err
	}
	if _, _, err := c.call(ctx, http.MethodPost, loc, "finalize upload", map[string]string{"pieceCid": piece.String()}, http.StatusOK, http.StatusCreated, http.StatusNoContent); err != nil {
		return piece, err
	}
	return piece, nil
}

// hasPiece asks GET /pdp/piece?pieceCid= whether the provider holds piece.
func (c *Client) hasPiece(ctx context.Context, base string, piece pdp.PieceCID) (bool, error) {
	_, _, err := c.call(ctx, http.MethodGet, base+"/pdp/piece?pieceCid="+piece.String(), "find piece", nil, http.StatusOK)
	if err != nil {
		var pe *ProviderError
		if errors.As(err, &pe) && pe.Status == http.StatusNotFound {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

type pullPiece struct {
	PieceCID  string `json:"pieceCid"`
	SourceURL string `json:"sourceUrl"`
	Status    string `json:"status,omitempty"`
}

type pullRequest struct {
	ExtraData    hexutil.Bytes `json:"extraData"`
	DataSetID    *uint64       `json:"dataSetId,omitempty"`
	RecordKeeper string        `json:"recordKeeper,omitempty"`
	Pieces       []pullPiece   `json:"pieces"`
}

type pullStatus struct {
	Status string      `json:"status"`
	Pieces []pullPiece `json:"pieces"`
}

// pull asks base to fetch piece from source (provider to provider) and waits until the pull
// is complete or failed. The request is idempotent, so polling repeats it.
func (c *Client) pull(ctx context.Context, base string, req pullRequest, onStatus func(string)) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.WaitTimeout)
	defer cancel()
	last := ""
	for {
		_, b, err := c.call(ctx, http.MethodPost, base+"/pdp/piece/pull", "pull", req, http.StatusOK, http.StatusCreated, http.StatusAccepted)
		if err != nil {
			return err
		}
		var st pullStatus
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("sdk: provider %s: pull status: %w", base, err)
		}
		if st.Status != last && onStatus != nil {
			onStatus(st.Status)
		}
		last = st.Status
		switch st.Status {
		case "complete":
			return nil
		case "failed":
			return fmt.Errorf("%w: provider %s could not pull the piece: %s", ErrProvider, base, string(b))
		}
		if err := sleepCtx(ctx, c.cfg.PollInterval); err != nil {
			return fmt.Errorf("sdk: provider %s: pull not finished (%s): %w", base, last, err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fetchProof asks base for the range proof of raw bytes [start, end) of piece.
func (c *Client) fetchProof(ctx context.Context, base string, piece pdp.PieceCID, start, end uint64) (*RangeProof, error) {
	u := fmt.Sprintf("%s/pdp/piece/%s/proof?start=%d&end=%d", base, piece, start, end)
	_, b, err := c.call(ctx, http.MethodGet, u, "range proof", nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var rp RangeProof
	if err := json.Unmarshal(b, &rp); err != nil {
		return nil, fmt.Errorf("%w: provider %s: %v", ErrBadProof, base, err)
	}
	return &rp, nil
}

// stallReader fails a read that waits longer than the stall timeout, by cancelling the
// request's context.
type stallReader struct {
	r       io.Reader
	timeout time.Duration
	cancel  context.CancelFunc
	mu      sync.Mutex
	timer   *time.Timer
	stalled bool
	// tail is how long the other side may take after the body's end (0: unbounded); an
	// upload's answer waits for the provider to make the piece durable.
	tail time.Duration
}

func newStallReader(r io.Reader, timeout time.Duration, cancel context.CancelFunc) *stallReader {
	s := &stallReader{r: r, timeout: timeout, cancel: cancel}
	s.timer = time.AfterFunc(timeout, func() {
		s.mu.Lock()
		s.stalled = true
		s.mu.Unlock()
		cancel()
	})
	return s
}

func (s *stallReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err == io.EOF {
		if s.tail > 0 {
			s.timer.Reset(s.tail)
		} else {
			s.timer.Stop()
		}
	} else if n > 0 {
		s.timer.Reset(s.timeout)
	}
	if err != nil && err != io.EOF {
		if s.isStalled() {
			return n, fmt.Errorf("%w: no byte for %v", ErrStall, s.timeout)
		}
	}
	return n, err
}

func (s *stallReader) isStalled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalled
}

func (s *stallReader) stop() { s.timer.Stop() }

// fetchBytes reads exactly n bytes at off from a piece URL (a provider's /piece/{cid} or the
// edge), with a Range request unless the whole piece is asked for. A short body is
// ErrTruncated, no progress for the stall timeout ErrStall.
func (c *Client) fetchBytes(ctx context.Context, u string, off, n, pieceSize uint64, buf []byte) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	ranged := off != 0 || n != pieceSize
	if ranged {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	}
	// The stall clock covers the wait for the headers too.
	sr := newStallReader(nil, c.cfg.StallTimeout, cancel)
	defer sr.stop()
	resp, err := c.http.Do(req)
	if err != nil {
		if sr.isStalled() {
			return nil, fmt.Errorf("%w: %s sent no answer for %v", ErrStall, u, c.cfg.StallTimeout)
		}
		return nil, fmt.Errorf("sdk: fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	want := http.StatusOK
	if ranged {
		want = http.StatusPartialContent
	}
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return nil, &ProviderError{URL: u, Op: "fetch piece bytes", Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	sr.r = resp.Body
	sr.timer.Reset(c.cfg.StallTimeout)
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	got, err := io.ReadFull(sr, buf)
	if err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return nil, fmt.Errorf("%w: %s sent %d of %d bytes", ErrTruncated, u, got, n)
		}
		return nil, fmt.Errorf("sdk: fetch %s after %d bytes: %w", u, got, err)
	}
	return buf, nil
}
