package sdnotify

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func listen(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	c, path := listen(t)
	t.Setenv("NOTIFY_SOCKET", path)
	n := FromEnv()
	for _, f := range []func() error{n.Ready, func() error { return n.Status("waiting for kafka") }, n.Stopping} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"READY=1", "STATUS=waiting for kafka", "STOPPING=1"} {
		if got := read(t, c); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestNoSocketIsANoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := FromEnv().Ready(); err != nil {
		t.Fatal(err)
	}
}

func TestWatchdog(t *testing.T) {
	c, path := listen(t)
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	iv := WatchdogInterval()
	if iv != 50*time.Millisecond {
		t.Fatalf("interval %v", iv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go FromEnv().Watchdog(ctx, iv, func() bool { return true })
	for range 3 {
		if got := read(t, c); got != "WATCHDOG=1" {
			t.Fatalf("got %q", got)
		}
	}
	t.Setenv("WATCHDOG_PID", "1")
	if WatchdogInterval() != 0 {
		t.Fatal("watchdog meant for another process")
	}
}

// readWithin returns the next datagram, or ok false if none came within d.
func readWithin(t *testing.T, c *net.UnixConn, d time.Duration) (msg string, ok bool) {
	t.Helper()
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(buf)
	if err != nil {
		if ne, isNet := err.(net.Error); isNet && ne.Timeout() {
			return "", false
		}
		t.Fatal(err)
	}
	return string(buf[:n]), true
}

// A process whose alive check fails stops feeding the watchdog (so systemd
// restarts it), and feeds it again once the check passes.
func TestWatchdogStopsWhileNotAlive(t *testing.T) {
	c, path := listen(t)
	t.Setenv("NOTIFY_SOCKET", path)
	const iv = 20 * time.Millisecond
	var alive atomic.Bool
	alive.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); FromEnv().Watchdog(ctx, iv, alive.Load) }()
	defer func() { cancel(); <-done }()

	if got := read(t, c); got != "WATCHDOG=1" {
		t.Fatalf("got %q", got)
	}
	alive.Store(false)
	// One ping may already be on its way (bounded, so that a watchdog
	// that ignores the check fails below instead of looping here); after
	// that, silence.
	for range 2 {
		if _, ok := readWithin(t, c, 3*iv); !ok {
			break
		}
	}
	if msg, ok := readWithin(t, c, 10*iv); ok {
		t.Fatalf("sent %q while not alive", msg)
	}
	alive.Store(true)
	if got := read(t, c); got != "WATCHDOG=1" {
		t.Fatalf("after recovering: got %q", got)
	}
}
