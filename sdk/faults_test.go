package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/warmstore/warmstore/pdp"
)

// uploadedTo stores data with two copies and returns the result and the devProviders that
// hold the copies, in copy order.
func uploadedTo(t *testing.T, d *devnet, c *Client, data []byte) (*UploadResult, []*devProvider) {
	t.Helper()
	res, err := c.Upload(context.Background(), bytes.NewReader(data), UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete {
		t.Fatalf("upload incomplete: %+v", res)
	}
	var holders []*devProvider
	for _, cp := range res.Copies {
		for _, dp := range d.providers {
			if dp.prov.Address() == cp.Provider {
				holders = append(holders, dp)
			}
		}
	}
	return res, holders
}

// TestMisbehavingProviders: a copy that flips a byte, truncates, stalls, sends garbage or
// claims a piece it lacks is detected and abandoned; the download still returns exactly the
// piece's bytes, from the other copy.
func TestMisbehavingProviders(t *testing.T) {
	d := newDevnet(t, 2)
	c := d.newClient(100, func(cfg *Config) {
		cfg.StallTimeout = time.Second
		cfg.Window = 127 << 10 // several windows per piece, so a switch happens mid-download
	})
	data := randomBytes(7, 600_000)
	res, holders := uploadedTo(t, d, c, data)
	for _, f := range []fault{faultFlip, faultTruncate, faultStall, faultGarbage, faultLacks} {
		for _, full := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/full=%v", f, full), func(t *testing.T) {
				bad, good := holders[0], holders[1]
				bad.setFault(f)
				defer bad.setFault(faultNone)
				defer bad.release()
				start, end := uint64(0), uint64(len(data))
				if !full {
					start, end = 1000, 500_000
				}
				var out bytes.Buffer
				// The bad provider is tried first.
				dr, err := c.DownloadRange(context.Background(), res.Piece, start, end, &out, DownloadOptions{Sources: []string{bad.srv.URL}})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(), data[start:end]) {
					t.Fatal("wrong bytes returned")
				}
				if len(dr.Failures) != 1 || dr.Failures[0].Source != bad.srv.URL {
					t.Fatalf("failures %+v, want exactly the bad provider", dr.Failures)
				}
				if len(dr.Sources) != 1 || dr.Sources[0] != good.srv.URL {
					t.Fatalf("sources %v, want the good provider", dr.Sources)
				}
				var ok bool
				switch f {
				case faultFlip, faultGarbage:
					ok = contains(dr.Failures[0].Error, "different root")
				case faultTruncate:
					ok = contains(dr.Failures[0].Error, "truncated")
				case faultStall:
					ok = contains(dr.Failures[0].Error, "stall")
				case faultLacks:
					ok = contains(dr.Failures[0].Error, "404")
				}
				if !ok {
					t.Fatalf("failure reason %q does not match fault %s", dr.Failures[0].Error, f)
				}
			})
		}
	}
	// Both copies bad: the download fails with ErrNoCopy and writes nothing unverified.
	holders[0].setFault(faultFlip)
	holders[1].setFault(faultGarbage)
	var out bytes.Buffer
	_, err := c.Download(context.Background(), res.Piece, &out, DownloadOptions{})
	if !errors.Is(err, ErrNoCopy) {
		t.Fatalf("err %v, want ErrNoCopy", err)
	}
	if out.Len() != 0 {
		t.Fatalf("%d unverified bytes written", out.Len())
	}
}

func contains(s, sub string) bool { return bytes.Contains([]byte(s), []byte(sub)) }

// TestRoundTripSizes uploads payloads of many sizes (edges of fr32 chunks, sections and
// windows) and downloads them whole and in ranges.
func TestRoundTripSizes(t *testing.T) {
	d := newDevnet(t, 2)
	c := d.newClient(500, func(cfg *Config) { cfg.Window = 127 << 8 })
	ctx := context.Background()
	sec := int(pdp.SectionRawSize(pdp.DefaultLayerHeight))
	for _, size := range []int{127, 128, 254, 1000, 4064, 32512, 32513, sec - 1, sec, sec + 1, 2*sec + 77, 1 << 20} {
		data := randomBytes(uint64(size)+11, size)
		res, err := c.Upload(ctx, bytes.NewReader(data), UploadOptions{})
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if len(res.Copies) != 2 || res.Size != uint64(size) {
			t.Fatalf("size %d: %+v", size, res)
		}
		var out bytes.Buffer
		if _, err := c.Download(ctx, res.Piece, &out, DownloadOptions{}); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("size %d: bytes differ", size)
		}
		for _, rg := range [][2]int{{0, 1}, {size - 1, size}, {size / 3, size/3 + size/3 + 1}} {
			out.Reset()
			if _, err := c.DownloadRange(ctx, res.Piece, uint64(rg[0]), uint64(rg[1]), &out, DownloadOptions{}); err != nil {
				t.Fatalf("size %d range %v: %v", size, rg, err)
			}
			if !bytes.Equal(out.Bytes(), data[rg[0]:rg[1]]) {
				t.Fatalf("size %d range %v: bytes differ", size, rg)
			}
		}
	}
	var out bytes.Buffer
	if _, err := c.DownloadRange(ctx, mustCommP(t, []byte("x")), 0, 2, &out, DownloadOptions{}); !errors.Is(err, ErrBadRange) {
		t.Fatalf("range past the end: %v", err)
	}
}

func mustCommP(t *testing.T, b []byte) pdp.PieceCID {
	p, err := pdp.CommP(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInsufficientFunds: without deposit the upload is refused before any byte is sent, with
// the amount to deposit; without approval it says to approve.
func TestInsufficientFunds(t *testing.T) {
	d := newDevnet(t, 2)
	c := d.newClient(0)
	ctx := context.Background()
	data := randomBytes(3, 10_000)
	_, err := c.Upload(ctx, bytes.NewReader(data), UploadOptions{})
	var ife *InsufficientFundsError
	if !errors.As(err, &ife) || !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("err %v, want InsufficientFundsError", err)
	}
	if ife.Missing().Sign() <= 0 || !contains(err.Error(), "deposit at least") {
		t.Fatalf("error does not say how much: %v", err)
	}
	for _, dp := range d.providers {
		if n, _ := dp.store.Stat(mustCommP(t, data)); n.RawSize != 0 {
			t.Fatalf("bytes reached %s", dp.name)
		}
	}
	// Deposit exactly the missing amount (approval still missing): the funds check passes and
	// the approval check names the fix.
	if _, err := c.Deposit(ctx, ife.Missing()); err != nil {
		t.Fatal(err)
	}
	_, err = c.Upload(ctx, bytes.NewReader(data), UploadOptions{})
	if !errors.Is(err, ErrNotApproved) {
		t.Fatalf("err %v, want ErrNotApproved", err)
	}
	if _, err := c.Approve(ctx, Allowances{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Upload(ctx, bytes.NewReader(data), UploadOptions{}); err != nil {
		t.Fatalf("with the exact missing amount deposited: %v", err)
	}
	// Withdrawing more than is available names the shortfall too.
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Withdraw(ctx, usdfc(1_000_000)); !errors.As(err, &ife) {
		t.Fatalf("withdraw: %v", err)
	}
	if len(st.Rails) != 2 {
		t.Fatalf("status shows %d rails, want 2 (one per copy)", len(st.Rails))
	}
}

// TestNoProvider: a registry whose providers are all down gives ErrNoProvider.
func TestNoProvider(t *testing.T) {
	d := newDevnet(t, 1)
	c := d.newClient(10)
	d.providers[0].srv.Close()
	_, err := c.Upload(context.Background(), bytes.NewReader([]byte("hello")), UploadOptions{})
	if !errors.Is(err, ErrNoProvider) {
		t.Fatalf("err %v, want ErrNoProvider", err)
	}
}

// onlyReader hides a reader's Seek, so the upload cannot rewind it.
type onlyReader struct{ r *bytes.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// TestPullFailure: when the second provider cannot pull (the primary serves garbage on
// /piece), a rewindable input is uploaded to it directly; a one-shot input leaves a partial
// result that says which copy failed and why, without an error.
func TestPullFailure(t *testing.T) {
	d := newDevnet(t, 2)
	c := d.newClient(100)
	ctx := context.Background()
	sp1, sp2 := d.providers[0], d.providers[1]
	order := UploadOptions{Providers: []common.Address{sp1.prov.Address(), sp2.prov.Address()}}
	sp1.setFault(faultGarbage)

	data := randomBytes(21, 90_000)
	res, err := c.Upload(ctx, bytes.NewReader(data), order)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || len(res.Copies) != 2 || res.Copies[1].Pulled || res.Copies[1].Provider != sp2.prov.Address() {
		t.Fatalf("rewindable input: %+v", res)
	}

	data2 := randomBytes(22, 90_000)
	res, err = c.Upload(ctx, onlyReader{bytes.NewReader(data2)}, order)
	if err != nil {
		t.Fatalf("partial upload returned an error: %v", err)
	}
	if res.Complete || len(res.Copies) != 1 || res.Copies[0].Provider != sp1.prov.Address() {
		t.Fatalf("one-shot input: %+v", res)
	}
	if len(res.Failed) != 1 || res.Failed[0].Provider != sp2.prov.Address() || res.Failed[0].Stage != "pull" {
		t.Fatalf("failures %+v, want the pull on sp2", res.Failed)
	}
}

// TestLyingProofSource: a provider whose range proofs do not verify is not trusted for proofs
// or bytes; the range is verified with the other provider's proof.
func TestLyingProofSource(t *testing.T) {
	d := newDevnet(t, 2)
	c := d.newClient(100)
	data := randomBytes(31, 200_000)
	res, holders := uploadedTo(t, d, c, data)
	bad := holders[0]
	bad.setFault(faultBadProof)
	var out bytes.Buffer
	dr, err := c.DownloadRange(context.Background(), res.Piece, 5000, 150_000, &out, DownloadOptions{Sources: []string{bad.srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data[5000:150_000]) {
		t.Fatal("wrong bytes")
	}
	if len(dr.Failures) != 1 || dr.Failures[0].Source != bad.srv.URL || !contains(dr.Failures[0].Error, "range proof does not verify") {
		t.Fatalf("failures %+v", dr.Failures)
	}
}

// TestUploadStall: a provider that stops reading an upload is abandoned after the stall
// timeout and the bytes go to the next provider (the input is rewound).
func TestUploadStall(t *testing.T) {
	d := newDevnet(t, 2)
	c := d.newClient(100, func(cfg *Config) { cfg.StallTimeout = time.Second })
	sp1, sp2 := d.providers[0], d.providers[1]
	sp1.setFault(faultSlowPut)
	defer sp1.release()
	data := randomBytes(41, 4<<20)
	res, err := c.Upload(context.Background(), bytes.NewReader(data), UploadOptions{Copies: 1,
		Providers: []common.Address{sp1.prov.Address(), sp2.prov.Address()}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Copies) != 1 || res.Copies[0].Provider != sp2.prov.Address() || !res.Complete {
		t.Fatalf("result %+v", res)
	}
	if len(res.Failed) != 1 || !contains(res.Failed[0].Error, "stall") {
		t.Fatalf("failures %+v, want the stalled provider", res.Failed)
	}
}
