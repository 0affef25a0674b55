package replay

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/frame"
)

// frames is a source of n frames captured every interval from start.
type frames struct {
	start    time.Time
	interval time.Duration
	n, i     int
	closed   int
}

func (s *frames) Next(ctx context.Context) (*frame.Frame, error) {
	if s.i >= s.n {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f := &frame.Frame{Camera: "c", Seq: uint64(s.i), CapturedAt: s.start.Add(time.Duration(s.i) * s.interval)}
	s.i++
	return f, nil
}
func (s *frames) Close() { s.closed++ }

func play(t *testing.T, p *Player, n int) (shown []*frame.Frame, took time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	began := time.Now()
	for range n {
		f, _, err := p.Next(ctx)
		if err != nil {
			t.Fatalf("after %d frames: %v", len(shown), err)
		}
		shown = append(shown, f)
	}
	return shown, time.Since(began)
}

func TestRealTimePacing(t *testing.T) {
	src := &frames{start: time.Now().Add(-time.Hour), interval: 100 * time.Millisecond, n: 100}
	p, err := New(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	shown, took := play(t, p, 11) // the first at once, then 10 intervals
	if took < 900*time.Millisecond || took > 1600*time.Millisecond {
		t.Fatalf("1 s of capture time played in %s", took)
	}
	for i, f := range shown {
		if f.Seq != uint64(i) {
			t.Fatalf("frame %d has seq %d: frames skipped at speed 1 and 10 fps", i, f.Seq)
		}
	}
}

// At speed 4 a 30 fps camera advances 4 s a second, but only 30 frames a
// second are shown: the rest are skipped and counted.
func TestFastSpeedIsRateCapped(t *testing.T) {
	src := &frames{start: time.Now().Add(-time.Hour), interval: time.Second / 30, n: 1000}
	p, err := New(src, Options{Speed: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	shown, took := play(t, p, 31)
	span := shown[len(shown)-1].CapturedAt.Sub(shown[0].CapturedAt)
	if span < 3500*time.Millisecond || span > 4500*time.Millisecond {
		t.Fatalf("30 frames shown span %s of capture time, want about 4 s at speed 4", span)
	}
	if took < 800*time.Millisecond || took > 1800*time.Millisecond {
		t.Fatalf("30 frames took %s, want about 1 s at the 30 fps cap", took)
	}
	if p.Dropped() < 60 {
		t.Fatalf("dropped %d, want about 90", p.Dropped())
	}
}

// A stalled viewer is re-anchored: no burst of overdue frames after it.
func TestStallReanchors(t *testing.T) {
	src := &frames{start: time.Now().Add(-time.Hour), interval: 100 * time.Millisecond, n: 100}
	p, _ := New(src, Options{})
	defer p.Close()
	play(t, p, 2)
	time.Sleep(2 * time.Second)
	_, took := play(t, p, 6) // one at once (late), then 5 paced
	if took < 400*time.Millisecond {
		t.Fatalf("6 frames after a stall came in %s: a burst", took)
	}
}

// live is a live reader that counts.
type live struct{ next uint64 }

func (l *live) Next(context.Context) (*frame.Frame, []byte, error) {
	l.next++
	return &frame.Frame{Seq: l.next}, []byte("part"), nil
}
func (l *live) Dropped() uint64 { return 0 }
func (l *live) Close()          {}

// Reaching the live edge hands over to the live fan-out right after the
// frame shown; before the edge, nothing is asked.
func TestHandOverAtLiveEdge(t *testing.T) {
	now := time.Now()
	src := &frames{start: now.Add(-3 * time.Second), interval: 500 * time.Millisecond, n: 7} // the last ones are recent
	var askedSeq uint64
	var asked int
	p, _ := New(src, Options{Speed: 8, LiveAfter: func(seq uint64, at time.Time) (Reader, bool) {
		asked++
		askedSeq = seq
		if time.Since(at) > time.Second {
			t.Errorf("asked to go live at a frame %s old", time.Since(at))
		}
		return &live{next: seq}, true
	}})
	defer p.Close()
	ctx := context.Background()
	var seqs []uint64
	for !p.Live() {
		f, _, err := p.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, f.Seq)
	}
	f, part, err := p.Next(ctx)
	if err != nil || f.Seq != askedSeq+1 || string(part) != "part" {
		t.Fatalf("after the hand-over got %v %q %v, want seq %d from the live reader", f, part, err, askedSeq+1)
	}
	if asked != 1 || src.closed == 0 {
		t.Fatalf("asked %d times, source closed %d", asked, src.closed)
	}
	if seqs[len(seqs)-1] != askedSeq {
		t.Fatalf("last replayed seq %d, handed over after %d", seqs[len(seqs)-1], askedSeq)
	}
}

func TestSpeedRange(t *testing.T) {
	for _, s := range []float64{0.1, 9, -1} {
		if _, err := New(&frames{}, Options{Speed: s}); !errors.Is(err, ErrSpeed) {
			t.Errorf("speed %g: %v", s, err)
		}
	}
}

// At a speed the cap thins, the long-run rate stays at MaxFPS, and the
// last frame held is shown even though nothing follows it.
func TestCapRateAndLastFrame(t *testing.T) {
	src := &frames{start: time.Now().Add(-time.Hour), interval: time.Second / 30, n: 481} // 16 s of capture
	p, _ := New(src, Options{Speed: 8})
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	var shown []uint64
	for {
		f, _, err := p.Next(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", shown[len(shown)-1], err)
		}
		shown = append(shown, f.Seq)
		if f.Seq == 480 {
			break
		}
	}
	rate := float64(len(shown)-1) / time.Since(began).Seconds()
	if rate > 31 || rate < 25 {
		t.Fatalf("%.1f frames/s shown at speed 8 with a 30 fps cap", rate)
	}
}
