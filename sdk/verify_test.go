package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/provider"
	"github.com/warmstore/warmstore/storage"
)

// proofServer is a real store behind the real range-proof handler.
func proofServer(t *testing.T) (*storage.Store, *httptest.Server) {
	t.Helper()
	st, err := storage.Open(filepath.Join(t.TempDir(), "store"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(provider.RangeProofPattern, provider.RangeProofHandler(st))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); st.Close() })
	return st, srv
}

func getRangeProof(t *testing.T, base string, p pdp.PieceCID, start, end uint64) (*RangeProof, int) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/pdp/piece/%s/proof?start=%d&end=%d", base, p, start, end))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode
	}
	var rp RangeProof
	if err := json.NewDecoder(resp.Body).Decode(&rp); err != nil {
		t.Fatal(err)
	}
	return &rp, resp.StatusCode
}

// TestRangeVerification verifies ranges at piece edges, inside one section and across
// sections, and checks that a flipped byte anywhere in the fetched span is caught.
func TestRangeVerification(t *testing.T) {
	st, srv := proofServer(t)
	sec := pdp.SectionRawSize(pdp.DefaultLayerHeight)
	sizes := []int{1, 126, 127, 128, 1000, int(sec) - 1, int(sec), int(sec) + 1, 3*int(sec) + 555}
	for _, size := range sizes {
		data := randomBytes(uint64(size), size)
		info, err := st.Ingest(context.Background(), bytes.NewReader(data), nil)
		if err != nil {
			t.Fatal(err)
		}
		p := info.Piece
		raw := uint64(size)
		ranges := [][2]uint64{{0, raw}, {0, 1}, {raw - 1, raw}, {raw / 2, raw/2 + 1}}
		if raw > 300 {
			ranges = append(ranges, [2]uint64{126, 128}, [2]uint64{127, 254}, [2]uint64{1, raw - 1})
		}
		if raw > sec+10 {
			ranges = append(ranges, [2]uint64{sec - 5, sec + 5}, [2]uint64{sec, sec + 1}, [2]uint64{sec - 1, raw})
		}
		for _, rg := range ranges {
			name := fmt.Sprintf("size%d/%d-%d", size, rg[0], rg[1])
			rs, re, _, _, err := rangeSpan(p, rg[0], rg[1])
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var rp *RangeProof
			if needsProof(p, rs, re) {
				var code int
				rp, code = getRangeProof(t, srv.URL, p, rs, re)
				if rp == nil {
					t.Fatalf("%s: HTTP %d", name, code)
				}
				if err := checkRangeProof(p, rp, rs, re); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			span := append([]byte(nil), data[rs:re]...)
			if err := verifySpan(p, rs, span, rp); err != nil {
				t.Fatalf("%s: good bytes refused: %v", name, err)
			}
			for _, at := range []uint64{0, uint64(len(span)) / 2, uint64(len(span)) - 1} {
				span[at] ^= 0x80
				if err := verifySpan(p, rs, span, rp); !errors.Is(err, ErrVerification) {
					t.Fatalf("%s: flipped byte %d accepted (err %v)", name, at, err)
				}
				span[at] ^= 0x80
			}
			if rp != nil && len(rp.Proofs[0].Path) > 0 {
				rp.Proofs[0].Path[0][0] ^= 1
				if err := checkRangeProof(p, rp, rs, re); !errors.Is(err, ErrBadProof) {
					t.Fatalf("%s: tampered proof accepted (err %v)", name, err)
				}
				rp.Proofs[0].Path[0][0] ^= 1
			}
		}
		if _, code := getRangeProof(t, srv.URL, p, 0, raw+1); code != http.StatusRequestedRangeNotSatisfiable {
			t.Fatalf("size %d: range past the end answered %d", size, code)
		}
	}
	missing, _ := pdp.CommP(bytes.NewReader([]byte("not stored anywhere, not stored anywhere, not stored anywhere")))
	if _, code := getRangeProof(t, srv.URL, missing, 0, 1); code != http.StatusNotFound {
		t.Fatalf("missing piece answered %d", code)
	}
}
