package ipfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
	carblockstore "github.com/ipld/go-car/v2/blockstore"

	"github.com/warmstore/warmstore/ipfs"
	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage"
)

// rig is a real piece store, a real index and boxo's gateway on loopback.
type rig struct {
	store *storage.Store
	index *ipfs.Index
	srv   *httptest.Server
}

func newRig(t testing.TB) *rig {
	t.Helper()
	dir := t.TempDir()
	st, err := storage.Open(filepath.Join(dir, "storage"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	x, err := ipfs.OpenIndex(filepath.Join(dir, "ipfs-index"), st, ipfs.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	gw, err := ipfs.NewGateway(x, ipfs.GatewayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return &rig{store: st, index: x, srv: srv}
}

// add builds path into a CAR, stores it as a piece and indexes it for data set 1.
func (r *rig) add(t testing.TB, path string) (cid.Cid, pdp.PieceCID) {
	t.Helper()
	ctx := context.Background()
	root, car := buildCAR(t, path)
	info, err := r.store.Ingest(ctx, car, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.index.AddPiece(ctx, info.Piece, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Roots) != 1 || !rec.Roots[0].Equals(root) || rec.Blocks == 0 {
		t.Fatalf("index record %+v, want one root %s and some blocks", rec, root)
	}
	return root, info.Piece
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildCAR builds path into an in-memory CARv1 and returns its root.
func buildCAR(t testing.TB, path string) (cid.Cid, *bytes.Buffer) {
	t.Helper()
	var car bytes.Buffer
	root, err := ipfs.BuildCAR(context.Background(), path, &car)
	if err != nil {
		t.Fatal(err)
	}
	return root, &car
}

// eachBlock calls put with every block of the CAR read from car, in order, with its index.
func eachBlock(t testing.TB, car io.Reader, put func(i int, b blocks.Block) error) {
	t.Helper()
	br, err := carv2.NewBlockReader(car)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		b, err := br.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := put(i, b); err != nil {
			t.Fatal(err)
		}
	}
}

// tree makes a nested directory: files of several sizes (one spanning many chunks), an empty
// file, an empty directory and a repeated file (duplicate blocks).
func tree(t *testing.T) string {
	root := filepath.Join(t.TempDir(), "site")
	writeFile(t, filepath.Join(root, "index.html"), []byte("<h1>warmstore</h1>\n"))
	writeFile(t, filepath.Join(root, "assets", "big.bin"), randomBytes(1, 3*ipfs.ChunkSize+12345))
	writeFile(t, filepath.Join(root, "assets", "copy.bin"), randomBytes(1, 3*ipfs.ChunkSize+12345))
	writeFile(t, filepath.Join(root, "assets", "deep", "deeper", "note.txt"), []byte("down here"))
	writeFile(t, filepath.Join(root, "empty.txt"), nil)
	if err := os.MkdirAll(filepath.Join(root, "nothing"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// sameTree fails unless want and got hold the same names, kinds and file bytes.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(want, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		gp := filepath.Join(got, rel)
		gi, err := os.Stat(gp)
		if err != nil {
			return err
		}
		if gi.IsDir() != d.IsDir() {
			t.Errorf("%s: directory %v, want %v", rel, gi.IsDir(), d.IsDir())
			return nil
		}
		if !d.IsDir() {
			a, _ := os.ReadFile(p)
			b, _ := os.ReadFile(gp)
			if !bytes.Equal(a, b) {
				t.Errorf("%s: %d bytes differ from the original %d", rel, len(b), len(a))
			}
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m := 0
	filepath.WalkDir(got, func(string, os.DirEntry, error) error { m++; return nil })
	if m != n {
		t.Errorf("fetched tree has %d entries, the original %d", m, n)
	}
}

func TestRoundTripFile(t *testing.T) {
	r := newRig(t)
	for _, size := range []int{0, 1, ipfs.ChunkSize, 5*ipfs.ChunkSize + 3} {
		src := filepath.Join(t.TempDir(), "f.bin")
		data := randomBytes(uint64(size), size)
		writeFile(t, src, data)
		root, _ := r.add(t, src)
		out := filepath.Join(t.TempDir(), "out.bin")
		res, err := ipfs.Fetch(context.Background(), nil, r.srv.URL, root, out)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: fetched %d bytes (%v), want the original", size, len(got), err)
		}
		wantBlocks := 1
		if size > ipfs.ChunkSize {
			wantBlocks = (size+ipfs.ChunkSize-1)/ipfs.ChunkSize + 1
		}
		if res.Blocks != wantBlocks {
			t.Errorf("size %d: %d blocks, want %d", size, res.Blocks, wantBlocks)
		}
	}
}

func TestRoundTripNestedDirectory(t *testing.T) {
	r := newRig(t)
	src := tree(t)
	root, _ := r.add(t, src)
	out := filepath.Join(t.TempDir(), "got")
	if _, err := ipfs.Fetch(context.Background(), nil, r.srv.URL, root, out); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, out)

	// A path inside the DAG resolves through the gateway: fetch one nested file.
	res, err := http.Get(r.srv.URL + "/ipfs/" + root.String() + "/assets/deep/deeper/note.txt?format=car")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("path request: %d", res.StatusCode)
	}
	br, err := carv2.NewBlockReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var last []byte
	for {
		b, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last = b.RawData()
	}
	if string(last) != "down here" {
		t.Fatalf("path CAR ends with %q, want the file's raw leaf", last)
	}
}

func TestRawBlockAndMissingBlock(t *testing.T) {
	r := newRig(t)
	src := filepath.Join(t.TempDir(), "small.txt")
	writeFile(t, src, []byte("one raw block"))
	root, _ := r.add(t, src)
	get := func(c cid.Cid) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/ipfs/"+c.String(), nil)
		req.Header.Set("Accept", "application/vnd.ipld.raw")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	res := get(root)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || string(body) != "one raw block" || res.Header.Get("Content-Type") != "application/vnd.ipld.raw" {
		t.Fatalf("raw block: %d %q %q", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	missing, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x12, MhLength: -1}.Sum([]byte("never stored"))
	if res := get(missing); res.StatusCode != http.StatusNotFound {
		t.Fatalf("missing block: %d, want 404", res.StatusCode)
	}
	if _, err := ipfs.Fetch(context.Background(), nil, r.srv.URL, missing, filepath.Join(t.TempDir(), "x")); !errors.Is(err, ipfs.ErrNotFound) {
		t.Fatalf("fetch of a missing root: %v, want ErrNotFound", err)
	}
}

func TestRemovePieceDropsBlocks(t *testing.T) {
	r := newRig(t)
	src := tree(t)
	root, piece := r.add(t, src)
	ctx := context.Background()
	if _, err := r.index.AddPiece(ctx, piece, 2); err != nil { // a second data set holds it too
		t.Fatal(err)
	}
	bs := r.index.Blockstore()
	if removed, err := r.index.RemovePiece(piece, 1); err != nil || removed {
		t.Fatalf("remove for data set 1: removed=%v err=%v; data set 2 still wants it", removed, err)
	}
	if ok, err := bs.Has(ctx, root); err != nil || !ok {
		t.Fatalf("root after the first removal: has=%v err=%v", ok, err)
	}
	if removed, err := r.index.RemovePiece(piece, 2); err != nil || !removed {
		t.Fatalf("remove for data set 2: removed=%v err=%v", removed, err)
	}
	if ok, err := bs.Has(ctx, root); err != nil || ok {
		t.Fatalf("root after the last removal: has=%v err=%v", ok, err)
	}
	keys, err := bs.AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		t.Fatalf("block %s still indexed", k)
	}
	if _, ok, err := r.index.Piece(piece); ok || err != nil {
		t.Fatalf("piece record after removal: ok=%v err=%v", ok, err)
	}
	if _, err := ipfs.Fetch(ctx, nil, r.srv.URL, root, filepath.Join(t.TempDir(), "x")); !errors.Is(err, ipfs.ErrNotFound) {
		t.Fatalf("fetch after removal: %v, want ErrNotFound", err)
	}
}

// TestTamperedBlockIsCaught puts a proxy between Fetch and the gateway that flips one byte
// of block data in the CAR it relays.
func TestTamperedBlockIsCaught(t *testing.T) {
	r := newRig(t)
	src := filepath.Join(t.TempDir(), "f.bin")
	writeFile(t, src, randomBytes(9, 2*ipfs.ChunkSize+10))
	root, _ := r.add(t, src)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		out, _ := http.NewRequest(req.Method, r.srv.URL+req.URL.RequestURI(), nil)
		out.Header = req.Header.Clone()
		res, err := http.DefaultClient.Do(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		body[len(body)-100] ^= 0x01 // inside the last block's data
		w.Header().Set("Content-Type", res.Header.Get("Content-Type"))
		w.WriteHeader(res.StatusCode)
		w.Write(body)
	}))
	defer proxy.Close()
	out := filepath.Join(t.TempDir(), "out.bin")
	if _, err := ipfs.Fetch(context.Background(), nil, proxy.URL, root, out); !errors.Is(err, ipfs.ErrBlockMismatch) {
		t.Fatalf("fetch through a tampering proxy: %v, want ErrBlockMismatch", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a tampered fetch wrote the output file")
	}
}

// TestIncompleteCARIsCaught drops one block (the second) of the CAR: every block that
// arrives is valid, but the DAG cannot be walked.
func TestIncompleteCARIsCaught(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "f.bin")
	writeFile(t, src, randomBytes(3, 3*ipfs.ChunkSize))
	root, car := buildCAR(t, src)
	// Copy every block but one into a fresh spool, then walk.
	spool := filepath.Join(t.TempDir(), "spool.car")
	bs, err := carblockstore.OpenReadWrite(spool, []cid.Cid{root})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Discard()
	dropped := false
	eachBlock(t, car, func(i int, b blocks.Block) error {
		if i == 1 {
			dropped = true
			return nil
		}
		return bs.Put(ctx, b)
	})
	if !dropped {
		t.Fatal("the CAR has fewer than two blocks: nothing was dropped")
	}
	if err := ipfs.WriteTree(ctx, bs, root, filepath.Join(t.TempDir(), "out")); !errors.Is(err, ipfs.ErrIncomplete) {
		t.Fatalf("walk with a missing block: %v, want ErrIncomplete", err)
	}
}

// TestCARReadableByGoCar checks BuildCAR's output with go-car's own readers: a valid CARv1
// whose one root is the DAG root, every block hashing to its CID, and an index go-car builds.
func TestCARReadableByGoCar(t *testing.T) {
	ctx := context.Background()
	src := tree(t)
	carPath := filepath.Join(t.TempDir(), "site.car")
	f, err := os.Create(carPath)
	if err != nil {
		t.Fatal(err)
	}
	root, err := ipfs.BuildCAR(ctx, src, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	plan, err := ipfs.PlanCAR(ctx, src)
	if err != nil || !plan.Root.Equals(root) {
		t.Fatalf("PlanCAR root %s (%v), BuildCAR %s", plan.Root, err, root)
	}
	if fi, err := os.Stat(carPath); err != nil || fi.Size() != plan.Size || plan.Blocks != 13 {
		t.Fatalf("CAR is %d bytes (%v); plan says %d bytes, %d blocks (want 13)", fi.Size(), err, plan.Size, plan.Blocks)
	}
	if root.Version() != 1 || root.Type() != cid.DagProtobuf {
		t.Fatalf("root %s: want a CIDv1 dag-pb directory", root)
	}
	rd, err := carv2.OpenReader(carPath)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if rd.Version != 1 {
		t.Fatalf("CAR version %d, want 1", rd.Version)
	}
	roots, err := rd.Roots()
	if err != nil || len(roots) != 1 || !roots[0].Equals(root) {
		t.Fatalf("roots %v (%v), want [%s]", roots, err, root)
	}
	ro, err := carblockstore.OpenReadOnly(carPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	keys, err := ro.AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k := range keys {
		b, err := ro.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := ipfs.VerifyBlock(k, b.RawData()); err != nil {
			t.Fatal(err)
		}
		n++
	}
	// Blocks: 5 directories, index.html, note.txt, empty.txt (3 raw leaves), big.bin and
	// copy.bin share their 4 leaves and 1 file node.
	if n != 13 {
		t.Fatalf("%d distinct blocks, want 13", n)
	}
	// The directory survives a walk through go-car's blockstore too.
	out := filepath.Join(t.TempDir(), "walked")
	if err := ipfs.WriteTree(ctx, ro, root, out); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, out)
}

func TestIndexRefusesNonCAR(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	info, err := r.store.Ingest(ctx, bytes.NewReader(randomBytes(5, 5000)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.index.AddPiece(ctx, info.Piece, 1); !errors.Is(err, ipfs.ErrNotCAR) {
		t.Fatalf("index random bytes: %v, want ErrNotCAR", err)
	}
	if _, ok, _ := r.index.Piece(info.Piece); ok {
		t.Fatal("a refused piece is recorded as indexed")
	}
}

// TestShardedDirectoryRoundTrip lowers boxo's sharding threshold so a 300-entry directory
// becomes a HAMT: the hash-only pass, the index, the gateway and the walk must all handle
// shard nodes (real directories reach the default 256 KiB threshold at a few thousand names).
func TestShardedDirectoryRoundTrip(t *testing.T) {
	old := uio.HAMTShardingSize
	uio.HAMTShardingSize = 1024
	t.Cleanup(func() { uio.HAMTShardingSize = old })
	r := newRig(t)
	src := filepath.Join(t.TempDir(), "many")
	for i := range 300 {
		writeFile(t, filepath.Join(src, fmt.Sprintf("file-%05d.txt", i)), []byte(fmt.Sprint(i)))
	}
	root, piece := r.add(t, src)
	rec, _, err := r.index.Piece(piece)
	if err != nil || rec.Blocks <= 301 {
		t.Fatalf("%d blocks (%v): want 300 leaves plus several shard nodes", rec.Blocks, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := ipfs.Fetch(context.Background(), nil, r.srv.URL, root, out); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, out)
}

// TestDamagedPieceNeverServesWrongBlock flips a byte of a stored piece file on disk: the
// gateway must not hand out the damaged block (its blockstore verifies what it reads), and a
// fetch fails instead of writing wrong bytes.
func TestDamagedPieceNeverServesWrongBlock(t *testing.T) {
	r := newRig(t)
	src := filepath.Join(t.TempDir(), "f.bin")
	data := randomBytes(11, 2*ipfs.ChunkSize+1000)
	writeFile(t, src, data)
	root, piece := r.add(t, src)
	// Find the piece's file among the store's blobs by its size and content.
	var pieceFile string
	filepath.WalkDir(filepath.Dir(r.index.Dir()), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if fi, err := d.Info(); err == nil && uint64(fi.Size()) == piece.RawSize() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, data[:4096]) {
				pieceFile = p
			}
		}
		return nil
	})
	if pieceFile == "" {
		t.Fatal("piece file not found under the store")
	}
	b, err := os.ReadFile(pieceFile)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, data[ipfs.ChunkSize:ipfs.ChunkSize+4096]) // the second leaf
	b[i+10] ^= 0x80
	if err := os.WriteFile(pieceFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.bin")
	_, err = ipfs.Fetch(context.Background(), nil, r.srv.URL, root, out)
	if err == nil {
		t.Fatal("fetch of a damaged piece succeeded")
	}
	if _, serr := os.Stat(out); serr == nil {
		t.Fatalf("fetch of a damaged piece wrote output (err %v)", err)
	}
	leaf, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x12, MhLength: -1}.Sum(data[ipfs.ChunkSize : 2*ipfs.ChunkSize])
	if _, err := r.index.Blockstore().Get(context.Background(), leaf); !errors.Is(err, ipfs.ErrBlockMismatch) {
		t.Fatalf("blockstore read of the damaged leaf: %v, want ErrBlockMismatch", err)
	}
}

// TestPieceGoneBeforeIndexEntries collects the piece from the store while the index still
// lists its blocks (the removal event not yet handled): the gateway answers 404, not an error.
func TestPieceGoneBeforeIndexEntries(t *testing.T) {
	r := newRig(t)
	src := filepath.Join(t.TempDir(), "f.txt")
	writeFile(t, src, []byte("short-lived"))
	root, piece := r.add(t, src)
	ctx := context.Background()
	rep, err := r.store.GC(ctx, time.Now().Add(48*time.Hour)) // unreferenced in the store: past the grace
	if err != nil || len(rep.Removed) != 1 || rep.Removed[0] != piece {
		t.Fatalf("GC: %+v %v", rep, err)
	}
	if _, err := r.index.Blockstore().Get(ctx, root); !format.IsNotFound(err) {
		t.Fatalf("get of a block whose piece is gone: %v, want not found", err)
	}
	req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/ipfs/"+root.String(), nil)
	req.Header.Set("Accept", "application/vnd.ipld.raw")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("raw request: %d, want 404", res.StatusCode)
	}
}

// TestInputChangedBetweenPasses edits the file after the planning pass: the writing pass
// must notice, since the header already promised the old root.
func TestInputChangedBetweenPasses(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "f.bin")
	writeFile(t, src, randomBytes(1, 1000))
	plan, err := ipfs.PlanCAR(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, src, randomBytes(2, 1000)) // same size, other bytes
	if err := ipfs.WriteCAR(ctx, src, plan, io.Discard); !errors.Is(err, ipfs.ErrChanged) {
		t.Fatalf("WriteCAR after an edit: %v, want ErrChanged", err)
	}
}

// TestSymlinkRefused: a symlink inside a directory is refused with a typed error rather than
// followed out of the tree the user named.
func TestSymlinkRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	writeFile(t, filepath.Join(dir, "a.txt"), []byte("a"))
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "link")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if _, err := ipfs.RootOf(context.Background(), dir); !errors.Is(err, ipfs.ErrUnsupportedFile) {
		t.Fatalf("RootOf with a symlink: %v, want ErrUnsupportedFile", err)
	}
}

// TestIndexSurvivesReopen closes and reopens the index over the same store: the piece stays
// indexed and served without reading the CAR again.
func TestIndexSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	st, err := storage.Open(filepath.Join(dir, "storage"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	src := tree(t)
	root, car := buildCAR(t, src)
	info, err := st.Ingest(ctx, car, nil)
	if err != nil {
		t.Fatal(err)
	}
	x, err := ipfs.OpenIndex(filepath.Join(dir, "ipfs-index"), st, ipfs.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := x.AddPiece(ctx, info.Piece, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Locate(root.Hash()); !errors.Is(err, ipfs.ErrClosed) {
		t.Fatalf("locate after close: %v, want ErrClosed", err)
	}
	x, err = ipfs.OpenIndex(filepath.Join(dir, "ipfs-index"), st, ipfs.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rec, ok, err := x.Piece(info.Piece)
	if err != nil || !ok || rec.Blocks != first.Blocks || !rec.Roots[0].Equals(root) {
		t.Fatalf("record after reopen: %+v ok=%v err=%v, want %+v", rec, ok, err, first)
	}
	gw, err := ipfs.NewGateway(x, ipfs.GatewayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "out")
	if _, err := ipfs.Fetch(ctx, nil, srv.URL, root, out); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, out)
}

// TestDagScope checks boxo's dag-scope through our backend: block sends the root block
// only, all sends the whole DAG.
func TestDagScope(t *testing.T) {
	r := newRig(t)
	src := tree(t)
	root, piece := r.add(t, src)
	rec, _, _ := r.index.Piece(piece)
	count := func(scope string) int {
		req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/ipfs/"+root.String()+"?dag-scope="+scope, nil)
		req.Header.Set("Accept", "application/vnd.ipld.car; version=1; order=dfs; dups=n")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("dag-scope=%s: %d", scope, res.StatusCode)
		}
		br, err := carv2.NewBlockReader(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			_, err := br.Next() // go-car verifies each block's hash here
			if errors.Is(err, io.EOF) {
				return n
			}
			if err != nil {
				t.Fatalf("dag-scope=%s: %v", scope, err)
			}
			n++
		}
	}
	if n := count("block"); n != 1 {
		t.Fatalf("dag-scope=block: %d blocks, want 1", n)
	}
	// The piece holds each distinct block once; dups=n sends each once too.
	if n := count("all"); uint64(n) != rec.Blocks {
		t.Fatalf("dag-scope=all: %d blocks, want the piece's %d", n, rec.Blocks)
	}
}

// TestCARv2PieceIsServed stores a CARv2 (header, CARv1 payload at an offset, index) made by
// go-car itself: block offsets must be taken from the start of the piece, not the payload.
func TestCARv2PieceIsServed(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	src := tree(t)
	root, v1 := buildCAR(t, src)
	v2Path := filepath.Join(t.TempDir(), "v2.car")
	rw, err := carblockstore.OpenReadWrite(v2Path, []cid.Cid{root})
	if err != nil {
		t.Fatal(err)
	}
	eachBlock(t, v1, func(_ int, b blocks.Block) error { return rw.Put(ctx, b) })
	if err := rw.Finalize(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(v2Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := r.store.Ingest(ctx, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.index.AddPiece(ctx, info.Piece, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Roots) != 1 || !rec.Roots[0].Equals(root) {
		t.Fatalf("roots %v, want [%s]", rec.Roots, root)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := ipfs.Fetch(ctx, nil, r.srv.URL, root, out); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, out)
}

// TestConcurrentFetchesWhileIndexing serves one piece to several clients while another piece
// is indexed and dropped over and over (run under -race).
func TestConcurrentFetchesWhileIndexing(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	src := tree(t)
	root, _ := r.add(t, src)
	other := filepath.Join(t.TempDir(), "other.bin")
	writeFile(t, other, randomBytes(77, 3*ipfs.ChunkSize))
	_, otherPiece := r.add(t, other)

	done := make(chan struct{})
	churn := make(chan error, 1)
	go func() {
		defer close(churn)
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := r.index.RemovePiece(otherPiece, 1); err != nil {
				churn <- err
				return
			}
			if _, err := r.index.AddPiece(ctx, otherPiece, 1); err != nil {
				churn <- err
				return
			}
		}
	}()
	outs := make([]string, 4)
	errs := make(chan error, len(outs))
	for i := range outs {
		outs[i] = filepath.Join(t.TempDir(), fmt.Sprint("out", i))
		go func() {
			_, err := ipfs.Fetch(ctx, nil, r.srv.URL, root, outs[i])
			errs <- err
		}()
	}
	for range outs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	close(done)
	for _, out := range outs {
		sameTree(t, src, out)
	}
	if err := <-churn; err != nil {
		t.Fatal(err)
	}
}

// TestZeroPaddedCAR stores a CAR followed by zero padding (as some writers pad to a size):
// the zeros end the CAR, and its blocks are served.
func TestZeroPaddedCAR(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "f.bin")
	data := randomBytes(21, ipfs.ChunkSize+99)
	writeFile(t, src, data)
	root, car := buildCAR(t, src)
	car.Write(make([]byte, 4096))
	info, err := r.store.Ingest(ctx, car, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.index.AddPiece(ctx, info.Piece, 1)
	if err != nil || rec.Blocks != 3 {
		t.Fatalf("index of a zero-padded CAR: %+v %v, want 3 blocks", rec, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := ipfs.Fetch(ctx, nil, r.srv.URL, root, out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, data) {
		t.Fatal("fetched bytes differ")
	}
}

// TestKnownCIDs checks roots against CIDs every IPFS implementation agrees on (kubo, helia):
// the empty file as a raw leaf and the empty UnixFS directory, both CIDv1.
func TestKnownCIDs(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, nil)
	emptyDir := filepath.Join(dir, "emptydir")
	if err := os.Mkdir(emptyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		empty:    "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
		emptyDir: "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354",
	} {
		got, err := ipfs.RootOf(context.Background(), path)
		if err != nil || got.String() != want {
			t.Errorf("%s: %s (%v), want %s", filepath.Base(path), got, err, want)
		}
	}
}

// TestCARStreamRewinds reads part of the stream, rewinds, and reads it all: the bytes equal
// BuildCAR's, and the size from Seek(0, io.SeekEnd) is the CAR's length.
func TestCARStreamRewinds(t *testing.T) {
	ctx := context.Background()
	src := tree(t)
	var want bytes.Buffer
	if _, err := ipfs.BuildCAR(ctx, src, &want); err != nil {
		t.Fatal(err)
	}
	plan, err := ipfs.PlanCAR(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	s := ipfs.NewCARStream(ctx, src, plan)
	defer s.Close()
	if n, err := s.Seek(0, io.SeekEnd); err != nil || n != int64(want.Len()) {
		t.Fatalf("size %d (%v), want %d", n, err, want.Len())
	}
	if n, err := s.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d %v", n, err)
	}
	if _, err := s.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(s, make([]byte, 300_000)); err != nil {
		t.Fatal(err)
	}
	if pos, _ := s.Seek(0, io.SeekCurrent); pos != 300_000 {
		t.Fatalf("position %d, want 300000", pos)
	}
	if _, err := s.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("rewound stream: %d bytes, not BuildCAR's %d", len(got), want.Len())
	}
	if _, err := s.Seek(5, io.SeekStart); err == nil {
		t.Fatal("seek to the middle accepted")
	}
	s.Close()
	if _, err := s.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after close succeeded")
	}
}
