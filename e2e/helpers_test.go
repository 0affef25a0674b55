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
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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
)

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

// proc is a running streamd process.
type proc struct {
	name   string
	bin    string
	cmd    *exec.Cmd
	logs   *testutil.Buffer // shown when the test fails; never asserted on
	done   chan struct{}
	ready  readyInfo
	http   string // the HTTP address it listens on, from its ready file
	broker string // its embedded broker's address, or ""
	config string // its config file
}

// startStreamd runs the binary with a config file holding yaml and waits
// until its ready file says it serves. It is stopped with SIGINT at cleanup,
// and must exit cleanly.
func startStreamd(t *testing.T, name, yaml string, extraArgs ...string) *proc {
	t.Helper()
	return startBinary(t, binary, name, yaml, nil, extraArgs...)
}

// startStreamdEnv is startStreamd with extra environment variables.
func startStreamdEnv(t *testing.T, name, yaml string, env []string, extraArgs ...string) *proc {
	t.Helper()
	return startBinary(t, binary, name, yaml, env, extraArgs...)
}

// startBinary is startStreamd for a given streamd binary.
func startBinary(t *testing.T, bin, name, yaml string, env []string, extraArgs ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	readyFile := filepath.Join(dir, name+".ready.json")
	p := &proc{name: name, bin: bin, logs: &testutil.Buffer{}, done: make(chan struct{}), config: path}
	p.cmd = exec.Command(bin, append([]string{"--config", path, "--ready-file", readyFile}, extraArgs...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, p.logs)
		}
	})
	p.ready = waitReadyFile(t, p, readyFile, 30*time.Second)
	p.http, p.broker = p.ready.HTTP, p.ready.Broker
	return p
}

// waitReadyFile polls for the ready file of p and checks what it says: the
// process's pid, its role, and addresses that answer at once.
func waitReadyFile(t *testing.T, p *proc, path string, timeout time.Duration) readyInfo {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			var r readyInfo
			// The file is written atomically: whatever is there is whole.
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("%s: ready file %s is not whole JSON (written in place, not renamed?): %v\n%s", p.name, path, err, b)
			}
			checkReadyInfo(t, p, r)
			return r
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: read ready file: %v", p.name, err)
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready: %v", p.name, p.cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s wrote no ready file within %v", p.name, timeout)
		}
	}
}

func checkReadyInfo(t *testing.T, p *proc, r readyInfo) {
	t.Helper()
	if r.PID != p.cmd.Process.Pid {
		t.Fatalf("%s: ready file names pid %d, the process is %d", p.name, r.PID, p.cmd.Process.Pid)
	}
	switch r.Role {
	case "producer", "consumer", "analyzer", "all":
	default:
		t.Fatalf("%s: ready file: role %q", p.name, r.Role)
	}
	if host, port, err := net.SplitHostPort(r.HTTP); err != nil || host == "" || port == "0" {
		t.Fatalf("%s: ready file: http %q is not the address it listens on", p.name, r.HTTP)
	}
	// "Serving" means it: /healthz answers at once, the broker accepts.
	c := &http.Client{Timeout: 5 * time.Second}
	if !strings.HasSuffix(r.URL, r.HTTP+"/") {
		t.Fatalf("%s: ready file: url %q does not name http %q", p.name, r.URL, r.HTTP)
	}
	if strings.HasPrefix(r.URL, "https://") {
		c.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // a test's own self-signed certificate
	}
	resp, err := c.Get(r.URL + "healthz")
	if err != nil {
		t.Fatalf("%s: ready file written but %s does not answer: %v", p.name, r.HTTP, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: ready file written but /healthz answers %s", p.name, resp.Status)
	}
	if r.Broker != "" {
		conn, err := net.DialTimeout("tcp", r.Broker, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: ready file names broker %s, which does not accept: %v", p.name, r.Broker, err)
		}
		conn.Close()
	}
}

// stop sends SIGINT and requires a clean exit within the shutdown bound.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited with %d after SIGINT", p.name, code)
		}
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("%s did not stop within 20s of SIGINT", p.name)
	}
}

func (p *proc) url(path string) string { return "http://" + p.http + path }

// waitReady polls /readyz until it answers 200.
func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.url("/readyz"))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = string(body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 30s: %s", p.name, last)
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
