package analyzer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/frame"
)

// fakeMotion reports motion on frames whose first byte is 1, and fails on
// frames whose first byte is 0xee; it can be made slow.
type fakeMotion struct {
	delay  time.Duration
	closed bool
}

func (m *fakeMotion) Detect(jpeg []byte) (Motion, Timing, error) {
	time.Sleep(m.delay)
	switch jpeg[0] {
	case 0xee:
		return Motion{}, Timing{}, errors.New("not a jpeg")
	case 1:
		return Motion{Boxes: []events.Box{{X: 0.2, Y: 0.2, W: 0.1, H: 0.3}}, Area: 0.03}, Timing{Decode: time.Millisecond, Motion: time.Millisecond}, nil
	}
	return Motion{}, Timing{Decode: time.Millisecond}, nil
}
func (m *fakeMotion) Close() error { m.closed = true; return nil }

// fakeFaces finds one face inside the region.
type fakeFaces struct{ calls int }

func (f *fakeFaces) Detect(_ []byte, region *events.Box) ([]events.Box, error) {
	f.calls++
	return []events.Box{{X: region.X, Y: region.Y, W: region.W / 2, H: region.H / 2}}, nil
}
func (f *fakeFaces) Close() error { return nil }

// sink records what the analyzer publishes.
type sink struct {
	mu       sync.Mutex
	events   []events.Event
	snaps    map[string][]byte
	activity []events.Activity
}

func (s *sink) PublishActivity(a events.Activity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.activity = append(s.activity, a)
	return nil
}

func (s *sink) PublishEvent(e events.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	return nil
}

func (s *sink) PublishSnapshot(e events.Event, jpeg []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snaps == nil {
		s.snaps = map[string][]byte{}
	}
	s.snaps[e.ID] = jpeg
	return nil
}

func (s *sink) phases(typ events.Type) (out []events.Phase) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e.Type == typ {
			out = append(out, e.Phase)
		}
	}
	return out
}

func start(t *testing.T, o Options) (*Analyzer, context.CancelFunc) {
	t.Helper()
	a := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return a, stop
}

func frameAt(camera string, seq uint64, at time.Time, motion byte) *frame.Frame {
	return &frame.Frame{Camera: camera, Seq: seq, CapturedAt: at, Data: []byte{motion, 0xff, 0xd8}, Partition: 3, Offset: int64(100 + seq)}
}

// feed sends frames at fps for d, with motion while moving(i) says so.
func feed(a *Analyzer, camera string, fps int, d time.Duration, moving func(i int) bool) {
	n := int(d.Seconds() * float64(fps))
	for i := range n {
		var m byte
		if moving(i) {
			m = 1
		}
		a.Feed(frameAt(camera, uint64(i), time.Now(), m))
		time.Sleep(time.Second / time.Duration(fps))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// One crossing is one event with a snapshot: start, at most one update a
// second, end after the gap; faces are looked for only on moving frames.
func TestOneCrossingIsOneEvent(t *testing.T) {
	s := &sink{}
	faces := &fakeFaces{}
	motion := &fakeMotion{}
	a, stop := start(t, Options{FPS: 30, FacesFPS: 5, Sink: s,
		Tracker: events.TrackerOptions{Gap: 500 * time.Millisecond, FaceGap: 500 * time.Millisecond},
		Camera: func(id string) (Camera, bool, error) {
			return Camera{Motion: motion, Faces: faces}, true, nil
		},
		Annotate: func(jpeg []byte, _ events.Event) ([]byte, error) {
			return append([]byte("annotated:"), jpeg...), nil
		}})
	feed(a, "lobby", 30, 1500*time.Millisecond, func(i int) bool { return i >= 5 && i < 35 })
	waitFor(t, "the motion event's end", func() bool {
		p := s.phases(events.TypeMotion)
		return len(p) > 0 && p[len(p)-1] == events.PhaseEnd
	})
	p := s.phases(events.TypeMotion)
	if p[0] != events.PhaseStart || len(p) > 4 {
		t.Fatalf("motion phases %v: want one start, at most two updates, one end", p)
	}
	s.mu.Lock()
	first := s.events[0]
	snap := s.snaps[first.ID]
	s.mu.Unlock()
	if !first.Snapshot || string(snap[:10]) != "annotated:" {
		t.Fatalf("start %+v, snapshot %q", first, snap)
	}
	if first.Frame.Partition != 3 || first.Frame.Offset < 100 {
		t.Fatalf("event refers to frame %+v", first.Frame)
	}
	if faces.calls == 0 || faces.calls > 10 {
		t.Fatalf("faces detected %d times over 1 s of motion at a cap of 5/s", faces.calls)
	}
	if fp := s.phases(events.TypeFace); len(fp) == 0 || fp[0] != events.PhaseStart {
		t.Fatalf("face phases %v", fp)
	}
	stop()
	if !motion.closed {
		t.Fatal("detector not closed")
	}
	st := a.Stats()
	if len(st) != 1 || st[0].MotionEvents != 1 || st[0].Analyzed < 30 {
		t.Fatalf("stats %+v", st)
	}
}

// A detector slower than the frame rate never makes the analyzer fall
// behind: it analyzes the newest frame and counts the skipped ones.
func TestSlowDetectorStaysLive(t *testing.T) {
	s := &sink{}
	a, _ := start(t, Options{FPS: 100, Sink: s, Camera: func(string) (Camera, bool, error) {
		return Camera{Motion: &fakeMotion{delay: 40 * time.Millisecond}}, true, nil
	}})
	began := time.Now()
	feed(a, "yard", 100, time.Second, func(int) bool { return false })
	took := time.Since(began)
	waitFor(t, "every frame accounted for", func() bool {
		st := a.Stats()
		return len(st) == 1 && st[0].Analyzed+st[0].Skipped == 100
	})
	st := a.Stats()[0]
	// At 40 ms an analysis, at most took/40ms+2 frames can have been
	// analyzed; the rest were skipped, none queued.
	if most := uint64(took/(40*time.Millisecond)) + 2; st.Analyzed > most || st.Skipped == 0 {
		t.Fatalf("analyzed %d (at most %d in %s), skipped %d of 100", st.Analyzed, most, took, st.Skipped)
	}
	if lag := time.Since(st.LastCaptured); lag > 500*time.Millisecond {
		t.Fatalf("last analyzed frame is %s old", lag)
	}
}

// Frames captured longer ago than MaxLag are skipped, not analyzed late;
// undecodable frames are counted; cameras opted out are not analyzed.
func TestLagBadFramesAndOptOut(t *testing.T) {
	s := &sink{}
	a, _ := start(t, Options{MaxLag: 200 * time.Millisecond, Sink: s, Camera: func(id string) (Camera, bool, error) {
		if id == "private" {
			return Camera{}, false, nil
		}
		return Camera{Motion: &fakeMotion{}}, true, nil
	}})
	a.Feed(frameAt("door", 0, time.Now().Add(-time.Minute), 1))
	waitFor(t, "the old frame skipped", func() bool { st := a.Stats(); return len(st) == 1 && st[0].Skipped == 1 })
	a.Feed(frameAt("door", 1, time.Now(), 0xee))
	waitFor(t, "the bad frame counted", func() bool { return a.Invalid() == 1 })
	a.Feed(frameAt("private", 0, time.Now(), 1))
	a.Feed(frameAt("door", 2, time.Now(), 0))
	waitFor(t, "a good frame analyzed", func() bool { return a.Stats()[0].Analyzed == 1 })
	if st := a.Stats(); len(st) != 1 || st[0].Camera != "door" {
		t.Fatalf("stats %+v: private must not be analyzed", st)
	}
	if a.ignored.Load() != 1 {
		t.Fatalf("ignored %d", a.ignored.Load())
	}
}

// Past MaxCameras, frames of new cameras are counted and dropped: a flood
// of record keys cannot start a worker and detectors each.
func TestCameraLimit(t *testing.T) {
	s := &sink{}
	a, _ := start(t, Options{MaxCameras: 2, Sink: s, Camera: func(string) (Camera, bool, error) {
		return Camera{Motion: &fakeMotion{}}, true, nil
	}})
	for _, id := range []string{"a", "b", "c", "d", "a"} {
		a.Feed(frameAt(id, 0, time.Now(), 0))
	}
	waitFor(t, "two cameras analyzed", func() bool { return len(a.Stats()) == 2 })
	if a.OverLimit() != 2 {
		t.Fatalf("over limit %d, want 2 (c and d)", a.OverLimit())
	}
}

// fakeObjects finds a person inside the region, slowly, and counts the
// inferences running at once.
type fakeObjects struct {
	delay          time.Duration
	mu             sync.Mutex
	fail           error // returned by Detect while set
	calls, running int
	maxRunning     int
	closed         bool
	regions        []events.Box
}

func (f *fakeObjects) Detect(_ []byte, region *events.Box) ([]events.ObjectDetection, error) {
	f.mu.Lock()
	f.calls++
	f.running++
	f.maxRunning = max(f.maxRunning, f.running)
	f.regions = append(f.regions, *region)
	f.mu.Unlock()
	time.Sleep(f.delay)
	f.mu.Lock()
	f.running--
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	return []events.ObjectDetection{{Label: "person", Score: 0.7, Box: *region}}, nil
}

func (f *fakeObjects) Close() error { f.mu.Lock(); f.closed = true; f.mu.Unlock(); return nil }

// Objects are detected on moving frames only, on the moving region, at
// most ObjectsFPS a second; a person in view is one object event, with a
// snapshot, ended after the gap; the pool's detector is closed by Run.
func TestObjectEvents(t *testing.T) {
	s := &sink{}
	det := &fakeObjects{}
	a, stop := start(t, Options{
		FPS: 30, ObjectsFPS: 5, ObjectDetectors: []ObjectDetector{det}, Sink: s,
		Objects: events.ObjectTrackerOptions{Gap: 500 * time.Millisecond},
		Camera: func(string) (Camera, bool, error) {
			return Camera{Motion: &fakeMotion{}, Objects: true}, true, nil
		},
	})
	feed(a, "door", 30, 2*time.Second, func(i int) bool { return i >= 15 && i < 45 }) // 1 s of motion
	waitFor(t, "the object event's end", func() bool {
		p := s.phases(events.TypeObject)
		return len(p) > 0 && p[len(p)-1] == events.PhaseEnd
	})
	p := s.phases(events.TypeObject)
	if p[0] != events.PhaseStart || len(p) > 3 {
		t.Errorf("object phases %v, want start, at most one update, end", p)
	}
	s.mu.Lock()
	var first events.Event
	for _, e := range s.events {
		if e.Type == events.TypeObject {
			first = e
			break
		}
	}
	_, snap := s.snaps[first.ID]
	s.mu.Unlock()
	if first.Label != "person" || !snap || first.Validate() != nil {
		t.Errorf("object event %+v (snapshot %v), want a valid person event with a snapshot", first, snap)
	}
	det.mu.Lock()
	calls, region := det.calls, det.regions[0]
	det.mu.Unlock()
	// 1 s of motion at 5 a second: 5 or 6 inferences, not 30.
	if calls < 4 || calls > 8 {
		t.Errorf("%d inferences in 1 s of motion, want 5-6 (ObjectsFPS)", calls)
	}
	if region != (events.Box{X: 0.2, Y: 0.2, W: 0.1, H: 0.3}) {
		t.Errorf("searched %+v, want the moving region", region)
	}
	st := a.Stats()
	if len(st) != 1 || st[0].ObjectEvents != 1 || st[0].Objects != uint64(calls) {
		t.Errorf("stats %+v, want 1 object event and %d detections", st, calls)
	}
	stop()
	det.mu.Lock()
	defer det.mu.Unlock()
	if !det.closed {
		t.Error("Run returned without closing the object detector")
	}
}

// The pool bounds the inferences running at once: four moving cameras
// share one slow detector, never run two inferences together, and skip
// (and count) what they cannot get a detector for.
func TestObjectPoolBounds(t *testing.T) {
	s := &sink{}
	det := &fakeObjects{delay: 150 * time.Millisecond}
	a, _ := start(t, Options{
		FPS: 10, ObjectsFPS: 5, ObjectDetectors: []ObjectDetector{det}, Sink: s,
		Camera: func(string) (Camera, bool, error) {
			return Camera{Motion: &fakeMotion{}, Objects: true}, true, nil
		},
	})
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b", "c", "d"} {
		wg.Add(1)
		go func() { defer wg.Done(); feed(a, id, 10, 2*time.Second, func(int) bool { return true }) }()
	}
	wg.Wait()
	det.mu.Lock()
	maxRunning := det.maxRunning
	det.mu.Unlock()
	if maxRunning != 1 {
		t.Errorf("%d inferences at once, want 1 (the pool's size)", maxRunning)
	}
	var busy uint64
	for _, st := range a.Stats() {
		busy += st.ObjectsBusy
	}
	if busy == 0 {
		t.Error("no detection counted as skipped for a busy pool: four cameras at 5 a second need 3 s of a 150 ms detector per second")
	}
}

// The detectors together use at most ObjectsCPU cores on average: four
// moving cameras asking for 20 detections a second of a 50 ms detector
// (a whole core) get about a quarter of a core of it.
func TestObjectsCPUBudget(t *testing.T) {
	s := &sink{}
	det := &fakeObjects{delay: 50 * time.Millisecond}
	a, stop := start(t, Options{
		FPS: 10, ObjectsFPS: 5, ObjectsCPU: 0.25, ObjectDetectors: []ObjectDetector{det}, Sink: s,
		Camera: func(string) (Camera, bool, error) {
			return Camera{Motion: &fakeMotion{}, Objects: true}, true, nil
		},
	})
	began := time.Now()
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b", "c", "d"} {
		wg.Add(1)
		go func() { defer wg.Done(); feed(a, id, 10, 3*time.Second, func(int) bool { return true }) }()
	}
	wg.Wait()
	stop()
	elapsed := time.Since(began)
	det.mu.Lock()
	calls := det.calls
	det.mu.Unlock()
	// Busy time ≤ 0.25 of the elapsed time, plus the inference that
	// started last; each call sleeps at least 50 ms.
	if limit := int(elapsed.Seconds()*0.25/0.05) + 1; calls > limit || calls < 3 {
		t.Errorf("%d inferences of 50 ms in %s: want 3 to %d (a quarter of a core)", calls, elapsed.Round(time.Millisecond), limit)
	}
}

// facesAt records where faces are searched.
type facesAt struct {
	mu      sync.Mutex
	regions []events.Box
}

func (f *facesAt) Detect(_ []byte, region *events.Box) ([]events.Box, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.regions = append(f.regions, *region)
	return nil, nil
}
func (f *facesAt) Close() error { return nil }

// personAt finds a person in a fixed place.
type personAt struct{ box events.Box }

func (p personAt) Detect([]byte, *events.Box) ([]events.ObjectDetection, error) {
	return []events.ObjectDetection{{Label: "person", Score: 0.8, Box: p.box}, {Label: "car", Score: 0.9, Box: events.Box{X: 0.6, Y: 0.6, W: 0.3, H: 0.2}}}, nil
}
func (personAt) Close() error { return nil }

// With objects on, faces are searched inside the person boxes only, not
// in the whole moving region (nor in the car's).
func TestFacesInsidePeople(t *testing.T) {
	faces := &facesAt{}
	person := events.Box{X: 0.22, Y: 0.21, W: 0.04, H: 0.12}
	a, stop := start(t, Options{
		FPS: 10, FacesFPS: 5, ObjectsFPS: 5, ObjectsCPU: 1, ObjectDetectors: []ObjectDetector{personAt{person}}, Sink: &sink{},
		Camera: func(string) (Camera, bool, error) {
			return Camera{Motion: &fakeMotion{}, Faces: faces, Objects: true}, true, nil
		},
	})
	feed(a, "door", 10, time.Second, func(int) bool { return true })
	stop()
	faces.mu.Lock()
	defer faces.mu.Unlock()
	if len(faces.regions) == 0 {
		t.Fatal("faces never searched")
	}
	for _, r := range faces.regions {
		if r != person {
			t.Fatalf("faces searched in %+v, want only the person box %+v", r, person)
		}
	}
}

// A detector that fails for its own reasons leaves motion detection going,
// and Health names the failure until a detection succeeds again; a frame
// that does not decode is the frame's fault, not the detector's.
func TestObjectDetectorFailure(t *testing.T) {
	s := &sink{}
	det := &fakeObjects{fail: errors.New("dnn: forward: out of memory")}
	a, _ := start(t, Options{
		FPS: 30, ObjectsFPS: 10, ObjectsCPU: 64, ObjectDetectors: []ObjectDetector{det}, Sink: s,
		Tracker: events.TrackerOptions{Gap: 300 * time.Millisecond},
		Camera: func(string) (Camera, bool, error) {
			return Camera{Motion: &fakeMotion{}, Objects: true}, true, nil
		},
	})
	if err := a.Health(); err != nil {
		t.Fatalf("health before any detection: %v", err)
	}
	feed(a, "door", 30, time.Second, func(i int) bool { return i >= 5 })
	err := a.Health()
	if err == nil || !strings.Contains(err.Error(), "object detection failing since") || !strings.Contains(err.Error(), "out of memory") {
		t.Fatalf("health while the detector fails: %v", err)
	}
	if n := a.ObjectErrors(); n == 0 {
		t.Error("no object errors counted")
	}
	if p := s.phases(events.TypeMotion); len(p) == 0 || p[0] != events.PhaseStart {
		t.Errorf("motion phases %v while object detection fails, want a motion event", p)
	}
	// A bad frame is not the detector's failure.
	det.mu.Lock()
	det.fail = fmt.Errorf("objects: decode: %w", ErrBadFrame)
	det.mu.Unlock()
	errs := a.ObjectErrors()
	feed(a, "door", 30, 500*time.Millisecond, func(int) bool { return true })
	if a.ObjectErrors() != errs {
		t.Errorf("bad frames counted as detector errors: %d -> %d", errs, a.ObjectErrors())
	}
	// It recovers.
	det.mu.Lock()
	det.fail = nil
	det.mu.Unlock()
	feed(a, "door", 30, 500*time.Millisecond, func(int) bool { return true })
	if err := a.Health(); err != nil {
		t.Fatalf("health after a successful detection: %v", err)
	}
}

// A camera's zones reach its object events: the person stands in "path"
// (the bottom-centre of its box), never in "lawn".
func TestObjectEventsListZones(t *testing.T) {
	s := &sink{}
	zones := []events.Zone{
		{Name: "lawn", Points: [][2]float64{{0, 0.8}, {1, 0.8}, {1, 1}, {0, 1}}},
		{Name: "path", Points: [][2]float64{{0, 0.4}, {1, 0.4}, {1, 0.6}, {0, 0.6}}, Inertia: 2},
	}
	a, _ := start(t, Options{
		FPS: 30, ObjectsFPS: 10, ObjectsCPU: 64, ObjectDetectors: []ObjectDetector{&fakeObjects{}}, Sink: s,
		Objects: events.ObjectTrackerOptions{Gap: 300 * time.Millisecond},
		Camera: func(string) (Camera, bool, error) {
			return Camera{Motion: &fakeMotion{}, Objects: true, Zones: zones}, true, nil
		},
	})
	feed(a, "door", 30, 1500*time.Millisecond, func(i int) bool { return i < 30 })
	waitFor(t, "the object event's end", func() bool {
		p := s.phases(events.TypeObject)
		return len(p) > 0 && p[len(p)-1] == events.PhaseEnd
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.events[len(s.events)-1]
	for _, e := range s.events {
		if e.Type == events.TypeObject && e.Phase == events.PhaseEnd {
			last = e
		}
	}
	if len(last.Zones) != 1 || last.Zones[0] != "path" || last.Severity != events.SeverityAlert {
		t.Fatalf("end of the person's event: zones %v, severity %q; want [path] and an alert", last.Zones, last.Severity)
	}
}

// Every analyzed frame counts in its camera's activity of the minute: a
// minute is published when a frame of the next one is analyzed, the last
// one when the analyzer stops; the moving share and mean area are those of
// the frames analyzed.
func TestActivityPerMinute(t *testing.T) {
	s := &sink{}
	var mu sync.Mutex
	clock := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	a, stop := start(t, Options{FPS: 1000, MaxLag: time.Hour, Sink: s, Now: now, Camera: func(string) (Camera, bool, error) {
		return Camera{Motion: &fakeMotion{}}, true, nil
	}})
	// 2.5 minutes at 2 frames a second: motion in the first minute only.
	for i := range 300 {
		mu.Lock()
		clock = time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC).Add(time.Duration(i) * 500 * time.Millisecond)
		at := clock
		mu.Unlock()
		var m byte
		if i < 120 {
			m = 1
		}
		a.Feed(frameAt("yard", uint64(i), at, m))
		waitFor(t, "the frame analyzed", func() bool { st := a.Stats(); return len(st) == 1 && st[0].Analyzed+st[0].Skipped == uint64(i+1) })
	}
	waitFor(t, "two minutes published", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.activity) == 2 })
	stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.activity) != 3 {
		t.Fatalf("activity %+v, want 3 minutes (the last flushed at the stop)", s.activity)
	}
	st := a.Stats()[0]
	frames := 0
	for i, act := range s.activity {
		if err := act.Validate(); err != nil {
			t.Error(err)
		}
		if want := time.Date(2026, 12, 3, 2, i, 0, 0, time.UTC); act.Minute != want || act.Camera != "yard" {
			t.Errorf("minute %d: %+v, want %s", i, act, want)
		}
		frames += act.Frames
	}
	if uint64(frames) != st.Analyzed {
		t.Errorf("the minutes count %d frames, the analyzer analyzed %d", frames, st.Analyzed)
	}
	if m := s.activity[0]; m.Moving != m.Frames || m.Area != 0.03 || m.Peak != 0.03 {
		t.Errorf("the moving minute: %+v", m)
	}
	if m := s.activity[1]; m.Moving != 0 || m.Area != 0 || m.Frames < 100 {
		t.Errorf("the still minute: %+v", m)
	}
}

// A camera's activity says whether object detection runs on it, so that a
// web node in another process knows which cameras list motion for review.
func TestActivitySaysObjects(t *testing.T) {
	s := &sink{}
	a, stop := start(t, Options{FPS: 30, ObjectsCPU: 64, ObjectDetectors: []ObjectDetector{&fakeObjects{}}, Sink: s,
		Camera: func(id string) (Camera, bool, error) {
			return Camera{Motion: &fakeMotion{}, Objects: id == "door"}, true, nil
		}})
	feed(a, "door", 30, 300*time.Millisecond, func(int) bool { return true })
	feed(a, "yard", 30, 300*time.Millisecond, func(int) bool { return true })
	stop() // the open minutes are published
	s.mu.Lock()
	defer s.mu.Unlock()
	got := map[string]bool{}
	for _, m := range s.activity {
		got[m.Camera] = got[m.Camera] || m.Objects
	}
	if len(got) != 2 || !got["door"] || got["yard"] {
		t.Fatalf("activity objects flags %v, want door true and yard false", got)
	}
}
