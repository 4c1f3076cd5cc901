package provider_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/provider"
	"github.com/warmstore/warmstore/storage"
)

// A provider over a piece store, without a chain: a streaming upload (the Synapse SDK's
// three steps), then a ranged download of the piece it just stored.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "provider-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := storage.Open(dir, storage.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	p, err := provider.New(provider.Config{Store: st})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()

	data := bytes.Repeat([]byte("warm storage "), 1000)
	piece, _ := pdp.CommP(bytes.NewReader(data))

	// 1. Open an upload session.
	resp, _ := http.Post(srv.URL+"/pdp/piece/uploads", "", nil)
	loc := resp.Header.Get("Location")
	fmt.Println(resp.StatusCode, strings.HasPrefix(loc, "/pdp/piece/uploads/"))
	// 2. Stream the bytes.
	req, _ := http.NewRequest("PUT", srv.URL+loc, bytes.NewReader(data))
	resp, _ = http.DefaultClient.Do(req)
	fmt.Println(resp.StatusCode)
	// 3. Name the piece; the provider checks it is what it computed.
	body, _ := json.Marshal(map[string]string{"pieceCid": piece.String()})
	resp, _ = http.Post(srv.URL+loc, "application/json", bytes.NewReader(body))
	fmt.Println(resp.StatusCode)

	// The piece is retrievable at once, by range.
	req, _ = http.NewRequest("GET", srv.URL+"/piece/"+piece.String(), nil)
	req.Header.Set("Range", "bytes=0-11")
	resp, _ = http.DefaultClient.Do(req)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%d %q %s\n", resp.StatusCode, got, resp.Header.Get("Cache-Control"))
	// Output:
	// 201 true
	// 204
	// 200
	// 206 "warm storage" public, max-age=29030400, immutable
}
