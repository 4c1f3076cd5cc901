package ipfs_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/warmstore/warmstore/ipfs"
)

// BuildCAR streams a file or directory as a CARv1 piece, here through a pipe as an upload
// would read it.
func ExampleBuildCAR() {
	dir, err := os.MkdirTemp("", "warmstore-ipfs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	site := filepath.Join(dir, "site")
	if err := os.MkdirAll(site, 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>hello</h1>\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := ipfs.BuildCAR(context.Background(), site, pw)
		pw.CloseWithError(err) // the reader sees the build's error, or EOF
	}()
	n, err := io.Copy(io.Discard, pr) // an upload would read the pipe here
	if err != nil {
		log.Fatal(err)
	}
	root, err := ipfs.RootOf(context.Background(), site)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(root, n)
	// Output: bafybeia6bonmhuyo56tmu25h4adsjn3rwk5dp7kxkwangefdg5nnrim7xu 206
}
