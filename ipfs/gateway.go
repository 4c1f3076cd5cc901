package ipfs

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/gateway"
	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"
)

// GatewayConfig configures NewGateway.
type GatewayConfig struct {
	// Registerer receives boxo's gateway metrics; nil keeps them in a private registry (boxo
	// would otherwise use the global one).
	Registerer prometheus.Registerer
	// RetrievalTimeout bounds the wait for the first byte and between writes; 0 means boxo's
	// default (30 s).
	RetrievalTimeout time.Duration
}

// NewGateway returns boxo's trustless gateway over the indexed blocks: GET|HEAD
// /ipfs/{cid}[/path] answering application/vnd.ipld.raw (one block) and
// application/vnd.ipld.car (the DAG, with boxo's dag-scope, entity-bytes, order and dups
// parameters). Deserialized responses are off: a client gets verifiable blocks only. There is
// no exchange behind the blockstore, so a block no indexed piece holds is a 404, never a
// network fetch.
func NewGateway(x *Index, cfg GatewayConfig) (http.Handler, error) {
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	bs := blockstore.NewIdStore(x.Blockstore())
	backend, err := gateway.NewBlocksBackend(blockservice.New(bs, nil), gateway.WithPrometheusRegistry(reg))
	if err != nil {
		return nil, fmt.Errorf("ipfs: gateway backend: %w", err)
	}
	gw := gateway.NewHandler(gateway.Config{
		DeserializedResponses: false,
		NoDNSLink:             true,
		DisableHTMLErrors:     true,
		RetrievalTimeout:      cfg.RetrievalTimeout,
		MetricsRegistry:       reg,
	}, backend)
	return &rootCheck{next: gw, bs: bs}, nil
}

// rootCheck answers 404 before boxo sees a request whose root block no indexed piece holds.
// boxo starts a CAR response (200 and the header) before it reads the root, so without this a
// missing root would be a 200 with a truncated body instead of a clean 404.
type rootCheck struct {
	next http.Handler
	bs   blockstore.Blockstore
}

func (h *rootCheck) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/ipfs/")
	if ok {
		seg, _, _ := strings.Cut(rest, "/")
		if c, err := cid.Decode(seg); err == nil {
			has, err := h.bs.Has(r.Context(), c)
			if err != nil {
				http.Error(w, fmt.Sprintf("look up %s: %v", c, err), http.StatusInternalServerError)
				return
			}
			if !has {
				http.Error(w, fmt.Sprintf("block %s is not held by this provider", c), http.StatusNotFound)
				return
			}
		}
	}
	h.next.ServeHTTP(w, r)
}
