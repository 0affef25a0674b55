package video_test

import (
	"image"
	"os"
	"path/filepath"
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
// in permanent motion: decoding the JPEG and encoding the MP4, in CPU time
// (an encoder may run threads of its own), and bytes per second at 30 fps.
// It runs each x264 preset on one thread (the recorder's setting), MPEG-4
// Part 2, and, as the baseline this package replaced, OpenCV's VideoWriter
// (decode to BGR, x264 at its defaults). docs/performance.md quotes it:
//
//	go test -run '^$' -bench Encode720p -benchtime 3x ./pkg/video
func BenchmarkEncode720p(b *testing.B) {
	frames := vtest720p(b, 150)
	report := func(b *testing.B, cpu0 time.Duration, size int) {
		perFrame := float64((cpuTime() - cpu0).Microseconds()) / 1000 / float64(b.N*len(frames))
		b.ReportMetric(perFrame, "cpu-ms/frame")
		b.ReportMetric(perFrame*30/1000, "cores@30fps")
		b.ReportMetric(float64(size)*30/float64(len(frames))/1000, "kB/s")
	}
	for _, preset := range []string{"ultrafast", "superfast", "veryfast", "medium"} {
		b.Run("h264-"+preset, func(b *testing.B) {
			var size int
			cpu0 := cpuTime()
			for range b.N {
				out, err := video.Encode(video.H264, frames, 30, 1280, 720, video.Options{Preset: preset})
				if err != nil {
					b.Fatal(err)
				}
				size = len(out)
			}
			report(b, cpu0, size)
		})
	}
	b.Run("mpeg4", func(b *testing.B) {
		var size int
		cpu0 := cpuTime()
		for range b.N {
			out, err := video.Encode(video.MPEG4, frames, 30, 1280, 720, video.Options{})
			if err != nil {
				b.Fatal(err)
			}
			size = len(out)
		}
		report(b, cpu0, size)
	})
	b.Run("opencv-avc1", func(b *testing.B) {
		var size int
		cpu0 := cpuTime()
		for range b.N {
			path := filepath.Join(b.TempDir(), "x.mp4")
			vw, err := gocv.VideoWriterFile(path, "avc1", 30, 1280, 720, true)
			if err != nil {
				b.Fatal(err)
			}
			for _, f := range frames {
				m, err := gocv.IMDecode(f, gocv.IMReadColor)
				if err != nil {
					b.Fatal(err)
				}
				if err := vw.Write(m); err != nil {
					b.Fatal(err)
				}
				m.Close()
			}
			vw.Close()
			st, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			size = int(st.Size())
		}
		report(b, cpu0, size)
	})
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
		report(b, cpu0, 0)
	})
}
