package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/broker"
)

// notifySocket listens where a fake systemd receives notifications.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return path, msgs
}

// expectNotify waits for a message with the given prefix, returning the
// messages seen before it.
func expectNotify(t *testing.T, msgs <-chan string, prefix string) []string {
	t.Helper()
	var before []string
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m := <-msgs:
			if strings.HasPrefix(m, prefix) {
				return before
			}
			before = append(before, m)
		case <-deadline:
			t.Fatalf("no %q notification; got %q", prefix, before)
		}
	}
}

func TestSystemdNotifications(t *testing.T) {
	sock, msgs := notifySocket(t)
	p := startStreamdEnv(t, "notify", "embedded:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\n",
		[]string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000"})
	expectNotify(t, msgs, "READY=1")
	// READY=1 means serving: /healthz answers at once.
	resp, err := http.Get(p.url("/healthz"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz right after READY=1: %v %v", err, resp)
	}
	resp.Body.Close()
	expectNotify(t, msgs, "STATUS=serving")
	expectNotify(t, msgs, "WATCHDOG=1")
	expectNotify(t, msgs, "WATCHDOG=1")

	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	expectNotify(t, msgs, "RELOADING=1")
	expectNotify(t, msgs, "READY=1")

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	expectNotify(t, msgs, "STOPPING=1")
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("exit code %d after SIGTERM", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not stop after SIGTERM")
	}
	for _, want := range []string{`msg="shutting down"`, `msg="producer flushed"`, `msg="embedded broker stopped"`, `msg="streamd stopped"`} {
		if !strings.Contains(p.logs.String(), want) {
			t.Fatalf("shutdown log lacks %s:\n%s", want, p.logs)
		}
	}
	// The broker is closed last.
	logs := p.logs.String()
	if strings.Index(logs, `msg="producer flushed"`) > strings.Index(logs, `msg="embedded broker stopped"`) {
		t.Fatalf("broker stopped before the producer was flushed:\n%s", logs)
	}
}

func TestSighupReloadsCameras(t *testing.T) {
	base := "embedded:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\ncameras:\n"
	cam := func(id string) string {
		return fmt.Sprintf("  - id: %s\n    source: testpattern\n    width: 160\n    height: 120\n    fps: 10\n", id)
	}
	p := startStreamd(t, "reload", base+cam("one"))
	p.waitReady(t)
	waitLive := func(id string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := http.Get(p.url("/snapshot/" + id))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("camera %s never delivered a frame", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitLive("one")
	// Add a camera, remove none; change a key that needs a restart.
	if err := os.WriteFile(p.config, []byte(strings.Replace(base, "http:", "hub:\n  max_delay: 300ms\nhttp:", 1)+cam("one")+cam("two")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLive("two")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.logs.String(), `msg="reload applies cameras only; restart to apply the other changes"`) || !strings.Contains(p.logs.String(), "changed=[hub]") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about keys that need a restart:\n%s", p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A broken file is reported and the running configuration kept.
	if err := os.WriteFile(p.config, []byte("cameras: [oops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(p.logs.String(), `msg="reload failed, keeping the running configuration"`) {
		if time.Now().After(deadline) {
			t.Fatalf("bad reload not reported:\n%s", p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitLive("two")
	// Remove camera one: its capture stops.
	if err := os.WriteFile(p.config, []byte(base+cam("two")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(p.logs.String(), `msg="camera stopped by reload"`) || !strings.Contains(p.logs.String(), "camera=one") {
		if time.Now().After(deadline) {
			t.Fatalf("camera one not stopped:\n%s", p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSystemdUnitVerifies(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze")
	unit, err := os.ReadFile("systemd/streamd@.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "ExecStart=/usr/local/bin/streamd --config /etc/streamd/%i.yaml --role %i", "ExecReload=", "WatchdogSec=",
		"Restart=on-failure", "User=streamd", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectHome=yes", "StateDirectory=", "DeviceAllow=char-video4linux"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	// systemd-analyze checks that ExecStart's binary exists: point it at
	// the one this test built.
	dir := t.TempDir()
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/streamd", binary)
	path := filepath.Join(dir, "streamd@producer.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestSigtermFlushesEveryAcceptedFrame(t *testing.T) {
	b, err := broker.Start(broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	p := startStreamd(t, "producer", fmt.Sprintf("role: producer\nembedded:\n  enabled: false\nkafka:\n  brokers: [%s]\n  partitions: 2\nhttp:\n  listen: 127.0.0.1:0\ncameras:\n  - id: a\n    source: testpattern\n    width: 320\n    height: 240\n    fps: 60\n  - id: b\n    source: testpattern\n    width: 320\n    height: 240\n    fps: 60\n", b.Addr()))
	p.waitReady(t)
	time.Sleep(1500 * time.Millisecond) // frames flowing
	p.stop(t)
	m := regexp.MustCompile(`msg="producer flushed".* sent=(\d+) failed=(\d+)`).FindStringSubmatch(p.logs.String())
	if m == nil {
		t.Fatalf("no flush line:\n%s", p.logs)
	}
	sent, _ := strconv.Atoi(m[1])
	if m[2] != "0" || sent < 60 {
		t.Fatalf("flush: sent %s failed %s", m[1], m[2])
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	c, err := sarama.NewClient([]string{b.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	total := int64(0)
	for part := int32(0); part < 2; part++ {
		n, err := c.GetOffset("streamd.frames", part, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != int64(sent) {
		t.Fatalf("broker holds %d records, the producer reported %d sent at shutdown", total, sent)
	}
}
