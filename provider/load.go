package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// LoadOptions tune LoadTest. The zero value is usable.
type LoadOptions struct {
	// Requests is the total number of range requests; 0 means one per worker.
	Requests int
	// RangeSize is the length of each range in bytes; 0 means 1 MiB (clamped to the piece).
	RangeSize int64
	// Client sends the requests; nil means a client whose pool holds one connection per worker.
	Client *http.Client
	// Seed makes the range offsets reproducible.
	Seed uint64
}

// LoadResult is what LoadTest measured.
type LoadResult struct {
	URL         string
	Concurrency int
	Requests    int
	Succeeded   int
	Failed      int
	SuccessRate float64 // Succeeded / Requests
	Bytes       int64   // body bytes received by successful requests
	Duration    time.Duration
	// Time to first byte of the body, over successful requests.
	TTFBP50, TTFBP99, TTFBMax time.Duration
	// Errors counts failures by description (status or error text), at most 20 kinds.
	Errors map[string]int
}

// String is a one-line summary.
func (r LoadResult) String() string {
	mbps := 0.0
	if r.Duration > 0 {
		mbps = float64(r.Bytes) / r.Duration.Seconds() / (1 << 20)
	}
	return fmt.Sprintf("%d requests (%d concurrent): %d ok, %d failed (success %.2f%%), ttfb p50 %v p99 %v max %v, %.1f MiB/s over %v",
		r.Requests, r.Concurrency, r.Succeeded, r.Failed, 100*r.SuccessRate,
		r.TTFBP50.Round(time.Microsecond), r.TTFBP99.Round(time.Microsecond), r.TTFBMax.Round(time.Microsecond), mbps, r.Duration.Round(time.Millisecond))
}

// LoadTest fires concurrency workers at once against url (a /piece/{cid} URL or any server
// that answers Range requests), each sending Range requests for RangeSize bytes at random
// offsets until Requests have been sent. A request succeeds when it answers 206 with exactly
// the requested bytes. It measures the time to the first body byte of each request.
func LoadTest(ctx context.Context, url string, concurrency int, opts LoadOptions) (LoadResult, error) {
	if concurrency <= 0 {
		return LoadResult{}, errors.New("provider: load test needs concurrency ≥ 1")
	}
	if opts.Requests <= 0 {
		opts.Requests = concurrency
	}
	if opts.RangeSize <= 0 {
		opts.RangeSize = 1 << 20
	}
	client := opts.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = concurrency
		tr.MaxIdleConnsPerHost = concurrency
		client = &http.Client{Transport: tr}
		defer tr.CloseIdleConnections()
	}
	size, err := contentLength(ctx, client, url)
	if err != nil {
		return LoadResult{}, err
	}
	if size <= 0 {
		return LoadResult{}, fmt.Errorf("provider: load test: %s is empty", url)
	}
	rangeSize := min(opts.RangeSize, size)

	res := LoadResult{URL: url, Concurrency: concurrency, Requests: opts.Requests, Errors: map[string]int{}}
	var (
		mu    sync.Mutex
		ttfbs = make([]time.Duration, 0, opts.Requests)
		next  = make(chan int, opts.Requests)
		start = make(chan struct{})
		wg    sync.WaitGroup
	)
	for i := range opts.Requests {
		next <- i
	}
	close(next)
	fail := func(what string) {
		mu.Lock()
		res.Failed++
		if _, ok := res.Errors[what]; ok || len(res.Errors) < 20 {
			res.Errors[what]++
		}
		mu.Unlock()
	}
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(opts.Seed, uint64(w)))
			<-start
			for range next {
				off := int64(0)
				if size > rangeSize {
					off = rng.Int64N(size - rangeSize + 1)
				}
				ttfb, n, err := fetchRange(ctx, client, url, off, rangeSize)
				if err != nil {
					fail(err.Error())
					continue
				}
				mu.Lock()
				res.Succeeded++
				res.Bytes += n
				ttfbs = append(ttfbs, ttfb)
				mu.Unlock()
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	res.Duration = time.Since(t0)
	res.SuccessRate = float64(res.Succeeded) / float64(res.Requests)
	slices.Sort(ttfbs)
	if n := len(ttfbs); n > 0 {
		res.TTFBP50 = ttfbs[(n-1)*50/100]
		res.TTFBP99 = ttfbs[(n-1)*99/100]
		res.TTFBMax = ttfbs[n-1]
	}
	return res, ctx.Err()
}

func contentLength(ctx context.Context, client *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return 0, fmt.Errorf("provider: load test: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("provider: load test: HEAD %s: %w", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("provider: load test: HEAD %s: %s", url, resp.Status)
	}
	return resp.ContentLength, nil
}

// fetchRange GETs one range and returns the time to its first body byte and its length.
func fetchRange(ctx context.Context, client *http.Client, url string, off, n int64) (time.Duration, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(off+n-1, 10))
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("request: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return 0, 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	buf := make([]byte, 64<<10)
	var ttfb time.Duration
	var got int64
	for {
		k, err := resp.Body.Read(buf)
		if k > 0 && got == 0 {
			ttfb = time.Since(t0)
		}
		got += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, fmt.Errorf("read body: %w", err)
		}
	}
	if got != n {
		return 0, 0, fmt.Errorf("short range: %d of %d bytes", got, n)
	}
	return ttfb, got, nil
}
