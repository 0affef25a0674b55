package video_test

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/video"
	"github.com/streamd/streamd/pkg/vision/visiontest"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	frames := testFrames(t, 30)
	mp4, err := video.Encode(video.H264, frames, 10, 320, 240, video.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mp4[4:8], []byte("ftyp")) {
		t.Fatalf("not an MP4: starts %q", mp4[:12])
	}
	var got int
	err = video.Decode(t.TempDir(), mp4, 80, func(i int, jpeg []byte) error {
		if i != got {
			t.Errorf("frame %d reported as %d", got, i)
		}
		if len(jpeg) < 2 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 {
			t.Fatalf("frame %d is not a JPEG", i)
		}
		got++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != len(frames) {
		t.Fatalf("decoded %d frames, encoded %d", got, len(frames))
	}
}

func TestMPEG4RoundTrip(t *testing.T) {
	frames := testFrames(t, 20)
	mp4, err := video.Encode(video.MPEG4, frames, 30, 320, 240, video.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := video.Decode(t.TempDir(), mp4, 80, func(int, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != len(frames) {
		t.Fatalf("decoded %d frames, encoded %d", n, len(frames))
	}
	if _, err := video.NewWriter("vp9/webm", 30, 320, 240, video.Options{}); err == nil {
		t.Error("an unknown codec: no error")
	}
}

func TestBadInput(t *testing.T) {
	if _, err := video.Encode(video.H264, nil, 10, 320, 240, video.Options{}); err == nil {
		t.Error("encoding no frames: no error")
	}
	if _, err := video.Encode(video.MPEG4, [][]byte{[]byte("not a jpeg")}, 10, 320, 240, video.Options{}); err == nil {
		t.Error("encoding garbage: no error")
	}
	if err := video.Decode(t.TempDir(), []byte("not an mp4 at all"), 80, func(int, []byte) error { return nil }); err == nil {
		t.Error("decoding garbage: no error")
	}
	dir := t.TempDir()
	_ = video.Decode(dir, []byte("not an mp4 at all"), 80, func(int, []byte) error { return nil })
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestOddSizeAndRepeat(t *testing.T) {
	frames := testFrames(t, 1)
	w, err := video.NewWriter(video.H264, 5, 321, 241, video.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ww, hh := w.Size(); ww != 320 || hh != 240 {
		t.Fatalf("size %dx%d, want 320x240", ww, hh)
	}
	if err := w.WriteJPEG(frames[0], 10); err != nil {
		t.Fatal(err)
	}
	mp4, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := video.Decode(t.TempDir(), mp4, 80, func(int, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 10 {
		t.Fatalf("decoded %d frames, wrote one frame 10 times", n)
	}
}

func testFrames(t *testing.T, n int) [][]byte {
	t.Helper()
	clip, err := visiontest.MovingObject(visiontest.Options{Width: 320, Height: 240, Frames: n, Warmup: -1})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, f := range clip {
		out = append(out, f.JPEG)
	}
	return out
}

// BenchmarkVTest measures H.264 against JPEG on OpenCV's sample vtest.avi
// (768x576, 10 fps, people walking): bytes per second of video each way,
// and the encode time per frame.
func BenchmarkVTest(b *testing.B) {
	const path = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
	clip, err := visiontest.ReadVideo(path, 100, 0, 0, 80)
	if err != nil {
		b.Fatal(err)
	}
	var jpegs [][]byte
	jpegBytes := 0
	for _, f := range clip {
		jpegs = append(jpegs, f.JPEG)
		jpegBytes += len(f.JPEG)
	}
	seconds := float64(len(jpegs)) / 10
	for _, codec := range []string{video.H264, video.MPEG4} {
		b.Run(strings.Split(codec, "/")[0], func(b *testing.B) {
			var mp4 []byte
			for b.Loop() {
				if mp4, err = video.Encode(codec, jpegs, 10, 768, 576, video.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*len(jpegs)), "ms/frame")
			b.ReportMetric(float64(jpegBytes)/seconds, "jpeg-B/s")
			b.ReportMetric(float64(len(mp4))/seconds, "video-B/s")
		})
	}
}

// TestPresetsMatchConfig holds the configuration's list of recording.preset
// values equal to the encoder's, and shows a bad preset or CRF is refused
// by name.
func TestPresetsMatchConfig(t *testing.T) {
	if got, want := config.X264Presets(), video.Presets(); !slices.Equal(got, want) {
		t.Fatalf("config.X264Presets() = %v, video.Presets() = %v", got, want)
	}
	for _, p := range video.Presets() {
		if _, err := video.Encode(video.H264, testFrames(t, 2), 10, 64, 48, video.Options{Preset: p}); err != nil {
			t.Errorf("preset %q: %v", p, err)
		}
	}
	if _, err := video.NewWriter(video.H264, 10, 64, 48, video.Options{Preset: "quick"}); err == nil || !strings.Contains(err.Error(), `"quick"`) {
		t.Errorf("preset quick: %v, want an error naming it", err)
	}
	if _, err := video.NewWriter(video.H264, 10, 64, 48, video.Options{CRF: 99}); err == nil || !strings.Contains(err.Error(), "99") {
		t.Errorf("crf 99: %v, want an error naming it", err)
	}
}

// TestCRFSetsSize shows the quality option reaches x264: a higher CRF
// writes fewer bytes for the same frames.
func TestCRFSetsSize(t *testing.T) {
	frames := testFrames(t, 30)
	size := map[int]int{}
	for _, crf := range []int{18, 35} {
		mp4, err := video.Encode(video.H264, frames, 10, 320, 240, video.Options{CRF: crf})
		if err != nil {
			t.Fatal(err)
		}
		size[crf] = len(mp4)
	}
	if size[35] >= size[18] {
		t.Fatalf("crf 35 wrote %d bytes, crf 18 %d: the option does not reach the encoder", size[35], size[18])
	}
}
