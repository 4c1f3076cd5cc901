package provider

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/ipfs"
	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage"
)

// IPFSIndexingKey is the data-set metadata key (FWSS, Filecoin Pin) asking the provider to
// index the CAR pieces of the data set and serve their blocks under /ipfs/.
const IPFSIndexingKey = "withIPFSIndexing"

// IPFSRootKey is the piece metadata key naming the CAR's IPFS root CID.
const IPFSRootKey = "ipfsRootCID"

// ipfsMetrics count the IPFS index's work.
type ipfsMetrics struct {
	pieces *prometheus.CounterVec // result: indexed, present, not_car, missing, error, removed
	blocks prometheus.Counter
}

func newIPFSMetrics(reg prometheus.Registerer) (*ipfsMetrics, error) {
	const ns = "warmstore_provider"
	m := &ipfsMetrics{
		pieces: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "ipfs_pieces_total",
			Help: "Pieces of withIPFSIndexing data sets by outcome: indexed, present (already indexed), not_car, missing, error, removed (blocks dropped)."}, []string{"result"}),
		blocks: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "ipfs_blocks_indexed_total",
			Help: "CAR blocks entered into the IPFS index."}),
	}
	for _, c := range []prometheus.Collector{m.pieces, m.blocks} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("provider: register IPFS metrics: %w", err)
		}
	}
	return m, nil
}

func wantsIPFS(m []eip712.MetadataEntry) bool {
	return slices.ContainsFunc(m, func(e eip712.MetadataEntry) bool { return e.Key == IPFSIndexingKey })
}

// followIPFS keeps Config.IPFS in step with the chain, apart from the reference follower so
// that indexing a large CAR never delays storage references: a piece added to one of this
// provider's data sets with withIPFSIndexing is indexed; a removed piece or deleted data set
// drops its interest, and the blocks leave the index with the last one. Like followChain it
// replays the log from the start on every run; the index's operations are idempotent and a
// piece already indexed is not read again.
func (p *Provider) followIPFS() {
	defer p.wg.Done()
	sets := dataSetPieces{} // the data sets with IPFS indexing
	drop := func(c pdp.PieceCID, ds uint64) {
		removed, err := p.cfg.IPFS.RemovePiece(c, ds)
		if err != nil {
			p.log.Warn("drop piece from the IPFS index", "piece", c.String(), "dataSet", ds, "err", err)
		}
		if removed {
			p.ipfsMetrics.pieces.WithLabelValues("removed").Inc()
		}
	}
	handle := func(ev chain.Event) error {
		switch ev.Kind {
		case chain.EvDataSetCreated:
			ds, err := p.chain.DataSet(p.ctx, ev.DataSetID)
			if errors.Is(err, chain.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if ds.Provider == p.address && wantsIPFS(ds.Metadata) {
				sets[ev.DataSetID] = map[uint64]pdp.PieceCID{}
			}
		case chain.EvPiecesAdded:
			set, ok := sets[ev.DataSetID]
			if !ok {
				return nil
			}
			pieces, err := p.chain.Pieces(p.ctx, ev.DataSetID)
			if err != nil {
				return err
			}
			for _, pc := range pieces {
				if pc.Removed || !slices.Contains(ev.PieceIDs, pc.ID) {
					continue
				}
				set[pc.ID] = pc.CID
				p.indexIPFS(pc.CID, ev.DataSetID, pc.Metadata)
			}
		case chain.EvPiecesRemoved, chain.EvDataSetDeleted:
			sets.forget(ev, drop)
		}
		return nil
	}
	p.follow("IPFS index follower", handle)
}

// indexIPFS indexes one piece for data set ds. Failures are logged, not retried: a piece that
// is not a CAR stays unindexed (the client asked for IPFS indexing of something else), and a
// piece this provider does not hold (a replay after GC) has nothing to index.
func (p *Provider) indexIPFS(c pdp.PieceCID, ds uint64, meta []eip712.MetadataEntry) {
	start := time.Now()
	_, wasIndexed, _ := p.cfg.IPFS.Piece(c) // only for the metrics: AddPiece decides itself
	rec, err := p.cfg.IPFS.AddPiece(p.ctx, c, ds)
	result := "error"
	defer func() { p.ipfsMetrics.pieces.WithLabelValues(result).Inc() }()
	switch {
	case err == nil && wasIndexed:
		result = "present" // another data set, or a replay after restart
	case err == nil:
		result = "indexed"
		p.ipfsMetrics.blocks.Add(float64(rec.Blocks))
		p.log.Info("indexed IPFS blocks of piece", "piece", c.String(), "dataSet", ds, "blocks", rec.Blocks,
			"roots", len(rec.Roots), "took", time.Since(start))
		// The client names the root in the piece metadata (Filecoin Pin does too); a CAR
		// whose header lacks it still serves its blocks, but the client should know why
		// its root may not resolve.
		if i := slices.IndexFunc(meta, func(e eip712.MetadataEntry) bool { return e.Key == IPFSRootKey }); i >= 0 {
			named, derr := cid.Decode(meta[i].Value)
			if derr != nil || !slices.ContainsFunc(rec.Roots, func(r cid.Cid) bool { return r.Equals(named) }) {
				p.log.Warn("piece metadata names a root the CAR header lacks", "piece", c.String(), "dataSet", ds,
					"ipfsRootCID", meta[i].Value, "carRoots", fmt.Sprint(rec.Roots))
			}
		}
	case errors.Is(err, storage.ErrNotFound), p.ctx.Err() != nil:
		result = "missing"
		p.log.Debug("IPFS indexing skipped", "piece", c.String(), "dataSet", ds, "err", err)
	case errors.Is(err, ipfs.ErrNotCAR):
		result = "not_car"
		p.log.Warn("piece in an IPFS-indexed data set is not a CAR", "piece", c.String(), "dataSet", ds, "err", err)
	default:
		p.log.Warn("index IPFS blocks of piece", "piece", c.String(), "dataSet", ds, "err", err)
	}
}
