//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
	msgs := make(chan string, 1000)
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
	dataDir := filepath.Join(t.TempDir(), "kafka")
	p := startProc(t, procSpec{name: "notify", yaml: "embedded:\n  listen: 127.0.0.1:0\n  data_dir: " + dataDir + "\nhttp:\n  listen: 127.0.0.1:0\n" +
		"cameras:\n  - id: cam\n    source: testpattern\n    width: 320\n    height: 240\n    fps: 30\n",
		env: []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000"}})
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
	p.waitStatus(t, "the reload counted", 10*time.Second, func(s status) bool { return s.Reload.Count == 1 && s.Reload.LastError == "" })

	// Frames flow; then SIGTERM with frames on their way.
	p.waitStatus(t, "frames published", 20*time.Second, func(s status) bool {
		c, ok := s.camera("cam")
		return ok && c.Published >= 30
	})
	cam, _ := p.status(t).camera("cam")
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
	// The embedded broker stopped after the producer flushed, and kept what
	// it had: started again on the same data directory it holds every frame
	// the camera handed over, seq 0, 1, 2, ... none missing.
	b, err := broker.Start(broker.Options{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	n := checkContiguous(t, readTopic(t, "streamd.frames", false, b.Addr()), "cam")
	if n < int64(cam.Published) {
		t.Fatalf("after shutdown the broker holds frames 0..%d of camera cam; %d were handed to the producer before SIGTERM", n-1, cam.Published)
	}
	t.Logf("%d frames published before SIGTERM, %d in the broker after the shutdown", cam.Published, n)
}

func TestSighupReloadsCameras(t *testing.T) {
	base := "embedded:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\ncameras:\n"
	cam := func(id string) string {
		return fmt.Sprintf("  - id: %s\n    source: testpattern\n    width: 160\n    height: 120\n    fps: 10\n", id)
	}
	p := startStreamd(t, "reload", base+cam("one"))
	p.waitReady(t)
	// snapshotSeq returns the X-Sequence of the camera's latest frame, or
	// -1 while it has none (or is unknown).
	snapshotSeq := func(id string) int {
		t.Helper()
		resp, err := http.Get(p.url("/snapshot/" + id))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return -1
		}
		n, err := strconv.Atoi(resp.Header.Get("X-Sequence"))
		if err != nil {
			t.Fatalf("snapshot of %s: X-Sequence %q", id, resp.Header.Get("X-Sequence"))
		}
		return n
	}
	waitLive := func(id string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for snapshotSeq(id) < 0 {
			if time.Now().After(deadline) {
				t.Fatalf("camera %s never delivered a frame", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// capturing requires every camera of ids to capture frames now.
	capturing := func(ids ...string) {
		t.Helper()
		before := p.status(t)
		time.Sleep(time.Second)
		after := p.status(t)
		for _, id := range ids {
			b, _ := before.camera(id)
			a, ok := after.camera(id)
			if !ok || a.State != "streaming" || a.Captured <= b.Captured {
				t.Fatalf("camera %s does not capture: %+v, a second before %+v", id, a, b)
			}
		}
	}
	reload := func(yaml string) {
		t.Helper()
		if err := os.WriteFile(p.config, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	waitLive("one")
	if st := p.status(t); !slices.Equal(st.cameraIDs(), []string{"one"}) || st.Reload.Count != 0 {
		t.Fatalf("before any reload: %s", st)
	}

	// Add a camera, remove none; change a key that needs a restart.
	reload(strings.Replace(base, "http:", "hub:\n  max_delay: 300ms\nhttp:", 1) + cam("one") + cam("two"))
	waitLive("two")
	st := p.waitStatus(t, "first reload applied", 10*time.Second, func(s status) bool { return s.Reload.Count == 1 })
	if !slices.Equal(st.cameraIDs(), []string{"one", "two"}) || st.Reload.LastError != "" {
		t.Fatalf("after adding camera two: %s", st)
	}
	if !slices.Contains(st.Reload.RestartNeeded, "hub") {
		t.Fatalf("a changed hub section is not reported as needing a restart: restart_needed %q", st.Reload.RestartNeeded)
	}
	capturing("one", "two")

	// A broken file is reported and the running configuration kept.
	reload("cameras: [oops\n")
	st = p.waitStatus(t, "bad reload reported", 10*time.Second, func(s status) bool { return s.Reload.LastError != "" })
	if !slices.Equal(st.cameraIDs(), []string{"one", "two"}) || st.Reload.Count != 1 {
		t.Fatalf("after a broken file: %s (the running cameras must stay, and a failed reload is not applied)", st)
	}
	capturing("one", "two")
	waitLive("two")

	// Remove camera one: its capture stops, two goes on.
	reload(base + cam("two"))
	st = p.waitStatus(t, "second reload applied", 10*time.Second, func(s status) bool { return s.Reload.Count == 2 })
	if !slices.Equal(st.cameraIDs(), []string{"two"}) || st.Reload.LastError != "" {
		t.Fatalf("after removing camera one: %s", st)
	}
	time.Sleep(time.Second) // frames already on their way arrive
	last := snapshotSeq("one")
	capturing("two")
	time.Sleep(time.Second)
	if now := snapshotSeq("one"); now != last {
		t.Fatalf("camera one still delivers frames after it was removed: X-Sequence %d, then %d", last, now)
	}
}

func TestSystemdUnitVerifies(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze")
	unit, err := os.ReadFile(inRepo("systemd/streamd@.service"))
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
	b := startPausableBroker(t)
	cam := func(id string) string {
		return fmt.Sprintf("  - id: %s\n    source: testpattern\n    width: 320\n    height: 240\n    fps: 60\n", id)
	}
	p := startStreamd(t, "producer", fmt.Sprintf("role: producer\nembedded:\n  enabled: false\nkafka:\n  brokers: [%s]\n  partitions: 2\nhttp:\n  listen: 127.0.0.1:0\ncameras:\n", b.addr)+cam("a")+cam("b"))
	p.waitReady(t)
	time.Sleep(1500 * time.Millisecond) // frames flowing

	// The broker hangs for a moment: frames the cameras hand over wait in
	// the producer. SIGTERM comes while they wait.
	b.pause()
	time.Sleep(500 * time.Millisecond)
	st := p.status(t)
	m := p.metrics(t)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	b.resume()
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("exit code %d after SIGTERM", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not stop within 20s of SIGTERM")
	}

	// In the scrape just before SIGTERM: accepted, and of those acknowledged.
	var accepted float64
	for _, id := range []string{"a", "b"} {
		v, ok := m.get(fmt.Sprintf(`streamd_camera_frames_produced_total{camera=%q}`, id))
		if !ok {
			t.Fatalf("/metrics lacks frames produced for camera %s", id)
		}
		accepted += v
	}
	acked, ok := m.get("streamd_kafka_produced_total")
	if !ok {
		t.Fatal("/metrics lacks streamd_kafka_produced_total")
	}
	if accepted-acked < 20 {
		t.Fatalf("only %v frames waited at SIGTERM (%v accepted, %v acknowledged): the test checks little", accepted-acked, accepted, acked)
	}

	// After the shutdown the topic holds every camera's frames from seq 0
	// on, none missing, at least up to what had been accepted before SIGTERM.
	recs := readTopic(t, "streamd.frames", false, b.addr)
	total := int64(0)
	for _, id := range []string{"a", "b"} {
		n := checkContiguous(t, recs, id)
		c, ok := st.camera(id)
		if !ok {
			t.Fatalf("/api/status lacks camera %s: %s", id, st)
		}
		if n < int64(c.Published) {
			t.Fatalf("camera %s: the broker holds frames 0..%d, but %d were accepted before SIGTERM", id, n-1, c.Published)
		}
		total += n
	}
	if total < 60 || total != int64(len(recs)) {
		t.Fatalf("%d frames of cameras a and b in %d records", total, len(recs))
	}
	t.Logf("at SIGTERM %v frames accepted, %v of them acknowledged; after the shutdown %d in the broker", accepted, acked, total)
}
