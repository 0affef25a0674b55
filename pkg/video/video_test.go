package video_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/streamd/streamd/pkg/video"
	"github.com/streamd/streamd/pkg/vision/visiontest"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	frames := testFrames(t, 30)
	mp4, err := video.Encode(t.TempDir(), video.H264, frames, 10, 320, 240)
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
	mp4, err := video.Encode(t.TempDir(), video.MPEG4, frames, 30, 320, 240)
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
	if _, err := video.NewWriter(t.TempDir(), "vp9/webm", 30, 320, 240); err == nil {
		t.Error("an unknown codec: no error")
	}
}

func TestBadInput(t *testing.T) {
	if _, err := video.Encode(t.TempDir(), video.H264, nil, 10, 320, 240); err == nil {
		t.Error("encoding no frames: no error")
	}
	if _, err := video.Encode(t.TempDir(), video.MPEG4, [][]byte{[]byte("not a jpeg")}, 10, 320, 240); err == nil {
		t.Error("encoding garbage: no error")
	}
	if err := video.Decode(t.TempDir(), []byte("not an mp4 at all"), 80, func(int, []byte) error { return nil }); err == nil {
		t.Error("decoding garbage: no error")
	}
	dir := t.TempDir()
	_, _ = video.Encode(dir, video.H264, [][]byte{[]byte("x")}, 10, 320, 240)
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestOddSizeAndRepeat(t *testing.T) {
	frames := testFrames(t, 1)
	w, err := video.NewWriter(t.TempDir(), video.H264, 5, 321, 241)
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
				if mp4, err = video.Encode(b.TempDir(), codec, jpegs, 10, 768, 576); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*len(jpegs)), "ms/frame")
			b.ReportMetric(float64(jpegBytes)/seconds, "jpeg-B/s")
			b.ReportMetric(float64(len(mp4))/seconds, "video-B/s")
		})
	}
}
