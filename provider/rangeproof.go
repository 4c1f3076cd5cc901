package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage"
)

// RangeProofPattern is the route RangeProofHandler serves, in net/http ServeMux syntax.
const RangeProofPattern = "GET /pdp/piece/{pieceCid}/proof"

// RangeProof is the JSON answer of GET /pdp/piece/{pieceCid}/proof?start=A&end=B; see
// pdp.RangeProof. The provider reads two sections of the piece file to build it.
type RangeProof = pdp.RangeProof

// RangeProofHandler serves RangeProofPattern from store: mount it with
// mux.Handle(provider.RangeProofPattern, provider.RangeProofHandler(store)). It also works
// mounted on any path whose last two segments are {pieceCid}/proof.
//
// Query: start and end are raw byte offsets, end exclusive (0 <= start < end <= raw size).
// Answers: 200 RangeProof; 400 for a malformed CID or range; 416 for a range outside the
// piece; 404 when the piece is not stored; 500 when the stored piece is damaged (it is never
// proven then). Refusals are the provider's JSON {code, message}.
func RangeProofHandler(store *storage.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cidText := r.PathValue("pieceCid")
		if cidText == "" {
			parts := strings.Split(strings.TrimSuffix(r.URL.Path, "/"), "/")
			if len(parts) >= 2 && parts[len(parts)-1] == "proof" {
				cidText = parts[len(parts)-2]
			}
		}
		piece, err := pdp.ParsePieceCID(cidText)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_piece_cid", fmt.Sprintf("piece CID: %v (a v2 piece CID is required: it carries the size)", err))
			return
		}
		q := r.URL.Query()
		start, err1 := strconv.ParseUint(q.Get("start"), 10, 64)
		end, err2 := strconv.ParseUint(q.Get("end"), 10, 64)
		if err1 != nil || err2 != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "query must have start and end as decimal raw byte offsets (end exclusive)")
			return
		}
		rawStart, rawEnd, leafStart, leafEnd, err := pdp.RangeSpan(piece, start, end)
		if err != nil {
			writeError(w, http.StatusRequestedRangeNotSatisfiable, "bad_range", err.Error())
			return
		}
		proofs, err := store.ProveLeaves(r.Context(), piece, []uint64{leafStart, leafEnd})
		switch {
		case errors.Is(err, storage.ErrNotFound):
			writeError(w, http.StatusNotFound, "piece_not_found", "piece not stored here")
			return
		case err != nil:
			writeError(w, http.StatusInternalServerError, "piece_damaged", fmt.Sprintf("cannot prove the range: %v", err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		// The proof of an immutable piece never changes.
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		_ = json.NewEncoder(w).Encode(RangeProof{
			PieceCID: piece, Start: start, End: end,
			RawStart: rawStart, RawEnd: rawEnd, LeafStart: leafStart, LeafEnd: leafEnd,
			Proofs: proofs,
		})
	})
}
