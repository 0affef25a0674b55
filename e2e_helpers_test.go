package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/mjpeg"
	"github.com/streamd/streamd/pkg/testutil"
)

const vtestPath = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// binary is the streamd binary built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "streamd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "streamd")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build streamd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running streamd process.
type proc struct {
	cmd    *exec.Cmd
	logs   *testutil.Buffer
	done   chan struct{}
	http   string // the HTTP address it listens on
	config string // its config file
}

var httpAddrRE = regexp.MustCompile(`msg="http listening".* addr=(\S+)`)

// startStreamd runs the binary with a config file holding yaml and waits
// until it listens for HTTP. It is stopped with SIGTERM at cleanup, and must
// exit cleanly.
func startStreamd(t *testing.T, name, yaml string, extraArgs ...string) *proc {
	t.Helper()
	return startStreamdEnv(t, name, yaml, nil, extraArgs...)
}

// startStreamdEnv is startStreamd with extra environment variables.
func startStreamdEnv(t *testing.T, name, yaml string, env []string, extraArgs ...string) *proc {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &proc{logs: &testutil.Buffer{}, done: make(chan struct{}), config: path}
	p.cmd = exec.Command(binary, append([]string{"--config", path}, extraArgs...)...)
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
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := httpAddrRE.FindStringSubmatch(p.logs.String()); m != nil {
			p.http = m[1]
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited early: %v\n%s", name, p.cmd.ProcessState, p.logs)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never listened:\n%s", name, p.logs)
		}
	}
}

// stop sends SIGTERM and requires a clean exit within the shutdown bound.
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
			t.Errorf("streamd exited with %d after SIGINT", code)
		}
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("streamd did not stop within 20s of SIGINT")
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
	t.Fatalf("not ready after 30s: %s", last)
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
	out := make([]received, 0, n)
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case r := <-v.parts:
			out = append(out, r)
		case err := <-v.err:
			t.Fatalf("stream ended after %d of %d parts: %v", len(out), n, err)
		case <-deadline:
			t.Fatalf("received %d of %d parts in %v", len(out), n, timeout)
		}
	}
	return out
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
