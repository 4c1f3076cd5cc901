package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warmstore/warmstore/provider"
)

// TestAddGetAgainstDevnet drives 'client add' and 'client get' against a real devnet: a
// nested directory and a single file go in as CAR pieces in withIPFSIndexing data sets, come
// back through the providers' trustless gateways byte for byte, a CID nobody holds is exit 7,
// and removing the piece takes its blocks out of the providers' gateways.
func TestAddGetAgainstDevnet(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	d, err := provider.StartDevnet(ctx, provider.DevnetConfig{Dir: filepath.Join(dir, "devnet"), Providers: 2,
		EpochDuration: 50 * time.Millisecond, ProvePoll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	wallet := filepath.Join(dir, "w.key")
	conn := []string{"--chain", d.ChainURL(), "--wallet", wallet}
	with := func(cmd []string, extra ...string) []string {
		return append(append(append([]string{}, cmd...), conn...), extra...)
	}
	if _, errOut, code := runCLI("wallet", "new", "--wallet", wallet); code != 0 {
		t.Fatalf("wallet new: %d %s", code, errOut)
	}
	for _, args := range [][]string{with([]string{"pay", "faucet"}, "50"), with([]string{"pay", "deposit"}, "10"), with([]string{"pay", "approve"})} {
		if _, errOut, code := runCLI(args...); code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, errOut)
		}
	}

	// A nested directory with a multi-chunk file.
	site := filepath.Join(dir, "site")
	rng := rand.New(rand.NewPCG(4, 2))
	big := make([]byte, 600_000)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	files := map[string][]byte{
		"index.html":            []byte("<h1>warmstore</h1>\n"),
		"img/big.bin":           big,
		"docs/a/b/c/readme.txt": []byte("nested"),
		"docs/a/sibling.txt":    []byte("sibling"),
		"docs/empty-file.txt":   {},
	}
	for name, b := range files {
		p := filepath.Join(site, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := runCLI(with([]string{"add", "--json"}, site)...)
	if code != 0 {
		t.Fatalf("add: exit %d %s", code, errOut)
	}
	var added struct {
		Root     string `json:"rootCid"`
		Piece    string `json:"pieceCid"`
		Complete bool
		Copies   []struct {
			DataSetID uint64 `json:"dataSetId"`
			PieceID   uint64 `json:"pieceId"`
		}
	}
	if err := json.Unmarshal([]byte(out), &added); err != nil || !added.Complete || len(added.Copies) != 2 || !strings.HasPrefix(added.Root, "bafy") {
		t.Fatalf("add --json: %v %s", err, out)
	}

	// Indexing follows the chain's PiecesAdded event; get retries until both providers serve it.
	fetch := func(root, dst string, extra ...string) (string, int) {
		out, errOut, code := runCLI(append(with([]string{"get", "-o", dst}, extra...), root)...)
		return out + errOut, code
	}
	waitGet := func(root, dst string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			msg, code := fetch(root, dst)
			if code == 0 {
				return
			}
			if code != exitNotFound || time.Now().After(deadline) {
				t.Fatalf("get %s: exit %d %s", root, code, msg)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	got := filepath.Join(dir, "got")
	waitGet(added.Root, got)
	for name, want := range files {
		b, err := os.ReadFile(filepath.Join(got, name))
		if err != nil || !bytes.Equal(b, want) {
			t.Fatalf("%s: got %d bytes (%v), want %d", name, len(b), err, len(want))
		}
	}
	// Each provider serves it on its own.
	for i, n := range d.Providers {
		dst := filepath.Join(dir, "via-"+itoa(uint64(i)))
		deadline := time.Now().Add(20 * time.Second)
		for {
			msg, code := fetch(added.Root, dst, "--gateway", n.URL())
			if code == 0 {
				break
			}
			if code != exitNotFound || time.Now().After(deadline) {
				t.Fatalf("get via provider %d: exit %d %s", i, code, msg)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if b, _ := os.ReadFile(filepath.Join(dst, "img/big.bin")); !bytes.Equal(b, big) {
			t.Fatalf("provider %d served a different big.bin", i)
		}
	}

	metric := func(n *provider.Node, line string) bool {
		res, err := http.Get(n.URL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return strings.Contains(string(b), line)
	}
	for i, n := range d.Providers {
		if !metric(n, `warmstore_provider_ipfs_pieces_total{result="indexed"} 1`) {
			t.Fatalf("provider %d does not count the indexed piece", i)
		}
	}

	// A single file: its root is the file's own DAG, and get writes a file.
	single := filepath.Join(dir, "note.txt")
	if err := os.WriteFile(single, []byte("just one block"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCLI(with([]string{"add"}, single)...)
	if code != 0 {
		t.Fatalf("add file: exit %d %s", code, errOut)
	}
	fileRoot := strings.Fields(out)[0]
	gotFile := filepath.Join(dir, "note.out")
	waitGet(fileRoot, gotFile)
	if b, _ := os.ReadFile(gotFile); string(b) != "just one block" {
		t.Fatalf("single file: %q", b)
	}

	// Nobody holds this CID.
	if msg, code := fetch("bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba", filepath.Join(dir, "none")); code != exitNotFound {
		t.Fatalf("get of an unknown CID: exit %d %s", code, msg)
	}
	if _, code := fetch("not-a-cid", filepath.Join(dir, "none")); code != exitUsage {
		t.Fatalf("get of a bad CID: exit %d", code)
	}

	// Remove the directory's piece from both data sets: once the chain processes the removals,
	// the providers drop its blocks and the gateways answer 404.
	for _, cp := range added.Copies {
		if _, errOut, code := runCLI(with([]string{"rm"}, itoa(cp.DataSetID), itoa(cp.PieceID))...); code != 0 {
			t.Fatalf("rm: exit %d %s", code, errOut)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		msg, code := fetch(added.Root, filepath.Join(dir, "after-rm-"+itoa(uint64(i))))
		if code == exitNotFound {
			break
		}
		if code != 0 || time.Now().After(deadline) {
			t.Fatalf("get after rm: exit %d %s", code, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i, n := range d.Providers {
		if !metric(n, `warmstore_provider_ipfs_pieces_total{result="removed"} 1`) {
			t.Fatalf("provider %d does not count the removed piece", i)
		}
	}
	// The single file's piece is untouched.
	if msg, code := fetch(fileRoot, filepath.Join(dir, "note.again")); code != 0 {
		t.Fatalf("get of the other piece after rm: exit %d %s", code, msg)
	}
}
