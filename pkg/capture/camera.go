package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/lograte"
	"github.com/streamd/streamd/pkg/redact"
	"github.com/streamd/streamd/pkg/source"
)

// Publisher takes encoded frames, usually a Kafka producer. Publish must not
// block; an error means the frame was dropped (and the publisher counted it).
type Publisher interface {
	Publish(f *frame.Frame) error
}

// Retry back-off bounds when a source cannot be opened or is lost.
const (
	MinRetry = 500 * time.Millisecond
	MaxRetry = 30 * time.Second
)

// fallbackFPS paces finite sources that do not report their rate.
const fallbackFPS = 25

// Options describe one camera. Zero fields take the defaults of package
// source (quality 80; the test pattern 1280x720 at 30 fps).
type Options struct {
	ID      string  // camera id: the Kafka key
	Source  string  // "testpattern", a file path, a device index ("0") or path, or a URL
	Loop    bool    // files: start again at the end
	FPS     float64 // 0: the source's own rate; otherwise pace (files, pattern) or cap (live feeds) at this rate
	Width   int     // 0: the source's size; set Height too
	Height  int     // 0: the source's size
	Quality int     // JPEG quality 1-100
	// Substream, if Width is set, publishes a second, low-resolution
	// rendition of the camera as well (like an IP camera's sub stream),
	// for grids of tiles.
	Substream Substream
}

// Substream is a camera's low-resolution rendition.
type Substream struct {
	Width   int     // pixels; the height keeps the aspect ratio
	Quality int     // JPEG quality; default 70
	FPS     float64 // at most this rate; default 15
}

// RenditionSub is the Rendition of substream frames.
const RenditionSub = "sub"

// withDefaults fills zero fields.
func (o Options) withDefaults() Options {
	if o.Quality == 0 {
		o.Quality = source.DefaultQuality
	}
	if o.Substream.Width > 0 {
		if o.Substream.Quality == 0 {
			o.Substream.Quality = 70
		}
		if o.Substream.FPS == 0 {
			o.Substream.FPS = 15
		}
	}
	if source.KindOf(o.Source) == source.Pattern {
		if o.Width == 0 || o.Height == 0 {
			o.Width, o.Height = source.DefaultPatternWidth, source.DefaultPatternHeight
		}
		if o.FPS == 0 {
			o.FPS = source.DefaultPatternFPS
		}
	}
	return o
}

// Camera captures one configured camera and publishes its frames.
type Camera struct {
	cfg Options
	pub Publisher
	log *slog.Logger

	captured, published, dropped atomic.Uint64
	encodeNanos                  atomic.Int64
	state                        atomic.Pointer[string]
	seq                          uint64
	subSeq                       uint64    // the substream's own sequence
	subNext                      time.Time // when the substream's next frame is due
	dropLog                      *lograte.Limiter
	lastW, lastH                 int       // size of the last frame, for no-signal frames
	lastNoSignal                 time.Time // when the last no-signal frame was published
}

// NewCamera returns a camera that publishes to pub. Call Run to start it.
func NewCamera(cfg Options, pub Publisher, log *slog.Logger) *Camera {
	cfg = cfg.withDefaults()
	c := &Camera{cfg: cfg, pub: pub, log: log.With("camera", cfg.ID, "source", redact.URL(cfg.Source)), dropLog: lograte.New(time.Second)}
	c.setState("starting")
	return c
}

// Stats is a snapshot of a camera's counters.
type Stats struct {
	ID        string `json:"id"`
	State     string `json:"state"` // starting, streaming, retrying: <reason>, finished
	Captured  uint64 `json:"captured"`
	Published uint64 `json:"published"`
	Dropped   uint64 `json:"dropped"` // refused by the publisher (too large, backlog full)
	// EncodeMS is the mean JPEG encode time per frame.
	EncodeMS float64 `json:"encode_ms"`
}

// Stats returns the camera's counters.
func (c *Camera) Stats() Stats {
	s := Stats{ID: c.cfg.ID, State: *c.state.Load(), Captured: c.captured.Load(), Published: c.published.Load(), Dropped: c.dropped.Load()}
	if s.Captured > 0 {
		s.EncodeMS = float64(c.encodeNanos.Load()) / float64(s.Captured) / 1e6
	}
	return s
}

// setState records the camera's state and logs a change (not the first).
func (c *Camera) setState(s string) {
	if old := c.state.Swap(&s); old != nil && *old != s {
		c.log.Info("camera state", "state", s)
	}
}

// Run captures until ctx ends or a non-looping file ends. A source that
// cannot be opened, or is lost, is retried with back-off; each change of
// state is logged once.
func (c *Camera) Run(ctx context.Context) {
	backoff := MinRetry
	lastErr := ""
	for ctx.Err() == nil {
		src, err := open(c.cfg)
		if err == nil {
			backoff = MinRetry
			lastErr = ""
			err = c.stream(ctx, src)
			src.close()
			if errors.Is(err, errEnd) {
				if c.cfg.Loop {
					continue
				}
				c.setState("finished")
				c.log.Info("video ended", "frames", c.captured.Load())
				return
			}
			if ctx.Err() != nil {
				return
			}
		}
		// Errors of OpenCV or FFmpeg may quote the source URL: shown
		// without its credentials in the log, the state and the frame.
		err = redact.Error(err)
		if msg := err.Error(); msg != lastErr {
			c.log.Error("camera source failed, retrying", "err", err, "retry_in", backoff)
			lastErr = msg
		}
		c.setState("retrying: " + err.Error())
		if !c.waitShowingNoSignal(ctx, backoff, err) {
			return
		}
		backoff = min(backoff*2, MaxRetry)
	}
}

// NoSignalInterval is how often a camera whose source is lost publishes a
// generated "no signal" frame, so that viewers see the camera is down.
const NoSignalInterval = time.Second

// waitShowingNoSignal waits d, publishing a no-signal frame every
// NoSignalInterval (across retries). It returns false if ctx ended.
func (c *Camera) waitShowingNoSignal(ctx context.Context, d time.Duration, reason error) bool {
	deadline := time.Now().Add(d)
	for {
		if time.Since(c.lastNoSignal) >= NoSignalInterval {
			c.lastNoSignal = time.Now()
			c.publishNoSignal(reason)
		}
		wait := min(NoSignalInterval-time.Since(c.lastNoSignal), time.Until(deadline))
		if wait <= 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		if !time.Now().Before(deadline) {
			return true
		}
	}
}

// publishNoSignal renders and publishes one "no signal" frame with the
// camera id, the time and the reason, at the last frame's size.
func (c *Camera) publishNoSignal(reason error) {
	w, h := c.lastW, c.lastH
	if w == 0 || h == 0 {
		w, h = 640, 360
	}
	if c.cfg.Width > 0 {
		w, h = c.cfg.Width, c.cfg.Height
	}
	now := time.Now()
	data, err := renderNoSignal(c.cfg.ID, w, h, now, reason.Error(), c.cfg.Quality)
	if err != nil {
		c.log.Warn("cannot render no-signal frame", "err", err)
		return
	}
	f := &frame.Frame{Camera: c.cfg.ID, Seq: c.seq, CapturedAt: now, Width: w, Height: h, ContentType: frame.TypeJPEG, Data: data, NoSignal: true}
	c.seq++
	if err := c.pub.Publish(f); err != nil {
		c.dropped.Add(1)
	}
}

// stream reads, paces, encodes and publishes frames from an open source.
func (c *Camera) stream(ctx context.Context, src reader) error {
	img := gocv.NewMat()
	defer img.Close()
	resized := gocv.NewMat()
	defer resized.Close()
	sc := newScaler()
	defer sc.Close()
	subImg := gocv.NewMat() // the substream's resized image
	defer subImg.Close()

	// Finite videos and the test pattern are paced: sleep until each
	// frame's slot on an absolute schedule, so there is no drift. Live
	// feeds deliver at their own rate; a configured fps caps them by
	// skipping frames.
	paced := src.finite() || source.KindOf(c.cfg.Source) == source.Pattern
	rate := c.cfg.FPS
	if rate == 0 {
		rate = src.fps()
	}
	if rate == 0 && paced {
		rate = fallbackFPS
	}
	var period time.Duration
	if rate > 0 {
		period = time.Duration(float64(time.Second) / rate)
	}
	start := time.Now()
	var slot int64 // index of the next frame on the schedule
	slotTime := func() time.Time { return start.Add(time.Duration(float64(slot) * float64(time.Second) / rate)) }
	params := []int{gocv.IMWriteJpegQuality, c.cfg.Quality}
	c.setState("streaming")
	timer := time.NewTimer(0)
	defer timer.Stop()

	for {
		if paced {
			if wait := time.Until(slotTime()); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-timer.C:
				}
			} else if -wait > 2*period {
				// Far behind (slow decode, suspended machine):
				// restart the schedule instead of bursting.
				start, slot = time.Now(), 0
			}
		} else if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := src.read(&img); err != nil {
			return err
		}
		capturedAt := time.Now()
		if !paced && period > 0 {
			// Cap a live feed: keep a frame only once its slot came.
			if capturedAt.Before(slotTime()) {
				continue
			}
			if capturedAt.Sub(slotTime()) > 2*period {
				start, slot = capturedAt, 0
			}
		}
		slot++

		out := &img
		if c.cfg.Width > 0 && (img.Cols() != c.cfg.Width || img.Rows() != c.cfg.Height) {
			sc.scale(img, &resized, c.cfg.Width, c.cfg.Height)
			out = &resized
		}
		t0 := time.Now()
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, *out, params)
		if err != nil {
			return fmt.Errorf("encode jpeg: %w", err)
		}
		data := bytes.Clone(buf.GetBytes())
		buf.Close()
		c.encodeNanos.Add(int64(time.Since(t0)))
		c.captured.Add(1)

		f := &frame.Frame{
			Camera:      c.cfg.ID,
			Seq:         c.seq,
			CapturedAt:  capturedAt,
			Width:       out.Cols(),
			Height:      out.Rows(),
			ContentType: frame.TypeJPEG,
			Data:        data,
		}
		c.seq++
		c.lastW, c.lastH = f.Width, f.Height
		if err := c.pub.Publish(f); err != nil {
			c.dropped.Add(1)
			if ok, n := c.dropLog.Allow(); ok {
				c.log.Warn("frame dropped", "seq", f.Seq, "err", err, "similar_dropped", n)
			}
			continue
		}
		c.published.Add(1)
		c.publishSub(out, capturedAt, &subImg, sc)
	}
}

// publishSub publishes the substream's frame when one is due: the image
// resized to the substream's width and encoded at its quality.
func (c *Camera) publishSub(img *gocv.Mat, capturedAt time.Time, scratch *gocv.Mat, sc *scaler) {
	sub := c.cfg.Substream
	if sub.Width <= 0 || capturedAt.Before(c.subNext) || img.Cols() == 0 {
		return
	}
	c.subNext = capturedAt.Add(time.Duration(0.9 * float64(time.Second) / sub.FPS)) // 0.9: a frame's jitter must not halve the rate
	w := min(sub.Width, img.Cols())
	h := max(img.Rows()*w/img.Cols(), 1)
	src := img
	if w != img.Cols() {
		sc.scale(*img, scratch, w, h)
		src = scratch
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, *src, []int{gocv.IMWriteJpegQuality, sub.Quality})
	if err != nil {
		return
	}
	data := bytes.Clone(buf.GetBytes())
	buf.Close()
	f := &frame.Frame{Camera: c.cfg.ID, Seq: c.subSeq, CapturedAt: capturedAt, Width: w, Height: h,
		ContentType: frame.TypeJPEG, Data: data, Rendition: RenditionSub}
	c.subSeq++
	if err := c.pub.Publish(f); err != nil {
		c.dropped.Add(1)
	}
}
