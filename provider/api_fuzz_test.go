package provider

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/warmstore/warmstore/storage"
)

// FuzzAPIRequests sends arbitrary methods, paths and bodies to a provider (store only, no
// chain) and requires that nothing panics, that no request is answered 500, and that every
// refusal carries a JSON {code, message}.
func FuzzAPIRequests(f *testing.F) {
	piece := commPOf(f, apiPayload(1, 500))
	seeds := []struct {
		method, path, body string
	}{
		{"GET", "/pdp/ping", ""},
		{"POST", "/pdp/piece", `{"pieceCid":"` + piece.String() + `"}`},
		{"POST", "/pdp/piece", `{"pieceCid":"bafkzcibcaapao7vmhpj3"}`},
		{"PUT", "/pdp/piece/upload/00000000-0000-4000-8000-000000000000", "abc"},
		{"POST", "/pdp/piece/uploads", ""},
		{"PUT", "/pdp/piece/uploads/x", "abc"},
		{"POST", "/pdp/piece/uploads/x", `{"pieceCid":"` + piece.String() + `"}`},
		{"GET", "/pdp/piece?pieceCid=" + piece.V1().String(), ""},
		{"GET", "/piece/" + piece.String(), ""},
		{"HEAD", "/piece/baga6ea4seaq", ""},
		{"POST", "/pdp/piece/pull", `{"extraData":"0x00","pieces":[{"pieceCid":"x","sourceUrl":"http://"}]}`},
		{"POST", "/pdp/data-sets", `{"recordKeeper":"0x0","extraData":"0x"}`},
		{"DELETE", "/pdp/data-sets/1/pieces/2", `{"extraData":"0x00","pieceIds":[1,2]}`},
		{"GET", "/pdp/data-sets/created/0x12", ""},
		{"OPTIONS", "/pdp/piece", ""},
		{"GET", "/healthz", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, []byte(s.body))
	}
	st, err := storage.Open(f.TempDir(), storage.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	p, err := New(Config{Store: st, SweepInterval: -1, MaxPieceSize: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	defer p.Close()
	h := p.Handler()
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#") || len(body) > 1<<17 {
			return
		}
		req, err := http.NewRequest(method, "http://sp"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusInternalServerError {
			t.Fatalf("%s %s → 500: %s", method, path, rec.Body.Bytes())
		}
		if rec.Code >= 400 && method != http.MethodHead && rec.Code != http.StatusRequestedRangeNotSatisfiable {
			var eb ErrorBody
			if json.Unmarshal(rec.Body.Bytes(), &eb) != nil || eb.Code == "" || eb.Message == "" {
				t.Fatalf("%s %s → %d with body %q, want JSON {code, message}", method, path, rec.Code, rec.Body.Bytes())
			}
		}
	})
}
