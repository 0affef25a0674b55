package video_test

import (
	"image"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/streamd/streamd/pkg/video"
)

// vtest720p returns n frames of Debian's vtest.avi (people walking: motion
// everywhere), scaled to 1280x720 and JPEG-encoded at q80 as a camera
// publishes them.
func vtest720p(b *testing.B, n int) [][]byte {
	b.Helper()
	vc, err := gocv.VideoCaptureFile("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
	if err != nil || !vc.IsOpened() {
		b.Fatalf("open vtest.avi (Debian opencv-doc): %v", err)
	}
	defer vc.Close()
	m, r := gocv.NewMat(), gocv.NewMat()
	defer m.Close()
	defer r.Close()
	var out [][]byte
	for len(out) < n && vc.Read(&m) {
		gocv.Resize(m, &r, image.Pt(1280, 720), 0, 0, gocv.InterpolationLinear)
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, r, []int{gocv.IMWriteJpegQuality, 80})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, append([]byte(nil), buf.GetBytes()...))
		buf.Close()
	}
	return out
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEncode720p is the full tier's cost per 720p frame of a camera
// in permanent motion, per codec: decoding the JPEG and encoding the MP4,
// in CPU time (the encoder runs threads of its own) and bytes per second
// at 30 fps. docs/performance.md quotes it:
//
//	go test -run '^$' -bench Encode720p -benchtime 3x ./pkg/video
//
// OPENCV_FFMPEG_WRITER_OPTIONS, set in the environment, is passed on to
// OpenCV; Debian's 4.6 ignores its encoder options (the figures do not move).
func BenchmarkEncode720p(b *testing.B) {
	frames := vtest720p(b, 150)
	for _, codec := range []string{video.H264, video.MPEG4} {
		b.Run(codec, func(b *testing.B) {
			var size int
			cpu0 := cpuTime()
			for range b.N {
				out, err := video.Encode(b.TempDir(), codec, frames, 30, 1280, 720)
				if err != nil {
					b.Fatal(err)
				}
				size = len(out)
			}
			perFrame := float64((cpuTime() - cpu0).Microseconds()) / 1000 / float64(b.N*len(frames))
			b.ReportMetric(perFrame, "cpu-ms/frame")
			b.ReportMetric(float64(size)*30/float64(len(frames))/1000, "kB/s")
		})
	}
	b.Run("decode", func(b *testing.B) {
		cpu0 := cpuTime()
		for range b.N {
			for _, f := range frames {
				m, err := gocv.IMDecode(f, gocv.IMReadColor)
				if err != nil {
					b.Fatal(err)
				}
				m.Close()
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N*len(frames)), "cpu-ms/frame")
	})
}
