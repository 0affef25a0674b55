package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/broker"
	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/testutil"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

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
	brokerAddr := freePort(t)
	cfg, err := config.Load(config.Sources{Overrides: map[string]string{
		"role": "consumer", "embedded.enabled": "false", "kafka.brokers": brokerAddr,
		"http.listen": "127.0.0.1:0", "kafka.dial_timeout": "300ms",
	}})
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, slog.New(slog.DiscardHandler), "test")
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

func TestShutdownIsIdempotentAndBounded(t *testing.T) {
	cfg, err := config.Load(config.Sources{Overrides: map[string]string{"http.listen": "127.0.0.1:0", "embedded.listen": "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cameras = []config.CameraConfig{{ID: "p", Source: config.SourceTestPattern, Width: 160, Height: 120, FPS: 30, Quality: 80}}
	a := New(cfg, slog.New(slog.DiscardHandler), "test")
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + a.HTTPAddr()
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
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if st := a.CameraStats(); len(st) != 1 || st[0].Published == 0 {
		t.Fatalf("camera stats %+v", st)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
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
	a := New(cfg, slog.New(slog.DiscardHandler), "test")
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
		if tc.auth {
			cfg.Auth.Tokens = []config.TokenConfig{{Name: "t", Token: "0123456789abcdef0"}}
		}
		logs := &testutil.Buffer{}
		a := New(cfg, slog.New(slog.NewTextHandler(logs, nil)), "test")
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		_ = a.Shutdown(context.Background())
		if got := strings.Contains(logs.String(), "HTTP IS OPEN TO THE NETWORK WITHOUT AUTHENTICATION"); got != tc.warn {
			t.Errorf("listen %s auth %v: warned %v, want %v", tc.listen, tc.auth, got, tc.warn)
		}
	}
}
