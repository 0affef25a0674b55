//go:build !nocv

package analysis

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/analyzer"
	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/vision"
	"github.com/streamd/streamd/pkg/vision/visiontest"
)

// Ground truth of vtest.avi (768x576, 10 fps), its first 12 s: where each
// person stands on every tenth frame (and a few more where someone turns),
// in pixels {x, y, w, h}, labelled by hand (background-subtraction blobs as
// a first draft, each checked and corrected by eye on the frame enlarged
// with a 10-pixel grid). Between two labelled frames at most 10 frames
// apart a person's box is interpolated. People in groups, behind the sign
// or cut by the frame's edge have no box of their own: their region is in
// gtIgnore, where a person event is neither right nor wrong.
var gtPeople = map[string]map[int]image.Rectangle{
	// A man in a dark coat on the left walks towards the sign and joins
	// the group there.
	"A": {0: r(254, 220, 29, 89), 10: r(318, 208, 37, 87), 20: r(364, 193, 36, 84)},
	// A man at the top walks towards the camera, then behind the sign.
	"B": {0: r(501, 158, 28, 69), 10: r(465, 168, 38, 75)},
	// A man on the right walks left, into the group.
	"C": {0: r(640, 241, 44, 82), 10: r(552, 239, 31, 84), 20: r(440, 233, 40, 86)},
	// A couple enters on the right and walks up the road, side by side
	// (one box for the two while they overlap).
	"D": {20: r(679, 272, 43, 105), 30: r(622, 253, 44, 100), 50: r(500, 217, 40, 91)},
	"E": {20: r(728, 268, 27, 102), 30: r(665, 247, 32, 97), 50: r(553, 213, 34, 90)},
	// A bald man enters on the right and walks up the road.
	"F": {50: r(669, 257, 44, 114), 60: r(617, 234, 33, 107), 70: r(588, 209, 33, 99), 80: r(569, 189, 31, 94),
		90: r(572, 171, 25, 89), 100: r(591, 153, 26, 81), 110: r(618, 140, 27, 77), 120: r(651, 129, 24, 75)},
	// A man in black leaves the group to the left, turns, and walks back
	// behind the sign.
	"G": {70: r(292, 170, 34, 64), 77: r(261, 172, 25, 68), 80: r(260, 174, 36, 70), 90: r(291, 188, 26, 74), 100: r(350, 200, 29, 73),
		115: r(464, 209, 33, 78), 120: r(509, 215, 30, 82)},
	// Far away at the top left, a woman with a white bag walks left along
	// the path (16 pixels wide).
	"K": {80: r(272, 50, 16, 35), 90: r(250, 56, 14, 34), 100: r(222, 61, 16, 33), 110: r(194, 64, 15, 36), 120: r(165, 70, 15, 36)},
	// A man in a brown jacket stands left of the sign, talking.
	"H": {50: r(374, 180, 26, 75), 70: r(366, 181, 35, 76), 80: r(372, 180, 26, 80), 90: r(384, 179, 27, 75),
		100: r(385, 178, 25, 74), 110: r(372, 175, 33, 80), 115: r(370, 180, 28, 76), 120: r(375, 181, 28, 80)},
}

// gtIgnore are the regions of each labelled frame with people that have no
// box of their own; gtSign is behind and around the sign, always.
var (
	gtSign   = r(400, 165, 55, 105)
	gtIgnore = map[int][]image.Rectangle{
		10:  {r(740, 300, 28, 110)},                                             // the couple entering, cut by the edge
		30:  {r(370, 170, 70, 130)},                                             // A, B and C together
		40:  {r(370, 170, 60, 100), r(555, 225, 80, 110), r(730, 275, 38, 120)}, // the group; the couple; F entering
		60:  {r(360, 165, 70, 105), r(458, 195, 78, 98)},                        // the group; the couple
		70:  {r(438, 183, 74, 98)},                                              // the couple
		80:  {r(438, 167, 69, 90)},                                              // the couple
		90:  {r(450, 155, 75, 84)},                                              // the couple
		100: {r(484, 144, 62, 81)},                                              // the couple
		110: {r(489, 133, 89, 82)},                                              // the couple
		120: {r(551, 123, 65, 77), r(685, 212, 48, 96)},                         // the couple; a woman entering
	}
)

func r(x, y, w, h int) image.Rectangle { return image.Rect(x, y, x+w, y+h) }

const gtW, gtH = 768.0, 576.0

// gtAt returns, for frame i, the labelled people's boxes (interpolated
// between the person's labelled frames around i, when they are at most 10
// frames apart) and the regions where a detection is not judged: gtIgnore's
// of the tenth frames around i, the sign, and the boxes of people labelled
// on only one side of i.
func gtAt(i int) (people map[string]events.Box, ignore []events.Box) {
	norm := func(rc image.Rectangle) events.Box {
		return events.Box{X: float64(rc.Min.X) / gtW, Y: float64(rc.Min.Y) / gtH, W: float64(rc.Dx()) / gtW, H: float64(rc.Dy()) / gtH}
	}
	grow := func(rc image.Rectangle) events.Box { return norm(rc.Inset(-12)) }
	people = map[string]events.Box{}
	for id, track := range gtPeople {
		k0, k1 := -1, -1 // the labelled frames at or before i, and at or after
		for k := range track {
			if k <= i && k > k0 {
				k0 = k
			}
			if k >= i && (k1 < 0 || k < k1) {
				k1 = k
			}
		}
		switch {
		case k0 >= 0 && k1 >= 0 && k1-k0 <= 10:
			a, b := track[k0], track[k1]
			frac := 0.0
			if k1 > k0 {
				frac = float64(i-k0) / float64(k1-k0)
			}
			lerp := func(p, q int) float64 { return float64(p) + (float64(q)-float64(p))*frac }
			people[id] = events.Box{
				X: lerp(a.Min.X, b.Min.X) / gtW, Y: lerp(a.Min.Y, b.Min.Y) / gtH,
				W: lerp(a.Dx(), b.Dx()) / gtW, H: lerp(a.Dy(), b.Dy()) / gtH,
			}
		default:
			for _, k := range []int{k0, k1} {
				if k >= 0 && abs(k-i) <= 10 {
					ignore = append(ignore, grow(track[k]))
				}
			}
		}
	}
	for _, k := range []int{i / 10 * 10, (i + 9) / 10 * 10} {
		for _, rc := range gtIgnore[k] {
			ignore = append(ignore, grow(rc))
		}
	}
	return people, append(ignore, norm(gtSign))
}

func abs(x int) int { return max(x, -x) }

// gtSink keeps the events the analyzer publishes.
type gtSink struct {
	mu     sync.Mutex
	events []events.Event
}

func (s *gtSink) PublishEvent(e events.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	return nil
}

func (s *gtSink) PublishSnapshot(events.Event, []byte) error { return nil }

func (s *gtSink) PublishActivity(events.Activity) error { return nil }

// TestObjectGroundTruth plays vtest.avi's first 12 s through the analyzer
// with the real detectors (motion, then the object model on the moving
// region at 5 detections a second, the tracker) on the capture clock, and
// holds its person events against the ground truth: every box a person
// event reports (on its start, updates and end) covers a labelled person
// with an IoU of at least 0.5, unless it is where people stand in a group
// or behind the sign; each person who walks in the open for 2 s or more
// is a person event; nothing else is an object event.
func TestObjectGroundTruth(t *testing.T) {
	model := os.Getenv("STREAMD_MODEL")
	if model == "" {
		model = vision.DefaultModel
	}
	if _, err := os.Stat(model); err != nil {
		t.Fatalf("the object model is missing (make deps installs it, or set STREAMD_MODEL): %v", err)
	}
	frames, err := visiontest.ReadVideo(filepath.Join(visiontest.DataDir, visiontest.PeopleVideo), 121, 0, 0, 90)
	if err != nil || len(frames) != 121 {
		t.Fatalf("read %s: %d frames, %v", visiontest.PeopleVideo, len(frames), err)
	}
	det, err := newDetectors(Options{Objects: true, ObjectModel: model})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vision.SetThreads(0) })

	// The capture clock: frame i was captured at base + i/10 s, and the
	// analyzer's now is the capture time of the newest frame fed.
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var clock sync.Mutex
	now := base
	// Every detection the model makes, before tracking, by frame (known
	// by its JPEG).
	index := map[*byte]int{}
	for i, f := range frames {
		index[&f.JPEG[0]] = i
	}
	rec := &recordingDetector{ObjectDetector: det.objects[0], index: index}
	s := &gtSink{}
	an := analyzer.New(analyzer.Options{
		FPS: 10, ObjectsFPS: 5, ObjectsCPU: 64, ObjectDetectors: []analyzer.ObjectDetector{rec}, Sink: s,
		Now:    func() time.Time { clock.Lock(); defer clock.Unlock(); return now },
		Camera: det.camera,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = an.Run(ctx); close(done) }()
	for i, f := range frames {
		at := base.Add(time.Duration(i) * 100 * time.Millisecond)
		clock.Lock()
		now = at
		clock.Unlock()
		an.Feed(&frame.Frame{Camera: "hall", Seq: uint64(i), CapturedAt: at, Data: f.JPEG, Offset: int64(i)})
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := an.Stats()
			if len(st) == 1 && st[0].LastCaptured.Equal(at) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("frame %d not analyzed within 30 s: %+v", i, st)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	cancel() // ends the events still open, at the last frame's time
	<-done

	s.mu.Lock()
	defer s.mu.Unlock()
	people := map[string]map[string]bool{} // labelled person → ids of the events found on them
	judged, right, ignored := 0, 0, 0
	for _, e := range s.events {
		if e.Type != events.TypeObject {
			continue
		}
		if e.Label != "person" {
			t.Errorf("event %s %s: a %s; only people are in the hall", e.ID, e.Phase, e.Label)
			continue
		}
		i := int(e.Frame.Seq)
		truth, ignore := gtAt(i)
		b := e.Boxes[0]
		best, who := 0.0, ""
		for id, tb := range truth {
			if v := events.IoU(b, tb); v > best {
				best, who = v, id
			}
		}
		if best >= 0.5 {
			judged++
			right++
			if people[who] == nil {
				people[who] = map[string]bool{}
			}
			people[who][e.ID] = true
			continue
		}
		if inAny(b, ignore) {
			ignored++
			continue
		}
		judged++
		t.Errorf("event %s %s on frame %d: box %s matches no person (best IoU %.2f with %q)", e.ID, e.Phase, i, px(b), best, who)
	}
	t.Logf("%d person event changes judged, %d right, %d in groups; people found: %v", judged, right, ignored, people)
	if judged < 10 {
		t.Errorf("only %d person event changes outside the groups, want 10 or more", judged)
	}
	// Each person who walks in the open for 2 s or more (H stands still,
	// where no motion calls for a detection).
	for _, id := range []string{"A", "C", "F", "G"} {
		if len(people[id]) == 0 {
			t.Errorf("person %s (%v) is in no person event", id, gtPeople[id])
		}
	}
	scoreTable(t, rec.found)
	// F enters where D was 2 s before, D having walked on: two people, so
	// no event of D's is F's.
	for id := range people["D"] {
		if people["F"][id] {
			t.Errorf("event %s follows D and then F: two people in one event", id)
		}
	}
	// F walks up the road alone for 7 s: one crossing, one event.
	if n := len(people["F"]); n != 1 {
		t.Errorf("person F is in %d events, want 1: %v", n, people["F"])
	}
}

// recordingDetector keeps every detection of the detector it wraps.
type recordingDetector struct {
	analyzer.ObjectDetector
	index map[*byte]int // frame number by JPEG
	mu    sync.Mutex
	found []gtDetection
}

type gtDetection struct {
	frame int
	obj   events.ObjectDetection
}

func (d *recordingDetector) Detect(jpeg []byte, region *events.Box) ([]events.ObjectDetection, error) {
	objs, err := d.ObjectDetector.Detect(jpeg, region)
	d.mu.Lock()
	for _, o := range objs {
		d.found = append(d.found, gtDetection{d.index[&jpeg[0]], o})
	}
	d.mu.Unlock()
	return objs, err
}

// scoreTable judges the raw person detections (before tracking) against
// the ground truth at each min_score: right (IoU >= 0.5 with a labelled
// person), wrong (no person there, outside the groups) and the people
// seen. It is how the default min_score (0.5) was chosen: wrong detections
// stop at 0.35 here, and 0.5 keeps a margin above that for other scenes
// (the model's stray labels on single frames reach 0.38) while it still
// sees every person but one who moves. At the default it must still hold.
func scoreTable(t *testing.T, found []gtDetection) {
	t.Helper()
	t.Logf("raw person detections on moving regions, 5 a second, against the ground truth:")
	t.Logf("  min_score  right  wrong  people seen")
	mins := []float64{0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6}
	if !slices.Contains(mins, events.DefaultMinScore) { // the default is always judged
		mins = append(mins, events.DefaultMinScore)
		slices.Sort(mins)
	}
	for _, min := range mins {
		right, wrong := 0, 0
		seen := map[string]bool{}
		for _, d := range found {
			if d.obj.Label != "person" || d.obj.Score < min {
				continue
			}
			truth, ignore := gtAt(d.frame)
			best, who := 0.0, ""
			for id, tb := range truth {
				if v := events.IoU(d.obj.Box, tb); v > best {
					best, who = v, id
				}
			}
			switch {
			case best >= 0.5:
				right++
				seen[who] = true
			case !inAny(d.obj.Box, ignore):
				wrong++
			}
		}
		t.Logf("  %9.2f  %5d  %5d  %d", min, right, wrong, len(seen))
		if min == events.DefaultMinScore && (wrong*10 > right || len(seen) < 8) {
			t.Errorf("at the default min_score %.2f: %d right, %d wrong, %d people: want at most one wrong in ten and 8 people or more", min, right, wrong, len(seen))
		}
	}
}

// inAny reports whether the centre of b is inside one of the regions.
func inAny(b events.Box, regions []events.Box) bool {
	cx, cy := b.X+b.W/2, b.Y+b.H/2
	for _, g := range regions {
		if cx >= g.X && cx <= g.X+g.W && cy >= g.Y && cy <= g.Y+g.H {
			return true
		}
	}
	return false
}

// px formats a box in vtest.avi's pixels.
func px(b events.Box) string {
	return fmt.Sprintf("{%.0f,%.0f,%.0f,%.0f}", b.X*gtW, b.Y*gtH, b.W*gtW, b.H*gtH)
}
