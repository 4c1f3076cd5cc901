package beam

import (
	"bytes"
	"context"
	"io"
	mathbig "math/big"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/pdp"
)

func TestMissThenHit(t *testing.T) {
	r := newRig(t, 1)
	o := r.origins[0]
	data, p := makePiece(t, 1, 300_000)
	r.store(o, data, p)
	ds := r.dataSet(o, true, p)
	r.startEdge(nil)

	resp, body, err := r.get(p, "")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("miss: status %d, %d bytes (equal %v), X-Cache %q", resp.StatusCode, len(body), bytes.Equal(body, data), resp.Header.Get("X-Cache"))
	}
	if got := resp.Header.Get("X-Data-Set-ID"); got != strconv.FormatUint(ds, 10) {
		t.Fatalf("X-Data-Set-ID %q, want %d", got, ds)
	}
	if n := o.fetches.Load(); n != 1 {
		t.Fatalf("origin fetched %d times, want 1", n)
	}
	resp, body, err = r.get(p, "")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("X-Cache") != "HIT" {
		t.Fatalf("hit: status %d, equal %v, X-Cache %q", resp.StatusCode, bytes.Equal(body, data), resp.Header.Get("X-Cache"))
	}
	// Ranges on a hit, including a suffix range.
	for _, c := range []struct {
		hdr        string
		start, end int
	}{{"bytes=0-0", 0, 1}, {"bytes=1000-1999", 1000, 2000}, {"bytes=299000-", 299000, 300000}, {"bytes=-10", 299990, 300000}, {"bytes=299990-999999", 299990, 300000}} {
		resp, body, err := r.get(p, c.hdr)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[c.start:c.end]) {
			t.Fatalf("%s: status %d, %d bytes", c.hdr, resp.StatusCode, len(body))
		}
	}
	if resp, _, _ := r.get(p, "bytes=300000-"); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("range past the end: %d", resp.StatusCode)
	}
	if n := o.fetches.Load(); n != 1 {
		t.Fatalf("hits reached the origin: %d fetches", n)
	}
	// HEAD is free and never fetches.
	resp, body, _ = r.fetch(http.MethodHead, "/"+r.addr(r.payer).Hex()+"/"+p.String(), "")
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) || len(body) != 0 {
		t.Fatalf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	// The v1 CID names the same piece.
	resp, body, _ = r.fetch(http.MethodGet, "/"+r.addr(r.payer).Hex()+"/"+p.V1().String(), "bytes=5-9")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[5:10]) {
		t.Fatalf("v1 CID: %d", resp.StatusCode)
	}
}

func TestHostForm(t *testing.T) {
	r := newRig(t, 1)
	data, p := makePiece(t, 2, 5000)
	r.store(r.origins[0], data, p)
	r.dataSet(r.origins[0], true, p)
	r.startEdge(func(c *Config) { c.Domain = "beam.test" })
	req, _ := http.NewRequest(http.MethodGet, r.edgeSv.URL+"/"+p.String(), nil)
	req.Host = r.addr(r.payer).Hex() + ".beam.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("host form: %d, %d bytes", resp.StatusCode, buf.Len())
	}
}

func TestOnlyCDNDataSetsAreServed(t *testing.T) {
	r := newRig(t, 1)
	o := r.origins[0]
	data, p := makePiece(t, 3, 4000)
	r.store(o, data, p)
	r.dataSet(o, false, p) // no withCDN
	r.startEdge(nil)
	if resp, _, _ := r.get(p, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("piece in a data set without CDN: %d, want 404", resp.StatusCode)
	}
	// Another payer's path does not reach the payer's pieces either.
	if resp, _, _ := r.fetch(http.MethodGet, "/0x000000000000000000000000000000000000dEaD/"+p.String(), ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("other payer: %d", resp.StatusCode)
	}
	if resp, _, _ := r.fetch(http.MethodGet, "/nonsense/"+p.String(), ""); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad payer: %d", resp.StatusCode)
	}
	if resp, _, _ := r.fetch(http.MethodGet, "/"+r.addr(r.payer).Hex()+"/bafynotapiece", ""); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad cid: %d", resp.StatusCode)
	}
	if n := o.fetches.Load(); n != 0 {
		t.Fatalf("origin fetched %d times for refused requests", n)
	}
	// Enabling CDN in a new data set makes it servable once the edge has seen the events.
	r.dataSet(o, true, p)
	r.sync()
	if resp, body, _ := r.get(p, ""); resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("after a CDN data set: %d", resp.StatusCode)
	}
}

// A provider that serves wrong bytes: the client's transfer fails before the last byte,
// nothing is cached or billed, and the provider's failure steers the next miss elsewhere.
func TestWrongBytesNeverPassAsValid(t *testing.T) {
	r := newRig(t, 2)
	bad, good := r.origins[0], r.origins[1]
	data, p := makePiece(t, 4, 200_000)
	r.store(bad, data, p)
	r.store(good, data, p)
	dsBad := r.dataSet(bad, true, p)
	dsGood := r.dataSet(good, true, p)
	bad.corrupt.Store(true)
	r.startEdge(nil)

	resp, body, err := r.get(p, "")
	if err == nil {
		t.Fatalf("corrupt origin: transfer completed (status %d, %d bytes); it must fail", resp.StatusCode, len(body))
	}
	if resp.Header.Get("X-Data-Set-ID") != strconv.FormatUint(dsBad, 10) {
		t.Fatalf("first miss went to data set %s, want the bad one (%d) first (unmeasured, lower id)", resp.Header.Get("X-Data-Set-ID"), dsBad)
	}
	if len(body) >= len(data) {
		t.Fatalf("client received %d of %d bytes: the last byte must be held back", len(body), len(data))
	}
	if r.edge.cache.has(p) {
		t.Fatal("corrupt bytes were cached")
	}
	// Ranged misses from the bad origin fail too, even when the range ends early.
	if _, body, err := r.get(p, "bytes=0-99"); err == nil {
		// The bad origin is ranked last now, so this goes to the good one.
		if !bytes.Equal(body, data[:100]) {
			t.Fatal("range from the good origin has wrong bytes")
		}
	}
	resp, body, err = r.get(p, "")
	if err != nil || !bytes.Equal(body, data) || resp.Header.Get("X-Cache") != "HIT" {
		t.Fatalf("after the good origin filled the cache: err %v, equal %v, X-Cache %q", err, bytes.Equal(body, data), resp.Header.Get("X-Cache"))
	}
	if n := good.fetches.Load(); n != 1 {
		t.Fatalf("good origin fetched %d times, want 1", n)
	}
	// Billed: the 100-byte ranged miss (to the good provider's data set) and the 200000-byte
	// hit (on the CDN rail only); never the aborted transfer.
	usage, total := r.meteredAtLeast(200_100)
	for _, u := range usage {
		if u.DataSetID == dsBad && u.ServedMissBytes != 0 {
			t.Fatalf("the corrupt origin was credited with cache-miss bytes: %+v", u)
		}
		if u.DataSetID == dsGood && u.ServedMissBytes != 100 {
			t.Fatalf("good data set miss bytes %d, want 100 (the ranged miss)", u.ServedMissBytes)
		}
	}
	if total != 200_100 {
		t.Fatalf("billed %d bytes, want 200100", total)
	}
	var badStats ProviderStats
	for _, s := range r.edge.ProviderStats() {
		if s.Provider == bad.addr() {
			badStats = s
		}
	}
	if badStats.Samples == 0 || badStats.SuccessRate != 0 {
		t.Fatalf("bad provider stats %+v: want samples, 0%% success", badStats)
	}
}

// A Range request on a miss fetches and verifies the whole piece, passes the range on, and
// caches the piece.
func TestRangeMissFillsCache(t *testing.T) {
	r := newRig(t, 1)
	o := r.origins[0]
	data, p := makePiece(t, 5, 1<<20+77)
	r.store(o, data, p)
	r.dataSet(o, true, p)
	r.startEdge(nil)
	resp, body, err := r.get(p, "bytes=500000-500099")
	if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[500000:500100]) {
		t.Fatalf("ranged miss: %v %v", err, resp)
	}
	if resp.Header.Get("Content-Range") != "bytes 500000-500099/"+strconv.Itoa(len(data)) {
		t.Fatalf("Content-Range %q", resp.Header.Get("Content-Range"))
	}
	if !r.edge.cache.has(p) {
		t.Fatal("ranged miss did not cache the verified piece")
	}
	if _, body, _ := r.get(p, ""); !bytes.Equal(body, data) || o.fetches.Load() != 1 {
		t.Fatalf("hit after ranged miss: equal %v, origin fetches %d", bytes.Equal(body, data), o.fetches.Load())
	}
}

// Billed bytes equal served bytes: every body byte a client received is in exactly one usage
// report, misses also on the cache-miss rail, and the rails' lockups fall by exactly the
// charge.
func TestBilledEqualsServed(t *testing.T) {
	r := newRig(t, 2)
	ctx := context.Background()
	a, b := r.origins[0], r.origins[1]
	d1, p1 := makePiece(t, 6, 70_000)
	d2, p2 := makePiece(t, 7, 130_001)
	r.store(a, d1, p1)
	r.store(b, d2, p2)
	dsA := r.dataSet(a, true, p1)
	dsB := r.dataSet(b, true, p2)
	before := map[uint64]*chain.DataSet{}
	for _, id := range []uint64{dsA, dsB} {
		ds, err := r.chain.DataSet(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		before[id] = ds
	}
	lockup := func(rail uint64) chain.RailInfo {
		ri, err := r.chain.Rail(ctx, rail)
		if err != nil {
			t.Fatal(err)
		}
		return *ri
	}
	cdnBefore := map[uint64]chain.RailInfo{dsA: lockup(before[dsA].CDNRail), dsB: lockup(before[dsB].CDNRail)}
	missBefore := map[uint64]chain.RailInfo{dsA: lockup(before[dsA].CacheMissRail), dsB: lockup(before[dsB].CacheMissRail)}

	info, err := r.chain.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	funds := func(a common.Address) *mathbig.Int {
		acc, err := r.chain.Account(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if acc.Payments.Funds.Int == nil {
			return new(mathbig.Int)
		}
		return new(mathbig.Int).Set(acc.Payments.Funds.Int)
	}
	edgeBefore, aBefore, bBefore := funds(info.FilBeam), funds(a.addr()), funds(b.addr())
	r.startEdge(nil)
	served := map[uint64]usage{}
	get := func(id uint64, data []byte, pc pdp.PieceCID, hdr string, miss bool) {
		t.Helper()
		resp, body, err := r.get(pc, hdr)
		if err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("get: %v %v", err, resp)
		}
		u := served[id]
		u.CDN += uint64(len(body))
		if miss {
			u.Miss += uint64(len(body))
		}
		served[id] = u
		if resp.StatusCode == http.StatusOK && !bytes.Equal(body, data) {
			t.Fatal("wrong bytes")
		}
	}
	get(dsA, d1, p1, "bytes=10-20009", true) // ranged miss
	get(dsA, d1, p1, "", false)
	get(dsA, d1, p1, "bytes=-5", false)
	get(dsB, d2, p2, "", true)
	n, err := r.edge.ReportNow(ctx)
	if err != nil || n != 2 {
		t.Fatalf("report: %d reports, %v", n, err)
	}
	get(dsB, d2, p2, "bytes=0-0", false)
	get(dsB, d2, p2, "", false)
	// Reports at the same time (the ticker and a caller) bill nothing twice.
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { _, err := r.edge.ReportNow(ctx); errs <- err }()
	}
	for i := 0; i < 3; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	billed := r.usageEvents(r.edge.Address())
	for id, want := range served {
		if billed[id] != want {
			t.Errorf("data set %d: billed %+v, served %+v", id, billed[id], want)
		}
		cdn, miss := lockup(before[id].CDNRail), lockup(before[id].CacheMissRail)
		// Each report is charged separately, rounded down.
		if cdn.LockupFixed.GreaterThan(cdnBefore[id].LockupFixed) || miss.LockupFixed.GreaterThan(missBefore[id].LockupFixed) {
			t.Errorf("data set %d: lockups grew", id)
		}
		spent := big0().Sub(cdnBefore[id].LockupFixed.Int, cdn.LockupFixed.Int)
		if want := chain.EgressCharge(want.CDN, chain.CDNPricePerTiB); spent.Cmp(want.Int) < 0 || spent.Cmp(big0().Add(want.Int, bigOne())) > 0 {
			t.Errorf("data set %d: CDN rail paid %v for %d bytes, want ≈ %v", id, spent, served[id].CDN, want)
		}
	}
	// The CDN rail paid the edge's beneficiary for all egress, the cache-miss rails paid the
	// providers for their misses (less the network fee).
	if funds(info.FilBeam).Cmp(edgeBefore) <= 0 {
		t.Error("the edge beneficiary was not paid")
	}
	if funds(a.addr()).Cmp(aBefore) <= 0 || funds(b.addr()).Cmp(bBefore) <= 0 {
		t.Error("a provider was not paid for its cache misses")
	}
	// Restarting the edge does not bill again.
	r.stopEdge()
	r.startEdge(nil)
	if n, err := r.edge.ReportNow(ctx); err != nil || n != 0 {
		t.Fatalf("after restart: %d reports, %v", n, err)
	}
}

// With the CDN lockup all but used up, the edge serves what the rail can still pay for and
// then answers 402, for hits too.
func TestQuotaExhausted(t *testing.T) {
	r := newRig(t, 1)
	ctx := context.Background()
	o := r.origins[0]
	data, p := makePiece(t, 8, 1000)
	r.store(o, data, p)
	ds := r.dataSet(o, true, p)
	info, err := r.chain.DataSet(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	rail, err := r.chain.Rail(ctx, info.CDNRail)
	if err != nil {
		t.Fatal(err)
	}
	// Another edge reports usage that leaves room for 2.5 pieces.
	total := bytesFor(rail.LockupFixed.Int, chain.CDNPricePerTiB)
	r.must(r.chain.ReportUsage(ctx, r.drainer, chain.ReportUsageBody{DataSetID: ds, CDNBytes: total - 2500}))
	r.startEdge(nil)
	left, _, _ := r.edge.cat.quotaBytes(ds)
	if left < 2000 || left >= 3000 {
		t.Fatalf("quota left %d bytes, want 2000..2999", left)
	}
	for i := 0; i < 2; i++ {
		if resp, body, err := r.get(p, ""); err != nil || resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("request %d within quota: %v %v", i, err, resp)
		}
	}
	resp, _, _ := r.get(p, "")
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("over quota: %d, want 402", resp.StatusCode)
	}
	// A small range still fits.
	if resp, _, _ := r.get(p, "bytes=0-99"); resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("small range within quota: %d", resp.StatusCode)
	}
	// Reporting keeps the quota exhausted (the lockup fell by what was billed).
	if _, err := r.edge.ReportNow(ctx); err != nil {
		t.Fatal(err)
	}
	if resp, _, _ := r.get(p, ""); resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("after report: %d, want 402", resp.StatusCode)
	}
	// Topping up the CDN rails reopens service.
	r.must(r.chain.TopUpCDN(ctx, r.payer, chain.TopUpCDNBody{DataSetID: ds, CDNAmount: usdfc(1), CacheMissAmount: usdfc(0)}))
	r.sync()
	if resp, _, _ := r.get(p, ""); resp.StatusCode != 200 {
		t.Fatalf("after top-up: %d, want 200", resp.StatusCode)
	}
}

// The cache, and the usage not yet reported, survive a restart.
func TestRestartKeepsCacheAndUsage(t *testing.T) {
	r := newRig(t, 1)
	o := r.origins[0]
	data, p := makePiece(t, 9, 50_000)
	r.store(o, data, p)
	ds := r.dataSet(o, true, p)
	r.startEdge(nil)
	if _, body, err := r.get(p, ""); err != nil || !bytes.Equal(body, data) {
		t.Fatal("miss failed")
	}
	r.stopEdge()
	o.srv.Close() // the origin is gone: only the cache can answer
	r.startEdge(nil)
	resp, body, err := r.get(p, "")
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("X-Cache") != "HIT" {
		t.Fatalf("after restart: %v status %v X-Cache %q", err, resp, resp.Header.Get("X-Cache"))
	}
	if _, err := r.edge.ReportNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := r.usageEvents(r.edge.Address())[ds]
	if got.CDN != 100_000 || got.Miss != 50_000 {
		t.Fatalf("billed %+v, want 100000 bytes of which 50000 misses", got)
	}
}

// The edge picks the provider with the lower measured time to first byte.
func TestOriginChoiceByTTFB(t *testing.T) {
	r := newRig(t, 2)
	slow, fast := r.origins[0], r.origins[1]
	slow.delay.Store(int64(60 * time.Millisecond))
	var all []pdp.PieceCID
	for i := 0; i < 6; i++ {
		data, p := makePiece(t, uint64(100+i), 3000)
		r.store(slow, data, p)
		r.store(fast, data, p)
		all = append(all, p)
	}
	r.dataSet(slow, true, all...)
	r.dataSet(fast, true, all...)
	r.startEdge(nil)
	for _, p := range all {
		if resp, _, err := r.get(p, ""); err != nil || resp.StatusCode != 200 {
			t.Fatalf("get: %v %v", err, resp)
		}
	}
	// Both are tried once (unmeasured first), then the fast one wins every miss.
	if s, f := slow.fetches.Load(), fast.fetches.Load(); s != 1 || f != 5 {
		t.Fatalf("slow fetched %d, fast %d; want 1 and 5", s, f)
	}
	st := r.edge.ProviderStats()
	if st[0].Provider != fast.addr() || st[0].Rank != 1 {
		t.Fatalf("ranking %+v: want the fast provider first", st)
	}
}

func TestRateLimitPerRequester(t *testing.T) {
	r := newRig(t, 1)
	data, p := makePiece(t, 11, 2000)
	r.store(r.origins[0], data, p)
	r.dataSet(r.origins[0], true, p)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.startEdge(func(c *Config) {
		c.RequestsPerSecond, c.RequestBurst = 1, 2
		c.TrustForwardedFor = true
		c.Now = func() time.Time { return now } // frozen: no tokens come back
	})
	for i := 0; i < 2; i++ {
		if resp, _, _ := r.get(p, ""); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	resp, _, _ := r.get(p, "")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third request: %d (Retry-After %q), want 429", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Another requester (behind the trusted proxy) is not affected.
	req, _ := http.NewRequest(http.MethodGet, r.edgeSv.URL+"/"+r.addr(r.payer).Hex()+"/"+p.String(), nil)
	req.Header.Set("X-Forwarded-For", "192.0.2.7, 10.0.0.1")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 200 {
		t.Fatalf("other requester: %d", resp2.StatusCode)
	}
}

// The egress limit slows a requester down rather than cutting it off: a 96 KiB piece at
// 64 KiB/s with a 16 KiB burst cannot arrive in under a second, and arrives whole.
func TestEgressRatePerRequester(t *testing.T) {
	r := newRig(t, 1)
	data, p := makePiece(t, 12, 96<<10)
	r.store(r.origins[0], data, p)
	r.dataSet(r.origins[0], true, p)
	r.startEdge(func(c *Config) { c.EgressBytesPerSecond, c.EgressBurst = 64<<10, 16<<10 })
	for _, want := range []string{"MISS", "HIT"} {
		start := time.Now()
		resp, body, err := r.get(p, "")
		if err != nil || !bytes.Equal(body, data) || resp.Header.Get("X-Cache") != want {
			t.Fatalf("%s: %v, equal %v", want, err, bytes.Equal(body, data))
		}
		if el := time.Since(start); el < 900*time.Millisecond && want == "HIT" {
			t.Fatalf("%s: 96 KiB in %v at 64 KiB/s (burst 16 KiB): not limited", want, el)
		}
	}
}

// A client that leaves in the middle of a miss is billed only for what it was sent, and the
// edge still finishes, verifies and caches the piece for the next client.
func TestClientLeavesMidMiss(t *testing.T) {
	r := newRig(t, 1)
	o := r.origins[0]
	data, p := makePiece(t, 13, 2<<20)
	r.store(o, data, p)
	ds := r.dataSet(o, true, p)
	r.startEdge(func(c *Config) { c.EgressBytesPerSecond, c.EgressBurst = 8<<20, 256<<10 })
	req, _ := http.NewRequest(http.MethodGet, r.edgeSv.URL+"/"+r.addr(r.payer).Hex()+"/"+p.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // leaves after 64 KiB
	deadline := time.Now().Add(20 * time.Second)
	for !r.edge.cache.has(p) {
		if time.Now().After(deadline) {
			t.Fatal("piece not cached after the client left")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var u Usage
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		for _, x := range r.edge.Usage() {
			if x.DataSetID == ds {
				u = x
			}
		}
		if u.ServedBytes > 0 || time.Now().After(deadline) {
			break
		}
	}
	if u.ServedBytes < 64<<10 || u.ServedBytes >= uint64(len(data)) || u.ServedMissBytes != u.ServedBytes {
		t.Fatalf("billed %+v: want between 64 KiB and less than the whole piece, all as misses", u)
	}
	if resp, body, err := r.get(p, ""); err != nil || !bytes.Equal(body, data) || resp.Header.Get("X-Cache") != "HIT" {
		t.Fatalf("next client: %v, X-Cache %q", err, resp.Header.Get("X-Cache"))
	}
}

// Concurrent misses for one piece cost the origin one transfer: the others wait for it and
// are served from the cache.
func TestConcurrentMissesCoalesce(t *testing.T) {
	r := newRig(t, 1)
	o := r.origins[0]
	data, p := makePiece(t, 14, 100_000)
	r.store(o, data, p)
	r.dataSet(o, true, p)
	o.delay.Store(int64(300 * time.Millisecond))
	r.startEdge(nil)
	type result struct {
		body  []byte
		cache string
		err   error
	}
	results := make(chan result, 4)
	for i := 0; i < 4; i++ {
		go func() {
			resp, body, err := r.get(p, "")
			if err != nil {
				results <- result{err: err}
				return
			}
			results <- result{body, resp.Header.Get("X-Cache"), nil}
		}()
		if i == 0 {
			time.Sleep(50 * time.Millisecond) // the first one is the fetch
		}
	}
	hits := 0
	for i := 0; i < 4; i++ {
		res := <-results
		if res.err != nil || !bytes.Equal(res.body, data) {
			t.Fatalf("request: %v, equal %v", res.err, bytes.Equal(res.body, data))
		}
		if res.cache == "HIT" {
			hits++
		}
	}
	if n := o.fetches.Load(); n != 1 || hits != 3 {
		t.Fatalf("origin fetched %d times, %d hits; want 1 and 3", n, hits)
	}
}
