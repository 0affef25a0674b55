//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/broker"
	"github.com/streamd/streamd/pkg/capture/capturetest"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/testutil"
)

// fileCameraYAML is a camera that streams vtest.avi once, from url, paced
// at 80 fps so the test takes seconds rather than the file's 80.
func fileCameraYAML(url string) string {
	return fmt.Sprintf("cameras:\n  - id: vtest\n    source: %s\n    loop: false\n    fps: 80\n    quality: 75\n", url)
}

// everyFrameHub keeps a viewer that the test machine starves for a moment
// from being treated as slow: these tests check that every frame arrives,
// not the slow-viewer policy (pkg/hub tests that).
const everyFrameHub = "hub:\n  max_delay: 5s\n  ring_size: 512\n"

// checkEveryFrame asserts that parts are exactly the frames 0..n-1 of the
// video, in order, each a valid JPEG with a capture timestamp.
func checkEveryFrame(t *testing.T, name string, parts []received, n int, decode bool) {
	t.Helper()
	for i, r := range parts {
		p := r.part
		if p.Seq != uint64(i) {
			t.Fatalf("%s: part %d has X-Sequence %d: frames must arrive in order, none lost", name, i, p.Seq)
		}
		if p.ContentType != "image/jpeg" || p.Timestamp.IsZero() || p.Timestamp.After(r.at) {
			t.Fatalf("%s: part %d: content type %q, timestamp %v (received %v)", name, i, p.ContentType, p.Timestamp, r.at)
		}
		if decode {
			img, err := jpeg.Decode(bytes.NewReader(p.Data))
			if err != nil {
				t.Fatalf("%s: part %d is not a valid JPEG: %v", name, i, err)
			}
			if b := img.Bounds(); b.Dx() != 768 || b.Dy() != 576 {
				t.Fatalf("%s: part %d is %v", name, i, b)
			}
		} else if w, h := frame.Dimensions(p.Data); w != 768 || h != 576 || !bytes.HasSuffix(p.Data, []byte{0xff, 0xd9}) {
			t.Fatalf("%s: part %d is not a whole 768x576 JPEG", name, i)
		}
	}
	if len(parts) != n {
		t.Fatalf("%s: %d parts, want %d", name, len(parts), n)
	}
}

// expectNoMore fails if the viewer receives another part within d: the
// file has ended, so more would be duplicates.
func (v *viewer) expectNoMore(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case r := <-v.parts:
		t.Fatalf("unexpected extra part with X-Sequence %d", r.part.Seq)
	case <-time.After(d):
	}
}

func TestAllInOneStreamsEveryFrameToEveryViewer(t *testing.T) {
	t.Parallel() // every frame, in order, with no timing bound: it waits beside the other waiting tests
	n := capturetest.CountFrames(t, vtestPath)
	src := serveGated(t, vtestPath)
	p := startStreamd(t, "all", `
role: all
embedded:
  listen: 127.0.0.1:0
  data_dir: `+filepath.Join(t.TempDir(), "kafka")+`
http:
  listen: 127.0.0.1:0
`+everyFrameHub+fileCameraYAML(src.url()))
	p.waitReady(t)
	v1 := watch(t, p.url("/stream/vtest"))
	v2 := watch(t, p.url("/stream/vtest"))
	src.open()
	// Both viewers read at once, each in its own goroutine; errors come
	// back here (a test may only fail itself from its own goroutine).
	var wg sync.WaitGroup
	var parts1, parts2 []received
	var err1, err2 error
	wg.Add(2)
	go func() { defer wg.Done(); parts1, err1 = v1.takeErr(n, 60*time.Second) }()
	go func() { defer wg.Done(); parts2, err2 = v2.takeErr(n, 60*time.Second) }()
	wg.Wait()
	if err1 != nil || err2 != nil {
		t.Fatalf("viewer 1: %v; viewer 2: %v", err1, err2)
	}
	checkEveryFrame(t, "viewer 1", parts1, n, true)
	checkEveryFrame(t, "viewer 2", parts2, n, false)
	for i := range parts1 {
		if !bytes.Equal(parts1[i].part.Data, parts2[i].part.Data) {
			t.Fatalf("viewers got different bytes for frame %d", i)
		}
	}
	v1.expectNoMore(t, 500*time.Millisecond)

	// The API reports the camera, its viewers and its frames.
	var cams []struct {
		ID      string `json:"id"`
		Viewers int    `json:"viewers"`
		Frames  int    `json:"frames"`
		Width   int    `json:"width"`
	}
	p.getJSON(t, "/api/cameras", &cams)
	if len(cams) != 1 || cams[0].ID != "vtest" || cams[0].Viewers != 2 || cams[0].Frames != n || cams[0].Width != 768 {
		t.Fatalf("/api/cameras: %+v", cams)
	}
	// Snapshot: the latest frame.
	resp, err := http.Get(p.url("/snapshot/vtest"))
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || !bytes.Equal(snap, parts1[n-1].part.Data) || resp.Header.Get("X-Sequence") != fmt.Sprint(n-1) {
		t.Fatalf("snapshot: %s %q seq %s", resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("X-Sequence"))
	}
	// Metrics: the counters agree with what the viewers saw.
	m := p.metrics(t)
	for _, want := range []struct {
		series string
		value  int
	}{
		{`streamd_camera_frames_consumed_total{camera="vtest"}`, n},
		{`streamd_camera_frames_produced_total{camera="vtest"}`, n},
		{`streamd_camera_frames_captured_total{camera="vtest"}`, n},
		{`streamd_frame_latency_seconds_count{camera="vtest"}`, 2 * n},
		{`streamd_camera_viewers{camera="vtest"}`, 2},
		{`streamd_camera_frames_dropped_total{camera="vtest",reason="slow_viewer"}`, 0},
		{`streamd_kafka_produced_total`, n},
		{`streamd_kafka_consume_invalid_total`, 0},
	} {
		if v, ok := m.get(want.series); !ok || v != float64(want.value) {
			t.Errorf("/metrics: %s = %v (present %v), want %d", want.series, v, ok, want.value)
		}
	}
	if !m.hasPrefix(`streamd_build_info{goversion="`) {
		t.Errorf("/metrics lacks streamd_build_info with its goversion label")
	}
	for _, series := range []string{"process_resident_memory_bytes", "go_goroutines"} {
		if _, ok := m.get(series); !ok {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	// Unknown cameras and bad ids answer with JSON errors.
	var e struct{ Error string }
	if code := p.getJSON(t, "/stream/nope", &e); code != 404 || e.Error != `unknown camera "nope"` {
		t.Fatalf("unknown camera: %d %q", code, e.Error)
	}
	if code := p.getJSON(t, "/snapshot/..x", &e); code != 400 || !strings.Contains(e.Error, "invalid camera id") {
		t.Fatalf("bad id: %d %q", code, e.Error)
	}
	if code := p.getJSON(t, "/healthz", &e); code != 200 {
		t.Fatalf("healthz %d", code)
	}
}

func TestProducerAndConsumerProcesses(t *testing.T) {
	t.Parallel() // every frame, in order, with no timing bound: it waits beside the other waiting tests
	n := capturetest.CountFrames(t, vtestPath)
	b, err := broker.Start(broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	common := fmt.Sprintf("embedded:\n  enabled: false\nkafka:\n  brokers: [%s]\n  topic: cams\nhttp:\n  listen: 127.0.0.1:0\n", b.Addr())

	consumer := startStreamd(t, "consumer", "role: consumer\n"+common+everyFrameHub+"cameras:\n  - id: vtest\n")
	consumer.waitReady(t)
	v := watch(t, consumer.url("/stream/vtest"))

	src := serveGated(t, vtestPath)
	producer := startStreamd(t, "producer", "role: producer\n"+common+fileCameraYAML(src.url()))
	producer.waitReady(t)
	// The producer serves only health endpoints and its status.
	var e struct{ Error string }
	if code := producer.getJSON(t, "/api/cameras", &e); code != 404 {
		t.Fatalf("producer /api/cameras: %d", code)
	}
	if st := producer.status(t); st.Role != "producer" || !slices.Equal(st.cameraIDs(), []string{"vtest"}) {
		t.Fatalf("producer /api/status: %s", st)
	}
	if st := consumer.status(t); st.Role != "consumer" || len(st.Cameras) != 0 {
		t.Fatalf("consumer /api/status (it captures nothing): %s", st)
	}
	if producer.ready.Role != "producer" || producer.broker != "" || consumer.ready.Role != "consumer" || consumer.broker != "" {
		t.Fatalf("ready files: producer %+v, consumer %+v", producer.ready, consumer.ready)
	}
	src.open()
	parts := v.take(t, n, 60*time.Second)
	checkEveryFrame(t, "viewer", parts, n, true)
	v.expectNoMore(t, 500*time.Millisecond)

	t.Run("kcat sees key and headers", func(t *testing.T) {
		kcat := requireTool(t, "kcat")
		out, err := exec.Command(kcat, "-C", "-b", b.Addr(), "-t", "cams", "-o", "beginning", "-c", "3", "-e", "-q",
			"-f", "key=%k headers=%h size=%S\n").CombinedOutput()
		if err != nil {
			t.Fatalf("kcat: %v\n%s", err, out)
		}
		lines := scanLines(string(out))
		if len(lines) != 3 {
			t.Fatalf("kcat printed:\n%s", indent(string(out)))
		}
		for i, l := range lines {
			for _, want := range []string{"key=vtest ", "content-type=image/jpeg", fmt.Sprintf("seq=%d,", i), "captured-at=", "width=768", "height=576"} {
				if !strings.Contains(l, want) {
					t.Fatalf("kcat line %d lacks %q: %s", i, want, l)
				}
			}
			if !strings.Contains(l, fmt.Sprintf("size=%d", len(parts[i].part.Data))) {
				t.Fatalf("kcat line %d: value size differs from the streamed frame (%d bytes): %s", i, len(parts[i].part.Data), l)
			}
		}
	})
}

func TestPythonProducerPNGsAreStreamed(t *testing.T) {
	python := "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import kafka").CombinedOutput(); err != nil {
		t.Fatalf("Debian python3-kafka missing (make deps installs it): %v\n%s", err, out)
	}
	p := startStreamd(t, "all", "embedded:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\n")
	p.waitReady(t) // the topic exists once ready: kafka-python cannot create it
	// The embedded broker's address, from the ready file.
	brokerAddr := p.broker
	if brokerAddr == "" || p.ready.Role != "all" {
		t.Fatalf("all-in-one ready file names no embedded broker: %+v", p.ready)
	}
	dir := t.TempDir()
	var pngs [][]byte
	var paths []string
	for i := range 6 {
		img := image.NewRGBA(image.Rect(0, 0, 64+i, 48))
		for x := range 64 + i {
			img.Pix[4*x] = byte(40 * i)
			img.Pix[4*x+3] = 255
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fmt.Sprintf("f%d.png", i))
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		pngs, paths = append(pngs, buf.Bytes()), append(paths, path)
	}
	script := `
import sys
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=sys.argv[1], api_version=(2, 8, 0), max_request_size=4 << 20)
for path in sys.argv[3:]:
    with open(path, "rb") as f:
        p.send("streamd.frames", key=sys.argv[2].encode(), value=f.read())
p.flush()
p.close()
`
	send := func(paths ...string) {
		t.Helper()
		out, err := exec.Command(python, append([]string{"-c", script, brokerAddr, "py"}, paths...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("python producer: %v\n%s", err, out)
		}
	}
	// The first frame makes the camera known; then a viewer joins and gets
	// it at once, followed by the rest.
	send(paths[0])
	deadline := time.Now().Add(15 * time.Second)
	for {
		var cams []struct{ ID string }
		p.getJSON(t, "/api/cameras", &cams)
		if len(cams) == 1 && cams[0].ID == "py" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera py never appeared: %+v", cams)
		}
		time.Sleep(50 * time.Millisecond)
	}
	v := watch(t, p.url("/stream/py"))
	first := v.take(t, 1, 10*time.Second)
	send(paths[1:]...)
	rest := v.take(t, 5, 20*time.Second)
	for i, r := range append(first, rest...) {
		if r.part.ContentType != "image/png" || !bytes.Equal(r.part.Data, pngs[i]) {
			t.Fatalf("part %d: %q, %d bytes; want PNG %d bytes", i, r.part.ContentType, len(r.part.Data), len(pngs[i]))
		}
		if r.part.Timestamp.IsZero() {
			t.Fatalf("part %d has no timestamp (the record timestamp should be used)", i)
		}
	}
}

func TestBenchCommand(t *testing.T) {
	cmd := exec.Command(binary, "bench", "--viewers", "5", "--slow", "2", "--duration", "2s", "--warmup", "1s",
		"--width", "320", "--height", "240", "--json")
	var stderr testutil.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("streamd bench: %v\n%s", err, stderr.String())
	}
	var rep struct {
		Connected          int     `json:"connected"`
		FPSMin             float64 `json:"fps_min"`
		DeliveredPct       float64 `json:"delivered_pct"`
		LatencyP50MS       float64 `json:"latency_p50_ms"`
		ServerCPUCores     float64 `json:"server_cpu_cores"`
		ServerRSSMaxMB     float64 `json:"server_rss_max_mb"`
		GoroutinesBackSecs float64 `json:"goroutines_back_s"`
		CeilingBytesPerSec float64 `json:"ceiling_bytes_per_s"`
		SlowFPSP50         float64 `json:"slow_fps_p50"`
		ClientCPUCores     float64 `json:"client_cpu_cores"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("bench JSON: %v\n%s", err, out)
	}
	if rep.Connected != 5 || rep.FPSMin < 5 || rep.DeliveredPct < 50 || rep.LatencyP50MS <= 0 || rep.ServerCPUCores <= 0 ||
		rep.ServerRSSMaxMB < 10 || rep.GoroutinesBackSecs < 0 || rep.CeilingBytesPerSec <= 0 || rep.SlowFPSP50 <= 0 || rep.ClientCPUCores <= 0 {
		t.Fatalf("implausible bench report: %+v\n%s", rep, out)
	}
	// A camera that does not exist is a clear error.
	ownURL := startStreamd(t, "target", "embedded:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\n").url("")
	cmd = exec.Command(binary, "bench", "--url", ownURL, "--camera", "nope", "--duration", "1s")
	msg, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(msg), `answered 404 Not Found: {"error":"unknown camera \"nope\""}`) {
		t.Fatalf("bench of a missing camera: exit %d\n%s", cmd.ProcessState.ExitCode(), msg)
	}
}

// TestBenchCostCommand runs `streamd bench --cost` small: each step is its
// own all-in-one process with the analyzer (with and without object
// detection) and the recorder on or off, and the report says so (a
// recorder lag only where a recorder runs).
func TestBenchCostCommand(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary, "bench", "--cost", "--cameras", "2", "--width", "320", "--height", "240", "--fps", "10",
		"--warmup", "4s", "--duration", "3s", "--set", "recording.chunk=1s", "--json")
	var stderr testutil.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("streamd bench --cost: %v\n%s", err, stderr.String())
	}
	var rep struct {
		Cameras int      `json:"cameras"`
		Sets    []string `json:"sets"`
		Steps   []struct {
			Name         string  `json:"name"`
			Cores        float64 `json:"cores"`
			RSSMB        float64 `json:"rss_mb"`
			RecorderLagS float64 `json:"recorder_lag_s"`
			LagMedian    float64 `json:"recorder_lag_median_s"`
			LagMax       float64 `json:"recorder_lag_max_s"`
			LostFrames   float64 `json:"lost_frames"`
		} `json:"steps"`
		Components []struct {
			Name      string  `json:"name"`
			PerCamera float64 `json:"cores_per_camera"`
		} `json:"components"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("bench JSON: %v\n%s", err, out)
	}
	if len(rep.Sets) != 1 || rep.Sets[0] != "recording.chunk=1s" {
		t.Errorf("report's settings %q, want the one given", rep.Sets)
	}
	if rep.Cameras != 2 || len(rep.Steps) != 5 || len(rep.Components) != 6 {
		t.Fatalf("report of %d cameras, %d steps, %d components; want 2, 5, 6:\n%s", rep.Cameras, len(rep.Steps), len(rep.Components), out)
	}
	for i, s := range rep.Steps {
		recorder := i >= 3
		if s.Cores <= 0 || s.RSSMB < 10 || s.LostFrames != 0 || (s.RecorderLagS >= 0) != recorder || s.RecorderLagS > 10 ||
			(s.LagMax >= 0) != recorder || s.LagMedian > s.LagMax {
			t.Errorf("step %d %q: implausible (recorder expected: %t): %+v", i, s.Name, recorder, s)
		}
	}
	if rep.Steps[4].Cores <= rep.Steps[0].Cores {
		t.Errorf("the whole pipeline (%.3f cores) costs no more than capture and relay alone (%.3f)", rep.Steps[4].Cores, rep.Steps[0].Cores)
	}
}

func TestBadConfigExitsWithCode2(t *testing.T) {
	// run runs streamd with args and a ready file, and requires exit code 2,
	// an error quoting want, and that it never got as far as serving.
	run := func(want string, args ...string) {
		t.Helper()
		ready := filepath.Join(t.TempDir(), "ready.json")
		cmd := exec.Command(binary, append(args, "--ready-file", ready)...)
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
			t.Fatalf("exit code %v for %q: %v\n%s", cmd.ProcessState, want, err, out)
		}
		if !strings.Contains(string(out), want) {
			t.Fatalf("output does not say %q:\n%s", want, out)
		}
		if _, err := os.Stat(ready); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a bad configuration (%q) started serving: ready file: %v", want, err)
		}
	}
	for _, tc := range []struct {
		yaml, want string
	}{
		{"kafka:\n  brokerz: [x:1]\n", `unknown key "kafka.brokerz"`},
		{"cameras:\n  - id: a\n    source: testpattern\n  - id: a\n    source: testpattern\n", `"cameras[1].id": duplicate camera id "a" (also cameras[0])`},
		{"cameras:\n  - id: a\n    source: /nonexistent/video.mp4\n", `"cameras[0].source": cannot read video file: open /nonexistent/video.mp4: no such file or directory`},
		{"role: consumer\nembedded:\n  enabled: false\n", `"kafka.brokers": role "consumer" needs at least one broker`},
	} {
		path := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		run(tc.want, "--config", path)
	}
	out, err := exec.Command(binary, "--config", inRepo("config/streamd.yaml"), "--check").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "configuration OK") {
		t.Fatalf("shipped config --check: %v\n%s", err, out)
	}
	// The roles are listed; which ones is the config's business.
	cmd := exec.Command(binary, "--role", "viewer", "--ready-file", filepath.Join(t.TempDir(), "ready.json"))
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("--role viewer: exit code %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
	for _, want := range []string{`"role": must be `, "producer", "consumer", "all", `got "viewer"`} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("--role viewer: the error does not say %q:\n%s", want, out)
		}
	}
}

// TestMissingCameraIsReportedAndRetried: a camera whose source is not there
// is reported in /api/status under its id with a reason naming the source,
// and is retried: a source that appears later is picked up by itself.
func TestMissingCameraIsReportedAndRetried(t *testing.T) {
	b, err := broker.Start(broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	lateAddr := testutil.FreeAddr(t)
	p := startStreamd(t, "producer", fmt.Sprintf(`role: producer
embedded:
  enabled: false
kafka:
  brokers: [%s]
http:
  listen: 127.0.0.1:0
cameras:
  - id: door
    source: /dev/video97
  - id: late
    source: http://%s/vtest.avi
    loop: true
    fps: 25
`, b.Addr(), lateAddr))
	retrying := func(id string) func(status) bool {
		return func(s status) bool {
			c, ok := s.camera(id)
			return ok && strings.HasPrefix(c.State, "retrying: ")
		}
	}
	st := p.waitStatus(t, "camera door retrying", 20*time.Second, retrying("door"))
	if !slices.Equal(st.cameraIDs(), []string{"door", "late"}) {
		t.Fatalf("cameras in /api/status: %v, want door and late in config order", st.cameraIDs())
	}
	door, _ := st.camera("door")
	if !strings.Contains(door.State, "open camera device /dev/video97: not available") {
		t.Fatalf("camera door: state %q does not say which device is missing", door.State)
	}
	p.waitStatus(t, "camera late retrying", 20*time.Second, retrying("late"))
	// Let a few attempts fail (back-off 0.5 s, 1 s, 2 s), then the source
	// appears: the next attempt must pick it up.
	time.Sleep(3 * time.Second)
	st = p.status(t)
	if late, _ := st.camera("late"); !strings.HasPrefix(late.State, "retrying: ") || !strings.Contains(late.State, lateAddr) {
		t.Fatalf("camera late before its source exists: %+v", late)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, vtestPath) })}
	ln, err := net.Listen("tcp", lateAddr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	appeared := time.Now()
	st = p.waitStatus(t, "camera late streaming once its source appeared", 45*time.Second, func(s status) bool {
		c, ok := s.camera("late")
		return ok && c.State == "streaming" && c.Published >= 25
	})
	t.Logf("late source picked up %v after it appeared", time.Since(appeared).Round(100*time.Millisecond))
	// The frames are real: in Kafka under the camera's key, 768x576.
	var found bool
	for _, r := range readTopic(t, "streamd.frames", false, b.Addr()) {
		if r.Key == "late" && r.Headers["signal"] == "" && r.Headers["width"] == "768" && r.Headers["height"] == "576" {
			found = true
			break
		}
	}
	if !found {
		t.Fatal("camera late is streaming but none of its video frames is in Kafka")
	}
	// The device is still missing, still reported, and still retried
	// (a camera never gives up).
	if door, _ := st.camera("door"); !strings.HasPrefix(door.State, "retrying: ") || !strings.Contains(door.State, "/dev/video97") {
		t.Fatalf("camera door: state %q", door.State)
	}
}
