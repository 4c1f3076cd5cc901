package ipfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/files"
	"github.com/ipfs/boxo/ipld/merkledag"
	unixfile "github.com/ipfs/boxo/ipld/unixfs/file"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
	carblockstore "github.com/ipld/go-car/v2/blockstore"
)

// ErrIncomplete means the gateway's CAR lacked a block the DAG links to.
var ErrIncomplete = errors.New("ipfs: DAG incomplete")

// GatewayError is a non-200 answer from a gateway.
type GatewayError struct {
	URL    string
	Status int
	Body   string
}

func (e *GatewayError) Error() string {
	return fmt.Sprintf("ipfs: gateway %s answered %d: %s", e.URL, e.Status, e.Body)
}

// Is makes a 404 match ErrNotFound.
func (e *GatewayError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// FetchResult describes a verified fetch.
type FetchResult struct {
	Root   cid.Cid
	Blocks int   // blocks received and verified
	Bytes  int64 // block bytes received
}

// Fetch downloads root's whole DAG from a trustless gateway as a CAR and writes the UnixFS
// file or directory tree to out, which must not exist. Nothing is trusted: each block is
// hashed against its CID as it arrives (ErrBlockMismatch otherwise) and spooled to a
// temporary CAR, and the tree is written by walking the DAG from root over those verified
// blocks only, so a block the CAR left out fails the walk (ErrIncomplete). Memory stays
// bounded: blocks live on disk (a hidden temporary file beside out, removed on return) until
// the walk reads them. Directories are created before
// their entries, so a failed fetch may leave a partial tree at out.
func Fetch(ctx context.Context, client *http.Client, gatewayURL string, root cid.Cid, out string) (*FetchResult, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if _, err := os.Lstat(out); err == nil {
		return nil, fmt.Errorf("ipfs: fetch %s: output %s already exists", root, out)
	}
	url := strings.TrimRight(gatewayURL, "/") + "/ipfs/" + root.String() + "?dag-scope=all"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("ipfs: fetch %s: %w", root, err)
	}
	req.Header.Set("Accept", "application/vnd.ipld.car; version=1; order=dfs; dups=n")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ipfs: fetch %s: %w", root, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &GatewayError{URL: url, Status: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}

	// The spool sits beside the output: the disk that will hold the content holds it first.
	spool, err := os.CreateTemp(filepath.Dir(out), ".warmstore-fetch-*.car")
	if err != nil {
		return nil, fmt.Errorf("ipfs: fetch %s: spool: %w", root, err)
	}
	spoolPath := spool.Name()
	spool.Close()
	defer os.Remove(spoolPath)
	bs, err := carblockstore.OpenReadWrite(spoolPath, []cid.Cid{root})
	if err != nil {
		return nil, fmt.Errorf("ipfs: fetch %s: spool: %w", root, err)
	}
	defer bs.Discard()

	res, err := ReceiveCAR(ctx, resp.Body, root, bs)
	if err != nil {
		return res, err
	}
	if err := WriteTree(ctx, bs, root, out); err != nil {
		return res, err
	}
	return res, nil
}

// ReceiveCAR reads a CAR from r, verifies every block against its CID and puts it into bs.
// The CAR's roots must include root.
func ReceiveCAR(ctx context.Context, r io.Reader, root cid.Cid, bs blockstore.Blockstore) (*FetchResult, error) {
	res := &FetchResult{Root: root}
	br, err := carv2.NewBlockReader(r, carv2.MaxAllowedSectionSize(MaxBlockSize+256))
	if err != nil {
		return res, fmt.Errorf("ipfs: fetch %s: read CAR header: %w", root, err)
	}
	found := false
	for _, c := range br.Roots {
		found = found || c.Equals(root)
	}
	if !found {
		return res, fmt.Errorf("ipfs: fetch %s: the CAR's roots %v do not include it", root, br.Roots)
	}
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		c, rd, size, err := br.NextReader()
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		if err != nil {
			return res, fmt.Errorf("ipfs: fetch %s: read block %d: %w", root, res.Blocks+1, err)
		}
		if size > MaxBlockSize {
			return res, fmt.Errorf("ipfs: fetch %s: block %s is %d bytes, over the %d-byte limit", root, c, size, MaxBlockSize)
		}
		data := make([]byte, size)
		if _, err := io.ReadFull(rd, data); err != nil {
			return res, fmt.Errorf("ipfs: fetch %s: read block %s: %w", root, c, err)
		}
		if err := VerifyBlock(c, data); err != nil {
			return res, fmt.Errorf("ipfs: fetch %s: %w", root, err)
		}
		blk, err := blocks.NewBlockWithCid(data, c)
		if err != nil {
			return res, err
		}
		if err := bs.Put(ctx, blk); err != nil {
			return res, fmt.Errorf("ipfs: fetch %s: spool block %s: %w", root, c, err)
		}
		res.Blocks++
		res.Bytes += int64(size)
	}
}

// WriteTree writes the UnixFS file or directory root, read from bs, to out.
func WriteTree(ctx context.Context, bs blockstore.Blockstore, root cid.Cid, out string) error {
	dag := merkledag.NewDAGService(blockservice.New(bs, nil))
	incomplete := func(err error) error {
		var nf format.ErrNotFound
		if errors.As(err, &nf) || format.IsNotFound(err) {
			return fmt.Errorf("%w: %s: %v", ErrIncomplete, root, err)
		}
		return fmt.Errorf("ipfs: write %s to %s: %w", root, out, err)
	}
	if err := checkComplete(ctx, dag, root); err != nil {
		return err
	}
	nd, err := dag.Get(ctx, root)
	if err != nil {
		return incomplete(err)
	}
	f, err := unixfile.NewUnixfsFile(ctx, dag, nd)
	if err != nil {
		return incomplete(err)
	}
	defer f.Close()
	if err := files.WriteTo(f, out); err != nil {
		return incomplete(err)
	}
	return nil
}

// checkComplete walks the DAG from root depth-first and fails with ErrIncomplete naming the
// first block it cannot find, before anything is written.
func checkComplete(ctx context.Context, dag format.NodeGetter, root cid.Cid) error {
	seen := cid.NewSet()
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !seen.Visit(c) {
			continue
		}
		nd, err := dag.Get(ctx, c)
		if err != nil {
			if format.IsNotFound(err) {
				return fmt.Errorf("%w: %s lacks block %s", ErrIncomplete, root, c)
			}
			return fmt.Errorf("ipfs: walk %s: block %s: %w", root, c, err)
		}
		for _, l := range nd.Links() {
			stack = append(stack, l.Cid)
		}
	}
	return nil
}
