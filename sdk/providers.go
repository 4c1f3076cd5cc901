package sdk

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Provider is a registered storage provider with the result of a health check.
type Provider struct {
	ID         uint64         `json:"id"`
	Address    common.Address `json:"address"`
	Payee      common.Address `json:"payee"`
	Name       string         `json:"name"`
	ServiceURL string         `json:"serviceUrl"`
	// Healthy is true when GET /pdp/ping answered 200 within the ping timeout.
	Healthy bool `json:"healthy"`
	// Latency is the best of two ping round trips (the first may include connection setup).
	Latency time.Duration `json:"latencyNs"`
	// Error says why the provider is unhealthy.
	Error string `json:"error,omitempty"`
}

// providerCacheTTL is how long a Providers answer (with its pings) is reused by uploads and
// downloads, so a burst of small range downloads does not ping every provider each time.
const providerCacheTTL = 15 * time.Second

// cachedProviders returns a recent Providers answer or makes a new one.
func (c *Client) cachedProviders(ctx context.Context) ([]Provider, error) {
	c.provMu.Lock()
	if c.provList != nil && time.Since(c.provAt) < providerCacheTTL {
		l := c.provList
		c.provMu.Unlock()
		return l, nil
	}
	c.provMu.Unlock()
	l, err := c.Providers(ctx)
	if err != nil {
		return nil, err
	}
	c.provMu.Lock()
	c.provList, c.provAt = l, time.Now()
	c.provMu.Unlock()
	return l, nil
}

// Providers lists the registry's providers, pings each concurrently and returns them healthy
// first, then by latency.
func (c *Client) Providers(ctx context.Context) ([]Provider, error) {
	regs, err := c.chain.Providers(ctx)
	if err != nil {
		return nil, fmt.Errorf("sdk: list providers: %w", err)
	}
	out := make([]Provider, len(regs))
	var wg sync.WaitGroup
	for i, r := range regs {
		out[i] = Provider{ID: r.ID, Address: r.Address, Payee: r.Payee, Name: r.Name, ServiceURL: strings.TrimRight(r.ServiceURL, "/")}
		wg.Add(1)
		go func(p *Provider) {
			defer wg.Done()
			lat, err := c.ping(ctx, p.ServiceURL)
			p.Latency, p.Healthy = lat, err == nil
			if err != nil {
				p.Error = err.Error()
			}
		}(&out[i])
	}
	wg.Wait()
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Healthy != out[j].Healthy {
			return out[i].Healthy
		}
		return out[i].Latency < out[j].Latency
	})
	return out, nil
}

// ping checks GET {base}/pdp/ping twice and returns the faster round trip.
func (c *Client) ping(ctx context.Context, base string) (time.Duration, error) {
	if base == "" {
		return 0, fmt.Errorf("no service URL registered")
	}
	best := time.Duration(0)
	for i := range 2 {
		pctx, cancel := context.WithTimeout(ctx, c.cfg.PingTimeout)
		start := time.Now()
		req, err := http.NewRequestWithContext(pctx, http.MethodGet, base+"/pdp/ping", nil)
		if err != nil {
			cancel()
			return 0, err
		}
		resp, err := c.http.Do(req)
		if err != nil {
			cancel()
			return 0, fmt.Errorf("ping: %w", err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
		resp.Body.Close()
		cancel()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("ping: HTTP %d", resp.StatusCode)
		}
		if d := time.Since(start); i == 0 || d < best {
			best = d
		}
	}
	return best, nil
}
