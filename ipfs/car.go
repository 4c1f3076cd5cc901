package ipfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
	carstorage "github.com/ipld/go-car/v2/storage"
	"github.com/multiformats/go-varint"
)

// ChunkSize is the UnixFS leaf size: boxo's and kubo's default (256 KiB), so the DAG has the
// layout `ipfs add --cid-version=1` builds (fixed-size chunks, balanced, 174 links per node,
// raw leaves, no mode or mtime). TestKnownCIDs checks the roots every implementation agrees
// on; larger inputs were not compared with kubo here.
const ChunkSize = 256 << 10

// ErrChanged means a file or directory changed between the two passes of BuildCAR: the root
// written in the CAR header no longer describes the blocks that followed it.
var ErrChanged = errors.New("ipfs: input changed while building the CAR")

// ErrUnsupportedFile is returned for paths that are neither regular files nor directories
// (sockets, devices, symlinks: a symlink's target is outside what the user named).
var ErrUnsupportedFile = errors.New("ipfs: unsupported file type")

// CARPlan is what the hash-only pass learns about the CAR BuildCAR will write.
type CARPlan struct {
	// Root is the UnixFS DAG's root CID, the CAR header's single root.
	Root cid.Cid
	// Size is the CAR's exact length in bytes, so an upload can announce it (Content-Length,
	// funds checks) before the first byte is built.
	Size int64
	// Blocks is the number of distinct blocks (duplicates are written once).
	Blocks int64
}

// RootOf computes the IPFS root CID that BuildCAR would write for path without storing or
// writing a block: the DAG is built once, with every block hashed and dropped.
func RootOf(ctx context.Context, path string) (cid.Cid, error) {
	plan, err := PlanCAR(ctx, path)
	return plan.Root, err
}

// PlanCAR runs the hash-only pass over path: the root, and the size of the CAR that
// WriteCAR will produce. It keeps one multihash per distinct block (to skip duplicates the
// way the CAR writer does), never block data.
func PlanCAR(ctx context.Context, path string) (CARPlan, error) {
	sizer := &sizingDAG{seen: map[string]struct{}{}}
	root, err := importPath(ctx, path, sizer)
	if err != nil {
		return CARPlan{}, err
	}
	var header countingWriter
	if _, err := carstorage.NewWritable(&header, []cid.Cid{root}, carv2.WriteAsCarV1(true)); err != nil {
		return CARPlan{}, fmt.Errorf("ipfs: size CAR header: %w", err)
	}
	return CARPlan{Root: root, Size: header.n + sizer.bytes, Blocks: sizer.blocks}, nil
}

// BuildCAR writes path (a file or a directory tree) to w as a CARv1 whose single root is the
// UnixFS DAG's root (CIDv1, raw leaves, 256 KiB chunks, balanced layout).
//
// A CARv1 header carries the root, and the importer only knows the root at the end. Rather
// than spooling every block to a temporary file (disk the size of the input, written and
// read again), BuildCAR reads the input twice: a hash-only pass (PlanCAR) computes the root
// and the CAR's size, then a second pass (WriteCAR) streams each block to w the moment the
// importer produces it. Memory stays bounded by one chunk plus the importer's open tree
// path and one CID per block, and w can be a pipe into an upload. If the input changed
// between the passes, BuildCAR fails with ErrChanged (the CAR written so far is invalid and
// must be discarded, which an upload does when its reader fails).
func BuildCAR(ctx context.Context, path string, w io.Writer) (cid.Cid, error) {
	plan, err := PlanCAR(ctx, path)
	if err != nil {
		return cid.Undef, err
	}
	if err := WriteCAR(ctx, path, plan, w); err != nil {
		return cid.Undef, err
	}
	return plan.Root, nil
}

// WriteCAR is BuildCAR's second pass, for callers that ran PlanCAR already (to announce the
// root and size before the bytes flow): it writes the CARv1 with plan.Root in its header and
// fails with ErrChanged if the DAG built now has another root or the CAR another size.
func WriteCAR(ctx context.Context, path string, plan CARPlan, w io.Writer) error {
	cw := &countingWriter{w: w}
	car, err := carstorage.NewWritable(cw, []cid.Cid{plan.Root}, carv2.WriteAsCarV1(true))
	if err != nil {
		return fmt.Errorf("ipfs: start CAR: %w", err)
	}
	got, err := importPath(ctx, path, carDAG{car: car})
	if err != nil {
		return err
	}
	if !got.Equals(plan.Root) {
		return fmt.Errorf("%w: %s: root %s on the first pass, %s on the second", ErrChanged, path, plan.Root, got)
	}
	if cw.n != plan.Size {
		return fmt.Errorf("%w: %s: CAR of %d bytes planned, %d written", ErrChanged, path, plan.Size, cw.n)
	}
	return nil
}

// countingWriter counts bytes, passing them on to w when set.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.w == nil {
		c.n += int64(len(p))
		return len(p), nil
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// importPath imports path into dag and returns its root.
func importPath(ctx context.Context, path string, dag format.DAGService) (cid.Cid, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return cid.Undef, fmt.Errorf("ipfs: add %s: %w", path, err)
	}
	nd, err := importEntry(ctx, path, fi, dag)
	if err != nil {
		return cid.Undef, err
	}
	return nd.Cid(), nil
}

func cidBuilder() cid.Builder {
	prefix, _ := merkledag.PrefixForCidVersion(1) // version 1 is always valid
	return prefix
}

func importEntry(ctx context.Context, path string, fi fs.FileInfo, dag format.DAGService) (format.Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch {
	case fi.Mode().IsRegular():
		return importFile(path, dag)
	case fi.IsDir():
		return importDir(ctx, path, dag)
	default:
		return nil, fmt.Errorf("%w: %s is a %s", ErrUnsupportedFile, path, fi.Mode().Type())
	}
}

func importFile(path string, dag format.DAGService) (format.Node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ipfs: add %s: %w", path, err)
	}
	defer f.Close()
	params := helpers.DagBuilderParams{
		Maxlinks:   helpers.DefaultLinksPerBlock,
		RawLeaves:  true,
		CidBuilder: cidBuilder(),
		Dagserv:    dag,
	}
	db, err := params.New(chunker.NewSizeSplitter(f, ChunkSize))
	if err != nil {
		return nil, fmt.Errorf("ipfs: add %s: %w", path, err)
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		return nil, fmt.Errorf("ipfs: add %s: %w", path, err)
	}
	return nd, nil
}

func importDir(ctx context.Context, path string, dag format.DAGService) (format.Node, error) {
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("ipfs: add %s: %w", path, err)
	}
	// os.ReadDir sorts by name already; sorting again documents that the DAG (and so both
	// passes of BuildCAR) must not depend on the filesystem's order.
	slices.SortFunc(entries, func(a, b fs.DirEntry) int {
		switch {
		case a.Name() < b.Name():
			return -1
		case a.Name() > b.Name():
			return 1
		}
		return 0
	})
	dir, err := uio.NewDirectory(dag, uio.WithCidBuilder(cidBuilder()))
	if err != nil {
		return nil, fmt.Errorf("ipfs: add %s: %w", path, err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("ipfs: add %s: %w", filepath.Join(path, e.Name()), err)
		}
		child, err := importEntry(ctx, filepath.Join(path, e.Name()), fi, dag)
		if err != nil {
			return nil, err
		}
		if err := dir.AddChild(ctx, e.Name(), child); err != nil {
			return nil, fmt.Errorf("ipfs: add %s: %w", filepath.Join(path, e.Name()), err)
		}
	}
	nd, err := dir.GetNode()
	if err != nil {
		return nil, fmt.Errorf("ipfs: add %s: %w", path, err)
	}
	if err := dag.Add(ctx, nd); err != nil {
		return nil, fmt.Errorf("ipfs: add %s: %w", path, err)
	}
	return nd, nil
}

// discardDAG accepts blocks and keeps none: the hash-only pass. The importer never reads
// back what it wrote, so Get has nothing to answer.
type discardDAG struct{}

func (discardDAG) Add(context.Context, format.Node) error       { return nil }
func (discardDAG) AddMany(context.Context, []format.Node) error { return nil }
func (discardDAG) Remove(context.Context, cid.Cid) error        { return nil }
func (discardDAG) RemoveMany(context.Context, []cid.Cid) error  { return nil }
func (discardDAG) Get(_ context.Context, c cid.Cid) (format.Node, error) {
	return nil, format.ErrNotFound{Cid: c}
}
func (discardDAG) GetMany(_ context.Context, cs []cid.Cid) <-chan *format.NodeOption {
	ch := make(chan *format.NodeOption, len(cs))
	for _, c := range cs {
		ch <- &format.NodeOption{Err: format.ErrNotFound{Cid: c}}
	}
	close(ch)
	return ch
}

// sizingDAG is the hash-only pass: it drops every block but adds up the CAR sections the
// writer will emit for it (uvarint(len(cid)+len(data)) ‖ cid ‖ data), once per multihash
// like the writer.
type sizingDAG struct {
	discardDAG
	seen   map[string]struct{}
	bytes  int64
	blocks int64
}

func (d *sizingDAG) Add(_ context.Context, nd format.Node) error {
	c := nd.Cid()
	if _, dup := d.seen[string(c.Hash())]; dup {
		return nil
	}
	d.seen[string(c.Hash())] = struct{}{}
	n := uint64(c.ByteLen() + len(nd.RawData()))
	d.bytes += int64(varint.UvarintSize(n)) + int64(n)
	d.blocks++
	return nil
}

func (d *sizingDAG) AddMany(ctx context.Context, nds []format.Node) error {
	for _, nd := range nds {
		if err := d.Add(ctx, nd); err != nil {
			return err
		}
	}
	return nil
}

// carDAG writes every block it is given to a streaming CARv1 (the writer skips blocks it
// already wrote).
type carDAG struct {
	discardDAG
	car carstorage.WritableCar
}

func (d carDAG) Add(ctx context.Context, nd format.Node) error {
	if err := d.car.Put(ctx, nd.Cid().KeyString(), nd.RawData()); err != nil {
		return fmt.Errorf("ipfs: write block %s: %w", nd.Cid(), err)
	}
	return nil
}

func (d carDAG) AddMany(ctx context.Context, nds []format.Node) error {
	for _, nd := range nds {
		if err := d.Add(ctx, nd); err != nil {
			return err
		}
	}
	return nil
}
