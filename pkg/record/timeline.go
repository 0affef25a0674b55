package record

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/streamd/streamd/pkg/frame"
)

// Source is a camera's frames in capture order, from one tier or topic.
// Next returns io.EOF when it has nothing more to give now.
type Source interface {
	Next(ctx context.Context) (*frame.Frame, error)
	Close()
}

// merged plays the two tiers as one: every frame of both in capture order,
// except that a reduced-tier frame the full tier holds too (the same
// capture time and sequence number: the reduced tier keeps one frame of
// every second, events included) is given once.
type merged struct {
	a, b   Source // reduced, full
	ha, hb *frame.Frame
	ea, eb bool // ended
}

// Merge returns the frames of the reduced and full tiers in capture order,
// without the frames both hold twice. Either may be nil.
func Merge(reduced, full Source) Source {
	m := &merged{a: reduced, b: full}
	m.ea, m.eb = reduced == nil, full == nil
	return m
}

func (m *merged) fill(ctx context.Context, s Source, head **frame.Frame, ended *bool) error {
	if *head != nil || *ended {
		return nil
	}
	f, err := s.Next(ctx)
	switch {
	case errors.Is(err, io.EOF):
		*ended = true
		return nil
	case err != nil:
		return err
	}
	*head = f
	return nil
}

func (m *merged) Next(ctx context.Context) (*frame.Frame, error) {
	if err := m.fill(ctx, m.a, &m.ha, &m.ea); err != nil {
		return nil, err
	}
	if err := m.fill(ctx, m.b, &m.hb, &m.eb); err != nil {
		return nil, err
	}
	switch {
	case m.ha == nil && m.hb == nil:
		return nil, io.EOF
	case m.hb == nil:
		f := m.ha
		m.ha = nil
		return f, nil
	case m.ha == nil:
		f := m.hb
		m.hb = nil
		return f, nil
	}
	if d := m.ha.CapturedAt.Sub(m.hb.CapturedAt); m.ha.Seq == m.hb.Seq && d > -time.Millisecond && d < time.Millisecond {
		m.ha = nil // the same frame (chunks keep times to the microsecond): the full tier's copy
	}
	if m.ha != nil && m.ha.CapturedAt.Before(m.hb.CapturedAt) {
		f := m.ha
		m.ha = nil
		return f, nil
	}
	f := m.hb
	m.hb = nil
	return f, nil
}

func (m *merged) Close() {
	if m.a != nil {
		m.a.Close()
	}
	if m.b != nil {
		m.b.Close()
	}
}

// Timeline plays a camera's whole history as one stream: the recording
// while it is older than what the frames topic holds, then the frames
// topic (which goes on into live), crossing over with no gap and no frame
// twice. It is a replay.Frames.
//
// Retention removes the frames topic's oldest records a segment at a time,
// so where it starts may move between asking and reading. At the crossing
// the timeline reads the frames topic's first frame, and plays the
// recording up to it: whatever retention removed meanwhile still comes
// from the recording.
type Timeline struct {
	rec      Source
	liveFrom func() time.Time                      // the oldest capture time the frames topic holds
	openLive func(since time.Time) (Source, error) // the frames topic from since on
	last     time.Time                             // capture time of the last frame given
	live     Source
	recHead  *frame.Frame // the recording's next frame, once crossing
	liveHead *frame.Frame // the frames topic's first frame, until given
	closed   bool
	// reopenRec, if set, opens the recording again from since when the
	// frames topic's reader ends under the timeline (Reopen).
	reopenRec func(since time.Time) (Source, error)
	given     bool // a frame was given since the last reopening
}

// Reopen makes the timeline survive the frames topic's reader ending (an
// error from it other than the context's): retention removing the records
// it was about to read, when playback crossed near the topic's start.
// The timeline then goes back to the recording from the last frame given,
// opened with openRec, and crosses again, as at first. It gives up, with
// the error, when the reader ends again before a frame was given.
func (t *Timeline) Reopen(openRec func(since time.Time) (Source, error)) { t.reopenRec = openRec }

// NewTimeline plays rec, the recording from at on (Merge of the tiers),
// while its frames are older than what the frames topic holds at full rate
// (captured before liveFrom()), then the frames topic, opened with
// openLive right after the last frame given (or at at), also when rec has
// nothing more. liveFrom is asked at every frame of the recording: the
// caller caches it.
func NewTimeline(rec Source, at time.Time, liveFrom func() time.Time, openLive func(since time.Time) (Source, error)) *Timeline {
	return &Timeline{rec: rec, last: at.Add(-time.Nanosecond), liveFrom: liveFrom, openLive: openLive}
}

// recNext returns the recording's next frame after the last given, nil at
// its end.
func (t *Timeline) recNext(ctx context.Context) (*frame.Frame, error) {
	for {
		f, err := t.rec.Next(ctx)
		switch {
		case errors.Is(err, io.EOF):
			return nil, nil
		case err != nil:
			return nil, err
		case f.CapturedAt.After(t.last):
			return f, nil
		}
		// Before the start, or out of order across tiers: skip.
	}
}

func (t *Timeline) give(f *frame.Frame) (*frame.Frame, error) {
	t.last = f.CapturedAt
	t.given = true
	return f, nil
}

// fallBack handles an error of the frames topic's reader: back to the
// recording (Reopen) when that can help, else the error.
func (t *Timeline) fallBack(ctx context.Context, err error) (*frame.Frame, error) {
	if t.reopenRec == nil || !t.given || ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	rec, rerr := t.reopenRec(t.last.Add(time.Nanosecond))
	if rerr != nil {
		return nil, err
	}
	t.live.Close()
	t.live, t.liveHead, t.recHead, t.rec, t.given = nil, nil, nil, rec, false
	return t.Next(ctx)
}

// Next returns the next frame of the camera's history.
func (t *Timeline) Next(ctx context.Context) (*frame.Frame, error) {
	if t.closed {
		return nil, io.ErrClosedPipe
	}
	if t.live == nil {
		// recHead: the recording's frame read before a failed crossing.
		f := t.recHead
		t.recHead = nil
		if f == nil {
			var err error
			if f, err = t.recNext(ctx); err != nil {
				return nil, err
			}
		}
		if f != nil && f.CapturedAt.Before(t.liveFrom()) {
			return t.give(f)
		}
		// Cross: the frames topic has the rest at full rate (or the
		// recording has nothing more).
		live, err := t.openLive(t.last.Add(time.Nanosecond))
		if err != nil {
			t.recHead = f // not lost: the caller may ask again
			return nil, err
		}
		lf, err := live.Next(ctx)
		if err != nil {
			live.Close()
			t.recHead = f
			return nil, err
		}
		t.live, t.liveHead, t.recHead = live, lf, f
	}
	// The recording's frames from before the frames topic's first.
	if t.recHead != nil && t.recHead.CapturedAt.Before(t.liveHead.CapturedAt) {
		next, err := t.recNext(ctx)
		if err != nil {
			return nil, err // recHead kept for the next call
		}
		f := t.recHead
		t.recHead = next
		return t.give(f)
	}
	t.recHead = nil
	if t.rec != nil {
		t.rec.Close()
		t.rec = nil
	}
	if f := t.liveHead; f != nil {
		t.liveHead = nil
		if f.CapturedAt.After(t.last) {
			return t.give(f)
		}
	}
	for {
		f, err := t.live.Next(ctx)
		if err != nil {
			return t.fallBack(ctx, err)
		}
		if f.CapturedAt.After(t.last) {
			return t.give(f)
		}
	}
}

// Live reports whether the timeline has crossed into the frames topic.
func (t *Timeline) Live() bool { return t.live != nil }

// Close stops whichever sources are open. It is idempotent.
func (t *Timeline) Close() {
	if t.closed {
		return
	}
	t.closed = true
	if t.live != nil {
		t.live.Close()
	}
	if t.rec != nil {
		t.rec.Close()
	}
}
