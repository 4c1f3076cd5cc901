package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	commcid "github.com/filecoin-project/go-fil-commcid"
	commphash "github.com/filecoin-project/go-fil-commp-hashhash"
)

// TestMain lets the test binary act as the client binary when re-executed, so the tests can
// check real process exit statuses without a separate go build.
func TestMain(m *testing.M) {
	if os.Getenv("WARMSTORE_CLIENT_AS_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// oracleV2 computes a file's v2 piece CID with go-fil-commp-hashhash + go-fil-commcid
// (independent of pdp), for payloads of at least 127 bytes.
func oracleV2(t *testing.T, data []byte) string {
	t.Helper()
	var h commphash.Calc
	if _, err := h.Write(data); err != nil {
		t.Fatal(err)
	}
	root, _, err := h.Digest()
	if err != nil {
		t.Fatal(err)
	}
	c, err := commcid.DataCommitmentToPieceCidv2(root, uint64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

type testFiles struct {
	dir                string
	vector, rnd, empty string
	rndData            []byte
}

func writeTestFiles(t *testing.T) testFiles {
	t.Helper()
	dir := t.TempDir()
	var vec []byte
	for v := byte(0); v < 4; v++ {
		vec = append(vec, bytes.Repeat([]byte{v}, 127)...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rnd := make([]byte, 3<<20+77)
	for i := range rnd {
		rnd[i] = byte(rng.Uint32())
	}
	f := testFiles{
		dir:     dir,
		vector:  filepath.Join(dir, "frc69 vector.bin"),
		rnd:     filepath.Join(dir, "random.bin"),
		empty:   filepath.Join(dir, "empty.bin"),
		rndData: rnd,
	}
	for name, data := range map[string][]byte{f.vector: vec, f.rnd: rnd, f.empty: nil} {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func runClient(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(append([]string{"client"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCommPLines(t *testing.T) {
	f := writeTestFiles(t)
	code, out, errOut := runClient("commp", f.vector, f.rnd, f.empty)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := "bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi " + f.vector + "\n" +
		oracleV2(t, f.rndData) + " " + f.rnd + "\n" +
		"bafkzcibcp4bdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy " + f.empty + "\n"
	if out != want {
		t.Fatalf("stdout\n%s\nwant\n%s", out, want)
	}
}

func TestCommPJSON(t *testing.T) {
	f := writeTestFiles(t)
	code, out, errOut := runClient("commp", "--json", f.vector, f.rnd)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %q", len(lines), out)
	}
	var got struct {
		PieceCID   string `json:"pieceCid"`
		PieceCIDV1 string `json:"pieceCidV1"`
		RawSize    uint64 `json:"rawSize"`
		PaddedSize uint64 `json:"paddedSize"`
		File       string `json:"file"`
	}
	dec := json.NewDecoder(strings.NewReader(lines[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.PieceCID != "bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi" ||
		got.PieceCIDV1 != "baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi" ||
		got.RawSize != 508 || got.PaddedSize != 512 || got.File != f.vector {
		t.Fatalf("line 1: %+v", got)
	}
	if err := json.Unmarshal([]byte(lines[1]), &got); err != nil {
		t.Fatal(err)
	}
	if got.PieceCID != oracleV2(t, f.rndData) || got.RawSize != uint64(len(f.rndData)) || got.PaddedSize != 4<<20 || got.File != f.rnd {
		t.Fatalf("line 2: %+v", got)
	}
}

func TestCommPMissingFileStillProcessesOthers(t *testing.T) {
	f := writeTestFiles(t)
	missing := filepath.Join(f.dir, "no-such-file")
	code, out, errOut := runClient("commp", missing, f.vector, f.dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if want := "bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi " + f.vector + "\n"; out != want {
		t.Fatalf("stdout %q, want %q", out, want)
	}
	for _, s := range []string{missing + ": open", f.dir + ": ", "2 of 3 files failed"} {
		if !strings.Contains(errOut, s) {
			t.Fatalf("stderr %q does not contain %q", errOut, s)
		}
	}
	if code, _, errOut := runClient("commp"); code != 2 || !strings.Contains(errOut, "no files given") {
		t.Fatalf("no args: exit %d, stderr %q", code, errOut)
	}
}

// TestCommPProcessExitStatus runs the client as a real process.
func TestCommPProcessExitStatus(t *testing.T) {
	f := writeTestFiles(t)
	cmd := exec.Command(os.Args[0], "commp", f.vector, filepath.Join(f.dir, "missing"))
	cmd.Env = append(os.Environ(), "WARMSTORE_CLIENT_AS_MAIN=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("process error %v, want exit status 1 (stderr %q)", err, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi ") {
		t.Fatalf("stdout %q", out.String())
	}
	if !strings.Contains(errOut.String(), "missing: open") {
		t.Fatalf("stderr %q", errOut.String())
	}
}
