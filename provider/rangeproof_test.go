package provider

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/warmstore/warmstore/pdp"
)

// TestRangeProofRouteOnProvider: the provider's own handler serves the range-proof route, and
// its two proofs are valid single-leaf proofs of the first and last leaf covering the range,
// at the piece's edges and across sections. Bad requests are refused with 4xx.
func TestRangeProofRouteOnProvider(t *testing.T) {
	r := newAPIRig(t, nil, 1, nil)
	// 3 sections of the default layer height plus a tail, so ranges can cross sections.
	data := apiPayload(7, int(3*pdp.SectionRawSize(pdp.DefaultLayerHeight))+1000)
	piece := r.upload(data)
	raw := piece.RawSize()
	sec := pdp.SectionRawSize(pdp.DefaultLayerHeight)
	for _, rg := range [][2]uint64{{0, 1}, {0, raw}, {raw - 1, raw}, {sec - 10, sec + 10}, {5, 3*sec + 7}, {127, 254}} {
		t.Run(fmt.Sprintf("%d-%d", rg[0], rg[1]), func(t *testing.T) {
			var rp RangeProof
			r.do("GET", fmt.Sprintf("/pdp/piece/%s/proof?start=%d&end=%d", piece, rg[0], rg[1]), nil).want(t, http.StatusOK).decode(t, &rp)
			rawStart, rawEnd, leafStart, leafEnd, err := pdp.RangeSpan(piece, rg[0], rg[1])
			if err != nil {
				t.Fatal(err)
			}
			if rp.PieceCID != piece || rp.RawStart != rawStart || rp.RawEnd != rawEnd || rp.LeafStart != leafStart || rp.LeafEnd != leafEnd {
				t.Fatalf("answer %+v does not match the span [%d,%d) leaves [%d,%d]", rp, rawStart, rawEnd, leafStart, leafEnd)
			}
			if len(rp.Proofs) != 2 {
				t.Fatalf("%d proofs, want 2", len(rp.Proofs))
			}
			for i, leaf := range []uint64{leafStart, leafEnd} {
				if err := pdp.VerifyProof(piece.Root, piece.Height, leaf, rp.Proofs[i]); err != nil {
					t.Fatalf("proof %d (leaf %d): %v", i, leaf, err)
				}
			}
		})
	}
	other := commPOf(t, apiPayload(8, 5000))
	r.do("GET", "/pdp/piece/not-a-cid/proof?start=0&end=1", nil).wantError(t, http.StatusBadRequest, "bad_piece_cid")
	r.do("GET", fmt.Sprintf("/pdp/piece/%s/proof?start=0&end=1", piece.V1()), nil).wantError(t, http.StatusBadRequest, "bad_piece_cid")
	r.do("GET", fmt.Sprintf("/pdp/piece/%s/proof?start=x&end=1", piece), nil).wantError(t, http.StatusBadRequest, "bad_request")
	r.do("GET", fmt.Sprintf("/pdp/piece/%s/proof?start=0&end=%d", piece, raw+1), nil).wantError(t, http.StatusRequestedRangeNotSatisfiable, "bad_range")
	r.do("GET", fmt.Sprintf("/pdp/piece/%s/proof?start=9&end=9", piece), nil).wantError(t, http.StatusRequestedRangeNotSatisfiable, "bad_range")
	r.do("GET", fmt.Sprintf("/pdp/piece/%s/proof?start=0&end=1", other), nil).wantError(t, http.StatusNotFound, "piece_not_found")
}
