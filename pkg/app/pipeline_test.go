package app

import (
	"bytes"
	"encoding/json"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/mjpeg"
)

// startAllInOne runs an all-in-one app (embedded broker, the test pattern,
// the analyzer) on free ports and returns its base URL.
func startAllInOne(t *testing.T, analyze bool) string {
	t.Helper()
	cfg, err := config.Load(config.Sources{Overrides: map[string]string{
		"http.listen": "127.0.0.1:0", "embedded.listen": "127.0.0.1:0",
		"analyzer.enabled": strconv.FormatBool(analyze), "analyzer.gap": "1s", "analyzer.fps": "15",
		"analyzer.faces.enabled": "false",
	}})
	if err != nil {
		t.Fatal(err)
	}
	// The pattern's bars and clock are masked: the moving square is the
	// only motion.
	cfg.Cameras = []config.CameraConfig{{ID: "p", Source: config.SourceTestPattern, Width: 320, Height: 180, FPS: 30, Quality: 70,
		Substream: config.SubstreamConfig{Width: 160, FPS: 10},
		Motion: config.CameraMotionConfig{Masks: [][][]float64{
			{{0, 0}, {1, 0}, {1, 0.67}, {0, 0.67}},
			{{0, 0.83}, {1, 0.83}, {1, 1}, {0, 1}},
		}}}}
	a := newApp(t, cfg)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(t.Context()) })
	return "http://" + a.HTTPAddr()
}

func waitStatus(t *testing.T, url string, want int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := status(t, url)
		if code == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d %s, want %d", url, code, body, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The analyzer turns the pattern's moving square into a motion event that
// a viewer node lists, with a snapshot from the snapshots topic.
func TestAnalyzerEventsReachTheAPI(t *testing.T) {
	base := startAllInOne(t, true)
	deadline := time.Now().Add(30 * time.Second)
	var evs []struct {
		ID, Camera, Type string
		Snapshot         bool
		Boxes            []struct{ X, Y, W, H float64 }
	}
	for len(evs) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no event from the moving square within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
		_, body := status(t, base+"/api/events?camera=p&type=motion")
		if err := json.Unmarshal([]byte(body), &evs); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
	}
	e := evs[0]
	if e.Camera != "p" || !e.Snapshot || len(e.Boxes) == 0 {
		t.Fatalf("event %+v", e)
	}
	for _, b := range e.Boxes {
		// Only the band between the masks moves.
		if b.Y < 0.6 || b.Y+b.H > 0.9 {
			t.Errorf("box %+v outside the unmasked band 0.67..0.83", b)
		}
	}
	resp, err := http.Get(base + "/api/events/" + e.ID + "/snapshot.jpg")
	if err != nil {
		t.Fatal(err)
	}
	img, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(img) < 100 || img[0] != 0xff || img[1] != 0xd8 {
		t.Fatalf("snapshot: %d, %d bytes", resp.StatusCode, len(img))
	}
}

// A replay from 2 s ago starts at a frame captured then, and the range
// covers it.
func TestReplayFromKafka(t *testing.T) {
	base := startAllInOne(t, false)
	waitStatus(t, base+"/snapshot/p", 200)
	time.Sleep(3 * time.Second)
	asked := time.Now().Add(-2 * time.Second)
	resp, err := http.Get(base + "/stream/p?at=-2s")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Replay-From") == "" {
		t.Fatalf("replay: %d %v", resp.StatusCode, resp.Header)
	}
	r := mjpeg.NewReader(resp.Body, "streamdframe")
	var first, last mjpeg.Part
	for i := range 10 {
		p, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = p
		}
		if i > 0 && p.Seq != last.Seq+1 {
			t.Fatalf("seq %d after %d", p.Seq, last.Seq)
		}
		last = p
	}
	if d := first.Timestamp.Sub(asked); d < -50*time.Millisecond || d > 200*time.Millisecond {
		t.Fatalf("first frame captured %s after the time asked", d)
	}
	body := waitStatus(t, base+"/api/cameras/p/range", 200)
	var rg struct{ Oldest, Newest time.Time }
	if err := json.Unmarshal([]byte(body), &rg); err != nil {
		t.Fatal(err)
	}
	if !rg.Oldest.Before(asked) || rg.Newest.Before(first.Timestamp) {
		t.Fatalf("range %+v does not cover %s", rg, first.Timestamp)
	}
	for path, want := range map[string]string{
		"/stream/p?at=tomorrow":    `parameter \"at\"`,
		"/stream/p?at=-1s&speed=9": `parameter \"speed\"`,
		"/stream/p?at=" + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10): "in the future",
	} {
		code, body := status(t, base+path)
		if code != 400 || !strings.Contains(body, want) {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
}

// The substream reaches the multiplexed stream at its own size and rate;
// the camera list and replays show the main stream only.
func TestSubstream(t *testing.T) {
	base := startAllInOne(t, false)
	waitStatus(t, base+"/snapshot/p", 200)
	resp, err := http.Get(base + "/api/live?cameras=p&rendition=sub")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := mjpeg.NewReader(resp.Body, mjpeg.Boundary)
	var first, last mjpeg.Part
	for i := range 11 {
		p, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(p.Data))
		if err != nil || cfg.Width != 160 || cfg.Height != 90 || p.Camera != "p" {
			t.Fatalf("substream part %d: %dx%d camera %q %v", i, cfg.Width, cfg.Height, p.Camera, err)
		}
		if i == 0 {
			first = p
		}
		last = p
	}
	if fps := 10 / last.Timestamp.Sub(first.Timestamp).Seconds(); fps > 12 {
		t.Fatalf("substream at %.1f fps, cap 10", fps)
	}
	_, body := status(t, base+"/api/cameras")
	if strings.Contains(body, "~") {
		t.Fatalf("the camera list shows a substream: %s", body)
	}
	_, snap := status(t, base+"/snapshot/p?at=-1s")
	if cfg, err := jpeg.DecodeConfig(strings.NewReader(snap)); err != nil || cfg.Width != 320 {
		t.Fatalf("replayed snapshot is %dx%d, want the main stream's 320 wide", cfg.Width, cfg.Height)
	}
}

// Object detection end to end: vtest.avi's people walking, through the
// embedded broker, the analyzer with the real model and the events topic,
// to a viewer node's /api/events as person events with snapshots.
func TestObjectEventsReachTheAPI(t *testing.T) {
	model := config.DefaultObjectModel
	if _, err := os.Stat(model); err != nil {
		t.Fatalf("the object model is missing (make deps installs it): %v", err)
	}
	cfg, err := config.Load(config.Sources{Overrides: map[string]string{
		"http.listen": "127.0.0.1:0", "embedded.listen": "127.0.0.1:0",
		"analyzer.enabled": "true", "analyzer.faces.enabled": "false",
		"analyzer.objects.enabled": "true", "analyzer.objects.fps": "3",
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cameras = []config.CameraConfig{{ID: "hall", Source: "/usr/share/doc/opencv-doc/examples/data/vtest.avi", Loop: true, FPS: 10}}
	a := newApp(t, cfg)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(t.Context()) })
	base := "http://" + a.HTTPAddr()
	deadline := time.Now().Add(60 * time.Second)
	var evs []events.Event
	for len(evs) == 0 {
		if time.Now().After(deadline) {
			_, body := status(t, base+"/api/events?camera=hall")
			t.Fatalf("no person event within 60 s; events: %s", body)
		}
		time.Sleep(500 * time.Millisecond)
		_, body := status(t, base+"/api/events?camera=hall&type=object&label=person&min_score=0.5")
		if err := json.Unmarshal([]byte(body), &evs); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
	}
	e := evs[0]
	if e.Label != "person" || e.Score == nil || *e.Score < 0.5 || len(e.Boxes) != 1 || !e.Snapshot || e.Validate() != nil {
		t.Fatalf("event %+v", e)
	}
	// A person's box: taller than wide, a small part of the hall.
	if b := e.Boxes[0]; b.H <= b.W || b.W*b.H > 0.1 {
		t.Errorf("box %+v is not a person's", b)
	}
	code, img := status(t, base+"/api/events/"+e.ID+"/snapshot.jpg")
	if code != 200 || len(img) < 100 || img[0] != 0xff || img[1] != 0xd8 {
		t.Fatalf("snapshot: %d, %d bytes", code, len(img))
	}
	code, metrics := status(t, base+"/metrics")
	if code != 200 || !strings.Contains(metrics, `streamd_camera_events_total{camera="hall",type="object"}`) {
		t.Errorf("metrics without object events: %d", code)
	}
}

// Something that moves but is no object the model knows (the pattern's
// white square) makes motion events and no object event, though object
// detection runs on it (on by default).
func TestMovingSquareIsNoObject(t *testing.T) {
	base := startAllInOne(t, true)
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, metrics := status(t, base+"/metrics")
		runs := sample(metrics, `streamd_camera_object_inferences_total{camera="p"}`)
		_, body := status(t, base+"/api/events?camera=p&type=motion")
		if runs >= 20 && strings.Contains(body, `"type":"motion"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s: %g object detections run on the moving square, motion events %s", runs, body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if _, body := status(t, base+"/api/events?camera=p&type=object"); strings.TrimSpace(body) != "[]" {
		t.Fatalf("object events for the moving square: %s", body)
	}
}

// sample returns the value of the metric line that starts with name, or -1.
func sample(metrics, name string) float64 {
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
