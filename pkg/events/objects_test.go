package events

import (
	"math"
	"slices"
	"testing"
	"time"
)

var ot0 = time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)

// run feeds the tracker one detection list per step, every 200 ms (5
// detections a second), and returns every change, each validated.
func run(t *testing.T, tr *ObjectTracker, from time.Time, steps [][]ObjectDetection) ([]Event, time.Time) {
	t.Helper()
	var out []Event
	at := from
	for i, dets := range steps {
		at = from.Add(time.Duration(i) * 200 * time.Millisecond)
		for _, e := range tr.Observe(at, dets, FrameRef{CapturedAt: at, Seq: uint64(i)}) {
			if err := e.Validate(); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			out = append(out, e)
		}
	}
	return out, at
}

func walk(label string, score float64, n int, x0, dx float64) [][]ObjectDetection {
	steps := make([][]ObjectDetection, n)
	for i := range steps {
		steps[i] = []ObjectDetection{{Label: label, Score: score, Box: Box{X: x0 + dx*float64(i), Y: 0.3, W: 0.05, H: 0.15}}}
	}
	return steps
}

func phases(es []Event) (starts, updates, ends int) {
	for _, e := range es {
		switch e.Phase {
		case PhaseStart:
			starts++
		case PhaseUpdate:
			updates++
		case PhaseEnd:
			ends++
		}
	}
	return
}

// TestObjectCrossing: one person walking across is one event, starting on
// the second good detection and ending the gap after the last.
func TestObjectCrossing(t *testing.T) {
	tr := NewObjectTracker("door", ObjectTrackerOptions{})
	es, last := run(t, tr, ot0, walk("person", 0.62, 40, 0.1, 0.01)) // 8 s, a box width every 5 steps
	if s, _, e := phases(es); s != 1 || e != 0 {
		t.Fatalf("while walking: %d starts, %d ends, want 1, 0: %v", s, e, es)
	}
	start := es[0]
	if start.Type != TypeObject || start.Label != "person" || !start.Start.Equal(ot0) || start.Frame.Seq != 1 || *start.Score != 0.62 {
		t.Errorf("start = %+v, want a person object from ot0, on the second frame, score 0.62", start)
	}
	if n := tr.Active()["person"]; n != 1 {
		t.Errorf("active people %d, want 1", n)
	}
	if es := tr.Tick(last.Add(DefaultObjectGap - time.Millisecond)); len(es) != 0 {
		t.Errorf("ended before the gap: %v", es)
	}
	es = tr.Tick(last.Add(DefaultObjectGap))
	if len(es) != 1 || es[0].Phase != PhaseEnd || es[0].ID != start.ID || !es[0].End.Equal(last) || es[0].Validate() != nil {
		t.Fatalf("end = %+v, want the event's end at the last detection", es)
	}
}

func TestObjectFilters(t *testing.T) {
	for _, c := range []struct {
		name  string
		opt   ObjectTrackerOptions
		steps [][]ObjectDetection
	}{
		{"one stray peak", ObjectTrackerOptions{}, append(walk("person", 0.9, 1, 0.1, 0), make([][]ObjectDetection, 20)...)},
		{"below min_score", ObjectTrackerOptions{}, walk("person", 0.45, 20, 0.1, 0.01)},
		{"median under threshold", ObjectTrackerOptions{Filters: map[string]ObjectFilter{"person": {Threshold: 0.7}}}, walk("person", 0.62, 20, 0.1, 0.01)},
		{"label not tracked", ObjectTrackerOptions{}, walk("skis", 0.8, 20, 0.1, 0.01)},
		{"label not in track list", ObjectTrackerOptions{Labels: []string{"car"}}, walk("person", 0.8, 20, 0.1, 0.01)},
		{"too small", ObjectTrackerOptions{Filters: map[string]ObjectFilter{"person": {MinArea: 0.01}}}, walk("person", 0.8, 20, 0.1, 0.01)},
		{"too large", ObjectTrackerOptions{Filters: map[string]ObjectFilter{"person": {MaxArea: 0.005}}}, walk("person", 0.8, 20, 0.1, 0.01)},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := NewObjectTracker("door", c.opt)
			if es, _ := run(t, tr, ot0, c.steps); len(es) != 0 {
				t.Errorf("events %v, want none", es)
			}
		})
	}
	// The same walk passes with the defaults: the filters above are what
	// stopped it.
	if es, _ := run(t, NewObjectTracker("door", ObjectTrackerOptions{}), ot0, walk("person", 0.62, 20, 0.1, 0.01)); len(es) == 0 {
		t.Error("the default walk started no event")
	}
}

// TestObjectTwoPeople: two people at once are two events.
func TestObjectTwoPeople(t *testing.T) {
	a, b := walk("person", 0.6, 20, 0.1, 0.01), walk("person", 0.65, 20, 0.7, -0.005)
	steps := make([][]ObjectDetection, 20)
	for i := range steps {
		steps[i] = append(a[i], b[i]...)
	}
	tr := NewObjectTracker("hall", ObjectTrackerOptions{})
	es, _ := run(t, tr, ot0, steps)
	if s, _, _ := phases(es); s != 2 || es[0].ID == es[1].ID {
		t.Fatalf("%d starts (%v), want 2 with their own ids", s, es)
	}
	if n := tr.Active()["person"]; n != 2 {
		t.Errorf("active people %d, want 2", n)
	}
	if es := tr.Flush(ot0.Add(10 * time.Second)); len(es) != 2 || es[0].Phase != PhaseEnd || es[1].Phase != PhaseEnd {
		t.Errorf("flush: %v, want two ends", es)
	}
}

// TestObjectStationary: a car that parks ends its event as stationary;
// seen again in the same place later (headlights passing) it starts
// nothing; driving off it starts a new event.
func TestObjectStationary(t *testing.T) {
	tr := NewObjectTracker("drive", ObjectTrackerOptions{})
	arrive := walk("car", 0.7, 10, 0.2, 0.02) // 2 s driving in
	parked := walk("car", 0.7, 60, 0.38, 0)   // 12 s still
	es, last := run(t, tr, ot0, append(arrive, parked...))
	s, _, e := phases(es)
	if s != 1 || e != 1 || !es[len(es)-1].Stationary {
		t.Fatalf("arrive and park: %d starts, %d ends (%v), want one event ended as stationary", s, e, es)
	}
	// Ten minutes less a second unseen (no motion near it), then found in
	// the same place for 2 s.
	later := last.Add(DefaultStationaryGap - time.Second)
	if es := tr.Tick(later); len(es) != 0 {
		t.Fatalf("tick: %v", es)
	}
	if es, _ := run(t, tr, later, walk("car", 0.7, 10, 0.38, 0)); len(es) != 0 {
		t.Fatalf("headlights: %v, want nothing for a known parked car", es)
	}
	// It drives off: a new event.
	es, _ = run(t, tr, later.Add(2*time.Second), walk("car", 0.7, 10, 0.39, 0.03))
	if s, _, _ := phases(es); s != 1 || es[0].ID == "" || es[0].Stationary {
		t.Fatalf("driving off: %v, want a new moving event", es)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{0.9}, 0}, {[]float64{0.6, 0.7}, 0.6}, {[]float64{0.5, 0.9, 0.6}, 0.6}, {[]float64{0.5, 0.9, 0.6, 0.7}, 0.65},
	} {
		if got := median(c.in); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("median(%v) = %g, want %g", c.in, got, c.want)
		}
	}
}

// porch is the lower right quarter of the frame.
var porch = Zone{Name: "porch", Points: [][2]float64{{0.5, 0.5}, {1, 0.5}, {1, 1}, {0.5, 1}}}

// walkDown is a person walking from the top left towards the lower right:
// the bottom-centre of the box (0.125+0.02i, 0.21+0.02i) crosses into the
// porch at step 19 (0.505, 0.59) and stays inside.
func walkDown(n int) [][]ObjectDetection {
	steps := make([][]ObjectDetection, n)
	for i := range steps {
		x, y := 0.1+0.02*float64(i), 0.06+0.02*float64(i)
		steps[i] = []ObjectDetection{{Label: "person", Score: 0.7, Box: Box{X: min(x, 0.9), Y: min(y, 0.8), W: 0.05, H: 0.15}}}
	}
	return steps
}

func TestObjectZonesWithInertia(t *testing.T) {
	for _, tc := range []struct {
		name     string
		inertia  int
		steps    int
		want     []string
		enterIdx int // detection (step) on which the zone is entered; -1: never
	}{
		{"enters after 3 detections inside", 0, 30, []string{"porch"}, 21},
		{"inertia 5", 5, 30, []string{"porch"}, 23},
		{"two detections inside are not enough", 0, 21, nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := porch
			z.Inertia = tc.inertia
			tr := NewObjectTracker("yard", ObjectTrackerOptions{Zones: []Zone{z}})
			es, _ := run(t, tr, ot0, walkDown(tc.steps))
			es = append(es, tr.Flush(ot0.Add(time.Hour))...)
			last := es[len(es)-1]
			if last.Phase != PhaseEnd || !slices.Equal(last.Zones, tc.want) {
				t.Fatalf("end %v zones %v, want %v", last.Phase, last.Zones, tc.want)
			}
			// The update that reports the zone comes on the detection
			// that enters it, not at the next update interval.
			at := -1
			for _, e := range es {
				if len(e.Zones) > 0 {
					at = int(e.Frame.Seq)
					break
				}
			}
			if at != tc.enterIdx {
				t.Fatalf("zone first reported on detection %d, want %d", at, tc.enterIdx)
			}
		})
	}
}

func TestObjectZoneJitterDoesNotEnter(t *testing.T) {
	// A box whose bottom-centre goes in and out of the zone every other
	// detection never enters it.
	tr := NewObjectTracker("yard", ObjectTrackerOptions{Zones: []Zone{porch}})
	steps := make([][]ObjectDetection, 40)
	for i := range steps {
		y := 0.34 // bottom at 0.49: outside
		if i%2 == 1 {
			y = 0.36 // bottom at 0.51: inside
		}
		steps[i] = []ObjectDetection{{Label: "person", Score: 0.7, Box: Box{X: 0.55, Y: y, W: 0.05, H: 0.15}}}
	}
	es, _ := run(t, tr, ot0, steps)
	for _, e := range append(es, tr.Flush(ot0.Add(time.Hour))...) {
		if len(e.Zones) != 0 {
			t.Fatalf("%s %s: zones %v, want none", e.ID, e.Phase, e.Zones)
		}
	}
}

func TestObjectSeverity(t *testing.T) {
	for _, tc := range []struct {
		name   string
		label  string
		review Review
		want   []Severity // start, then the end
	}{
		{"person is an alert by default", "person", Review{}, []Severity{SeverityAlert, SeverityAlert}},
		{"dog is a detection by default", "dog", Review{}, []Severity{SeverityDetection, SeverityDetection}},
		{"no alert labels", "person", Review{AlertLabels: []string{}}, []Severity{SeverityDetection, SeverityDetection}},
		{"dog made an alert", "dog", Review{AlertLabels: []string{"dog"}}, []Severity{SeverityAlert, SeverityAlert}},
		{"alert once in the required zone", "person", Review{AlertZones: []string{"porch"}}, []Severity{SeverityDetection, SeverityAlert}},
		{"another zone required", "person", Review{AlertZones: []string{"gate"}}, []Severity{SeverityDetection, SeverityDetection}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewObjectTracker("yard", ObjectTrackerOptions{Zones: []Zone{porch}, Review: tc.review})
			steps := walkDown(30)
			for _, s := range steps {
				s[0].Label = tc.label
			}
			es, _ := run(t, tr, ot0, steps)
			es = append(es, tr.Flush(ot0.Add(time.Hour))...)
			if es[0].Phase != PhaseStart || es[len(es)-1].Phase != PhaseEnd {
				t.Fatalf("events %v", es)
			}
			got := []Severity{es[0].Severity, es[len(es)-1].Severity}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("severity at start and end %v, want %v", got, tc.want)
			}
			if tc.want[0] != tc.want[1] {
				// The upgrade is its own update, on the detection
				// that entered the zone.
				for _, e := range es {
					if e.Severity == tc.want[1] {
						if e.Phase != PhaseUpdate || e.Frame.Seq != 21 {
							t.Fatalf("upgrade in %s of detection %d, want an update of 21", e.Phase, e.Frame.Seq)
						}
						break
					}
				}
			}
		})
	}
}

func TestObjectMaxLength(t *testing.T) {
	// A person pacing for 5 minutes with events of at most 2 minutes:
	// three events, each ending where the next starts, the same label.
	tr := NewObjectTracker("yard", ObjectTrackerOptions{MaxLength: 2 * time.Minute, Zones: []Zone{porch}})
	steps := make([][]ObjectDetection, 5*60*5)
	for i := range steps {
		x := 0.3 + 0.2*math.Sin(float64(i)/10)
		steps[i] = []ObjectDetection{{Label: "person", Score: 0.7, Box: Box{X: x, Y: 0.5, W: 0.05, H: 0.15}}}
	}
	es, last := run(t, tr, ot0, steps)
	es = append(es, tr.Flush(last)...)
	var pieces []Event
	for _, e := range es {
		if e.Phase == PhaseEnd {
			pieces = append(pieces, e)
		}
	}
	if len(pieces) != 3 {
		t.Fatalf("%d events, want 3 pieces of at most 2 minutes", len(pieces))
	}
	for i, e := range pieces {
		if d := e.End.Sub(e.Start); d > 2*time.Minute+time.Second {
			t.Errorf("piece %d lasts %s", i, d)
		}
		if i > 0 && !e.Start.Equal(*pieces[i-1].End) {
			t.Errorf("piece %d starts %s, the previous ended %s: a gap", i, e.Start, pieces[i-1].End)
		}
		if i > 0 && (e.ID == pieces[i-1].ID || e.Continues != pieces[i-1].ID) {
			t.Errorf("piece %d: id %s continues %q; want a new id continuing %s", i, e.ID, e.Continues, pieces[i-1].ID)
		}
		if i == 0 && e.Continues != "" {
			t.Errorf("the first piece continues %q", e.Continues)
		}
		if e.Label != "person" {
			t.Errorf("piece %d: label %q", i, e.Label)
		}
	}
	if s, _, _ := phases(es); s != 3 {
		t.Fatalf("%d starts, want 3", s)
	}
}

func TestValidateZone(t *testing.T) {
	for _, tc := range []struct {
		z    Zone
		want string
	}{
		{porch, ""},
		{Zone{Points: porch.Points}, `zone name "": 1 to 64 characters`},
		{Zone{Name: "a", Points: porch.Points[:2]}, `zone "a": 2 points, a polygon needs at least 3`},
		{Zone{Name: "a", Points: [][2]float64{{0, 0}, {1.5, 0}, {1, 1}}}, `zone "a": point 1 [1.5, 0] is not inside the frame (0..1)`},
		{Zone{Name: "a", Points: porch.Points, Inertia: -1}, `zone "a": inertia -1, want 1 or more`},
	} {
		err := ValidateZone(tc.z)
		if (err == nil) != (tc.want == "") || (err != nil && err.Error() != tc.want) {
			t.Errorf("ValidateZone(%+v) = %v, want %q", tc.z, err, tc.want)
		}
	}
}

// A person walks left out of view behind something; 1.5 s later another
// person steps in where the first was seen last. The first is looked for
// where it was heading, so the second is a new object and a new event,
// not the first one's event going on.
func TestObjectTrackFollowsTheWalk(t *testing.T) {
	tr := NewObjectTracker("hall", ObjectTrackerOptions{})
	first := walk("person", 0.7, 10, 0.6, -0.03) // 2 s walking left, 0.15 a second
	es, last := run(t, tr, ot0, first)
	es2, _ := run(t, tr, last.Add(1500*time.Millisecond), walk("person", 0.7, 10, 0.33, 0.01))
	es = append(es, es2...)
	es = append(es, tr.Flush(last.Add(time.Hour))...)
	if s, _, e := phases(es); s != 2 || e != 2 {
		t.Fatalf("%d starts and %d ends, want two people, two events", s, e)
	}
}

func TestObjectMaxLengthDefaultAndNone(t *testing.T) {
	steps := walk("person", 0.7, 5*60*5, 0.3, 0) // 5 minutes, standing in place but for jitter
	for i := range steps {
		steps[i][0].Box.X += 0.03 * math.Sin(float64(i)) // never still long enough to be stationary
	}
	for _, tc := range []struct {
		max  time.Duration
		want int
	}{{0, 3}, {-1, 1}} {
		tr := NewObjectTracker("yard", ObjectTrackerOptions{MaxLength: tc.max, StationaryAfter: time.Hour})
		es, last := run(t, tr, ot0, steps)
		es = append(es, tr.Flush(last)...)
		if _, _, ends := phases(es); ends != tc.want {
			t.Errorf("MaxLength %s: %d events over 5 minutes, want %d", tc.max, ends, tc.want)
		}
	}
}
