package sdk

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/ipfs"
)

func TestAddPathAndGet(t *testing.T) {
	d := newDevnet(t, 2)
	c := d.newClient(100)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "site")
	files := map[string][]byte{
		"a.txt":         []byte("alpha"),
		"sub/b.bin":     randomBytes(3, 700_000),
		"sub/deep/c.md": []byte("# c"),
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := c.AddPath(ctx, dir, UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := ipfs.RootOf(ctx, dir); !res.Root.Equals(want) {
		t.Fatalf("root %s, want %s", res.Root, want)
	}
	if !res.Upload.Complete || len(res.Upload.Copies) != 2 {
		t.Fatalf("upload %+v", res.Upload)
	}
	// The chain records what the providers and other clients need: the data set asks for
	// indexing and the piece names its IPFS root.
	for _, cp := range res.Upload.Copies {
		ds, err := c.Chain().DataSet(ctx, cp.DataSetID)
		if err != nil {
			t.Fatal(err)
		}
		if !hasKey(ds.Metadata, IPFSIndexingKey) {
			t.Fatalf("data set %d metadata %v lacks %s", ds.ID, ds.Metadata, IPFSIndexingKey)
		}
		pieces, err := c.Chain().Pieces(ctx, cp.DataSetID)
		if err != nil {
			t.Fatal(err)
		}
		if len(pieces) != 1 || len(pieces[0].Metadata) != 1 || pieces[0].Metadata[0].Key != IPFSRootKey || pieces[0].Metadata[0].Value != res.Root.String() {
			t.Fatalf("piece metadata on chain: %+v", pieces)
		}
	}
	addr := func(dp *devProvider) common.Address { return crypto.PubkeyToAddress(dp.key.PublicKey) }

	// Each provider indexes on its own schedule (the chain event): wait for both.
	for _, dp := range d.providers {
		deadline := time.Now().Add(10 * time.Second)
		for {
			out := filepath.Join(t.TempDir(), "out")
			_, err := c.Get(ctx, res.Root, out, GetOptions{Providers: []common.Address{addr(dp)}})
			if err == nil {
				for name, want := range files {
					if b, _ := os.ReadFile(filepath.Join(out, name)); !bytes.Equal(b, want) {
						t.Fatalf("%s from %s differs", name, dp.name)
					}
				}
				break
			}
			if !errors.Is(err, ErrNotFound) || time.Now().After(deadline) {
				t.Fatalf("get from %s: %v", dp.name, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// A provider that corrupts what it sends is skipped for the next.
	d.providers[0].setFault(faultFlip)
	out := filepath.Join(t.TempDir(), "out")
	gr, err := c.Get(ctx, res.Root, out, GetOptions{Providers: []common.Address{addr(d.providers[0]), addr(d.providers[1])}})
	if err != nil {
		t.Fatal(err)
	}
	if gr.Gateway != d.providers[1].srv.URL {
		t.Fatalf("served by %s, want the honest %s", gr.Gateway, d.providers[1].srv.URL)
	}
	// With every provider corrupting, Get fails and writes nothing.
	d.providers[1].setFault(faultFlip)
	bad := filepath.Join(t.TempDir(), "bad")
	if _, err := c.Get(ctx, res.Root, bad, GetOptions{}); err == nil {
		t.Fatal("get from corrupting providers succeeded")
	}
	if _, err := os.Stat(bad); err == nil {
		t.Fatal("a failed get wrote output")
	}
	d.providers[0].setFault(faultNone)
	d.providers[1].setFault(faultNone)

	// IPFS content reuses the IPFS data sets; plain uploads keep to data sets without the key.
	file := filepath.Join(t.TempDir(), "one.txt")
	if err := os.WriteFile(file, []byte("second add"), 0o644); err != nil {
		t.Fatal(err)
	}
	res2, err := c.AddPath(ctx, file, UploadOptions{Copies: 1})
	if err != nil {
		t.Fatal(err)
	}
	ipfsSets := map[uint64]bool{}
	for _, cp := range res.Upload.Copies {
		ipfsSets[cp.DataSetID] = true
	}
	if cp := res2.Upload.Copies[0]; !ipfsSets[cp.DataSetID] || cp.NewDataSet {
		t.Fatalf("second add went to data set %d (new %v), want one of %v", cp.DataSetID, cp.NewDataSet, ipfsSets)
	}
	plain, err := c.Upload(ctx, bytes.NewReader(randomBytes(8, 1000)), UploadOptions{Copies: 1})
	if err != nil {
		t.Fatal(err)
	}
	if cp := plain.Copies[0]; ipfsSets[cp.DataSetID] {
		t.Fatalf("plain upload went into IPFS data set %d", cp.DataSetID)
	}

	if _, err := c.AddPath(ctx, filepath.Join(t.TempDir(), "missing"), UploadOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("add of a missing path: %v", err)
	}
}

func hasKey(m []eip712.MetadataEntry, key string) bool {
	for _, e := range m {
		if e.Key == key {
			return true
		}
	}
	return false
}

// TestAddPathRewindsForNextProvider stalls the first provider mid-upload: the CAR stream is
// rebuilt from the start for the next one, which ends up with a piece that serves the tree.
func TestAddPathRewindsForNextProvider(t *testing.T) {
	d := newDevnet(t, 2)
	c := d.newClient(100, func(cfg *Config) { cfg.StallTimeout = time.Second })
	sp1, sp2 := d.providers[0], d.providers[1]
	sp1.setFault(faultSlowPut)
	defer sp1.release()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "d")
	data := randomBytes(5, 1<<20)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := c.AddPath(ctx, dir, UploadOptions{Copies: 1, Providers: []common.Address{sp1.prov.Address(), sp2.prov.Address()}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Upload.Copies) != 1 || res.Upload.Copies[0].Provider != sp2.prov.Address() || len(res.Upload.Failed) != 1 {
		t.Fatalf("upload %+v, want one copy on the second provider after one failure", res.Upload)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := filepath.Join(t.TempDir(), "out")
		_, err := c.Get(ctx, res.Root, out, GetOptions{Providers: []common.Address{sp2.prov.Address()}})
		if err == nil {
			if b, _ := os.ReadFile(filepath.Join(out, "big.bin")); !bytes.Equal(b, data) {
				t.Fatal("fetched bytes differ")
			}
			return
		}
		if !errors.Is(err, ErrNotFound) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
