// Package capture reads video with OpenCV (gocv) from files, cameras, network
// URLs or a built-in test pattern, paces it, encodes each frame as JPEG and
// hands it to a publisher. It is the only package that needs OpenCV for
// producing. Its Supervisor runs a process's cameras into one Kafka
// producer and applies a reloaded camera list (start, stop, restart).
//
// It may not read the configuration (cameras come as Options), consume
// Kafka, or serve HTTP.
package capture

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"strconv"
	"time"

	"gocv.io/x/gocv"

	"github.com/streamd/streamd/pkg/redact"
	"github.com/streamd/streamd/pkg/source"
	"github.com/streamd/streamd/pkg/video"
)

// errEnd is returned by a source's read at the end of a finite video.
var errEnd = errors.New("end of video")

// reader is something frames are read from into a reused Mat.
type reader interface {
	read(dst *gocv.Mat) error // errEnd at the end of a finite video
	fps() float64             // native frame rate, 0 when unknown
	finite() bool             // a file (local or remote) rather than a live feed
	close()
}

// open opens the source a camera names, under video.Open's process-wide
// lock: OpenCV's videoio backend registry is C state that is not safe for
// concurrent opens (two cameras (re)trying at once crashed inside
// OpenVideoCapture, SIGSEGV in the CAP_IMAGES fallback), and the recorder
// and exports open files too. Opening is rare (start-up, retries), so one
// lock for the process costs nothing; reading frames is not serialized.
func open(cam Options) (r reader, err error) {
	err = video.Open(func() error { r, err = openLocked(cam); return err })
	return r, err
}

func openLocked(cam Options) (reader, error) {
	kind := source.KindOf(cam.Source)
	switch kind {
	case source.Pattern:
		return newPattern(cam.ID, cam.Width, cam.Height), nil
	case source.Device:
		var vc *gocv.VideoCapture
		var err error
		if idx, aerr := strconv.Atoi(cam.Source); aerr == nil {
			vc, err = gocv.OpenVideoCapture(idx)
		} else {
			vc, err = gocv.OpenVideoCapture(cam.Source)
		}
		if err != nil || !vc.IsOpened() {
			if vc != nil {
				vc.Close()
			}
			return nil, fmt.Errorf("open camera device %s: not available (is it connected, and may this user read it?)", redact.URL(cam.Source))
		}
		return &videoSource{vc: vc}, nil
	default: // file or URL
		var vc *gocv.VideoCapture
		var err error
		if kind == source.URL {
			// Streams are FFmpeg's: with any backend OpenCV also tries
			// its image-sequence reader on the URL, whose error (logged
			// by OpenCV itself, on every retry) quotes the URL with its
			// password, and which is where concurrent opens crashed.
			vc, err = gocv.OpenVideoCaptureWithAPI(cam.Source, gocv.VideoCaptureFFmpeg)
		} else {
			vc, err = gocv.OpenVideoCapture(cam.Source)
		}
		if err != nil || !vc.IsOpened() {
			if vc != nil {
				vc.Close()
			}
			what := "video file"
			if kind == source.URL {
				what = "stream"
			}
			// The source is named without its credentials: this error
			// reaches the log, /api/status and the no-signal frame.
			return nil, fmt.Errorf("open %s %s: cannot open or decode it", what, redact.URL(cam.Source))
		}
		// A positive frame count means a finite video (a file, even one
		// served over HTTP); live feeds report 0 or less.
		isFinite := kind == source.File || vc.Get(gocv.VideoCaptureFrameCount) > 0
		return &videoSource{vc: vc, isFinite: isFinite}, nil
	}
}

type videoSource struct {
	vc       *gocv.VideoCapture
	isFinite bool
}

func (s *videoSource) read(dst *gocv.Mat) error {
	if ok := s.vc.Read(dst); !ok || dst.Empty() {
		if s.isFinite {
			return errEnd
		}
		return errors.New("read frame: source delivered nothing (disconnected?)")
	}
	return nil
}

func (s *videoSource) fps() float64 {
	f := s.vc.Get(gocv.VideoCaptureFPS)
	if f < 1 || f > 240 {
		return 0
	}
	return f
}

func (s *videoSource) finite() bool { return s.isFinite }
func (s *videoSource) close()       { s.vc.Close() }

// pattern is the built-in test pattern: scrolling colour bars, a moving
// square, the camera id, a clock with milliseconds and a frame counter.
type pattern struct {
	id    string
	w, h  int
	frame uint64
}

func newPattern(id string, w, h int) *pattern { return &pattern{id: id, w: w, h: h} }

var bars = []color.RGBA{
	{192, 192, 192, 0}, {0, 192, 192, 0}, {192, 192, 0, 0}, {0, 192, 0, 0},
	{192, 0, 192, 0}, {0, 0, 192, 0}, {192, 0, 0, 0}, {32, 32, 32, 0},
}

func (p *pattern) read(dst *gocv.Mat) error {
	if dst.Empty() || dst.Cols() != p.w || dst.Rows() != p.h {
		dst.Close()
		*dst = gocv.NewMatWithSize(p.h, p.w, gocv.MatTypeCV8UC3)
	}
	// gocv colours are BGR in the R,G,B fields' order: R=blue, B=red.
	barW := p.w / len(bars)
	shift := int(p.frame*4) % p.w
	for i := 0; i <= len(bars); i++ {
		x := i*barW - shift
		for x < -barW {
			x += p.w
		}
		c := bars[(i)%len(bars)]
		gocv.Rectangle(dst, image.Rect(x, 0, x+barW, p.h*2/3), c, -1)
		if x+barW < p.w {
			continue
		}
		gocv.Rectangle(dst, image.Rect(x-p.w, 0, x-p.w+barW, p.h*2/3), c, -1)
	}
	gocv.Rectangle(dst, image.Rect(0, p.h*2/3, p.w, p.h), color.RGBA{16, 16, 16, 0}, -1)
	// A square moving left to right over the lower band.
	side := p.h / 8
	travel := max(p.w-side, 1)
	pos := int(p.frame*8) % (2 * travel)
	if pos > travel {
		pos = 2*travel - pos
	}
	gocv.Rectangle(dst, image.Rect(pos, p.h*2/3+side/4, pos+side, p.h*2/3+side/4+side), color.RGBA{255, 255, 255, 0}, -1)
	now := time.Now()
	scale := float64(p.h) / 720
	white := color.RGBA{255, 255, 255, 0}
	gocv.PutText(dst, now.Format("15:04:05.000"), image.Pt(p.w/20, p.h*90/100), gocv.FontHersheyDuplex, 2.2*scale, white, max(int(3*scale), 1))
	gocv.PutText(dst, p.id+"  #"+strconv.FormatUint(p.frame, 10), image.Pt(p.w/20, p.h-p.h/60), gocv.FontHersheyDuplex, 1.2*scale, white, max(int(2*scale), 1))
	p.frame++
	return nil
}

func (p *pattern) fps() float64 { return 0 }
func (p *pattern) finite() bool { return false }
func (p *pattern) close()       {}

// renderNoSignal draws a "no signal" image: dark grey, the words NO SIGNAL,
// the camera id, the time and why, and encodes it as JPEG.
func renderNoSignal(id string, w, h int, at time.Time, reason string, quality int) ([]byte, error) {
	img := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
	defer img.Close()
	img.SetTo(gocv.NewScalar(40, 40, 40, 0))
	scale := float64(h) / 720
	white := color.RGBA{230, 230, 230, 0}
	grey := color.RGBA{160, 160, 160, 0}
	gocv.PutText(&img, "NO SIGNAL", image.Pt(w/12, h*2/5), gocv.FontHersheyDuplex, 3*scale, white, max(int(4*scale), 1))
	gocv.PutText(&img, id+"  "+at.Format("2006-01-02 15:04:05"), image.Pt(w/12, h*3/5), gocv.FontHersheyDuplex, 1.3*scale, white, max(int(2*scale), 1))
	if len(reason) > 90 {
		reason = reason[:90] + "..."
	}
	gocv.PutText(&img, reason, image.Pt(w/12, h*3/4), gocv.FontHersheySimplex, 0.7*scale, grey, max(int(1.5*scale), 1))
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, []int{gocv.IMWriteJpegQuality, quality})
	if err != nil {
		return nil, fmt.Errorf("encode no-signal frame: %w", err)
	}
	defer buf.Close()
	return bytes.Clone(buf.GetBytes()), nil
}

// QuietOpenCV keeps OpenCV's own log lines and its GStreamer backend's
// warnings off stderr, unless the environment already sets them: streamd's
// logs say what failed, once. Call it before the first camera opens.
func QuietOpenCV() {
	for k, v := range map[string]string{"OPENCV_LOG_LEVEL": "ERROR", "OPENCV_VIDEOIO_PRIORITY_GSTREAMER": "0"} {
		if _, ok := os.LookupEnv(k); !ok {
			_ = os.Setenv(k, v)
		}
	}
}
