package events

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

const fps30 = time.Second / 30

// play feeds the tracker one frame per character of pattern, step apart
// from t0: 'M' motion (its box moves every frame), 'S' motion that stays the
// same, 'F' a face, 'B' motion and a face, 's' no motion and face detection
// skipped, '.' nothing. It returns the changes as "type/phase@frame".
func play(t *testing.T, tr *Tracker, step time.Duration, pattern string) []string {
	t.Helper()
	var got []string
	for i, c := range pattern {
		d := Detection{At: at(time.Duration(i) * step), Frame: FrameRef{Offset: int64(i), Seq: uint64(i)}}
		moving := Box{X: float64(i%10) / 20, Y: 0.1, W: 0.2, H: 0.3}
		face := Box{X: 0.4, Y: 0.2, W: 0.05, H: 0.08}
		switch c {
		case 'M':
			d.Motion = []Box{moving}
		case 'S':
			d.Motion = []Box{{X: 0.5, Y: 0.5, W: 0.1, H: 0.1}}
		case 'F':
			d.Faces = []Box{face}
		case 'B':
			d.Motion, d.Faces = []Box{moving}, []Box{face}
		case 's':
			d.FacesSkipped = true
		case '.':
		default:
			t.Fatalf("pattern %q: unknown frame %q", pattern, c)
		}
		for _, e := range tr.Observe(d) {
			checkEvent(t, e)
			got = append(got, fmt.Sprintf("%s/%s@%d", e.Type, e.Phase, i))
		}
	}
	return got
}

// checkEvent fails unless e is a valid, marshalable event of this package's
// tracker.
func checkEvent(t *testing.T, e Event) {
	t.Helper()
	if _, err := Marshal(e); err != nil {
		t.Fatalf("tracker made an invalid event: %v\n%+v", err, e)
	}
	if !idPattern.MatchString(e.ID) {
		t.Fatalf("id %q is not Frigate-like", e.ID)
	}
}

func TestTrackerHysteresis(t *testing.T) {
	short := TrackerOptions{Gap: 500 * time.Millisecond, FaceGap: 300 * time.Millisecond, UpdateInterval: time.Hour}
	with := func(f func(*TrackerOptions)) TrackerOptions {
		o := short
		f(&o)
		return o
	}
	tests := []struct {
		name    string
		opts    TrackerOptions
		pattern string // at 10 frames a second
		want    []string
	}{
		{"isolated blips make no event", short, "M..M.M..M.M.......", nil},
		{"a blip is an event with MinFrames 1", with(func(o *TrackerOptions) { o.MinFrames = 1 }),
			"M......", []string{"motion/start@0", "motion/end@5"}},
		{"two consecutive frames start an event", short, "MM", []string{"motion/start@1"}},
		{"MinFrames 4", with(func(o *TrackerOptions) { o.MinFrames = 4 }), "MMM.MMMM", []string{"motion/start@7"}},
		{"holes shorter than the gap keep one event", short, "MM.M..M.M......",
			[]string{"motion/start@1", "motion/end@13"}},
		{"a gap splits events", short, "MM.....MM",
			[]string{"motion/start@1", "motion/end@6", "motion/start@8"}},
		{"updates at most every UpdateInterval", with(func(o *TrackerOptions) { o.UpdateInterval = 300 * time.Millisecond }),
			"MMMMMMMMMM", []string{"motion/start@1", "motion/update@4", "motion/update@7"}},
		{"no update when nothing changed", with(func(o *TrackerOptions) { o.UpdateInterval = 300 * time.Millisecond }),
			"SSSSSSSSSS", []string{"motion/start@1"}},
		{"a face on one frame makes no event", short, "F.....", nil},
		{"a face on two frames", short, "FF....", []string{"face/start@1", "face/end@4"}},
		{"a face event with MinFaceFrames 1", with(func(o *TrackerOptions) { o.MinFaceFrames = 1 }),
			"F...", []string{"face/start@0", "face/end@3"}},
		{"skipped face detection does not break a run", short, "FsF", []string{"face/start@2"}},
		{"a frame without a face breaks a run", short, "F.F", nil},
		{"the face gap runs over skipped frames", short, "FFsss", []string{"face/start@1", "face/end@4"}},
		{"motion and faces are separate events", short, "BB", []string{"motion/start@1", "face/start@1"}},
		{"ends come first in a frame", with(func(o *TrackerOptions) { o.MinFrames = 1 }),
			"FF..M", []string{"face/start@1", "face/end@4", "motion/start@4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := play(t, NewTracker("cam", tc.opts), 100*time.Millisecond, tc.pattern)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("pattern %q\n got %q\nwant %q", tc.pattern, got, tc.want)
			}
		})
	}
}

// TestCrossingAt30FPS: one person crosses the scene in 6 s at 30 fps; the
// detector misses about a quarter of the frames and its boxes jitter. That
// is one event: one start, at most one update a second, one end Gap after
// the last motion, carrying the peak.
func TestCrossingAt30FPS(t *testing.T) {
	tr := NewTracker("lobby", TrackerOptions{})
	rng := rand.New(rand.NewPCG(1, 2))
	const crossing, after = 180, 20 * 30 // frames
	var (
		got       []Event
		emittedAt []int // frame index of each change
		firstRun  = -1  // first frame of the first run of two motion frames
		prevHit   = -1
		lastHit   = -1
		peakArea  float64
		peakIdx   int
		boxesAt   = map[int][]Box{}
	)
	for i := range crossing + after {
		d := Detection{At: at(time.Duration(i) * fps30), Frame: FrameRef{Partition: 0, Offset: 1000 + int64(i), CapturedAt: at(time.Duration(i) * fps30), Seq: uint64(i)}}
		if i < crossing && (i < 3 || rng.Float64() > 0.25) {
			x := float64(i)/crossing*0.8 + rng.Float64()*0.01
			d.Motion = []Box{{X: x, Y: 0.3 + rng.Float64()*0.01, W: 0.1, H: 0.4}}
			d.Area = 0.03 + 0.02*math.Sin(float64(i)/crossing*math.Pi) + rng.Float64()*0.001
			if firstRun < 0 && prevHit == i-1 {
				firstRun = prevHit
			}
			prevHit, lastHit = i, i
			if a := unitRound(d.Area); a > peakArea {
				peakArea, peakIdx = a, i
			}
			boxesAt[i] = normalize(nil, d.Motion)
		}
		for _, e := range tr.Observe(d) {
			checkEvent(t, e)
			got = append(got, e)
			emittedAt = append(emittedAt, i)
		}
	}
	if len(got) < 2 || got[0].Phase != PhaseStart || got[len(got)-1].Phase != PhaseEnd {
		t.Fatalf("want a start, updates and an end, got %d changes: %+v", len(got), got)
	}
	start, end := got[0], got[len(got)-1]
	if !start.Start.Equal(at(time.Duration(firstRun) * fps30)) {
		t.Errorf("start %v, want the first frame of the first run %v", start.Start, at(time.Duration(firstRun)*fps30))
	}
	for k, e := range got {
		if e.ID != start.ID || e.Type != TypeMotion || !e.Start.Equal(start.Start) {
			t.Fatalf("change %d belongs to another event: %+v", k, e)
		}
		if k == 0 || k == len(got)-1 {
			continue
		}
		if e.Phase != PhaseUpdate {
			t.Fatalf("change %d is a %s", k, e.Phase)
		}
		if gap := e.Updated.Sub(got[k-1].Updated); gap < DefaultUpdateInterval {
			t.Errorf("update %d only %v after the previous change", k, gap)
		}
		i := emittedAt[k]
		if !slices.Equal(e.Boxes, boxesAt[i]) || e.Frame.Seq != uint64(i) || e.Area < got[k-1].Area {
			t.Errorf("update %d at frame %d: boxes %v frame %d area %g; want that frame's boxes %v, that frame, a peak not below %g",
				k, i, e.Boxes, e.Frame.Seq, e.Area, boxesAt[i], got[k-1].Area)
		}
	}
	// The boxes move on every frame: an update every second after the start.
	if updates := len(got) - 2; updates > crossing/30 || updates < crossing/30-1 {
		t.Errorf("%d updates for a %d s crossing, want one a second", updates, crossing/30)
	}
	lastMotion := at(time.Duration(lastHit) * fps30)
	if !end.End.Equal(lastMotion) || !end.Updated.Equal(lastMotion.Add(DefaultGap)) {
		t.Errorf("end: end %v updated %v, want the last motion %v and %v later", end.End, end.Updated, lastMotion, DefaultGap)
	}
	if d := at(time.Duration(emittedAt[len(got)-1]) * fps30).Sub(lastMotion); d < DefaultGap || d >= DefaultGap+fps30 {
		t.Errorf("end emitted %v after the last motion, want on the first frame %v after it", d, DefaultGap)
	}
	if end.Area != peakArea || end.Frame.Seq != uint64(peakIdx) || !slices.Equal(end.Boxes, boxesAt[peakIdx]) {
		t.Errorf("end: area %g frame %d boxes %v; want the peak %g of frame %d with its boxes %v",
			end.Area, end.Frame.Seq, end.Boxes, peakArea, peakIdx, boxesAt[peakIdx])
	}
}

func TestTickEndsLostCamera(t *testing.T) {
	tr := NewTracker("cam", TrackerOptions{})
	var events []Event
	for i := range 10 {
		events = append(events, tr.Observe(Detection{At: at(time.Duration(i) * fps30), Motion: []Box{{X: 0.1, Y: 0.1, W: 0.2, H: 0.2}}})...)
	}
	if len(events) != 1 || events[0].Phase != PhaseStart {
		t.Fatalf("changes %+v, want one start", events)
	}
	last := at(9 * fps30) // then the camera is lost: no more frames
	if got := tr.Tick(last.Add(DefaultGap - time.Millisecond)); got != nil {
		t.Fatalf("tick before the gap: %+v", got)
	}
	got := tr.Tick(last.Add(time.Minute)) // however late the tick comes
	if len(got) != 1 || got[0].Phase != PhaseEnd || got[0].ID != events[0].ID {
		t.Fatalf("tick after the gap: %+v, want the end of %s", got, events[0].ID)
	}
	checkEvent(t, got[0])
	if !got[0].End.Equal(last) || !got[0].Updated.Equal(last.Add(DefaultGap)) {
		t.Fatalf("end %v updated %v, want %v and %v", got[0].End, got[0].Updated, last, last.Add(DefaultGap))
	}
	if again := tr.Tick(last.Add(2 * time.Minute)); again != nil {
		t.Fatalf("second tick: %+v", again)
	}
	// The camera comes back: a new event.
	var next []Event
	for i := range 2 {
		next = append(next, tr.Observe(Detection{At: last.Add(time.Hour + time.Duration(i)*fps30), Motion: []Box{{X: 0.5, Y: 0.5, W: 0.1, H: 0.1}}})...)
	}
	if len(next) != 1 || next[0].Phase != PhaseStart || next[0].ID == events[0].ID {
		t.Fatalf("after the camera came back: %+v, want the start of a new event", next)
	}
}

func TestTickForgetsRun(t *testing.T) {
	tr := NewTracker("cam", TrackerOptions{})
	box := []Box{{X: 0.1, Y: 0.1, W: 0.2, H: 0.2}}
	tr.Observe(Detection{At: at(0), Motion: box})
	tr.Tick(at(DefaultGap))
	if got := tr.Observe(Detection{At: at(DefaultGap + time.Second), Motion: box}); got != nil {
		t.Fatalf("a frame after a lost camera continued a run from before: %+v", got)
	}
}

func TestFlush(t *testing.T) {
	tr := NewTracker("cam", TrackerOptions{})
	b := []Box{{X: 0.1, Y: 0.1, W: 0.2, H: 0.2}}
	play := func(i int, d Detection) []Event {
		d.At = at(time.Duration(i) * fps30)
		return tr.Observe(d)
	}
	play(0, Detection{Motion: b, Faces: b})
	if got := play(1, Detection{Motion: b, Faces: b}); len(got) != 2 {
		t.Fatalf("want motion and face starts, got %+v", got)
	}
	play(2, Detection{Motion: b}) // a run of one motion frame is pending after the events end
	now := at(time.Minute)
	got := tr.Flush(now)
	if len(got) != 2 || got[0].Type != TypeMotion || got[1].Type != TypeFace {
		t.Fatalf("flush: %+v, want the ends of the motion and the face event", got)
	}
	for _, e := range got {
		checkEvent(t, e)
		if e.Phase != PhaseEnd || !e.Updated.Equal(now) {
			t.Fatalf("flush: %+v, want an end updated at %v", e, now)
		}
	}
	if !got[0].End.Equal(at(2*fps30)) || !got[1].End.Equal(at(fps30)) {
		t.Fatalf("ends %v and %v, want the last detections", got[0].End, got[1].End)
	}
	if got := tr.Flush(now); got != nil {
		t.Fatalf("second flush: %+v", got)
	}
	if got := play(3000, Detection{Motion: b}); got != nil {
		t.Fatalf("one motion frame after a flush started an event: %+v", got)
	}
}

func TestFaceEventCarriesMostFaces(t *testing.T) {
	tr := NewTracker("door", TrackerOptions{})
	face := func(x float64) Box { return Box{X: x, Y: 0.2, W: 0.05, H: 0.08} }
	frames := [][]Box{
		{face(0.1)},
		{face(0.1)},
		{face(0.1), face(0.3), face(0.5)},
		{face(0.1), face(0.3)},
		{face(0.1), face(0.3), face(0.5)}, // as many faces as the peak, same area: not better
	}
	var got []Event
	for i, f := range frames {
		got = append(got, tr.Observe(Detection{At: at(time.Duration(i) * fps30), Faces: f, Frame: FrameRef{Seq: uint64(i)}})...)
	}
	if fr, ok := tr.Peak(TypeFace); !ok || fr.Seq != 2 {
		t.Fatalf("face peak %+v %v, want frame 2", fr, ok)
	}
	got = append(got, tr.Tick(at(time.Minute))...)
	if len(got) != 2 {
		t.Fatalf("want a start and an end, got %+v", got)
	}
	start, end := got[0], got[1]
	if start.Type != TypeFace || start.Faces != 1 || start.Frame.Seq != 1 || len(start.Boxes) != 1 || start.Area != 0 {
		t.Fatalf("start %+v, want 1 face on frame 1", start)
	}
	if end.Faces != 3 || end.Frame.Seq != 2 || len(end.Boxes) != 3 || !end.Updated.Equal(at(4*fps30+DefaultFaceGap)) {
		t.Fatalf("end %+v, want 3 faces of frame 2, updated the face gap after the last face", end)
	}
}

func TestObserveNormalizesBoxes(t *testing.T) {
	tr := NewTracker("cam", TrackerOptions{MinFrames: 1})
	many := make([]Box, 0, MaxBoxes+8)
	for i := range MaxBoxes + 8 {
		many = append(many, Box{X: 0, Y: 0, W: 0.001 * float64(i+1), H: 0.01})
	}
	tests := []struct {
		name string
		in   []Box
		want []Box
	}{
		{"clamped into the frame", []Box{{X: -0.1, Y: 0.95, W: 0.5, H: 0.2}}, []Box{{X: 0, Y: 0.95, W: 0.5, H: 0.05}}},
		{"rounded", []Box{{X: 1.0 / 3, Y: 0.1, W: 2.0 / 3, H: 0.2}}, []Box{{X: 0.3333, Y: 0.1, W: 0.6667, H: 0.2}}},
		{"empty and NaN boxes dropped", []Box{{X: math.NaN(), Y: 0, W: 0, H: 0.5}, {X: 0.2, Y: 0.2, W: 0.1, H: 0.1}}, []Box{{X: 0.2, Y: 0.2, W: 0.1, H: 0.1}}},
		{"the largest kept", many, func() []Box {
			var w []Box
			for i := len(many) - 1; len(w) < MaxBoxes; i-- {
				w = append(w, Box{X: 0, Y: 0, W: unitRound(many[i].W), H: 0.01})
			}
			return w
		}()},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr.Flush(at(0))
			got := tr.Observe(Detection{At: at(time.Duration(i) * time.Minute), Motion: tc.in})
			if len(got) != 1 {
				t.Fatalf("want a start, got %+v", got)
			}
			checkEvent(t, got[0])
			if !slices.Equal(got[0].Boxes, tc.want) {
				t.Fatalf("boxes %v, want %v", got[0].Boxes, tc.want)
			}
			if got[0].Area <= 0 || got[0].Area > 1 {
				t.Fatalf("area %g, want the boxes' area", got[0].Area)
			}
		})
	}
	tr.Flush(at(time.Hour))
	if got := tr.Observe(Detection{At: at(time.Hour), Motion: []Box{{X: 2, Y: 2, W: 1, H: 1}}, Area: 0.5}); len(got) != 0 {
		t.Fatalf("a box outside the frame counted as motion: %+v", got)
	}
}

func TestCaptureTimeGoingBackwards(t *testing.T) {
	tr := NewTracker("cam", TrackerOptions{})
	var got []Event
	// The producer's clock steps back by a second after the second frame:
	// those frames count as captured at the latest time seen.
	for k, d := range []time.Duration{time.Second, time.Second + fps30, 0, fps30} {
		got = append(got, tr.Observe(Detection{At: at(d), Motion: []Box{{X: 0.1 * float64(k), Y: 0.1, W: 0.1, H: 0.1}}})...)
	}
	got = append(got, tr.Tick(at(time.Hour))...)
	if len(got) != 2 || got[0].Phase != PhaseStart || got[1].Phase != PhaseEnd {
		t.Fatalf("want a start and an end, got %+v", got)
	}
	for _, e := range got {
		checkEvent(t, e)
	}
	if end := got[1]; !end.End.Equal(at(time.Second+fps30)) || end.Updated.Before(got[0].Updated) {
		t.Fatalf("end %v updated %v; want the latest capture time %v, after the start's %v", end.End, end.Updated, at(time.Second+fps30), got[0].Updated)
	}
}

func TestPeak(t *testing.T) {
	tr := NewTracker("cam", TrackerOptions{})
	if _, ok := tr.Peak(TypeMotion); ok {
		t.Fatal("peak of an idle tracker")
	}
	for i, area := range []float64{0.1, 0.3, 0.2} {
		tr.Observe(Detection{At: at(time.Duration(i) * fps30), Motion: []Box{{X: 0, Y: 0, W: 0.5, H: 0.5}}, Area: area, Frame: FrameRef{Seq: uint64(i)}})
		fr, ok := tr.Peak(TypeMotion)
		if want := min(uint64(i), 1); !ok || fr.Seq != want {
			t.Fatalf("after frame %d: peak %+v %v, want frame %d", i, fr, ok, want)
		}
	}
	if _, ok := tr.Peak(TypeFace); ok {
		t.Fatal("face peak without faces")
	}
}

// TestObserveQuietFramesAllocateNothing keeps the per-frame path honest:
// frames that emit nothing, idle or inside an event, allocate nothing.
func TestObserveQuietFramesAllocateNothing(t *testing.T) {
	tr := NewTracker("cam", TrackerOptions{Gap: time.Hour, UpdateInterval: time.Hour})
	motion := make([]Box, 4)
	faces := make([]Box, 2)
	i := 0
	frame := func(withMotion bool) Detection {
		i++
		d := Detection{At: at(time.Duration(i) * fps30), Frame: FrameRef{Offset: int64(i), Seq: uint64(i)}}
		if withMotion {
			for k := range motion {
				motion[k] = Box{X: float64(i%50) / 100, Y: float64(k) / 10, W: 0.1, H: 0.05}
			}
			d.Motion, d.Area = motion, float64(i%1000)/1000 // boxes change, peaks rise
			faces[0], faces[1] = Box{X: 0.1, Y: 0.1, W: 0.05, H: 0.05}, Box{X: float64(i%50) / 100, Y: 0.5, W: 0.05, H: 0.05}
			d.Faces = faces
		}
		return d
	}
	idle := testing.AllocsPerRun(1000, func() {
		if got := tr.Observe(frame(false)); got != nil {
			t.Fatalf("idle frame emitted %+v", got)
		}
	})
	if got := tr.Observe(frame(true)); got != nil {
		t.Fatalf("first motion frame emitted %+v", got)
	}
	if got := tr.Observe(frame(true)); len(got) != 2 {
		t.Fatalf("second motion frame: %+v, want motion and face starts", got)
	}
	active := testing.AllocsPerRun(1000, func() {
		if got := tr.Observe(frame(true)); got != nil {
			t.Fatalf("throttled frame emitted %+v", got)
		}
	})
	if idle != 0 || active != 0 {
		t.Fatalf("allocations per quiet frame: %.1f idle, %.1f inside events; want 0", idle, active)
	}
}

// BenchmarkObserve feeds a 30 fps camera that sees a 6 s crossing with
// faces every 30 s: mostly quiet frames, some starts, updates and ends.
func BenchmarkObserve(b *testing.B) {
	const cycle = 30 * 30
	rng := rand.New(rand.NewPCG(3, 4))
	dets := make([]Detection, cycle)
	for i := range dets {
		if i < 180 && rng.Float64() > 0.25 {
			dets[i].Motion = []Box{{X: float64(i) / 200, Y: 0.3, W: 0.1, H: 0.4}, {X: 0.7, Y: rng.Float64() * 0.5, W: 0.05, H: 0.05}}
			dets[i].Area = rng.Float64() * 0.1
			if i > 60 && i < 120 {
				dets[i].Faces = []Box{{X: float64(i) / 200, Y: 0.3, W: 0.03, H: 0.05}}
			}
		}
	}
	tr := NewTracker("cam", TrackerOptions{})
	changes := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		d := dets[i%cycle]
		d.At = at(time.Duration(i) * fps30)
		d.Frame = FrameRef{Offset: int64(i), Seq: uint64(i)}
		changes += len(tr.Observe(d))
	}
	b.ReportMetric(float64(changes)/float64(b.N)*30*60, "changes/min")
}

// TestTrackerMaxLength: motion that never stops is a series of events of
// MaxLength each, every one ended and the next starting on the same frame
// and naming the one it continues; a scene that stops in between ends as
// usual; a negative MaxLength keeps one event.
func TestTrackerMaxLength(t *testing.T) {
	const step = 100 * time.Millisecond // 10 fps
	run := func(t *testing.T, opts TrackerOptions, frames int, moving func(i int) bool) []Event {
		t.Helper()
		tr := NewTracker("cam", opts)
		var out []Event
		for i := range frames {
			d := Detection{At: at(time.Duration(i) * step), Frame: FrameRef{Offset: int64(i), Seq: uint64(i)}}
			if moving(i) {
				d.Motion = []Box{{X: float64(i%10) / 20, Y: 0.1, W: 0.2, H: 0.3}}
				d.Faces = []Box{{X: 0.4, Y: 0.2, W: 0.05, H: 0.08}}
			}
			for _, e := range tr.Observe(d) {
				checkEvent(t, e)
				out = append(out, e)
			}
		}
		return append(out, tr.Flush(at(time.Duration(frames)*step))...)
	}
	always := func(int) bool { return true }
	opts := TrackerOptions{MaxLength: 2 * time.Minute, UpdateInterval: time.Hour}

	t.Run("continuous motion is cut every MaxLength", func(t *testing.T) {
		evs := run(t, opts, 3000, always) // 300 s
		for _, typ := range []Type{TypeMotion, TypeFace} {
			var starts, ends []Event
			for _, e := range evs {
				if e.Type != typ {
					continue
				}
				switch e.Phase {
				case PhaseStart:
					starts = append(starts, e)
				case PhaseEnd:
					ends = append(ends, e)
				}
			}
			// 0-120 s, 120-240 s, 240-300 s (flushed).
			if len(starts) != 3 || len(ends) != 3 {
				t.Fatalf("%s: %d starts and %d ends in 300 s of motion, want 3 and 3", typ, len(starts), len(ends))
			}
			for i := range 3 {
				s, e := starts[i], ends[i]
				if s.ID != e.ID {
					t.Fatalf("%s piece %d: start %s, end %s", typ, i, s.ID, e.ID)
				}
				if got := e.End.Sub(e.Start); got > 2*time.Minute {
					t.Errorf("%s piece %d lasts %s, longer than MaxLength", typ, i, got)
				}
				if i == 0 {
					if s.Continues != "" || !s.Start.Equal(at(0)) {
						t.Errorf("%s: the first piece starts at %s continuing %q, want the first frame and nothing", typ, s.Start, s.Continues)
					}
					continue
				}
				prev := ends[i-1]
				if s.Continues != prev.ID || e.Continues != prev.ID {
					t.Errorf("%s piece %d continues %q (end says %q), want %q", typ, i, s.Continues, e.Continues, prev.ID)
				}
				if !s.Start.Equal(*prev.End) || !prev.End.Equal(at(time.Duration(i)*2*time.Minute)) {
					t.Errorf("%s piece %d starts at %s, the piece before ended at %s; want both at %s", typ, i, s.Start, prev.End, at(time.Duration(i)*2*time.Minute))
				}
				if s.ID == prev.ID {
					t.Errorf("%s piece %d reuses id %s", typ, i, s.ID)
				}
			}
		}
	})
	t.Run("the gap still ends an event first", func(t *testing.T) {
		// 60 s of motion, 20 s still, 60 s of motion: two events, no cut.
		evs := run(t, opts, 1400, func(i int) bool { return i < 600 || i >= 800 })
		var motion []string
		for _, e := range evs {
			if e.Type == TypeMotion {
				motion = append(motion, string(e.Phase)+"/"+e.Continues)
			}
		}
		if want := []string{"start/", "end/", "start/", "end/"}; !slices.Equal(motion, want) {
			t.Fatalf("changes %v, want %v", motion, want)
		}
	})
	t.Run("negative MaxLength: no limit", func(t *testing.T) {
		o := opts
		o.MaxLength = -1
		n := 0
		for _, e := range run(t, o, 3000, always) {
			if e.Type == TypeMotion && e.Phase == PhaseStart {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d motion events in 300 s of motion without a limit, want 1", n)
		}
	})
	t.Run("zero MaxLength: the default", func(t *testing.T) {
		n := 0
		for _, e := range run(t, TrackerOptions{UpdateInterval: time.Hour}, int(DefaultMaxLength/step)+50, always) {
			if e.Type == TypeMotion && e.Phase == PhaseStart {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("%d motion events in %s of motion, want 2", n, DefaultMaxLength+5*time.Second)
		}
	})
}
