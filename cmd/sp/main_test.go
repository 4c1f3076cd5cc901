package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/warmstore/warmstore/chain"
)

// TestMain lets the test binary act as the sp binary when re-executed, so tests run `sp run`
// as a real process (signals, SIGKILL, exit statuses) without a separate go build.
func TestMain(m *testing.M) {
	if os.Getenv("WARMSTORE_SP_AS_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// spProcess is `sp <args>` running as a child process.
type spProcess struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
	done  chan error
	// fields printed at startup ("api", "chain", "provider")
	fields map[string]string
}

func startSP(t *testing.T, args ...string) *spProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "WARMSTORE_SP_AS_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &spProcess{t: t, cmd: cmd, lines: make(chan string, 100), done: make(chan error, 1), fields: map[string]string{}}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("sp stderr:\n%s", stderr.String())
		}
	})
	// `sp run` prints "provider", "api", "metrics", "chain" lines once it is serving.
	deadline := time.After(60 * time.Second)
	for p.fields["chain"] == "" {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("sp exited before it was ready: %v\n%s", <-p.done, stderr.String())
			}
			if k, v, ok := strings.Cut(l, " "); ok {
				p.fields[k] = strings.Fields(strings.TrimSpace(v))[0]
			}
		case <-deadline:
			t.Fatalf("sp not ready after 60 s\n%s", stderr.String())
		}
	}
	return p
}

// stop sends sig and returns the exit error (nil: exit status 0).
func (p *spProcess) stop(sig os.Signal) error {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	go func() {
		for range p.lines {
		}
	}()
	select {
	case err := <-p.done:
		return err
	case <-time.After(60 * time.Second):
		p.t.Fatal("sp did not exit within 60 s of the signal")
		return nil
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunKeyRegistrationAndGracefulStop: the first run creates a 0600 key and registers the
// provider; SIGTERM exits 0; a second run reuses the key and does not register again.
func TestRunKeyRegistrationAndGracefulStop(t *testing.T) {
	dir := t.TempDir()
	args := []string{"run", "--data-dir", dir, "--listen", "127.0.0.1:0", "--chain-listen", "127.0.0.1:0", "--service-url", "http://sp.test:4700", "--log-level", "warn"}
	p := startSP(t, args...)
	resp, err := http.Get(p.fields["api"] + "/pdp/ping")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("ping: %v %v", resp, err)
	}
	resp.Body.Close()
	addr := p.fields["provider"]
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("sp run after SIGTERM: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "provider.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("provider.key: %v %v", fi, err)
	}

	p = startSP(t, args...)
	if p.fields["provider"] != addr {
		t.Fatalf("second run is provider %s, first was %s: the key was not reused", p.fields["provider"], addr)
	}
	evs, err := chain.NewClient(p.fields["chain"], nil).Events(context.Background(), 0, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	regs := 0
	for _, e := range evs {
		if e.Kind == chain.EvProviderRegistered {
			regs++
		}
	}
	if regs != 1 {
		t.Fatalf("%d registrations after two runs with the same service URL, want 1", regs)
	}
	if err := p.stop(syscall.SIGINT); err != nil {
		t.Fatalf("sp run after SIGINT: %v", err)
	}
}

// TestLoadCommand runs `sp load` in-process against a file server, with the URL taken from
// the environment.
func TestLoadCommand(t *testing.T) {
	data := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.ServeContent(w, req, "f", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	t.Setenv("WARMSTORE_LOAD_URL", srv.URL)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"sp", "load", "--concurrency", "20", "--requests", "100", "--range-size", "64KiB", "--json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var res struct {
		Requests, Succeeded int
		SuccessRate         float64
		Bytes               int64
		TtfbP50Ms           float64
		ThroughputMiBps     float64
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Requests != 100 || res.Succeeded != 100 || res.SuccessRate != 1 || res.Bytes != 100*64<<10 || res.ThroughputMiBps <= 0 {
		t.Fatalf("load result %+v", res)
	}
	// Bad input is refused with a clear message.
	errOut.Reset()
	if code := run(context.Background(), []string{"sp", "load", "--range-size", "lots"}, io.Discard, &errOut); code == 0 || !strings.Contains(errOut.String(), "--range-size") {
		t.Fatalf("bad --range-size: exit %d, %q", code, errOut.String())
	}
}

// TestDevnetCommand runs `sp devnet` in-process: a chain and two providers start, the demo
// wallet is funded, the beam edge serves and is authorized on chain, and cancelling stops everything.
func TestDevnetCommand(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var errOut lockedBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"sp", "devnet", "--dir", dir, "--providers", "2", "--port", "0", "--log-level", "error"}, pw, &errOut)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "ready") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	text := strings.Join(lines, "\n")
	get := func(prefix string) []string {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return strings.Fields(strings.TrimPrefix(l, prefix))
			}
		}
		t.Fatalf("no %q line in:\n%s\n%s", prefix, text, errOut.String())
		return nil
	}
	chainURL := get("chain")[0]
	wallet := common.HexToAddress(get("wallet")[0])
	key, err := crypto.HexToECDSA(strings.TrimPrefix(get("private key")[0], "0x"))
	if err != nil || crypto.PubkeyToAddress(key.PublicKey) != wallet {
		t.Fatalf("private key line does not match the wallet address: %v", err)
	}
	c := chain.NewClient(chainURL, nil)
	// The beam edge runs, answers, and is one of the chain's genesis edges (else its usage
	// reports would be refused).
	beamLine := get("beam")
	info, err := c.Info(ctx)
	if err != nil || len(info.Edges) != 1 || info.Edges[0] != common.HexToAddress(beamLine[1]) {
		t.Fatalf("chain edges %+v (%v), want the beam edge %s", info, err, beamLine[1])
	}
	resp, err := http.Get(beamLine[0] + "/dashboard")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("beam dashboard at %s: %v %v", beamLine[0], resp, err)
	}
	resp.Body.Close()
	acc, err := c.Account(ctx, wallet)
	if err != nil || acc.Payments.Funds.Sign() <= 0 || acc.Wallet.Sign() <= 0 {
		t.Fatalf("demo wallet account %+v, %v", acc, err)
	}
	provs, err := c.Providers(ctx)
	if err != nil || len(provs) != 2 {
		t.Fatalf("providers %+v, %v", provs, err)
	}
	for i, p := range provs {
		resp, err := http.Get(p.ServiceURL + "/pdp/ping")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("provider %d at %s: %v %v", i, p.ServiceURL, resp, err)
		}
		resp.Body.Close()
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("devnet exit %d: %s", code, errOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("devnet did not stop")
	}
}

// TestEveryFlagHasAnEnvironmentVariable keeps the promise that any flag can be set from the
// environment (WARMSTORE_…).
func TestEveryFlagHasAnEnvironmentVariable(t *testing.T) {
	for _, cmd := range newApp(io.Discard, io.Discard).Commands {
		for _, f := range cmd.Flags {
			ev, ok := f.(interface{ GetEnvVars() []string })
			if !ok || len(ev.GetEnvVars()) == 0 || !strings.HasPrefix(ev.GetEnvVars()[0], "WARMSTORE_") {
				t.Errorf("sp %s --%s has no WARMSTORE_ environment variable", cmd.Name, f.Names()[0])
			}
		}
	}
}

// TestChainCommand runs `sp chain` in-process: it serves the ledger with the genesis flags,
// stops on cancel, and refuses an impossible genesis.
func TestChainCommand(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var errOut lockedBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"sp", "chain", "--data-dir", dir, "--listen", "127.0.0.1:0", "--epoch", "1s", "--proving-period", "60", "--challenge-window", "10"}, pw, &errOut)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no output: %s", errOut.String())
	}
	go io.Copy(io.Discard, pr)
	var url string
	for _, f := range strings.Fields(sc.Text()) {
		if strings.HasPrefix(f, "http://") {
			url = f
		}
	}
	in, err := chain.NewClient(url, nil).Info(ctx)
	if err != nil {
		t.Fatalf("info from %q: %v", url, err)
	}
	if in.ProvingPeriod != 60 || in.ChallengeWindow != 10 || !in.Faucet {
		t.Fatalf("genesis %+v", in)
	}
	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	errOut = lockedBuffer{}
	code := run(context.Background(), []string{"sp", "chain", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--proving-period", "10", "--challenge-window", "20"}, io.Discard, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), "challenge window") {
		t.Fatalf("impossible genesis: exit %d, %q", code, errOut.String())
	}
}
