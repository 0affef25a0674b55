package events

import (
	"slices"
	"time"
)

// Defaults of ObjectTrackerOptions, after Frigate's object tracking.
const (
	// DefaultObjectGap: an object unseen this long (capture time) is gone
	// and its event ends; Frigate's max_disappeared is 5 s of frames too.
	DefaultObjectGap = 5 * time.Second
	// DefaultScoreHistory is how many recent scores an object's score is
	// the median of. With fewer than three the history is padded with
	// zeros, so an object needs two good frames before it counts: one
	// stray peak (skis on a lawn, 0.34) never starts an event.
	DefaultScoreHistory = 10
	// DefaultMinScore drops a detection below it before tracking, as
	// Frigate's min_score (0.5) does; the model's peaks for a person in
	// view are 0.5-0.7 on one frame.
	DefaultMinScore = 0.5
	// DefaultThreshold is what the median score must reach for a tracked
	// object to be a true positive and start an event (Frigate: 0.7;
	// here lower, because this model's single-frame scores are lower:
	// on vtest.avi a person scores 0.51-0.70 and the median of an
	// object walking across the hall stays 0.55-0.65).
	DefaultThreshold = 0.55
	// DefaultStationaryAfter: an object whose box has stayed put this
	// long is stationary (a parked car); its event ends, and the object
	// starts a new event only once it moves again.
	DefaultStationaryAfter = 10 * time.Second
	// DefaultStationaryGap is how long a stationary object is remembered
	// unseen: detection runs only where motion is, so a parked car is
	// seen again only when something moves near it (headlights passing),
	// and must then be known, not new.
	DefaultStationaryGap = 10 * time.Minute
	// stillIoU: a box overlapping the object's anchor box at least this
	// much has not moved.
	stillIoU = 0.6
	// matchIoU: a detection is the same object as a track of the same
	// label when their boxes overlap at least this much (at 5 detections
	// a second a walking person's boxes overlap by 0.5-0.9).
	matchIoU = 0.2
	// maxTracks bounds the objects tracked per camera.
	maxTracks = 64
	// predictFor caps how far ahead a track's box is moved on its
	// velocity: a person who stopped behind a pillar is looked for near
	// where they were heading, not across the frame.
	predictFor = time.Second
)

// DefaultObjectLabels are the labels tracked unless configured: people,
// vehicles and the animals a camera at a door or a yard sees.
var DefaultObjectLabels = []string{"person", "car", "truck", "bus", "motorcycle", "bicycle", "cat", "dog", "bird"}

// ObjectFilter is one label's filters; zero fields take the defaults
// (no area bound when MinArea and MaxArea are zero).
type ObjectFilter struct {
	MinScore  float64 // a detection below is dropped
	Threshold float64 // the median score that makes an object count
	MinArea   float64 // smallest box, fraction of the frame
	MaxArea   float64 // largest box, fraction of the frame; 0: no bound
}

// ObjectTrackerOptions configure an ObjectTracker.
type ObjectTrackerOptions struct {
	// Labels are the labels tracked; others are ignored. Empty:
	// DefaultObjectLabels.
	Labels []string
	// Filters are per label; a label without one takes the defaults.
	Filters         map[string]ObjectFilter
	Gap             time.Duration // DefaultObjectGap
	History         int           // DefaultScoreHistory
	StationaryAfter time.Duration // DefaultStationaryAfter
	StationaryGap   time.Duration // DefaultStationaryGap
	UpdateInterval  time.Duration // DefaultUpdateInterval
	// Zones are the camera's named regions; an event lists those its
	// object entered (see Zone for when it has).
	Zones []Zone
	// Review sets each event's severity from its label and zones.
	Review Review
	// MaxLength ends an event that has lasted this long and continues it
	// at once as a new event of the same object (Continues naming the
	// one before), so that every event has an end and a long scene is a
	// series of reviewable pieces: DefaultMaxLength when 0, no limit
	// when negative.
	MaxLength time.Duration
}

// ObjectDetection is one object a detector found on a frame.
type ObjectDetection struct {
	Label string
	Score float64
	Box   Box
}

// ObjectTracker follows the objects of one camera from frame to frame and
// turns them into object events: one event per object, from when its
// median score first reaches its label's threshold to when it is gone or
// stationary. It is not safe for concurrent use.
type ObjectTracker struct {
	camera string
	o      ObjectTrackerOptions
	tracks []*object
	last   time.Time
}

// object is one tracked object.
type object struct {
	label    string
	box      Box
	vx, vy   float64   // velocity of the box's centre, frame widths and heights a second
	scores   []float64 // the recent history, oldest first
	first    time.Time // capture time first seen
	lastSeen time.Time
	anchor   Box       // where it was when it last moved
	stillAt  time.Time // since when it has been at anchor

	confirmed  bool // its median reached the threshold once
	stationary bool
	zones      zoneState
	// The active event, if any.
	active   bool
	id       string
	prev     string // the id of the event this one continues, if any
	start    time.Time
	top      float64 // the best median so far
	topBox   Box
	topFrame FrameRef
	lastEmit time.Time
	dirty    bool
}

// NewObjectTracker returns an ObjectTracker for the camera.
func NewObjectTracker(camera string, o ObjectTrackerOptions) *ObjectTracker {
	if len(o.Labels) == 0 {
		o.Labels = DefaultObjectLabels
	}
	if o.Gap <= 0 {
		o.Gap = DefaultObjectGap
	}
	if o.History <= 0 {
		o.History = DefaultScoreHistory
	}
	if o.StationaryAfter <= 0 {
		o.StationaryAfter = DefaultStationaryAfter
	}
	if o.StationaryGap <= 0 {
		o.StationaryGap = DefaultStationaryGap
	}
	if o.UpdateInterval <= 0 {
		o.UpdateInterval = DefaultUpdateInterval
	}
	if o.MaxLength == 0 {
		o.MaxLength = DefaultMaxLength
	}
	return &ObjectTracker{camera: camera, o: o}
}

// Filter returns the filter in effect for label, defaults filled in.
func (t *ObjectTracker) Filter(label string) ObjectFilter {
	f := t.o.Filters[label]
	if f.MinScore == 0 {
		f.MinScore = DefaultMinScore
	}
	if f.Threshold == 0 {
		f.Threshold = DefaultThreshold
	}
	return f
}

// Observe takes the objects detected on a frame captured at at (fr) and
// returns the events they start, update and end. Call it only for frames
// detection ran on: a frame it skipped says nothing about the objects.
func (t *ObjectTracker) Observe(at time.Time, found []ObjectDetection, fr FrameRef) []Event {
	at = at.UTC()
	if at.Before(t.last) {
		at = t.last
	}
	t.last = at
	fr.CapturedAt = fr.CapturedAt.UTC()
	out := t.expire(at, nil)

	// Filters, then a greedy match by overlap within each label.
	var dets []ObjectDetection
	for _, d := range found {
		f := t.Filter(d.Label)
		a := d.Box.W * d.Box.H
		if !slices.Contains(t.o.Labels, d.Label) || d.Score < f.MinScore || a < f.MinArea || (f.MaxArea > 0 && a > f.MaxArea) {
			continue
		}
		d.Box = clampBox(d.Box)
		dets = append(dets, d)
	}
	type pair struct {
		d, t int
		iou  float64
	}
	var pairs []pair
	for i, d := range dets {
		for j, tr := range t.tracks {
			if tr.label == d.Label {
				if v := IoU(d.Box, tr.predict(at)); v >= matchIoU {
					pairs = append(pairs, pair{i, j, v})
				}
			}
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		switch {
		case a.iou > b.iou:
			return -1
		case a.iou < b.iou:
			return 1
		}
		return 0
	})
	usedD := make([]bool, len(dets))
	usedT := make([]bool, len(t.tracks))
	for _, p := range pairs {
		if usedD[p.d] || usedT[p.t] {
			continue
		}
		usedD[p.d], usedT[p.t] = true, true
		out = t.update(t.tracks[p.t], dets[p.d], at, fr, out)
	}
	for i, d := range dets {
		if usedD[i] || len(t.tracks) >= maxTracks {
			continue
		}
		tr := &object{label: d.Label, box: d.Box, first: at, anchor: d.Box, stillAt: at}
		t.tracks = append(t.tracks, tr)
		out = t.update(tr, d, at, fr, out)
	}
	return out
}

// predict returns where tr's box is expected at at: moved on its velocity
// for the time since it was last seen, at most predictFor.
func (tr *object) predict(at time.Time) Box {
	dt := min(at.Sub(tr.lastSeen), predictFor).Seconds()
	if dt <= 0 {
		return tr.box
	}
	b := tr.box
	b.X += tr.vx * dt
	b.Y += tr.vy * dt
	return b
}

// update takes a detection matched to (or starting) tr.
func (t *ObjectTracker) update(tr *object, d ObjectDetection, at time.Time, fr FrameRef, out []Event) []Event {
	if dt := at.Sub(tr.lastSeen).Seconds(); !tr.lastSeen.IsZero() && dt > 0 {
		// The centre's velocity, smoothed: boxes jitter by a few pixels
		// from one detection to the next.
		vx := (d.Box.X + d.Box.W/2 - tr.box.X - tr.box.W/2) / dt
		vy := (d.Box.Y + d.Box.H/2 - tr.box.Y - tr.box.H/2) / dt
		tr.vx, tr.vy = (tr.vx+vx)/2, (tr.vy+vy)/2
	}
	tr.box, tr.lastSeen = d.Box, at
	tr.scores = append(tr.scores, d.Score)
	if len(tr.scores) > t.o.History {
		tr.scores = tr.scores[len(tr.scores)-t.o.History:]
	}
	score := median(tr.scores)
	moved := IoU(d.Box, tr.anchor) < stillIoU
	if moved {
		tr.anchor, tr.stillAt = d.Box, at
	}
	wasStationary := tr.stationary
	tr.stationary = at.Sub(tr.stillAt) >= t.o.StationaryAfter
	if score >= t.Filter(tr.label).Threshold {
		tr.confirmed = true
	}
	entered := tr.zones.observe(t.o.Zones, d.Box)
	switch {
	case tr.active && tr.stationary:
		// Parked: the event ends now; the object stays known.
		out = append(out, t.end(tr, at, at))
	case tr.active && t.o.MaxLength > 0 && at.Sub(tr.start) >= t.o.MaxLength:
		// Long enough: end this piece and go on in a new event.
		out = append(out, t.end(tr, at, at))
		prev := tr.id
		out = t.begin(tr, at, at, score, d.Box, fr, out)
		tr.prev = prev
		out[len(out)-1].Continues = prev
	case tr.active:
		if score > tr.top {
			tr.top, tr.topBox, tr.topFrame = score, d.Box, fr
			tr.dirty = true
		}
		// Entering a zone may make the event an alert: say so at once.
		if entered || (tr.dirty && at.Sub(tr.lastEmit) >= t.o.UpdateInterval) {
			out = append(out, t.emit(tr, PhaseUpdate, at, d.Box, fr))
		}
	case tr.confirmed && !tr.stationary && (wasStationary || tr.id == "" || moved):
		// A new object, or a stationary one moving off.
		start := tr.first
		if tr.id != "" { // it had an event before it stopped
			start = at
		}
		out = t.begin(tr, start, at, score, d.Box, fr, out)
	}
	return out
}

// begin starts an event of tr that began at start, decided at at, with
// score as its best so far.
func (t *ObjectTracker) begin(tr *object, start, at time.Time, score float64, box Box, fr FrameRef, out []Event) []Event {
	tr.active = true
	tr.start = start
	tr.id, tr.prev = NewID(start), ""
	tr.top, tr.topBox, tr.topFrame = score, box, fr
	return append(out, t.emit(tr, PhaseStart, at, box, fr))
}

// Tick ends events and forgets objects unseen for their gap, for when no
// detection runs (no motion, or frames stopped): call it with the capture
// clock's now.
func (t *ObjectTracker) Tick(now time.Time) []Event { return t.expire(now.UTC(), nil) }

// Flush ends every active event as of now, for shutdown; the objects are
// forgotten.
func (t *ObjectTracker) Flush(now time.Time) []Event {
	now = now.UTC()
	var out []Event
	for _, tr := range t.tracks {
		if tr.active {
			out = append(out, t.end(tr, now, now))
		}
	}
	t.tracks = t.tracks[:0]
	return out
}

// Active returns how many objects of each label have an active event.
func (t *ObjectTracker) Active() map[string]int {
	n := map[string]int{}
	for _, tr := range t.tracks {
		if tr.active {
			n[tr.label]++
		}
	}
	return n
}

func (t *ObjectTracker) expire(now time.Time, out []Event) []Event {
	keep := t.tracks[:0]
	for _, tr := range t.tracks {
		if tr.active && now.Sub(tr.lastSeen) >= t.o.Gap {
			out = append(out, t.end(tr, tr.lastSeen.Add(t.o.Gap), tr.lastSeen))
		}
		gap := t.o.Gap
		if tr.stationary {
			gap = t.o.StationaryGap
		}
		if now.Sub(tr.lastSeen) < gap {
			keep = append(keep, tr)
		}
	}
	clear(t.tracks[len(keep):])
	t.tracks = keep
	return out
}

func (t *ObjectTracker) emit(tr *object, phase Phase, at time.Time, box Box, fr FrameRef) Event {
	tr.lastEmit, tr.dirty = at, false
	e := t.event(tr, phase, at, box, fr)
	return e
}

// end ends tr's event, decided at decided, its last detection at last.
func (t *ObjectTracker) end(tr *object, decided, last time.Time) Event {
	tr.active = false
	if decided.Before(tr.lastEmit) {
		decided = tr.lastEmit
	}
	e := t.event(tr, PhaseEnd, decided, tr.topBox, tr.topFrame)
	end := last
	if end.Before(tr.start) {
		end = tr.start
	}
	e.End = &end
	return e
}

func (t *ObjectTracker) event(tr *object, phase Phase, updated time.Time, box Box, fr FrameRef) Event {
	top := unitRound(tr.top)
	return Event{
		ID: tr.id, Continues: tr.prev, Camera: t.camera, Type: TypeObject, Phase: phase, Label: tr.label,
		Start: tr.start, Updated: updated, Boxes: []Box{box}, Score: &top,
		Stationary: tr.stationary, Frame: fr,
		Zones: slices.Clone(tr.zones.entered), Severity: t.o.Review.severity(tr.label, tr.zones.entered),
	}
}

// median returns the median of the scores, padded with zeros to three.
func median(scores []float64) float64 {
	s := append(make([]float64, 0, max(len(scores), 3)), scores...)
	for len(s) < 3 {
		s = append(s, 0)
	}
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// IoU is the intersection over union of two boxes: 1 for the same box, 0
// for boxes that do not touch.
func IoU(a, b Box) float64 {
	iw := min(a.X+a.W, b.X+b.W) - max(a.X, b.X)
	ih := min(a.Y+a.H, b.Y+b.H) - max(a.Y, b.Y)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	in := iw * ih
	u := a.W*a.H + b.W*b.H - in
	if u <= 0 {
		return 0
	}
	return in / u
}

// clampBox cuts b to the frame.
func clampBox(b Box) Box {
	x0, y0 := clamp01(b.X), clamp01(b.Y)
	x1, y1 := clamp01(b.X+b.W), clamp01(b.Y+b.H)
	return Box{X: unitRound(x0), Y: unitRound(y0), W: unitRound(x1 - x0), H: unitRound(y1 - y0)}
}
