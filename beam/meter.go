package beam

import (
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/warmstore/warmstore/chain"
)

// ErrQuotaExhausted is returned when a data set's CDN lockup cannot pay for a response.
var ErrQuotaExhausted = errors.New("beam: CDN egress quota exhausted")

// meter counts egress per data set. served is durable (pebble) and only grows; reported comes
// from the chain's UsageReported events (the catalog); the difference is what the next report
// bills. reserved holds the bytes of responses in flight, so two concurrent responses cannot
// both spend the last of a quota.
type meter struct {
	db  *pebble.DB
	cat *catalog

	// reportMu serializes reports: two at once would both bill the same unreported bytes.
	reportMu sync.Mutex
	mu       sync.Mutex
	served   map[uint64]usage
	reserved map[uint64]usage
}

var servedPrefix = []byte("served/")

func servedKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), servedPrefix...), id)
}

func openMeter(dir string, cat *catalog) (*meter, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, fmt.Errorf("beam: open meter: %w", err)
	}
	m := &meter{db: db, cat: cat, served: map[uint64]usage{}, reserved: map[uint64]usage{}}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: servedPrefix, UpperBound: []byte("served0")})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("beam: read meter: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != len(servedPrefix)+8 || len(v) != 16 {
			it.Close()
			db.Close()
			return nil, fmt.Errorf("beam: meter record %x is corrupt", k)
		}
		m.served[binary.BigEndian.Uint64(k[len(servedPrefix):])] = usage{binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])}
	}
	if err := it.Close(); err != nil {
		db.Close()
		return nil, fmt.Errorf("beam: read meter: %w", err)
	}
	return m, nil
}

func (m *meter) close() error { return m.db.Close() }

// reserve sets aside n bytes of a data set's quota (and of its cache-miss quota when miss).
func (m *meter) reserve(id uint64, n uint64, miss bool) error {
	cdnQ, missQ, ok := m.cat.quotaBytes(id)
	if !ok {
		return fmt.Errorf("%w: data set %d has no CDN service", ErrQuotaExhausted, id)
	}
	rep := m.cat.reportedOf(id)
	m.mu.Lock()
	defer m.mu.Unlock()
	s, r := m.served[id], m.reserved[id]
	// Unreported usage is what the rails will still be charged for.
	usedCDN := sub(s.CDN, rep.CDN) + r.CDN
	usedMiss := sub(s.Miss, rep.Miss) + r.Miss
	if usedCDN+n > cdnQ {
		return fmt.Errorf("%w: data set %d: %d bytes asked, %d of %d left on the CDN rail", ErrQuotaExhausted, id, n, sub(cdnQ, usedCDN), cdnQ)
	}
	if miss && usedMiss+n > missQ {
		return fmt.Errorf("%w: data set %d: %d bytes asked, %d of %d left on the cache-miss rail", ErrQuotaExhausted, id, n, sub(missQ, usedMiss), missQ)
	}
	r.CDN += n
	if miss {
		r.Miss += n
	}
	m.reserved[id] = r
	return nil
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// settle ends a reservation of n bytes and records the served bytes (≤ n) as billable:
// billMiss also charges them to the cache-miss rail. A response that turned out invalid
// settles with served 0.
func (m *meter) settle(id uint64, n uint64, miss bool, served uint64, billMiss bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.reserved[id]
	r.CDN = sub(r.CDN, n)
	if miss {
		r.Miss = sub(r.Miss, n)
	}
	if r == (usage{}) {
		delete(m.reserved, id)
	} else {
		m.reserved[id] = r
	}
	if served == 0 {
		return nil
	}
	s := m.served[id]
	s.CDN += served
	if billMiss {
		s.Miss += served
	}
	var v [16]byte
	binary.BigEndian.PutUint64(v[:], s.CDN)
	binary.BigEndian.PutUint64(v[8:], s.Miss)
	// NoSync: the write-ahead log survives a process crash; report() syncs before billing.
	if err := m.db.Set(servedKey(id), v[:], pebble.NoSync); err != nil {
		return fmt.Errorf("beam: record usage of data set %d: %w", id, err)
	}
	m.served[id] = s
	return nil
}

// Totals returns what this edge has served per data set (cumulative).
func (m *meter) totals() map[uint64]usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[uint64]usage, len(m.served))
	for k, v := range m.served {
		out[k] = v
	}
	return out
}

// report sends one ReportUsage per data set with unreported usage and waits until the chain's
// UsageReported events have reached the catalog, so the next report starts from them. It
// returns the number of reports sent.
func (m *meter) report(ctx context.Context, cl *chain.Client, key *ecdsa.PrivateKey) (int, error) {
	m.reportMu.Lock()
	defer m.reportMu.Unlock()
	if err := m.db.LogData(nil, pebble.Sync); err != nil {
		return 0, fmt.Errorf("beam: sync meter: %w", err)
	}
	// Start from every usage report the chain has accepted, including one whose receipt was
	// lost on the way back: the catalog must have seen the events up to the head.
	h, err := cl.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("beam: report usage: %w", err)
	}
	if err := m.cat.waitCursor(ctx, h.EventSeq); err != nil {
		return 0, err
	}
	served := m.totals()
	ids := make([]uint64, 0, len(served))
	for id := range served {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var errs []error
	sent := 0
	for _, id := range ids {
		rep := m.cat.reportedOf(id)
		b := chain.ReportUsageBody{DataSetID: id, CDNBytes: sub(served[id].CDN, rep.CDN), CacheMissBytes: sub(served[id].Miss, rep.Miss)}
		if b.CDNBytes == 0 && b.CacheMissBytes == 0 {
			continue
		}
		rc, err := cl.ReportUsage(ctx, key, b)
		if err != nil {
			errs = append(errs, fmt.Errorf("beam: report usage of data set %d: %w", id, err))
			continue
		}
		sent++
		var last uint64
		for _, ev := range rc.Events {
			last = max(last, ev.Seq)
		}
		if err := m.cat.waitCursor(ctx, last); err != nil {
			return sent, err
		}
	}
	return sent, errors.Join(errs...)
}

// quietLogger drops pebble's informational lines (WAL replay notes) and keeps fatal ones.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Errorf(format string, a ...any) { slog.Error(fmt.Sprintf(format, a...)) }
func (quietLogger) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
