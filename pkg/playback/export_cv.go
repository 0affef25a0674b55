//go:build !nocv

package playback

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/replay"
	"github.com/streamd/streamd/pkg/video"
	"github.com/streamd/streamd/pkg/web"
)

// Export encodes camera's video from from to to into an H.264 MP4
// (web.Recordings), from the same timeline replays play: the recording
// tiers, then the frames topic. The file has a constant rate, the
// camera's full rate where the range has full-rate video: each slot
// shows the newest frame captured by its time, so a stretch of the
// reduced tier is a frame held for a second, and the duration is exactly
// to - from.
func (r *Replays) Export(ctx context.Context, camera string, from, to time.Time) ([]byte, error) {
	ctx, cancel := context.WithDeadline(ctx, time.Now().Add(10*time.Minute))
	defer cancel()
	src, _, _, err := r.frames(ctx, camera, from)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	// Read ahead a little to learn the rate: up to 2 s of frames.
	var ahead []*frame.Frame
	for len(ahead) < 60 {
		f, err := nextBefore(ctx, src, to)
		if err != nil {
			return nil, err
		}
		if f == nil {
			break
		}
		ahead = append(ahead, f)
		if f.CapturedAt.Sub(ahead[0].CapturedAt) >= 2*time.Second {
			break
		}
	}
	if len(ahead) == 0 {
		return nil, fmt.Errorf("%w between %s and %s", web.ErrNothingRecorded, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	fps := r.exportFPS(camera, from, to, ahead)
	first := ahead[0]
	w, h := first.Width, first.Height
	if w == 0 || h == 0 {
		w, h = frame.Dimensions(first.Data)
	}
	vw, err := video.NewWriter(video.H264, fps, w, h, video.Options{Preset: r.o.Preset, CRF: r.o.CRF})
	if err != nil {
		return nil, err
	}
	defer vw.Abort()
	slots := int(to.Sub(from).Seconds()*fps + 0.5)
	slotTime := func(i int) time.Time { return from.Add(time.Duration(float64(i) / fps * float64(time.Second))) }
	written := 0
	var cur *frame.Frame
	emit := func(until time.Time) error {
		// Slots before until show cur (the first frame before any).
		n := 0
		for written+n < slots && slotTime(written+n).Before(until) {
			n++
		}
		if n == 0 {
			return nil
		}
		written += n
		return vw.Repeat(n)
	}
	next := func() (*frame.Frame, error) {
		if len(ahead) > 0 {
			f := ahead[0]
			ahead = ahead[1:]
			return f, nil
		}
		return nextBefore(ctx, src, to)
	}
	for {
		f, err := next()
		if err != nil {
			return nil, err
		}
		if f == nil {
			break
		}
		if cur != nil {
			if err := emit(f.CapturedAt); err != nil {
				return nil, err
			}
		}
		if err := vw.WriteJPEG(f.Data, 0); err != nil {
			continue // an undecodable frame: the previous one stays
		}
		cur = f
	}
	if err := emit(to.Add(time.Hour)); err != nil {
		return nil, err
	}
	return vw.Finish()
}

// nextBefore returns src's next frame captured before to, nil after it
// (or when the frames topic has nothing more by to plus a margin).
func nextBefore(ctx context.Context, src replay.Frames, to time.Time) (*frame.Frame, error) {
	deadline := time.Now().Add(5 * time.Second)
	if d := to.Add(5 * time.Second); d.After(deadline) {
		deadline = d
	}
	wait, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	f, err := src.Next(wait)
	switch {
	case err != nil && ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kafka.ErrHistoryEnded)):
		return nil, nil
	case err != nil:
		return nil, err
	case !f.CapturedAt.Before(to):
		return nil, nil
	}
	return f, nil
}

// exportFPS is the rate of an export: the full tier's where the range has
// some, else the rate of the first frames read, between 1 and 30.
func (r *Replays) exportFPS(camera string, from, to time.Time, ahead []*frame.Frame) float64 {
	if f := r.rec.FullRate(camera, from, to); f > 0 {
		return clampFPS(f)
	}
	if len(ahead) > 1 {
		span := ahead[len(ahead)-1].CapturedAt.Sub(ahead[0].CapturedAt).Seconds()
		if span > 0 {
			return clampFPS(float64(len(ahead)-1) / span)
		}
	}
	return 1
}

func clampFPS(f float64) float64 {
	switch {
	case f < 1:
		return 1
	case f > 30:
		return 30
	}
	return float64(int(f + 0.5))
}
