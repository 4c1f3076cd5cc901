package sdk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipfs/go-cid"

	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/ipfs"
)

// Metadata keys of IPFS content, as Filecoin Pin and the reference provider use them.
const (
	// IPFSIndexingKey on a data set asks its provider to index CAR pieces for /ipfs/.
	IPFSIndexingKey = "withIPFSIndexing"
	// IPFSRootKey on a piece records the IPFS root CID of the CAR it holds.
	IPFSRootKey = "ipfsRootCID"
)

// AddResult is what AddPath stored.
type AddResult struct {
	// Root is the IPFS root CID of the file or directory.
	Root cid.Cid `json:"rootCid"`
	// Upload is the CAR piece's upload (piece CID, copies, data sets).
	Upload *UploadResult `json:"upload"`
}

// AddPath stores a file or directory as IPFS content: a UnixFS DAG (CIDv1, raw leaves)
// written as a CARv1 and uploaded as one piece, in data sets marked withIPFSIndexing, with
// the root recorded as the piece's ipfsRootCID. The CAR streams from disk into the upload
// (see ipfs.BuildCAR: the input is read twice, never held in memory; the first pass also
// sizes the CAR). The stream rewinds by building again (ipfs.CARStream), so a provider
// failing mid-upload is replaced as in Upload.
// opts.PieceMetadata may add up to two more keys.
func (c *Client) AddPath(ctx context.Context, path string, opts UploadOptions) (*AddResult, error) {
	plan, err := ipfs.PlanCAR(ctx, path)
	if err != nil {
		return nil, err
	}
	root := plan.Root
	if slices.ContainsFunc(opts.PieceMetadata, func(e eip712.MetadataEntry) bool { return e.Key == IPFSRootKey }) {
		return nil, fmt.Errorf("sdk: add %s: piece metadata %q is set by AddPath", path, IPFSRootKey)
	}
	opts.WithIPFSIndexing = true
	opts.PieceMetadata = append([]eip712.MetadataEntry{{Key: IPFSRootKey, Value: root.String()}}, opts.PieceMetadata...)
	// The planned size lets the upload send a Content-Length and check funds up front.
	opts.Size, opts.PieceCID = plan.Size, nil

	car := ipfs.NewCARStream(ctx, path, plan)
	defer car.Close()
	res, err := c.Upload(ctx, car, opts)
	if err != nil {
		return nil, fmt.Errorf("sdk: add %s: %w", path, err)
	}
	return &AddResult{Root: root, Upload: res}, nil
}

// GetOptions tune Get.
type GetOptions struct {
	// Gateway, when set, is the only trustless gateway asked (a base URL, without /ipfs/).
	Gateway string
	// Providers, when set, are asked in this order; otherwise every healthy provider, fastest
	// first.
	Providers []common.Address
}

// GetResult describes a verified fetch.
type GetResult struct {
	ipfs.FetchResult
	// Gateway is the base URL that served the content.
	Gateway string `json:"gateway"`
}

// Get fetches root's DAG from a provider's trustless gateway and writes the file or directory
// to out (which must not exist). Every block is checked against its CID and the DAG must be
// complete before anything is written; a provider that answers 404 or sends bad blocks is
// skipped for the next. Fails with ErrNotFound when no provider has it.
func (c *Client) Get(ctx context.Context, root cid.Cid, out string, opts GetOptions) (*GetResult, error) {
	var urls []string
	if opts.Gateway != "" {
		urls = []string{strings.TrimRight(opts.Gateway, "/")}
	} else {
		all, err := c.Providers(ctx)
		if err != nil {
			return nil, err
		}
		if len(opts.Providers) > 0 {
			for _, a := range opts.Providers {
				i := slices.IndexFunc(all, func(p Provider) bool { return p.Address == a })
				if i < 0 {
					return nil, fmt.Errorf("%w: provider %s is not registered", ErrNotFound, a.Hex())
				}
				urls = append(urls, all[i].ServiceURL)
			}
		} else {
			for _, p := range all {
				if p.Healthy {
					urls = append(urls, p.ServiceURL)
				}
			}
		}
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("%w: no healthy provider to fetch %s from", ErrNoProvider, root)
	}
	var errs []error
	notFound := 0
	for _, u := range urls {
		res, err := ipfs.Fetch(ctx, c.http, u, root, out)
		if err == nil {
			return &GetResult{FetchResult: *res, Gateway: u}, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, ipfs.ErrNotFound) {
			notFound++
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
	}
	if notFound == len(urls) {
		return nil, fmt.Errorf("%w: no provider holds %s (asked %d)", ErrNotFound, root, len(urls))
	}
	return nil, fmt.Errorf("sdk: get %s: %w", root, errors.Join(errs...))
}
