package beam

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// requesterLimits holds one request-rate and one egress-rate token bucket per requester, so no
// single requester can drain a payer's egress lockup: anyone who knows (payer, piece CID) can
// ask, but only this fast.
type requesterLimits struct {
	reqRate   rate.Limit
	reqBurst  int
	byteRate  rate.Limit
	byteBurst int
	idle      time.Duration

	mu    sync.Mutex
	byKey map[string]*requester
}

type requester struct {
	reqs, bytes *rate.Limiter
	last        time.Time
}

// newRequesterLimits takes rates per second; a negative rate means unlimited.
func newRequesterLimits(reqPerSec float64, reqBurst int, bytesPerSec float64, byteBurst int) *requesterLimits {
	lim := func(v float64) rate.Limit {
		if v < 0 {
			return rate.Inf
		}
		return rate.Limit(v)
	}
	return &requesterLimits{reqRate: lim(reqPerSec), reqBurst: reqBurst, byteRate: lim(bytesPerSec), byteBurst: byteBurst,
		idle: 10 * time.Minute, byKey: map[string]*requester{}}
}

func (l *requesterLimits) get(key string, now time.Time) *requester {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.byKey[key]
	if r == nil {
		if len(l.byKey) > 4096 {
			// Forget requesters idle long enough that their buckets are full again anyway.
			for k, v := range l.byKey {
				if now.Sub(v.last) > l.idle {
					delete(l.byKey, k)
				}
			}
		}
		r = &requester{reqs: rate.NewLimiter(l.reqRate, l.reqBurst), bytes: rate.NewLimiter(l.byteRate, l.byteBurst)}
		l.byKey[key] = r
	}
	r.last = now
	return r
}

// allowRequest takes one request token at now; on refusal it says how long to wait.
func (l *requesterLimits) allowRequest(key string, now time.Time) (bool, time.Duration) {
	if l.reqRate == rate.Inf {
		return true, 0
	}
	r := l.get(key, now)
	res := r.reqs.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// byteLimiter returns the requester's egress bucket (nil when unlimited); the writer waits on
// it, so a requester over its rate is slowed, not cut off.
func (l *requesterLimits) byteLimiter(key string, now time.Time) *rate.Limiter {
	if l.byteRate == rate.Inf {
		return nil
	}
	return l.get(key, now).bytes
}
