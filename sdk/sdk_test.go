package sdk

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/warmstore/warmstore/pdp"
)

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestUploadTwoCopiesAndDownload(t *testing.T) {
	d := newDevnet(t, 3)
	c := d.newClient(100)
	ctx := context.Background()
	data := randomBytes(1, 300_000)
	var events []UploadEvent
	res, err := c.Upload(ctx, bytes.NewReader(data), UploadOptions{Progress: func(e UploadEvent) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	want := mustCommP(t, data)
	if res.Piece != want {
		t.Fatalf("piece %v, want %v", res.Piece, want)
	}
	if !res.Complete || len(res.Copies) != 2 {
		t.Fatalf("result %+v", res)
	}
	if res.Copies[0].Provider == res.Copies[1].Provider {
		t.Fatalf("both copies on %s", res.Copies[0].Provider)
	}
	if !res.Copies[1].Pulled {
		t.Errorf("second copy was not pulled: %+v", res.Copies[1])
	}
	for _, cp := range res.Copies {
		ds, err := c.DataSet(ctx, cp.DataSetID)
		if err != nil {
			t.Fatal(err)
		}
		if ds.Provider != cp.Provider || len(ds.Pieces) != 1 || ds.Pieces[0].CID != want {
			t.Fatalf("data set %d on chain: %+v", cp.DataSetID, ds)
		}
	}
	var out bytes.Buffer
	dr, err := c.Download(ctx, res.Piece, &out, DownloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("downloaded bytes differ")
	}
	if len(dr.Failures) != 0 {
		t.Errorf("failures: %v", dr.Failures)
	}
	// A second upload reuses the data sets.
	res2, err := c.Upload(ctx, bytes.NewReader(randomBytes(2, 5000)), UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range res2.Copies {
		if cp.NewDataSet {
			t.Errorf("second upload created a data set on %s", cp.ProviderName)
		}
	}
	var sawBytes bool
	for _, e := range events {
		sawBytes = sawBytes || e.Kind == EventBytes
	}
	if !sawBytes {
		t.Error("no byte progress events")
	}
	if _, err := c.Download(ctx, pdp.PieceCID{}, &out, DownloadOptions{}); err == nil {
		t.Error("download of a zero CID succeeded")
	}
}

// TestUploadKnownPieceCID: a caller-supplied piece CID skips client hashing; a wrong one is
// refused by the provider and nothing is committed.
func TestUploadKnownPieceCID(t *testing.T) {
	d := newDevnet(t, 2)
	c := d.newClient(100)
	ctx := context.Background()
	data := randomBytes(9, 70_000)
	p := mustCommP(t, data)
	res, err := c.Upload(ctx, bytes.NewReader(data), UploadOptions{PieceCID: &p})
	if err != nil || res.Piece != p || len(res.Copies) != 2 {
		t.Fatalf("known CID: %v %+v", err, res)
	}
	wrong := mustCommP(t, data[1:])
	_, err = c.Upload(ctx, bytes.NewReader(data), UploadOptions{PieceCID: &wrong})
	var se *StoreError
	if !errors.As(err, &se) {
		t.Fatalf("wrong CID: err %v, want StoreError", err)
	}
	// Without these checks a failed listing (or none at all) would pass the loop below.
	sets, err := c.DataSets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != len(res.Copies) {
		t.Fatalf("%d data sets, want one per copy of the first upload (%d)", len(sets), len(res.Copies))
	}
	for _, ds := range sets {
		if ds.PieceCount != 1 {
			t.Fatalf("data set %d has %d pieces after a refused upload", ds.ID, ds.PieceCount)
		}
	}
}
