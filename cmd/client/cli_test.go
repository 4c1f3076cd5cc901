package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warmstore/warmstore/provider"
)

// runCLI runs the client in-process and returns stdout, stderr and the exit status.
func runCLI(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := run(append([]string{"client"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

// TestCLIAgainstDevnet drives the commands end to end against a real devnet: a new wallet is
// refused for lack of funds (exit 4, with the amount), funded and approved, uploads two
// copies, downloads whole and by range, lists and shows data sets, removes a piece,
// terminates.
func TestCLIAgainstDevnet(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	d, err := provider.StartDevnet(ctx, provider.DevnetConfig{Dir: filepath.Join(dir, "devnet"), Providers: 2, EpochDuration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	wallet := filepath.Join(dir, "w.key")
	conn := []string{"--chain", d.ChainURL(), "--wallet", wallet}
	with := func(cmd []string, extra ...string) []string {
		return append(append(append([]string{}, cmd...), conn...), extra...)
	}

	out, errOut, code := runCLI("wallet", "new", "--wallet", wallet, "--json")
	if code != 0 {
		t.Fatalf("wallet new: %d %s", code, errOut)
	}
	var w struct{ Address string }
	if err := json.Unmarshal([]byte(out), &w); err != nil || !strings.HasPrefix(w.Address, "0x") {
		t.Fatalf("wallet new --json: %q", out)
	}
	if _, _, code := runCLI("wallet", "new", "--wallet", wallet); code != exitUsage {
		t.Fatalf("wallet new over an existing wallet: exit %d", code)
	}
	if out, _, code := runCLI("wallet", "address", "--wallet", wallet); code != 0 || strings.TrimSpace(out) != w.Address {
		t.Fatalf("wallet address: %d %q", code, out)
	}

	file := filepath.Join(dir, "data.bin")
	data := make([]byte, 700_000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, code := runCLI(with([]string{"pay", "faucet"}, "50")...); code != 0 {
		t.Fatalf("faucet: exit %d", code)
	}
	_, errOut, code = runCLI(with([]string{"upload"}, file)...)
	if code != exitFunds || !strings.Contains(errOut, "deposit at least") {
		t.Fatalf("upload without deposit: exit %d, %s", code, errOut)
	}
	for _, args := range [][]string{with([]string{"pay", "deposit"}, "10"), with([]string{"pay", "approve"})} {
		if _, errOut, code := runCLI(args...); code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, errOut)
		}
	}
	out, errOut, code = runCLI(with([]string{"providers"}, "--json")...)
	if code != 0 || strings.Count(out, `"healthy":true`) != 2 {
		t.Fatalf("providers: %d %s %s", code, out, errOut)
	}
	out, errOut, code = runCLI(with([]string{"upload", "--json"}, file)...)
	if code != 0 {
		t.Fatalf("upload: exit %d %s", code, errOut)
	}
	var up struct {
		PieceCID string `json:"pieceCid"`
		Complete bool
		Copies   []struct {
			DataSetID uint64 `json:"dataSetId"`
			PieceID   uint64 `json:"pieceId"`
			Provider  string
		}
	}
	if err := json.Unmarshal([]byte(out), &up); err != nil || !up.Complete || len(up.Copies) != 2 || up.Copies[0].Provider == up.Copies[1].Provider {
		t.Fatalf("upload --json: %v %s", err, out)
	}
	got := filepath.Join(dir, "got.bin")
	if _, errOut, code := runCLI(with([]string{"download", "-o", got}, up.PieceCID)...); code != 0 {
		t.Fatalf("download: exit %d %s", code, errOut)
	}
	if b, _ := os.ReadFile(got); !bytes.Equal(b, data) {
		t.Fatal("downloaded file differs")
	}
	out, errOut, code = runCLI(with([]string{"download", "--range", "1000-1999"}, up.PieceCID)...)
	if code != 0 || out != string(data[1000:2000]) {
		t.Fatalf("download --range: exit %d %s (%d bytes)", code, errOut, len(out))
	}
	if _, _, code := runCLI(with([]string{"download", "--range", "5-800000"}, up.PieceCID)...); code != exitUsage {
		t.Fatalf("range past the end: exit %d", code)
	}
	out, _, code = runCLI(with([]string{"datasets", "--json"})...)
	if code != 0 || strings.Count(out, "\n") != 2 {
		t.Fatalf("datasets: %d %q", code, out)
	}
	ds := up.Copies[0].DataSetID
	out, _, code = runCLI(with([]string{"dataset", "show"}, itoa(ds))...)
	if code != 0 || !strings.Contains(out, up.PieceCID) {
		t.Fatalf("dataset show: %d %s", code, out)
	}
	if _, _, code := runCLI(with([]string{"dataset", "show"}, "999")...); code != exitNotFound {
		t.Fatalf("dataset show 999: exit %d", code)
	}
	out, _, code = runCLI(with([]string{"pay", "status", "--json"})...)
	if code != 0 || strings.Count(out, `"kind":"pdp"`) != 2 {
		t.Fatalf("pay status: %d %s", code, out)
	}
	if _, errOut, code := runCLI(with([]string{"rm"}, itoa(ds), itoa(up.Copies[0].PieceID))...); code != 0 {
		t.Fatalf("rm: exit %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(with([]string{"terminate"}, itoa(up.Copies[1].DataSetID))...); code != 0 {
		t.Fatalf("terminate: exit %d %s", code, errOut)
	}
	if _, _, code := runCLI(with([]string{"pay", "withdraw"}, "100000")...); code != exitFunds {
		t.Fatalf("withdraw too much: exit %d", code)
	}
	if _, _, code := runCLI(with([]string{"download"}, "not-a-cid")...); code != exitUsage {
		t.Fatalf("bad cid: exit %d", code)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
