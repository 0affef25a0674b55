//go:build e2e

// Package e2e tests streamd as users run it: the built binary as processes,
// real Kafka clients, HTTP clients, Chromium, nginx, systemd's notification
// protocol and make install. It is a module of its own, so that its test
// dependencies (chromedp) stay out of streamd's go.mod, and every file needs
// the e2e build tag:
//
//	cd e2e && go test -tags e2e -p 1 -count=1 -timeout 20m ./...
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/mjpeg"
	"github.com/streamd/streamd/pkg/testutil"
)

const vtestPath = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

var (
	// binary is the streamd binary built once by TestMain.
	binary string
	// repoRoot is the streamd repository: the parent of this module.
	repoRoot string
	// docsScreenshot is $STREAMD_DOCS_SCREENSHOT, where TestCameraPageReplay
	// saves its screenshot of the index page; TestMain takes it out of the
	// environment, since streamd refuses unknown STREAMD_ variables and
	// the processes the tests start inherit the environment.
	docsScreenshot string
)

// docsScreenshotEnv names docsScreenshot's environment variable.
const docsScreenshotEnv = "STREAMD_DOCS_SCREENSHOT"

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if mod, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !bytes.HasPrefix(mod, []byte("module github.com/streamd/streamd\n")) {
		fmt.Fprintf(os.Stderr, "%s is not the streamd repository (run the tests from e2e/): %v\n", root, err)
		return 1
	}
	repoRoot = root
	docsScreenshot = os.Getenv(docsScreenshotEnv)
	if err := os.Unsetenv(docsScreenshotEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "streamd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "streamd")
	if out, err := buildStreamd(binary, nil); err != nil {
		fmt.Fprintf(os.Stderr, "build streamd: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// buildStreamd runs `go build -o out .` in the repository root with extra
// environment variables and flags.
func buildStreamd(out string, env []string, flags ...string) ([]byte, error) {
	args := append(append([]string{"build"}, flags...), "-o", out, ".")
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	return cmd.CombinedOutput()
}

// inRepo returns the path of a file of the repository.
func inRepo(rel string) string { return filepath.Join(repoRoot, filepath.FromSlash(rel)) }

// readyInfo is what streamd writes to its --ready-file once it serves.
type readyInfo struct {
	PID    int    `json:"pid"`
	Role   string `json:"role"`
	HTTP   string `json:"http"`
	URL    string `json:"url"`    // the page: http:// or, with http.tls, https://
	Broker string `json:"broker"` // the embedded broker; "" without it
}

// procSpec says how to run a streamd process.
type procSpec struct {
	name string   // in failures and log lines; names the config file
	yaml string   // the config file's content
	bin  string   // the streamd binary; "": the one TestMain built
	env  []string // added to the test's environment
	args []string // after --config and --ready-file
}

// proc is a running streamd process: started from a config file, its
// addresses learnt from its ready file (--ready-file), stopped with
// SIGTERM at cleanup (it must exit cleanly within stopTimeout), and
// restartable with the same configuration, HTTP port and so consumer
// group (start after stop or kill).
type proc struct {
	tb        testing.TB
	name      string
	bin       string
	env, args []string
	config    string // its config file
	readyFile string
	logs      *testutil.Buffer // shown when the test fails; never asserted on

	// Set by start, on the test's goroutine; read them there, or through
	// url and alive from others.
	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	ready  readyInfo
	http   string // the HTTP address it listens on, from its ready file
	broker string // its embedded broker's address, or ""
}

// stopTimeout bounds a clean shutdown after SIGTERM.
const stopTimeout = 20 * time.Second

// startStreamd runs the built binary with a config file holding yaml and
// waits until its ready file says it serves.
func startStreamd(tb testing.TB, name, yaml string, extraArgs ...string) *proc {
	tb.Helper()
	return startProc(tb, procSpec{name: name, yaml: yaml, args: extraArgs})
}

// startProc runs streamd as s says and waits until its ready file says it
// serves. It is stopped at cleanup, and must exit cleanly.
func startProc(tb testing.TB, s procSpec) *proc {
	tb.Helper()
	if s.bin == "" {
		s.bin = binary
	}
	dir := tb.TempDir()
	p := &proc{tb: tb, name: s.name, bin: s.bin, env: s.env, args: s.args,
		config: filepath.Join(dir, s.name+".yaml"), readyFile: filepath.Join(dir, s.name+".ready.json"), logs: &testutil.Buffer{}}
	if err := os.WriteFile(p.config, []byte(s.yaml), 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.stop()
		if tb.Failed() {
			tb.Logf("%s logs (last 20000 bytes):\n%s", p.name, tail(p.logs.String(), 20000))
		}
	})
	p.start()
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// start runs the process and waits for its ready file. A restart keeps the
// HTTP port of the first run: viewers reconnect to the same address, and
// the default consumer group name stays the same.
func (p *proc) start() {
	tb := p.tb
	tb.Helper()
	if p.http != "" {
		p.pinPort(p.http)
	}
	_ = os.Remove(p.readyFile)
	cmd := exec.Command(p.bin, append([]string{"--config", p.config, "--ready-file", p.readyFile}, p.args...)...)
	cmd.Env = append(os.Environ(), p.env...)
	fmt.Fprintf(p.logs, "---- start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	r := p.waitReadyFile(30 * time.Second)
	p.mu.Lock()
	p.ready, p.http, p.broker = r, r.HTTP, r.Broker
	p.mu.Unlock()
}

// pinPort rewrites the config's http.listen to addr.
func (p *proc) pinPort(addr string) {
	b, err := os.ReadFile(p.config)
	if err != nil {
		p.tb.Fatal(err)
	}
	s := strings.Replace(string(b), "listen: 127.0.0.1:0\n", "listen: "+addr+"\n", 1)
	if err := os.WriteFile(p.config, []byte(s), 0o644); err != nil {
		p.tb.Fatal(err)
	}
}

// waitReadyFile polls for the ready file and checks what it says: the
// process's pid, its role, and addresses that answer at once.
func (p *proc) waitReadyFile(timeout time.Duration) readyInfo {
	tb := p.tb
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(p.readyFile)
		if err == nil {
			var r readyInfo
			// The file is written atomically: whatever is there is whole.
			if err := json.Unmarshal(b, &r); err != nil {
				tb.Fatalf("%s: ready file %s is not whole JSON (written in place, not renamed?): %v\n%s", p.name, p.readyFile, err, b)
			}
			p.checkReadyInfo(r)
			return r
		}
		if !errors.Is(err, fs.ErrNotExist) {
			tb.Fatalf("%s: read ready file: %v", p.name, err)
		}
		select {
		case <-p.done:
			tb.Fatalf("%s exited before it was ready: %v", p.name, p.cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s wrote no ready file within %v", p.name, timeout)
		}
	}
}

func (p *proc) checkReadyInfo(r readyInfo) {
	tb := p.tb
	tb.Helper()
	if r.PID != p.cmd.Process.Pid {
		tb.Fatalf("%s: ready file names pid %d, the process is %d", p.name, r.PID, p.cmd.Process.Pid)
	}
	switch r.Role {
	case "producer", "consumer", "analyzer", "recorder", "notifier", "all":
	default:
		tb.Fatalf("%s: ready file: role %q", p.name, r.Role)
	}
	if host, port, err := net.SplitHostPort(r.HTTP); err != nil || host == "" || port == "0" {
		tb.Fatalf("%s: ready file: http %q is not the address it listens on", p.name, r.HTTP)
	}
	// "Serving" means it: /healthz answers at once, the broker accepts.
	c := &http.Client{Timeout: 5 * time.Second}
	if !strings.HasSuffix(r.URL, r.HTTP+"/") {
		tb.Fatalf("%s: ready file: url %q does not name http %q", p.name, r.URL, r.HTTP)
	}
	if strings.HasPrefix(r.URL, "https://") {
		c.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // a test's own self-signed certificate
	}
	resp, err := c.Get(r.URL + "healthz")
	if err != nil {
		tb.Fatalf("%s: ready file written but %s does not answer: %v", p.name, r.HTTP, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s: ready file written but /healthz answers %s", p.name, resp.Status)
	}
	if r.Broker != "" {
		conn, err := net.DialTimeout("tcp", r.Broker, 5*time.Second)
		if err != nil {
			tb.Fatalf("%s: ready file names broker %s, which does not accept: %v", p.name, r.Broker, err)
		}
		conn.Close()
	}
}

// terminate sends SIGTERM and waits up to stopTimeout for the process to
// exit with code 0 (it is killed if it does not). A process already gone
// is not an error.
func (p *proc) terminate() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("%s exited with %d after SIGTERM", p.name, code)
		}
		return nil
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not stop within %v of SIGTERM", p.name, stopTimeout)
	}
}

// stop is terminate that fails the test (without stopping it).
func (p *proc) stop() {
	if err := p.terminate(); err != nil {
		p.tb.Errorf("%v", err)
	}
}

// kill ends the process with SIGKILL, as a crash.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// alive reports whether the process runs; a process that exited on its
// own (not stopped by the test) is a crash.
func (p *proc) alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// url is the address of path on the process's HTTP listener.
func (p *proc) url(path string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "http://" + p.http + path
}

// waitReady polls /readyz until it answers 200, for up to 30 s.
func (p *proc) waitReady(t testing.TB) {
	t.Helper()
	if err := p.waitReadyErr(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// waitReadyErr is waitReady for goroutines other than the test's, with a
// timeout.
func (p *proc) waitReadyErr(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	c := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		resp, err := c.Get(p.url("/readyz"))
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = string(body)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %s", p.name, timeout, last)
}

// getJSON fetches path and decodes the JSON answer into v.
func (p *proc) getJSON(t *testing.T, path string, v any) int {
	t.Helper()
	resp, err := http.Get(p.url(path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: content type %q", path, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return resp.StatusCode
}

// received is one part as a viewer got it.
type received struct {
	part mjpeg.Part
	at   time.Time
}

// viewer is an MJPEG client of /stream/{camera}.
type viewer struct {
	connected chan struct{} // closed when the response headers arrived
	parts     chan received
	err       chan error
	cancel    context.CancelFunc
}

func watch(t *testing.T, url string) *viewer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	v := &viewer{connected: make(chan struct{}), parts: make(chan received, 4096), err: make(chan error, 1), cancel: cancel}
	t.Cleanup(cancel)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			v.err <- err
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != mjpeg.ContentType {
			v.err <- fmt.Errorf("stream answered %s, %q", resp.Status, resp.Header.Get("Content-Type"))
			return
		}
		for _, h := range []string{"Cache-Control"} {
			if resp.Header.Get(h) == "" {
				v.err <- fmt.Errorf("stream response lacks %s", h)
				return
			}
		}
		close(v.connected)
		r := mjpeg.NewReader(resp.Body, mjpeg.Boundary)
		for {
			p, err := r.Next()
			if err != nil {
				v.err <- err
				return
			}
			p.Data = bytes.Clone(p.Data)
			v.parts <- received{part: p, at: time.Now()}
		}
	}()
	select {
	case <-v.connected:
	case err := <-v.err:
		t.Fatalf("viewer of %s: %v", url, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("viewer of %s: no response", url)
	}
	return v
}

// take receives n parts, failing after timeout.
func (v *viewer) take(t *testing.T, n int, timeout time.Duration) []received {
	t.Helper()
	out, err := v.takeErr(n, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// takeErr is take for goroutines other than the test's: it returns the
// error instead of failing the test.
func (v *viewer) takeErr(n int, timeout time.Duration) ([]received, error) {
	out := make([]received, 0, n)
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case r := <-v.parts:
			out = append(out, r)
		case err := <-v.err:
			return out, fmt.Errorf("stream ended after %d of %d parts: %w", len(out), n, err)
		case <-deadline:
			return out, fmt.Errorf("received %d of %d parts in %v", len(out), n, timeout)
		}
	}
	return out, nil
}

// gatedFile serves a file over HTTP (with Range support, as OpenCV needs)
// but holds every request until open is called, so that viewers can connect
// before the producer reads the first frame.
type gatedFile struct {
	srv  *httptest.Server
	gate chan struct{}
	once sync.Once
}

func serveGated(t *testing.T, path string) *gatedFile {
	t.Helper()
	g := &gatedFile{gate: make(chan struct{})}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-g.gate:
		case <-r.Context().Done():
			return
		}
		http.ServeFile(w, r, path)
	}))
	t.Cleanup(func() { g.open(); g.srv.Close() })
	return g
}

func (g *gatedFile) url() string { return g.srv.URL + "/" + filepath.Base(vtestPath) }
func (g *gatedFile) open()       { g.once.Do(func() { close(g.gate) }) }

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not installed: run `make deps` (it installs every test dependency): %v", name, err)
	}
	return p
}

func indent(s string) string { return "  " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n  ") }

// scanLines returns the non-empty lines of s.
func scanLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// percentile is the nearest-rank p-th percentile of ds, p in [0, 1]: the
// smallest value that at least p of the values are at or below, i.e. the
// ceil(p*n)-th smallest (p = 0: the smallest, p = 1: the largest); 0 for
// no values. ds is not modified.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	// The 1e-9 keeps p*n that float arithmetic puts a hair above an integer
	// (0.07*100 is 7.000000000000001) at that integer.
	rank := int(math.Ceil(p*float64(len(s)) - 1e-9))
	return s[min(max(rank, 1), len(s))-1]
}
