package ipfs_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/warmstore/warmstore/ipfs"
)

// FuzzReceiveCAR feeds arbitrary bytes to the client's CAR parser (what a gateway sends is
// untrusted): it must never panic, and every block it accepts must hash to its CID.
func FuzzReceiveCAR(f *testing.F) {
	ctx := context.Background()
	var seedRoot cid.Cid
	for _, content := range [][]byte{[]byte("a block"), randomBytes(2, 2*ipfs.ChunkSize+5)} {
		p := filepath.Join(f.TempDir(), "f")
		writeFile(f, p, content)
		root, car := buildCAR(f, p)
		seedRoot = root
		f.Add(car.Bytes(), root.Bytes())
		b := bytes.Clone(car.Bytes())
		b[len(b)-1] ^= 1
		f.Add(b, root.Bytes())
		f.Add(car.Bytes()[:len(car.Bytes())/2], root.Bytes())
	}
	f.Add([]byte{}, seedRoot.Bytes())
	f.Add([]byte{0x0a, 0xa1, 0x67}, seedRoot.Bytes())
	f.Fuzz(func(t *testing.T, data, rootBytes []byte) {
		root, err := cid.Cast(rootBytes)
		if err != nil {
			root = seedRoot
		}
		bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
		res, err := ipfs.ReceiveCAR(ctx, bytes.NewReader(data), root, bs)
		if res == nil {
			t.Fatalf("nil result (err %v)", err)
		}
		keys, kerr := bs.AllKeysChan(ctx)
		if kerr != nil {
			t.Fatal(kerr)
		}
		n := 0
		for k := range keys {
			blk, gerr := bs.Get(ctx, k)
			if gerr != nil {
				t.Fatal(gerr)
			}
			if verr := ipfs.VerifyBlock(blk.Cid(), blk.RawData()); verr != nil {
				t.Fatalf("accepted an unverified block: %v", verr)
			}
			n++
		}
		if n > res.Blocks {
			t.Fatalf("%d blocks stored, %d reported", n, res.Blocks)
		}
	})
}
