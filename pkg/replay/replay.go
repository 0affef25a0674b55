// Package replay plays back what Kafka holds for a camera, the way an NVR's
// playback does: from a moment on, paced by the frames' capture times at a
// speed, with the output rate capped, and, once it reaches the newest
// frame, on into the live stream with no gap and no duplicate.
//
// A Player wraps a source of frames in capture order (a kafka.History) and
// is a reader like a live hub viewer, so the HTTP server streams both
// through the same MJPEG loop. Pacing keeps an anchor: the wall time at
// which a capture time is shown. Frame i is due at
//
//	anchorWall + (captured_i − anchorCaptured) / speed
//
// and a frame due less than 1/MaxFPS after the last one shown is skipped,
// so at speed 4 a 30 fps camera advances four times as fast in time while
// the viewer still gets 30 frames a second, not 120: bandwidth stays that
// of a live viewer whatever the speed. A viewer that falls more than a
// second behind its schedule (a slow link, a stall) is re-anchored instead
// of being rushed through a burst.
//
// When a frame shown is within a second of now, the replay has reached the
// live edge: the Player asks the live fan-out for a reader positioned right
// after that frame (same sequence number and capture time) and from then on
// is a live viewer. Until the hub holds that frame, it goes on reading
// Kafka, which is live too, only a little later.
package replay

import (
	"context"
	"errors"
	"time"

	"github.com/streamd/streamd/pkg/frame"
)

// Limits and defaults.
const (
	DefaultMaxFPS = 30
	MinSpeed      = 0.25
	MaxSpeed      = 8
	// liveEdge is how close to now a frame must be for the replay to
	// hand over to the live stream.
	liveEdge = time.Second
	// maxLate is how far behind its schedule a player may fall before it
	// is re-anchored.
	maxLate = time.Second
	// capSlack lets frames through the rate cap a little early, so that
	// capture-time jitter on a source at exactly MaxFPS does not make
	// every other frame look too soon.
	capSlack = 0.8
)

// Frames is a camera's frames in capture order (a kafka.History).
type Frames interface {
	Next(ctx context.Context) (*frame.Frame, error)
	Close()
}

// Reader is what a Player is, and what a live viewer is: the HTTP
// server's view of a stream.
type Reader interface {
	Next(ctx context.Context) (f *frame.Frame, part []byte, err error)
	Dropped() uint64
	Close()
}

// Options tune a Player. Zero fields take the defaults.
type Options struct {
	Speed  float64 // 1 is real time; MinSpeed to MaxSpeed; default 1
	MaxFPS float64 // output rate cap; default DefaultMaxFPS
	// LiveAfter, if set, returns a live reader positioned right after the
	// frame with seq captured at capturedAt, or false if the live
	// fan-out does not hold that frame.
	LiveAfter func(seq uint64, capturedAt time.Time) (Reader, bool)
	Now       func() time.Time // default time.Now
}

// ErrSpeed is returned by New for a speed out of range.
var ErrSpeed = errors.New("speed out of range")

// Player is one replay viewer. It is not safe for concurrent use.
type Player struct {
	src   Frames
	o     Options
	gap   time.Duration // the output interval, 1/MaxFPS
	early time.Duration // how much earlier than gap a frame may come (jitter)

	first      *frame.Frame // read by First, not yet returned
	started    bool
	anchorWall time.Time
	anchorCap  time.Time
	lastDue    time.Time    // the output slot of the last frame shown
	skipped    *frame.Frame // the last frame skipped by the cap, shown if nothing follows it
	live       Reader
	dropped    uint64
	closed     bool
}

// New returns a player of src; it owns src and closes it.
func New(src Frames, o Options) (*Player, error) {
	if o.Speed == 0 {
		o.Speed = 1
	}
	if !(o.Speed >= MinSpeed && o.Speed <= MaxSpeed) {
		return nil, ErrSpeed
	}
	if o.MaxFPS <= 0 {
		o.MaxFPS = DefaultMaxFPS
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	gap := time.Duration(float64(time.Second) / o.MaxFPS)
	return &Player{src: src, o: o, gap: gap, early: gap - time.Duration(capSlack*float64(gap))}, nil
}

// First reads the first frame, so that a caller can tell where the replay
// starts before it answers; Next returns it again.
func (p *Player) First(ctx context.Context) (*frame.Frame, error) {
	if p.first == nil {
		f, err := p.src.Next(ctx)
		if err != nil {
			return nil, err
		}
		p.first = f
	}
	return p.first, nil
}

// Next returns the next frame when it is due. The part is always nil: the
// HTTP server encodes replayed frames itself (live ones come encoded).
func (p *Player) Next(ctx context.Context) (*frame.Frame, []byte, error) {
	if p.closed {
		return nil, nil, errors.New("replay closed")
	}
	if p.live != nil {
		return p.live.Next(ctx)
	}
	for {
		f := p.first
		p.first = nil
		if f == nil {
			var err error
			if f, err = p.next(ctx); err != nil {
				return nil, nil, err
			}
		}
		now := p.o.Now()
		if !p.started {
			p.started = true
			p.anchor(now, f)
			p.handOver(now, f)
			return f, nil, nil
		}
		due := p.due(f)
		if f != p.skipped && due.Before(p.lastDue.Add(p.gap-p.early)) {
			p.dropped++ // over the rate cap
			p.skipped = f
			continue
		}
		p.skipped = nil
		if now.Sub(due) > maxLate {
			p.anchor(now, f)
			due = now
		}
		if wait := due.Sub(now); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, nil, ctx.Err()
			case <-t.C:
			}
		}
		// The next output slot: a frame let through early by the
		// jitter slack does not raise the long-run rate above MaxFPS.
		p.lastDue = latest(due, p.lastDue.Add(p.gap))
		p.handOver(p.o.Now(), f)
		return f, nil, nil
	}
}

// next reads the next frame. While a frame skipped by the cap waits, it
// waits for a newer one only until that frame's output slot: if none comes
// (the end of what was recorded), the skipped frame is shown after all.
func (p *Player) next(ctx context.Context) (*frame.Frame, error) {
	if p.skipped == nil {
		return p.src.Next(ctx)
	}
	wait, cancel := context.WithDeadline(ctx, latest(p.due(p.skipped), p.lastDue.Add(p.gap)).Add(p.gap))
	defer cancel()
	f, err := p.src.Next(wait)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return p.skipped, nil
	}
	return f, err
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (p *Player) anchor(now time.Time, f *frame.Frame) {
	p.anchorWall, p.anchorCap, p.lastDue = now, f.CapturedAt, now
}

func (p *Player) due(f *frame.Frame) time.Time {
	return p.anchorWall.Add(time.Duration(float64(f.CapturedAt.Sub(p.anchorCap)) / p.o.Speed))
}

// handOver switches to the live stream once f, just shown, is at the live
// edge and the live fan-out holds it.
func (p *Player) handOver(now time.Time, f *frame.Frame) {
	if p.o.LiveAfter == nil || p.o.Speed < 1 || now.Sub(f.CapturedAt) > liveEdge {
		return
	}
	if r, ok := p.o.LiveAfter(f.Seq, f.CapturedAt); ok {
		p.live = r
		p.src.Close()
	}
}

// Live reports whether the player has handed over to the live stream.
func (p *Player) Live() bool { return p.live != nil }

// Dropped counts the frames skipped by the rate cap (and, once live, by
// the live viewer).
func (p *Player) Dropped() uint64 {
	if p.live != nil {
		return p.dropped + p.live.Dropped()
	}
	return p.dropped
}

// Close stops the player and its source. It is idempotent.
func (p *Player) Close() {
	if p.closed {
		return
	}
	p.closed = true
	p.src.Close()
	if p.live != nil {
		p.live.Close()
	}
}
