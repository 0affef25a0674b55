package capture

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/streamd/streamd/pkg/capture/capturetest"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/source"
	"github.com/streamd/streamd/pkg/testutil"
	"github.com/streamd/streamd/pkg/video"
)

const vtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// sink collects published frames; it can refuse frames to test drops.
type sink struct {
	mu     sync.Mutex
	frames []*frame.Frame
	refuse func(*frame.Frame) error
}

func (s *sink) Publish(f *frame.Frame) error {
	if s.refuse != nil {
		if err := s.refuse(f); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frames = append(s.frames, f)
	return nil
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.frames)
}

// run runs a camera for cfg until until(camera) holds or it stops by itself.
func run(t *testing.T, cfg Options, s *sink, until func(*Camera) bool) (*Camera, *testutil.Buffer) {
	t.Helper()
	logs := &testutil.Buffer{}
	cam := NewCamera(cfg, s, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); cam.Run(ctx) }()
	for !until(cam) {
		select {
		case <-done:
			return cam, logs
		case <-ctx.Done():
			t.Fatalf("camera %s: timed out; logs:\n%s", cfg.ID, logs)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	<-done
	return cam, logs
}

func requireVtest(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(vtest); err != nil {
		t.Fatalf("%s missing: install Debian's opencv-doc (make deps): %v", vtest, err)
	}
}

func TestPatternIsPacedAndEncoded(t *testing.T) {
	s := &sink{}
	cfg := Options{ID: "p", Source: source.TestPattern, Width: 320, Height: 240, FPS: 20, Quality: 70}
	start := time.Now()
	cam, _ := run(t, cfg, s, func(*Camera) bool { return s.count() >= 10 })
	elapsed := time.Since(start)
	// Ten frames at 20 fps span nine periods: never faster than that.
	if min := 9 * 50 * time.Millisecond * 9 / 10; elapsed < min {
		t.Fatalf("10 frames at 20 fps took %v: not paced (at least %v expected)", elapsed, min)
	}
	frames := s.frames[:10]
	for i, f := range frames {
		if f.Seq != uint64(i) || f.Camera != "p" || f.ContentType != frame.TypeJPEG || f.Width != 320 || f.Height != 240 {
			t.Fatalf("frame %d: %+v", i, f)
		}
		img, err := jpeg.Decode(bytes.NewReader(f.Data))
		if err != nil {
			t.Fatalf("frame %d is not a valid JPEG: %v", i, err)
		}
		if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 240 {
			t.Fatalf("frame %d size %v", i, b)
		}
		if i > 0 && !f.CapturedAt.After(frames[i-1].CapturedAt) {
			t.Fatalf("capture times not increasing at %d", i)
		}
	}
	if bytes.Equal(frames[0].Data, frames[1].Data) {
		t.Fatal("test pattern does not move")
	}
	if st := cam.Stats(); st.Captured < 10 || st.EncodeMS <= 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFileEndsWithEveryFrame(t *testing.T) {
	requireVtest(t)
	s := &sink{}
	cfg := Options{ID: "v", Source: vtest, FPS: 240, Quality: 60, Width: 384, Height: 288}
	cam, logs := run(t, cfg, s, func(*Camera) bool { return false })
	want := capturetest.CountFrames(t, vtest)
	if s.count() != want {
		t.Fatalf("published %d frames of %d", s.count(), want)
	}
	if st := cam.Stats(); st.State != "finished" {
		t.Fatalf("state %q", st.State)
	}
	if f := s.frames[want-1]; f.Seq != uint64(want-1) || f.Width != 384 || f.Height != 288 {
		t.Fatalf("last frame %+v", f)
	}
	if !strings.Contains(logs.String(), "video ended") {
		t.Fatalf("no end-of-video log:\n%s", logs)
	}
}

func writeShortVideo(t *testing.T, frames int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "short.avi")
	w, err := gocv.VideoWriterFile(path, "MJPG", 25, 160, 120, true)
	if err != nil {
		t.Fatal(err)
	}
	m := gocv.NewMatWithSize(120, 160, gocv.MatTypeCV8UC3)
	defer m.Close()
	for i := range frames {
		m.SetTo(gocv.NewScalar(float64(i*20), 100, 200, 0))
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFileLoops(t *testing.T) {
	path := writeShortVideo(t, 6)
	if n := capturetest.CountFrames(t, path); n != 6 {
		t.Fatalf("test video has %d frames", n)
	}
	s := &sink{}
	cam, _ := run(t, Options{ID: "loop", Source: path, Loop: true, FPS: 200, Quality: 80}, s, func(*Camera) bool { return s.count() >= 20 })
	for i, f := range s.frames[:20] {
		if f.Seq != uint64(i) {
			t.Fatalf("seq %d at %d: sequence must continue across loops", f.Seq, i)
		}
	}
	if st := cam.Stats(); st.State == "finished" {
		t.Fatal("looping file finished")
	}
}

// A missing device is reported with the camera and the device named, and
// the camera goes on to retry. (That a retry then succeeds is what
// TestMissingFileIsRetriedUntilItAppears shows: a device cannot be made to
// appear in a test, and retrying does not depend on the kind of source.)
func TestMissingDeviceIsAClearError(t *testing.T) {
	_, logs := run(t, Options{ID: "door", Source: "/dev/video97", Quality: 80}, &sink{}, func(c *Camera) bool {
		return strings.HasPrefix(c.Stats().State, "retrying")
	})
	out := logs.String()
	if !strings.Contains(out, "camera source failed, retrying") || !strings.Contains(out, "open camera device /dev/video97: not available") || !strings.Contains(out, "camera=door") {
		t.Fatalf("log does not name the camera and the device:\n%s", out)
	}
}

func TestLostSourceShowsNoSignal(t *testing.T) {
	s := &sink{}
	_, _ = run(t, Options{ID: "door", Source: "/dev/video97", Quality: 80, Width: 320, Height: 240}, s, func(*Camera) bool { return s.count() >= 2 })
	for i, f := range s.frames[:2] {
		if !f.NoSignal || f.Camera != "door" || f.Seq != uint64(i) || f.Width != 320 {
			t.Fatalf("frame %d: %+v", i, f)
		}
		img, err := jpeg.Decode(bytes.NewReader(f.Data))
		if err != nil || img.Bounds().Dx() != 320 || img.Bounds().Dy() != 240 {
			t.Fatalf("no-signal frame %d is not a 320x240 JPEG: %v", i, err)
		}
	}
	// One a second, not a flood.
	if gap := s.frames[1].CapturedAt.Sub(s.frames[0].CapturedAt); gap < 900*time.Millisecond {
		t.Fatalf("no-signal frames %v apart, want about %v", gap, NoSignalInterval)
	}
}

// A file that cannot be opened yet (missing, or not a video) is retried,
// and once a good video is in its place the camera picks it up and
// publishes every frame of it.
func TestMissingFileIsRetriedUntilItAppears(t *testing.T) {
	path := filepath.Join(t.TempDir(), "later.avi")
	retriedUntilFixed(t, path, func() { replaceWithVideo(t, path) })
}

func TestUndecodableFileIsRetriedUntilReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "garbage.avi")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a video "), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	retriedUntilFixed(t, path, func() { replaceWithVideo(t, path) })
}

// replaceWithVideo puts a 6-frame 160x120 video at path in one step, so the
// camera never opens half a file.
func replaceWithVideo(t *testing.T, path string) {
	t.Helper()
	if err := os.Rename(writeShortVideo(t, 6), path); err != nil {
		t.Fatal(err)
	}
}

// retriedUntilFixed runs a camera on path, which must fail to open; once the
// camera reports it is retrying, fix puts a 6-frame video there, and the
// camera must then stream the whole video and finish.
func retriedUntilFixed(t *testing.T, path string, fix func()) {
	t.Helper()
	s := &sink{}
	logs := &testutil.Buffer{}
	cam := NewCamera(Options{ID: "late", Source: path, FPS: 200, Quality: 80}, s, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	done := make(chan struct{})
	go func() { defer close(done); cam.Run(ctx) }()
	defer func() { cancel(); <-done }()

	for !strings.HasPrefix(cam.Stats().State, "retrying") {
		select {
		case <-done:
			t.Fatalf("camera stopped before retrying: state %q\n%s", cam.Stats().State, logs)
		case <-ctx.Done():
			t.Fatalf("camera never retrying: state %q\n%s", cam.Stats().State, logs)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if st := cam.Stats().State; !strings.Contains(st, "open video file "+path+": cannot open or decode it") {
		t.Fatalf("state %q does not say why", st)
	}
	fix()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("the fixed file was not picked up: state %q\n%s", cam.Stats().State, logs)
	}

	if st := cam.Stats(); st.State != "finished" || st.Captured != 6 || st.Published != 6 {
		t.Fatalf("after the fix: %+v, want finished with 6 frames captured and published\n%s", st, logs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// While down: no-signal frames. Then the video's 6 frames, the
	// sequence going on.
	video := 0
	for i, f := range s.frames {
		if f.Seq != uint64(i) {
			t.Fatalf("frame %d has seq %d", i, f.Seq)
		}
		if f.NoSignal {
			if video > 0 {
				t.Fatalf("no-signal frame %d after the video started", i)
			}
			continue
		}
		video++
		if f.Width != 160 || f.Height != 120 {
			t.Fatalf("video frame %d is %dx%d, want 160x120", i, f.Width, f.Height)
		}
	}
	if video != 6 || !s.frames[0].NoSignal {
		t.Fatalf("%d frames: want no-signal frames while the file was bad, then 6 video frames, got %d", len(s.frames), video)
	}
	out := logs.String()
	failed, streaming := strings.Index(out, "camera source failed, retrying"), strings.Index(out, "state=streaming")
	if failed < 0 || streaming < failed || !strings.Contains(out, "video ended") {
		t.Fatalf("log must show the failure, then streaming, then the end:\n%s", out)
	}
}

func TestRefusedFramesAreCountedAndCaptureGoesOn(t *testing.T) {
	s := &sink{refuse: func(f *frame.Frame) error {
		if f.Seq%2 == 0 {
			return errors.New("too large")
		}
		return nil
	}}
	cam, _ := run(t, Options{ID: "p", Source: source.TestPattern, Width: 64, Height: 48, FPS: 200, Quality: 80}, s, func(*Camera) bool { return s.count() >= 5 })
	if st := cam.Stats(); st.Dropped < 5 || st.Published < 5 {
		t.Fatalf("stats %+v", st)
	}
}

func BenchmarkPatternEncode720p(b *testing.B) {
	p := newPattern("bench", 1280, 720)
	img := gocv.NewMat()
	defer img.Close()
	params := []int{gocv.IMWriteJpegQuality, 80}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.read(&img)
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, params)
		if err != nil {
			b.Fatal(err)
		}
		_ = bytes.Clone(buf.GetBytes())
		buf.Close()
	}
}

// BenchmarkPatternRecordingFormats measures what recording the 720p test
// pattern costs per format (docs/recording.md): JPEG q80 frames as they
// come from capture, and H.264 MP4 (video.Encode) of the same 30 fps frames.
// It reports bytes per second of video and, for H.264, the encode time per
// frame.
func BenchmarkPatternRecordingFormats(b *testing.B) {
	p := newPattern("bench", 1280, 720)
	img := gocv.NewMat()
	defer img.Close()
	params := []int{gocv.IMWriteJpegQuality, 80}
	var jpegs [][]byte
	jpegBytes := 0
	for range 60 { // 2 s at 30 fps
		_ = p.read(&img)
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, params)
		if err != nil {
			b.Fatal(err)
		}
		jpegs = append(jpegs, bytes.Clone(buf.GetBytes()))
		jpegBytes += len(jpegs[len(jpegs)-1])
		buf.Close()
		time.Sleep(33 * time.Millisecond) // the pattern moves with the clock
	}
	for _, codec := range []string{video.H264, video.MPEG4} {
		b.Run(strings.Split(codec, "/")[0], func(b *testing.B) {
			var mp4 []byte
			for b.Loop() {
				var err error
				if mp4, err = video.Encode(codec, jpegs, 30, 1280, 720, video.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*len(jpegs)), "ms/frame")
			b.ReportMetric(float64(jpegBytes)/2, "jpeg-B/s")
			b.ReportMetric(float64(len(mp4))/2, "video-B/s")
		})
	}
}
