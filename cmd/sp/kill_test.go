package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warmstore/warmstore/pdp"
)

// slowReader hands out its bytes in small chunks with pauses, so a SIGKILL lands while
// uploads are in the middle of their bodies.
type slowReader struct {
	b     []byte
	chunk int
	pause time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.chunk, len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	time.Sleep(r.pause)
	return n, nil
}

type upload struct {
	piece   pdp.PieceCID
	payload []byte
}

// uploadOnce runs the one-shot upload flow and reports whether the provider acknowledged the
// piece (PUT answered 204).
func uploadOnce(hc *http.Client, base string, u upload) (bool, error) {
	body, _ := json.Marshal(map[string]string{"pieceCid": u.piece.String()})
	resp, err := hc.Post(base+"/pdp/piece", "application/json", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return true, nil // already stored: acknowledged earlier
	}
	if resp.StatusCode != http.StatusCreated {
		return false, fmt.Errorf("POST /pdp/piece: %s", resp.Status)
	}
	req, err := http.NewRequest("PUT", base+resp.Header.Get("Location"), &slowReader{b: u.payload, chunk: 32 << 10, pause: time.Millisecond})
	if err != nil {
		return false, err
	}
	req.ContentLength = int64(len(u.payload))
	resp, err = hc.Do(req)
	if err != nil {
		return false, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return false, fmt.Errorf("PUT: %s", resp.Status)
	}
	return true, nil
}

// TestKillDuringUploads SIGKILLs `sp run` while uploads stream in, restarts it on the same
// data directory, and checks that every acknowledged piece is intact and retrievable, that a
// piece whose upload was cut is either absent or complete (never partial), and that no
// half-written file is left behind.
func TestKillDuringUploads(t *testing.T) {
	dir := t.TempDir()
	args := []string{"run", "--data-dir", dir, "--listen", "127.0.0.1:0", "--chain-listen", "127.0.0.1:0", "--log-level", "error"}
	p := startSP(t, args...)
	base := p.fields["api"]

	const workers = 6
	var (
		mu      sync.Mutex
		acked   []upload
		started []upload
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	hc := &http.Client{Timeout: time.Minute}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 77))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				payload := make([]byte, 1000+r.IntN(600_000))
				for k := range payload {
					payload[k] = byte(r.Uint32())
				}
				piece, err := pdp.CommP(bytes.NewReader(payload))
				if err != nil {
					t.Error(err)
					return
				}
				u := upload{piece, payload}
				mu.Lock()
				started = append(started, u)
				mu.Unlock()
				ok, err := uploadOnce(hc, base, u)
				if ok {
					mu.Lock()
					acked = append(acked, u)
					mu.Unlock()
				}
				if err != nil {
					return // the daemon is gone
				}
			}
		}()
	}
	// Let a good number of uploads complete, then kill mid-stream.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 12 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.stop(syscall.SIGKILL); err == nil {
		t.Fatal("sp exited cleanly after SIGKILL")
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no upload was acknowledged before the kill")
	}
	if len(started) == len(acked) {
		t.Log("every started upload was acknowledged: the kill landed between uploads")
	}

	// What the kill left: temporary blobs of uploads cut mid-body.
	tmpDir := filepath.Join(dir, "storage", "tmp")
	before, err := os.ReadDir(tmpDir)
	if err != nil {
		t.Fatal(err)
	}

	p = startSP(t, args...)
	base = p.fields["api"]
	get := func(piece pdp.PieceCID) (int, []byte) {
		resp, err := hc.Get(base + "/piece/" + piece.String())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	isAcked := map[pdp.PieceCID]bool{}
	for _, u := range acked {
		isAcked[u.piece] = true
		code, b := get(u.piece)
		if code != http.StatusOK || !bytes.Equal(b, u.payload) {
			t.Errorf("acknowledged piece %v: %d, %d of %d bytes, equal=%v", u.piece, code, len(b), len(u.payload), bytes.Equal(b, u.payload))
		}
	}
	cut := 0
	for _, u := range started {
		if isAcked[u.piece] {
			continue
		}
		cut++
		switch code, b := get(u.piece); code {
		case http.StatusNotFound:
		case http.StatusOK:
			// Stored and committed before the kill, only the 204 was lost: it must be whole.
			if !bytes.Equal(b, u.payload) {
				t.Errorf("unacknowledged piece %v is served with %d bytes that differ from the upload", u.piece, len(b))
			}
		default:
			t.Errorf("unacknowledged piece %v: status %d", u.piece, code)
		}
	}
	// Nothing half-written: no temporary blob survives the restart's cleanup.
	left, err := os.ReadDir(tmpDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d temporary files left after restart: %v", len(left), left)
	}
	t.Logf("%d acknowledged pieces intact, %d cut uploads absent or whole, %d half-written files removed at restart", len(acked), cut, len(before))
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("sp run after SIGTERM: %v", err)
	}
}
