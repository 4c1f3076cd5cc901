package beam

import (
	"errors"
	mathbig "math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/pdp"
)

func TestParseRange(t *testing.T) {
	const size = 1000
	for _, c := range []struct {
		h          string
		start, end uint64
		partial    bool
		bad        bool
	}{
		{"", 0, 1000, false, false},
		{"bytes=0-0", 0, 1, true, false},
		{"bytes=0-999", 0, 1000, true, false},
		{"bytes=0-5000", 0, 1000, true, false},
		{"bytes=990-", 990, 1000, true, false},
		{"bytes=-1", 999, 1000, true, false},
		{"bytes=-5000", 0, 1000, true, false},
		{"bytes=0-1,5-6", 0, 1000, false, false},
		{"bytes=1000-", 0, 0, false, true},
		{"bytes=-0", 0, 0, false, true},
		{"bytes=5-4", 0, 0, false, true},
		{"items=0-1", 0, 0, false, true},
		{"bytes=x-1", 0, 0, false, true},
		{"bytes=5", 0, 0, false, true},
	} {
		s, e, p, err := parseRange(c.h, size)
		if c.bad {
			if !errors.Is(err, ErrBadRange) {
				t.Errorf("%q: err %v, want ErrBadRange", c.h, err)
			}
			continue
		}
		if err != nil || s != c.start || e != c.end || p != c.partial {
			t.Errorf("%q: (%d, %d, %v, %v), want (%d, %d, %v)", c.h, s, e, p, err, c.start, c.end, c.partial)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"", "bytes=0-0", "bytes=-1", "bytes=5-", "bytes=1-2,3-4", "bytes=18446744073709551615-", "bytes=-18446744073709551615"} {
		f.Add(s, uint64(1000))
	}
	f.Fuzz(func(t *testing.T, h string, size uint64) {
		if size == 0 {
			return
		}
		s, e, _, err := parseRange(h, size)
		if err != nil {
			return
		}
		if s >= e || e > size {
			t.Fatalf("%q over %d: [%d, %d) is not a non-empty range inside the piece", h, size, s, e)
		}
	})
}

// bytesFor is the exact inverse of the chain's charge: the bytes it allows cost at most the
// amount, and one more byte would cost more.
func TestBytesForMatchesChainCharge(t *testing.T) {
	for _, a := range []*mathbig.Int{mathbig.NewInt(0), mathbig.NewInt(1), mathbig.NewInt(6366462), mathbig.NewInt(6366463),
		new(mathbig.Int).Mul(mathbig.NewInt(7), mathbig.NewInt(1e17)), new(mathbig.Int).Mul(mathbig.NewInt(3), mathbig.NewInt(1e17))} {
		n := bytesFor(a, chain.CDNPricePerTiB)
		if c := chain.EgressCharge(n, chain.CDNPricePerTiB); c.Int.Cmp(a) > 0 {
			t.Errorf("amount %v: %d bytes cost %v", a, n, c)
		}
		if c := chain.EgressCharge(n+1, chain.CDNPricePerTiB); c.Int.Cmp(a) <= 0 {
			t.Errorf("amount %v: %d bytes cost %v, still affordable", a, n+1, c)
		}
	}
}

func TestScoreboardRanksByTTFBAndSuccess(t *testing.T) {
	b := newScoreboard(100, time.Minute, 10)
	fast, slow, flaky, fresh := common.Address{1}, common.Address{2}, common.Address{3}, common.Address{4}
	at := time.Unix(1000, 0)
	for i := 0; i < 10; i++ {
		b.record(fast, Sample{At: at, TTFB: 5 * time.Millisecond, TTLB: 10 * time.Millisecond, Bytes: 1000, OK: true})
		b.record(slow, Sample{At: at, TTFB: 50 * time.Millisecond, TTLB: 60 * time.Millisecond, Bytes: 1000, OK: true})
		b.record(flaky, Sample{At: at, TTFB: 1 * time.Millisecond, OK: i%2 == 0})
	}
	got := b.rank([]candidate{{Provider: slow}, {Provider: flaky}, {Provider: fast}, {Provider: fresh}})
	want := []common.Address{fresh, fast, slow, flaky}
	for i := range want {
		if got[i].Provider != want[i] {
			t.Fatalf("rank %d: %v, want %v (order %v)", i, got[i].Provider, want[i], got)
		}
	}
	st := b.stats(nil)
	if st[0].Provider != flaky && st[0].Provider != fast {
		t.Fatalf("stats order %+v", st)
	}
	for _, s := range st {
		if s.Provider == flaky && s.SuccessRate != 0.5 {
			t.Fatalf("flaky success %v", s.SuccessRate)
		}
		if s.Provider == fast && (s.TTFBp50Ms != 5 || s.ThroughputMBps != 0.1) {
			t.Fatalf("fast %+v", s)
		}
	}
}

func TestRateLimitIsPerRequesterAndRefills(t *testing.T) {
	l := newRequesterLimits(2, 2, -1, 0)
	now := time.Unix(0, 0)
	for i := 0; i < 2; i++ {
		if ok, _ := l.allowRequest("a", now); !ok {
			t.Fatal("burst refused")
		}
	}
	if ok, wait := l.allowRequest("a", now); ok || wait <= 0 {
		t.Fatalf("over burst: ok %v wait %v", ok, wait)
	}
	if ok, _ := l.allowRequest("b", now); !ok {
		t.Fatal("other requester refused")
	}
	if ok, _ := l.allowRequest("a", now.Add(600*time.Millisecond)); !ok {
		t.Fatal("token did not come back after 0.6 s at 2/s")
	}
}

func TestNewValidatesConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("empty config accepted")
	}
	if _, err := New(Config{Dir: "x"}); err == nil {
		t.Fatal("config without a key accepted")
	}
}

// The cache evicts the least recently used piece past its bound, and a reopened cache keeps
// the pieces and drops unverified leftovers.
func TestPieceCacheLRUAndReopen(t *testing.T) {
	dir := t.TempDir()
	c, err := openPieceCache(dir, 25_000)
	if err != nil {
		t.Fatal(err)
	}
	fill := func(c *pieceCache, seed uint64) pdp.PieceCID {
		data, p := makePiece(t, seed, 10_000)
		f, err := c.createTemp()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := c.commit(f, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := fill(c, 1), fill(c, 2)
	if f, ok := c.open(a); !ok { // a is now the most recent
		t.Fatal("a missing")
	} else {
		f.Close()
	}
	cc := fill(c, 3) // 30 000 > 25 000: b goes
	if c.has(b) || !c.has(a) || !c.has(cc) {
		t.Fatalf("after eviction: a %v b %v c %v; want b evicted", c.has(a), c.has(b), c.has(cc))
	}
	if _, err := os.Stat(filepath.Join(dir, "pieces", b.String())); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("evicted file still on disk: %v", err)
	}
	// A crash mid-fill leaves a temp file; a truncated file under a piece name is not a piece.
	if err := os.WriteFile(filepath.Join(dir, "tmp", "fill-x"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, d := makePiece(t, 4, 10_000)
	if err := os.WriteFile(filepath.Join(dir, "pieces", d.String()), []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	c2, err := openPieceCache(dir, 25_000)
	if err != nil {
		t.Fatal(err)
	}
	if !c2.has(a) || !c2.has(cc) || c2.has(d) {
		t.Fatalf("reopened: a %v c %v truncated %v", c2.has(a), c2.has(cc), c2.has(d))
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Fatalf("temp leftovers kept: %d", len(left))
	}
	if err := c2.commit(mustTemp(t, c2), mustPieceTooBig(t)); !errors.Is(err, errTooLarge) {
		t.Fatalf("piece larger than the cache: %v", err)
	}
}

func mustTemp(t *testing.T, c *pieceCache) *os.File {
	f, err := c.createTemp()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustPieceTooBig(t *testing.T) pdp.PieceCID {
	_, p := makePiece(t, 5, 30_000)
	return p
}
