package app

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/streamd/streamd/pkg/testutil"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/broker"
	"github.com/streamd/streamd/pkg/config"
)

func status(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBecomesReadyWhenKafkaAppears(t *testing.T) {
	brokerAddr := testutil.FreeAddr(t)
	cfg, err := config.Load(config.Sources{Overrides: map[string]string{
		"role": "consumer", "embedded.enabled": "false", "kafka.brokers": brokerAddr,
		"http.listen": "127.0.0.1:0", "kafka.dial_timeout": "300ms",
	}})
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(t, cfg)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	base := "http://" + a.HTTPAddr()

	// No broker: alive, not ready, and the reason names the broker.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := status(t, base+"/readyz")
		if code == 503 && strings.Contains(body, "kafka dial ["+brokerAddr+"]") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz without a broker: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := status(t, base+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}

	// The broker comes up late, on the configured address.
	b, err := broker.Start(broker.Options{Listen: brokerAddr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	deadline = time.Now().Add(30 * time.Second)
	for {
		code, body := status(t, base+"/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never became ready after the broker started: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// newApp builds an app that logs nowhere.
func newApp(t *testing.T, cfg *config.Config, opts ...Option) *App {
	t.Helper()
	a, err := New(cfg, slog.New(slog.DiscardHandler), "test", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// statusOf fetches /api/status.
func statusOf(t *testing.T, base string) (st struct {
	Ready      bool
	Components []struct{ Name, Ready string }
	Cameras    []struct {
		ID        string
		State     string
		Published uint64
	}
	Warnings []string
}) {
	t.Helper()
	code, body := status(t, base+"/api/status")
	if code != 200 {
		t.Fatalf("/api/status: %d %s", code, body)
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/api/status: %v: %s", err, body)
	}
	return st
}

func TestShutdownIsIdempotentAndBounded(t *testing.T) {
	cfg, err := config.Load(config.Sources{Overrides: map[string]string{"http.listen": "127.0.0.1:0", "embedded.listen": "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cameras = []config.CameraConfig{{ID: "p", Source: config.SourceTestPattern, Width: 160, Height: 120, FPS: 30, Quality: 80}}
	a := newApp(t, cfg)
	// A component that ignores its context, in the middle of the start
	// order: shutdown must give up on it after its own stop budget, still
	// stop every component before and after it within theirs (the
	// embedded broker, started first, stops last), call only the stuck
	// one stuck, and never close it while its Run runs.
	stuck := &fakeComponent{name: "stuck", ignoreCancel: true}
	mid := len(a.components) / 2
	a.components = append(a.components[:mid:mid], append([]Component{stuck}, a.components[mid:]...)...)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + a.HTTPAddr()
	brokerAddr := a.BrokerAddr()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := status(t, base+"/snapshot/p"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no frame through the embedded broker")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := statusOf(t, base); len(st.Cameras) != 1 || st.Cameras[0].Published == 0 || st.Cameras[0].State != "streaming" {
		t.Fatalf("camera status %+v", st.Cameras)
	}
	// A viewer is streaming while we shut down.
	resp, err := http.Get(base + "/stream/p")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	start := time.Now()
	err = a.Shutdown(ctx)
	took := time.Since(start)
	if err == nil || err.Error() != "shutdown: stuck did not stop within "+DefaultStopBudget.String() {
		t.Fatalf("shutdown with a hung component: %v (want only the hung one named)", err)
	}
	if took > DefaultStopBudget+3*time.Second {
		t.Fatalf("shutdown took %s: the hung component's budget is %s and the others stop at once", took, DefaultStopBudget)
	}
	// Everything else stopped in order despite the hung component: the
	// stream ended, nothing serves, the broker is closed.
	if _, err := io.Copy(io.Discard, resp.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("stream ended with %v", err)
	}
	if stuck.closed.Load() {
		t.Fatal("the hung component was closed while its Run was running")
	}
	again := time.Now()
	if err2 := a.Shutdown(context.Background()); err2 == nil || err2.Error() != err.Error() || time.Since(again) > 100*time.Millisecond {
		t.Fatalf("second shutdown: %v after %s, want the first result at once", err2, time.Since(again))
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
	if c, err := net.DialTimeout("tcp", brokerAddr, time.Second); err == nil {
		c.Close()
		t.Fatalf("the embedded broker (started before the hung component) still listens on %s", brokerAddr)
	}
	stuck.release()
}

// A component whose Close blocks (a recorder draining its queue, say)
// holds the shutdown for CloseBudget at most, and the components closed
// after it are not reported stuck.
func TestShutdownBoundsABlockingClose(t *testing.T) {
	cfg, err := config.Load(config.Sources{Overrides: map[string]string{"http.listen": "127.0.0.1:0", "embedded.listen": "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(t, cfg)
	slow := &fakeComponent{name: "slow-close", blockClose: true}
	mid := len(a.components) / 2
	a.components = append(a.components[:mid:mid], append([]Component{slow}, a.components[mid:]...)...)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	brokerAddr := a.BrokerAddr()
	start := time.Now()
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v (a slow Close is logged, nothing is stuck)", err)
	}
	if took := time.Since(start); took > CloseBudget+3*time.Second {
		t.Fatalf("shutdown took %s with a Close that blocks; its budget is %s", took, CloseBudget)
	}
	if c, err := net.DialTimeout("tcp", brokerAddr, time.Second); err == nil {
		c.Close()
		t.Fatalf("the embedded broker still listens on %s", brokerAddr)
	}
	slow.release()
}

func TestComponentFailureStopsTheProcess(t *testing.T) {
	cfg, err := config.Load(config.Sources{Overrides: map[string]string{"http.listen": "127.0.0.1:0", "embedded.listen": "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(t, cfg)
	boom := &fakeComponent{name: "boom", runErr: errors.New("cannot go on")}
	a.components = append(a.components, boom)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(context.Background(), nil, nil) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "boom: cannot go on") {
			t.Fatalf("Serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a failed component did not stop the app")
	}
	if !boom.closed.Load() {
		t.Fatal("components were not closed")
	}
}

// fakeComponent is a component for lifecycle tests.
type fakeComponent struct {
	name         string
	runErr       error // returned by Run at once
	ignoreCancel bool  // Run waits for release, not for ctx
	once         sync.Once
	unblock      chan struct{}
	blockClose   bool // Close waits for release
	closed       atomic.Bool
}

func (f *fakeComponent) Name() string { return f.name }
func (f *fakeComponent) Start() error {
	f.once.Do(func() { f.unblock = make(chan struct{}) })
	return nil
}
func (f *fakeComponent) Ready() error { return nil }
func (f *fakeComponent) Close() error {
	if f.blockClose {
		<-f.unblock
	}
	f.closed.Store(true)
	return nil
}
func (f *fakeComponent) release() { close(f.unblock) }
func (f *fakeComponent) Run(ctx context.Context) error {
	if f.runErr != nil {
		return f.runErr
	}
	if f.ignoreCancel {
		<-f.unblock
		return nil
	}
	<-ctx.Done()
	return nil
}

func TestStartFailsCleanlyOnBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg, err := config.Load(config.Sources{Overrides: map[string]string{"http.listen": ln.Addr().String(), "embedded.listen": "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(t, cfg)
	err = a.Start()
	if err == nil || !strings.Contains(err.Error(), "http listen on "+ln.Addr().String()) {
		t.Fatalf("got %v", err)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestBrowserURL(t *testing.T) {
	for addr, want := range map[string]string{
		":8080":          "http://localhost:8080/",
		"0.0.0.0:80":     "http://localhost:80/",
		"[::]:8080":      "http://localhost:8080/",
		"127.0.0.1:9000": "http://127.0.0.1:9000/",
		"[::1]:9000":     "http://[::1]:9000/",
	} {
		if got := BrowserURL(addr); got != want {
			t.Errorf("%s: got %s, want %s", addr, got, want)
		}
	}
}

func TestWarnsWhenOpenWithoutAuth(t *testing.T) {
	for _, tc := range []struct {
		listen string
		auth   bool
		warn   bool
	}{
		{"0.0.0.0:0", false, true},
		{"127.0.0.1:0", false, false},
		{"0.0.0.0:0", true, false},
	} {
		over := map[string]string{"http.listen": tc.listen, "embedded.listen": "127.0.0.1:0"}
		cfg, err := config.Load(config.Sources{Overrides: over})
		if err != nil {
			t.Fatal(err)
		}
		const token = "0123456789abcdef0"
		if tc.auth {
			cfg.Auth.Tokens = []config.TokenConfig{{Name: "t", Token: token}}
		}
		a := newApp(t, cfg)
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(a.HTTPAddr())
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+port+"/api/status", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var st struct{ Warnings []string }
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		_ = a.Shutdown(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := len(st.Warnings) == 1 && strings.Contains(st.Warnings[0], "open to the network without authentication")
		if got != tc.warn {
			t.Errorf("listen %s auth %v: warnings %q, want a warning: %v", tc.listen, tc.auth, st.Warnings, tc.warn)
		}
	}
}

func TestReadyFileNamesTheAddresses(t *testing.T) {
	cfg, err := config.Load(config.Sources{Overrides: map[string]string{"http.listen": "127.0.0.1:0", "embedded.listen": "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ready.json")
	a := newApp(t, cfg, WithReadyFile(path))
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		PID          int
		Role         string
		HTTP, Broker string
	}
	if err := json.Unmarshal(body, &rf); err != nil {
		t.Fatal(err)
	}
	if rf.PID != os.Getpid() || rf.Role != "all" || rf.HTTP != a.HTTPAddr() || rf.Broker != a.BrokerAddr() || rf.Broker == "" {
		t.Fatalf("ready file %s; app http %s broker %s", body, a.HTTPAddr(), a.BrokerAddr())
	}
	if code, _ := status(t, "http://"+rf.HTTP+"/healthz"); code != 200 {
		t.Fatalf("healthz at the ready file's address: %d", code)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("ready file left after shutdown: %v", err)
	}
}

func TestChangedSections(t *testing.T) {
	a, b := config.Default(), config.Default()
	b.Hub.RingSize++
	b.Auth.Tokens = []config.TokenConfig{{Name: "x"}}
	b.Cameras = []config.CameraConfig{{ID: "new"}}
	if got := changedSections(&a, &b); !slices.Equal(got, []string{"hub", "auth"}) {
		t.Fatalf("changed %v, want [hub auth]", got)
	}
}
