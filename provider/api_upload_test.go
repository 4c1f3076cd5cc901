package provider

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warmstore/warmstore/pdp"
)

func TestPingHealthAndMetrics(t *testing.T) {
	r := newAPIRig(t, nil, 1, nil)
	resp := r.do("GET", "/pdp/ping", nil).want(t, http.StatusOK)
	if string(resp.body) != PingBody {
		t.Fatalf("ping body %q, want %q", resp.body, PingBody)
	}
	r.do("GET", "/healthz", nil).want(t, http.StatusOK)
	r.upload(apiPayload(1, 5000))
	m := string(r.do("GET", "/metrics", nil).want(t, http.StatusOK).body)
	for _, want := range []string{
		`warmstore_provider_http_requests_total{code="200",route="/pdp/ping"} 1`,
		`warmstore_provider_upload_bytes_total{kind="oneshot"} 5000`,
		`warmstore_provider_stored_bytes 5000`,
		`warmstore_provider_upload_duration_seconds_count{kind="oneshot",result="ok"} 1`,
		`warmstore_provider_http_requests_in_flight`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	r.do("GET", "/no/such/route", nil).wantError(t, http.StatusNotFound, "not_found")
	r.do("DELETE", "/pdp/ping", nil).wantError(t, http.StatusMethodNotAllowed, "method_not_allowed")
}

func TestOneShotUploadThenRetrieve(t *testing.T) {
	r := newAPIRig(t, nil, 1, nil)
	data := apiPayload(2, 300_000)
	piece := commPOf(t, data)

	resp := r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": piece.String()}).want(t, http.StatusCreated)
	loc := resp.Header.Get("Location")
	if !regexp.MustCompile(`^/pdp/piece/upload/[0-9a-f-]{36}$`).MatchString(loc) {
		t.Fatalf("Location %q", loc)
	}
	r.do("PUT", loc, bytes.NewReader(data), "Content-Type", "application/octet-stream").want(t, http.StatusNoContent)
	// Retrievable as soon as the PUT returned.
	var found PieceResponse
	r.do("GET", "/pdp/piece?pieceCid="+piece.String(), nil).want(t, http.StatusOK).decode(t, &found)
	if found.PieceCID != piece.String() {
		t.Fatalf("find: %q", found.PieceCID)
	}
	r.do("PUT", loc, bytes.NewReader(data)).wantError(t, http.StatusConflict, "already_uploaded")
	// The same piece again is deduplicated with a 200.
	var dedupe PieceResponse
	r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": piece.String()}).want(t, http.StatusOK).decode(t, &dedupe)
	if dedupe.PieceCID != piece.String() {
		t.Fatalf("dedupe body %+v", dedupe)
	}

	path := "/piece/" + piece.String()
	full := r.do("GET", path, nil).want(t, http.StatusOK)
	if !bytes.Equal(full.body, data) {
		t.Fatal("GET /piece returned other bytes")
	}
	etag := full.Header.Get("ETag")
	if etag != `"`+piece.String()+`"` {
		t.Fatalf("ETag %q", etag)
	}
	if cc := full.Header.Get("Cache-Control"); cc != "public, max-age=29030400, immutable" {
		t.Fatalf("Cache-Control %q", cc)
	}
	if full.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("Accept-Ranges %q", full.Header.Get("Accept-Ranges"))
	}

	part := r.do("GET", path, nil, "Range", "bytes=1000-200999").want(t, http.StatusPartialContent)
	if !bytes.Equal(part.body, data[1000:201000]) {
		t.Fatal("range returned other bytes")
	}
	if cr := part.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes 1000-200999/%d", len(data)) {
		t.Fatalf("Content-Range %q", cr)
	}
	tail := r.do("GET", path, nil, "Range", "bytes=-10").want(t, http.StatusPartialContent)
	if !bytes.Equal(tail.body, data[len(data)-10:]) {
		t.Fatal("suffix range returned other bytes")
	}
	r.do("GET", path, nil, "Range", fmt.Sprintf("bytes=%d-", len(data)+5)).want(t, http.StatusRequestedRangeNotSatisfiable)

	head := r.do("HEAD", path, nil).want(t, http.StatusOK)
	if len(head.body) != 0 || head.ContentLength != int64(len(data)) || head.Header.Get("ETag") != etag {
		t.Fatalf("HEAD: %d body bytes, Content-Length %d, ETag %q", len(head.body), head.ContentLength, head.Header.Get("ETag"))
	}
	r.do("GET", path, nil, "If-None-Match", etag).want(t, http.StatusNotModified)
	r.do("GET", path, nil, "If-None-Match", `"other"`).want(t, http.StatusOK)

	// A v1 CID (root only) names the same bytes.
	v1 := "/piece/" + piece.V1().String()
	if got := r.do("GET", v1, nil).want(t, http.StatusOK).body; !bytes.Equal(got, data) {
		t.Fatal("v1 GET returned other bytes")
	}
	r.do("GET", "/pdp/piece?pieceCid="+piece.V1().String(), nil).want(t, http.StatusOK).decode(t, &found)
	if found.PieceCID != piece.String() {
		t.Fatalf("find by v1 answered %q, want the v2 CID", found.PieceCID)
	}

	// Bodies were written by: full, range, suffix, the 416's error text, the If-None-Match miss
	// and the v1 GET; HEAD and 304 write none.
	ttfb := string(r.do("GET", "/metrics", nil).body)
	if !strings.Contains(ttfb, "warmstore_provider_piece_ttfb_seconds_count 6\n") {
		t.Fatalf("ttfb observations:\n%s", grepLines(ttfb, "piece_ttfb_seconds_count"))
	}
	if !strings.Contains(ttfb, "warmstore_provider_piece_bytes_served_total") {
		t.Fatal("no piece bytes metric")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestStreamingUploadFinalize(t *testing.T) {
	r := newAPIRig(t, nil, 1, nil)
	data := apiPayload(3, 2<<20+17)
	piece := commPOf(t, data)

	resp := r.do("POST", "/pdp/piece/uploads", nil).want(t, http.StatusCreated)
	loc := resp.Header.Get("Location")
	m := regexp.MustCompile(`/pdp/piece/uploads/([a-fA-F0-9-]+)$`).FindStringSubmatch(loc)
	if m == nil {
		t.Fatalf("Location %q does not match the SDK's pattern", loc)
	}
	// Finalizing before the data arrived is a conflict.
	r.doJSON("POST", loc, map[string]string{"pieceCid": piece.String()}).wantError(t, http.StatusConflict, "upload_incomplete")
	// Chunked body (no Content-Length), as a streaming client sends it.
	r.do("PUT", loc, io.MultiReader(bytes.NewReader(data[:1000]), bytes.NewReader(data[1000:]))).want(t, http.StatusNoContent)
	// The piece is stored (and findable) before the finalize.
	r.do("GET", "/pdp/piece?pieceCid="+piece.String(), nil).want(t, http.StatusOK)
	r.do("PUT", loc, bytes.NewReader(data)).wantError(t, http.StatusConflict, "already_uploaded")

	other := commPOf(t, data[:len(data)-1])
	r.doJSON("POST", loc, map[string]string{"pieceCid": other.String()}).wantError(t, http.StatusBadRequest, "piece_mismatch")
	r.doJSON("POST", loc, map[string]string{"pieceCid": "bafy-garbage"}).wantError(t, http.StatusBadRequest, "bad_piece_cid")
	var fin PieceResponse
	r.doJSON("POST", loc, map[string]string{"pieceCid": piece.String()}).want(t, http.StatusOK).decode(t, &fin)
	if fin.PieceCID != piece.String() {
		t.Fatalf("finalize body %+v", fin)
	}
	if got := r.do("GET", "/piece/"+piece.String(), nil).want(t, http.StatusOK).body; !bytes.Equal(got, data) {
		t.Fatal("retrieved other bytes")
	}
}

func TestUploadBadInput(t *testing.T) {
	r := newAPIRig(t, nil, 1, func(c *Config) { c.MaxPieceSize = 1 << 20 })
	data := apiPayload(4, 10_000)
	piece := commPOf(t, data)

	t.Run("malformed CID is 400", func(t *testing.T) {
		r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": "not-a-cid"}).wantError(t, http.StatusBadRequest, "bad_piece_cid")
		r.doJSON("POST", "/pdp/piece", map[string]string{}).wantError(t, http.StatusBadRequest, "bad_piece_cid")
		r.do("POST", "/pdp/piece", strings.NewReader("{not json")).wantError(t, http.StatusBadRequest, "bad_request")
		// A v1 CID cannot declare an upload: it carries no size.
		r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": piece.V1().String()}).wantError(t, http.StatusBadRequest, "bad_piece_cid")
		r.do("GET", "/pdp/piece?pieceCid=zzz", nil).wantError(t, http.StatusBadRequest, "bad_piece_cid")
		r.do("GET", "/pdp/piece", nil).wantError(t, http.StatusBadRequest, "bad_piece_cid")
		r.do("GET", "/piece/bafkqaaa", nil).wantError(t, http.StatusBadRequest, "bad_piece_cid")
		r.do("GET", "/piece/"+piece.String(), nil).wantError(t, http.StatusNotFound, "piece_not_found")
		r.do("GET", "/pdp/piece?pieceCid="+piece.String(), nil).wantError(t, http.StatusNotFound, "piece_not_found")
	})

	t.Run("mismatching bytes are 400 and nothing is kept", func(t *testing.T) {
		before := r.store.Metrics()
		loc := r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": piece.String()}).want(t, http.StatusCreated).Header.Get("Location")
		bad := bytes.Clone(data)
		bad[5000] ^= 1
		r.do("PUT", loc, bytes.NewReader(bad)).wantError(t, http.StatusBadRequest, "piece_mismatch")
		if storeHas(t, r.store, piece) {
			t.Fatal("mismatching upload left the piece stored")
		}
		if storeHas(t, r.store, commPOf(t, bad)) {
			t.Fatal("mismatching upload stored the bytes under their own CID")
		}
		after := r.store.Metrics()
		if after.IngestedPieces != before.IngestedPieces || after.MismatchRejects != before.MismatchRejects+1 {
			t.Fatalf("store metrics before %+v after %+v", before, after)
		}
		// The failed session is gone.
		r.do("PUT", loc, bytes.NewReader(data)).wantError(t, http.StatusNotFound, "unknown_upload")
		// Short bytes are a mismatch too.
		loc = r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": piece.String()}).want(t, http.StatusCreated).Header.Get("Location")
		r.do("PUT", loc, bytes.NewReader(data[:9000])).wantError(t, http.StatusBadRequest, "piece_mismatch")
	})

	t.Run("too large is 413", func(t *testing.T) {
		// Declared larger than the provider's limit.
		big := pdp.PieceCID{Root: piece.Root, Height: 20, Padding: 0} // 32 MiB padded
		r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": big.String()}).wantError(t, http.StatusRequestEntityTooLarge, "too_large")
		// Body longer than declared, with and without Content-Length.
		loc := r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": piece.String()}).want(t, http.StatusCreated).Header.Get("Location")
		longer := append(bytes.Clone(data), 1, 2, 3)
		r.do("PUT", loc, bytes.NewReader(longer)).wantError(t, http.StatusRequestEntityTooLarge, "too_large")
		loc = r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": piece.String()}).want(t, http.StatusCreated).Header.Get("Location")
		r.do("PUT", loc, io.MultiReader(bytes.NewReader(longer))).wantError(t, http.StatusRequestEntityTooLarge, "too_large")
		if storeHas(t, r.store, piece) {
			t.Fatal("oversized upload left the piece stored")
		}
		// Streaming past the provider's limit.
		loc = r.do("POST", "/pdp/piece/uploads", nil).want(t, http.StatusCreated).Header.Get("Location")
		r.do("PUT", loc, io.MultiReader(bytes.NewReader(apiPayload(5, 1<<20+1)))).wantError(t, http.StatusRequestEntityTooLarge, "too_large")
	})

	t.Run("above 64 GiB padded is 413 with default limits", func(t *testing.T) {
		r2 := newAPIRig(t, nil, 2, nil)
		huge := pdp.PieceCID{Root: piece.Root, Height: 32} // 128 GiB padded
		r2.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": huge.String()}).wantError(t, http.StatusRequestEntityTooLarge, "too_large")
		max := pdp.PieceCID{Root: piece.Root, Height: 31} // exactly 64 GiB padded: accepted
		r2.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": max.String()}).want(t, http.StatusCreated)
	})

	t.Run("unknown upload is 404", func(t *testing.T) {
		r.do("PUT", "/pdp/piece/upload/00000000-0000-4000-8000-000000000000", bytes.NewReader(data)).wantError(t, http.StatusNotFound, "unknown_upload")
		r.do("PUT", "/pdp/piece/uploads/00000000-0000-4000-8000-000000000000", bytes.NewReader(data)).wantError(t, http.StatusNotFound, "unknown_upload")
		r.doJSON("POST", "/pdp/piece/uploads/00000000-0000-4000-8000-000000000000", map[string]string{"pieceCid": piece.String()}).wantError(t, http.StatusNotFound, "unknown_upload")
		// A one-shot session is not a streaming one.
		loc := r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": piece.String()}).want(t, http.StatusCreated).Header.Get("Location")
		id := loc[strings.LastIndexByte(loc, '/')+1:]
		r.do("PUT", "/pdp/piece/uploads/"+id, bytes.NewReader(data)).wantError(t, http.StatusNotFound, "unknown_upload")
	})

	t.Run("empty streaming upload is 400 and stores nothing", func(t *testing.T) {
		before := r.store.Metrics().IngestedPieces
		loc := r.do("POST", "/pdp/piece/uploads", nil).want(t, http.StatusCreated).Header.Get("Location")
		r.do("PUT", loc, bytes.NewReader(nil)).wantError(t, http.StatusBadRequest, "empty_piece")
		if after := r.store.Metrics().IngestedPieces; after != before {
			t.Fatalf("an empty upload stored a piece (%d → %d)", before, after)
		}
	})
}

// A client that sends part of a body and then stalls gets dropped after the idle timeout and
// its session is cleaned up.
func TestStalledUploadIsDropped(t *testing.T) {
	r := newAPIRig(t, nil, 1, func(c *Config) { c.UploadIdleTimeout = 200 * time.Millisecond })
	data := apiPayload(6, 50_000)
	piece := commPOf(t, data)
	loc := r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": piece.String()}).want(t, http.StatusCreated).Header.Get("Location")

	conn, err := net.Dial("tcp", r.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", loc, len(data))
	conn.Write(data[:1000])
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("stalled upload answered %d, want 408", resp.StatusCode)
		}
	} else {
		t.Logf("stalled upload: connection ended: %v", err)
	}
	waitUntil(t, "stalled session removed", func() bool {
		return r.do("PUT", loc, bytes.NewReader(data)).StatusCode == http.StatusNotFound
	})
	if storeHas(t, r.store, piece) {
		t.Fatal("stalled upload left the piece stored")
	}
}

// Sessions that were created but never finished expire (store sessions + injected clock); a
// session receiving bytes is never swept.
func TestSessionsExpire(t *testing.T) {
	r := newAPIRig(t, nil, 1, func(c *Config) { c.SessionTTL = time.Hour })
	data := apiPayload(7, 4000)
	piece := commPOf(t, data)
	oneShot := r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": piece.String()}).want(t, http.StatusCreated).Header.Get("Location")
	streaming := r.do("POST", "/pdp/piece/uploads", nil).want(t, http.StatusCreated).Header.Get("Location")
	stored := r.do("POST", "/pdp/piece/uploads", nil).want(t, http.StatusCreated).Header.Get("Location")
	r.do("PUT", stored, bytes.NewReader(data)).want(t, http.StatusNoContent) // stored, never finalized

	// A PUT in progress on another streaming session.
	busy := r.do("POST", "/pdp/piece/uploads", nil).want(t, http.StatusCreated).Header.Get("Location")
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		req, _ := http.NewRequest("PUT", r.srv.URL+busy, pr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	pw.Write(data[:100])
	waitUntil(t, "upload in progress", func() bool {
		r.p.mu.Lock()
		defer r.p.mu.Unlock()
		return len(r.p.active) == 1
	})

	if n, err := r.p.Sweep(t.Context()); err != nil || n != 0 {
		t.Fatalf("fresh sessions swept: %d, %v", n, err)
	}
	r.clock.Advance(2 * time.Hour)
	n, err := r.p.Sweep(t.Context())
	if err != nil || n != 3 {
		t.Fatalf("swept %d sessions (%v), want 3 (the busy one stays)", n, err)
	}
	r.do("PUT", oneShot, bytes.NewReader(data)).wantError(t, http.StatusNotFound, "unknown_upload")
	r.do("PUT", streaming, bytes.NewReader(data)).wantError(t, http.StatusNotFound, "unknown_upload")
	r.doJSON("POST", stored, map[string]string{"pieceCid": piece.String()}).wantError(t, http.StatusNotFound, "unknown_upload")
	pw.Write(data[100:])
	pw.Close()
	if code := <-done; code != http.StatusNoContent {
		t.Fatalf("busy upload answered %d", code)
	}
	if !strings.Contains(string(r.do("GET", "/metrics", nil).body), "warmstore_provider_upload_sessions_expired_total 3") {
		t.Fatal("expired sessions not counted")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two concurrent PUTs of the same session: exactly one stores, the other is a conflict.
func TestConcurrentPutsConflict(t *testing.T) {
	r := newAPIRig(t, nil, 1, nil)
	data := apiPayload(8, 200_000)
	piece := commPOf(t, data)
	loc := r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": piece.String()}).want(t, http.StatusCreated).Header.Get("Location")
	codes := make(chan int, 2)
	for range 2 {
		go func() {
			req, _ := http.NewRequest("PUT", r.srv.URL+loc, bytes.NewReader(data))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- -1
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	a, b := <-codes, <-codes
	if !(a == 204 && b == 409 || a == 409 && b == 204) {
		t.Fatalf("concurrent PUTs answered %d and %d, want one 204 and one 409", a, b)
	}
}

func TestHealthFailsWhenStoreCloses(t *testing.T) {
	r := newAPIRig(t, nil, 1, nil)
	r.do("GET", "/healthz", nil).want(t, http.StatusOK)
	r.store.Close()
	r.do("GET", "/healthz", nil).wantError(t, http.StatusServiceUnavailable, "unhealthy")
}

// Browsers may call the API from any origin: preflights are answered, and the headers the SDK
// reads are exposed.
func TestCORS(t *testing.T) {
	r := newAPIRig(t, nil, 1, nil)
	pre := r.do("OPTIONS", "/pdp/piece/uploads", nil, "Origin", "https://app.example", "Access-Control-Request-Method", "POST").want(t, http.StatusNoContent)
	if pre.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), "PUT") {
		t.Fatalf("preflight headers %v", pre.Header)
	}
	resp := r.do("POST", "/pdp/piece/uploads", nil, "Origin", "https://app.example").want(t, http.StatusCreated)
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Location") {
		t.Fatalf("response headers %v", resp.Header)
	}
}

// The stored-bytes gauge counts pieces stored before the provider (re)started.
func TestStoredBytesSurviveRestart(t *testing.T) {
	r := newAPIRig(t, nil, 1, nil)
	r.upload(apiPayload(80, 4000))
	reg := prometheus.NewRegistry()
	p2, err := New(Config{Store: r.store, Registerer: reg, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	srv := httptest.NewServer(p2.Handler())
	defer srv.Close()
	r.srv.Close()
	r.srv = srv
	r.upload(apiPayload(81, 1000))
	if m := string(r.do("GET", "/metrics", nil).body); !strings.Contains(m, "warmstore_provider_stored_bytes 5000\n") {
		t.Fatalf("stored bytes:\n%s", grepLines(m, "stored_bytes"))
	}
}

// Upload sessions are capped; sessions freed by failure or expiry make room again.
func TestUploadSessionsAreCapped(t *testing.T) {
	r := newAPIRig(t, nil, 1, func(c *Config) { c.MaxSessions = 2; c.SessionTTL = time.Hour })
	first := r.do("POST", "/pdp/piece/uploads", nil).want(t, http.StatusCreated).Header.Get("Location")
	r.do("POST", "/pdp/piece/uploads", nil).want(t, http.StatusCreated)
	r.do("POST", "/pdp/piece/uploads", nil).wantError(t, http.StatusTooManyRequests, "too_many_uploads")
	r.doJSON("POST", "/pdp/piece", map[string]string{"pieceCid": commPOf(t, []byte("abc")).String()}).wantError(t, http.StatusTooManyRequests, "too_many_uploads")
	// A failed upload frees its session.
	r.do("PUT", first, bytes.NewReader(nil)).wantError(t, http.StatusBadRequest, "empty_piece")
	r.do("POST", "/pdp/piece/uploads", nil).want(t, http.StatusCreated)
	r.do("POST", "/pdp/piece/uploads", nil).wantError(t, http.StatusTooManyRequests, "too_many_uploads")
	// Expiry frees the rest.
	r.clock.Advance(2 * time.Hour)
	if n, err := r.p.Sweep(t.Context()); err != nil || n != 2 {
		t.Fatalf("swept %d, %v", n, err)
	}
	r.do("POST", "/pdp/piece/uploads", nil).want(t, http.StatusCreated)
}
