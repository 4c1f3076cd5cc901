package beam_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/warmstore/warmstore/beam"
)

// An edge is built from a chain URL, its own key and a directory; Run (not shown) follows the
// chain and reports usage, Handler serves clients. Before the edge knows a payer's CDN data
// sets, a piece request is answered 404.
func Example() {
	dir, _ := os.MkdirTemp("", "beam-example")
	defer os.RemoveAll(dir)
	key, _ := crypto.GenerateKey()
	edge, err := beam.New(beam.Config{ChainURL: "http://127.0.0.1:4600", Key: key, Dir: dir, CacheBytes: 1 << 30})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer edge.Close()
	srv := httptest.NewServer(edge.Handler())
	defer srv.Close()
	for _, path := range []string{
		"/0x1111111111111111111111111111111111111111/bafkzcibcaabdomrcmidbbu4pcdklmrpmqgbbgvdomoaq7c4t4goajkbhtjv3yty",
		"/dashboard",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(path[:8], resp.StatusCode)
	}
	// Output:
	// /0x11111 404
	// /dashboa 200
}
