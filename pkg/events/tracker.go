package events

import (
	"cmp"
	"slices"
	"time"
)

// Defaults of TrackerOptions.
const (
	// DefaultMinFrames: a motion event starts on the second consecutive
	// frame with motion. Single-frame blips (compression artefacts, sensor
	// noise, an insect, a flicker the background model has not absorbed)
	// make most false events; real motion lasts many frames. Two frames
	// cost 33 ms of start latency at 30 fps, 200 ms at 5 fps. (The Motion
	// daemon's minimum_motion_frames is 1 and relies on its noise level
	// instead.)
	DefaultMinFrames = 2
	// DefaultGap: a motion event ends after 10 s of capture time without
	// motion. Long enough to bridge what frame differencing misses inside
	// one visit (a person standing still, walking behind a pillar, a few
	// jittery frames), short enough that separate visits stay separate
	// events and that the end is reported promptly. The Motion daemon's
	// event_gap of 60 s merges a busy afternoon into a few long events
	// and reports every end a minute late; Frigate closes its review items
	// after about 30 s, but it tracks objects too and ends those after
	// about 5 s unseen. Pure motion sits between the two.
	DefaultGap = 10 * time.Second
	// DefaultUpdateInterval: an active event publishes at most one update a
	// second. The live video already shows the motion itself; the update
	// only refreshes boxes and peak in lists and overlays, and one record a
	// second per event keeps the events topic tiny next to the frames.
	DefaultUpdateInterval = time.Second
	// DefaultMinFaceFrames: a face event starts on the second consecutive
	// analysed frame with a face. Cascade classifiers (Haar, LBP) fire
	// falsely on textures, mostly on isolated frames, while a real face in
	// view is found on several frames in a row even when faces are looked
	// for only a few times a second.
	DefaultMinFaceFrames = 2
	// DefaultFaceGap: a face event ends after 5 s without a face, Frigate's
	// figure for a tracked object unseen. A face that turns aside for a
	// moment (cascades find frontal faces only) is still the same visit.
	DefaultFaceGap = 5 * time.Second
	// DefaultMaxLength: an event in progress for 2 minutes is closed and
	// continued as a new event (Continues names the one before), so that
	// every event has an end even in a scene that never stops moving (a
	// tree in the wind, a busy street), and a long scene is a series of
	// pieces a person can review, export and skip through. The Motion
	// daemon splits its movies at movie_max_time, 120 s by default, for
	// the same reason.
	DefaultMaxLength = 2 * time.Minute
)

// TrackerOptions tune a Tracker. A zero or negative field takes its default
// (but a negative MaxLength means no limit).
type TrackerOptions struct {
	// MinFrames is how many consecutive observed frames must have motion
	// for a motion event to start (default DefaultMinFrames).
	MinFrames int
	// Gap is how long without motion, in capture time, ends a motion event
	// (default DefaultGap).
	Gap time.Duration
	// UpdateInterval is the least capture time between two changes of one
	// active event (default DefaultUpdateInterval).
	UpdateInterval time.Duration
	// MinFaceFrames is how many consecutive analysed frames must have a
	// face for a face event to start (default DefaultMinFaceFrames).
	MinFaceFrames int
	// FaceGap is how long without a face ends a face event (default
	// DefaultFaceGap).
	FaceGap time.Duration
	// MaxLength is the longest an event runs (capture time from its
	// start): the first frame with detections at or past it ends the
	// event there and starts its continuation on the same frame (default
	// DefaultMaxLength; negative: no limit).
	MaxLength time.Duration
}

// Detection is what the analyzer found on one frame of the Tracker's camera.
// The Tracker copies what it keeps: the caller may reuse the slices.
type Detection struct {
	// At is the frame's capture time. It should not go backwards; a frame
	// that does counts as captured at the latest time seen so far.
	At time.Time
	// Motion are the regions that changed. The frame has motion when at
	// least one box is left after clamping to the frame and dropping empty
	// boxes; beyond MaxBoxes the largest are kept.
	Motion []Box
	// Area is the fraction of the frame that changed (0..1). When it is 0
	// while there are boxes, the sum of the boxes' areas (at most 1) is
	// used.
	Area float64
	// Faces are the faces found, treated like Motion.
	Faces []Box
	// FacesSkipped says face detection did not run on this frame (an
	// analyzer may look for faces less often than for motion, which is
	// much cheaper). Such a frame neither extends nor breaks a run of face
	// frames; the face gap still runs in capture time.
	FacesSkipped bool
	// Frame is the frame the detections come from.
	Frame FrameRef
}

// Tracker turns the detections of one camera's frames into events, with
// hysteresis so that one person crossing the scene is one event: motion and
// faces are tracked separately, each with at most one active event. An
// event starts after a run of consecutive frames with detections, goes on
// while detections keep coming with gaps shorter than the gap option, and
// ends when a gap is that long. While it is active it publishes an update at
// most every UpdateInterval, and only when its boxes changed or it reached a
// new peak. An event that reaches MaxLength is ended on the frame that
// reaches it, and a new event (its continuation, Continues set) starts on
// that same frame, without waiting for MinFrames: the scene has been moving
// all along.
//
// A Tracker is not safe for concurrent use: it belongs to the one goroutine
// that analyses its camera.
type Tracker struct {
	camera  string
	last    time.Time // capture time of the latest frame observed
	motion  track
	face    track
	scratch []Box // normalized boxes of the frame being observed
}

// NewTracker returns an idle Tracker for the camera with the given id.
func NewTracker(camera string, opts TrackerOptions) *Tracker {
	orDefault := func(v, def time.Duration) time.Duration {
		if v <= 0 {
			return def
		}
		return v
	}
	orDefaultN := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	every := orDefault(opts.UpdateInterval, DefaultUpdateInterval)
	maxLen := orDefault(opts.MaxLength, DefaultMaxLength)
	if opts.MaxLength < 0 {
		maxLen = 0 // no limit
	}
	return &Tracker{
		camera: camera,
		motion: track{
			typ:       TypeMotion,
			minFrames: orDefaultN(opts.MinFrames, DefaultMinFrames),
			gap:       orDefault(opts.Gap, DefaultGap),
			every:     every,
			maxLen:    maxLen,
		},
		face: track{
			typ:       TypeFace,
			minFrames: orDefaultN(opts.MinFaceFrames, DefaultMinFaceFrames),
			gap:       orDefault(opts.FaceGap, DefaultFaceGap),
			every:     every,
			maxLen:    maxLen,
		},
	}
}

// Camera returns the camera id.
func (t *Tracker) Camera() string { return t.camera }

// Observe takes the detections of the camera's next frame and returns the
// changes they cause, ends first, motion before faces; nil for most frames.
// A frame ends an event when its capture time is at least the gap after
// the event's last detection, whether or not the frame has detections.
// Every returned event is a complete snapshot owned by the caller.
func (t *Tracker) Observe(d Detection) []Event {
	at := d.At.UTC()
	if at.Before(t.last) {
		at = t.last
	}
	t.last = at
	fr := d.Frame
	fr.CapturedAt = fr.CapturedAt.UTC()

	// Ends first, so that a change never follows a later one of another
	// type in the same frame's result.
	out := t.motion.expire(t.camera, at, nil)
	out = t.face.expire(t.camera, at, out)
	t.scratch = normalize(t.scratch[:0], d.Motion)
	area := unitRound(clamp01(d.Area))
	if area == 0 {
		area = unitRound(min(boxesArea(t.scratch), 1))
	}
	out = t.motion.observe(t.camera, at, t.scratch, len(t.scratch), area, fr, false, out)

	t.scratch = normalize(t.scratch[:0], d.Faces)
	out = t.face.observe(t.camera, at, t.scratch, len(t.scratch), boxesArea(t.scratch), fr, d.FacesSkipped, out)
	return out
}

// Tick ends the events whose last detection is at least their gap before
// now, for when frames stop arriving (camera lost, analyzer skipping): call
// it every second or so with the current time, on the clock of the capture
// times (the wall clock). The end's Updated is the last detection plus the
// gap, whenever Tick notices, so the result does not depend on how often it
// is called. An analyzer that lags more than the gap behind its frames
// must not Tick with the wall clock, or it ends events that its backlog
// would continue.
func (t *Tracker) Tick(now time.Time) []Event {
	now = now.UTC()
	out := t.motion.expire(t.camera, now, nil)
	return t.face.expire(t.camera, now, out)
}

// Flush ends every active event as of now and forgets runs that have not
// started an event, for shutdown. The tracker stays usable.
func (t *Tracker) Flush(now time.Time) []Event {
	now = now.UTC()
	out := t.motion.flush(t.camera, now, nil)
	return t.face.flush(t.camera, now, out)
}

// Peak returns the best frame so far (the largest motion area, or the most
// faces) of the event of type typ that is active or about to start, and
// false when there is none. An analyzer that keeps snapshots calls it
// after Observe: when it returns the frame just observed, that frame's
// image is the event's best so far and the one to keep; the end change
// refers to it.
func (t *Tracker) Peak(typ Type) (FrameRef, bool) {
	tr := &t.motion
	if typ == TypeFace {
		tr = &t.face
	}
	if !tr.active && tr.run == 0 {
		return FrameRef{}, false
	}
	return tr.peakFrame, true
}

// track follows one type of detection of one camera.
type track struct {
	typ       Type
	minFrames int
	gap       time.Duration
	every     time.Duration
	maxLen    time.Duration // 0: no limit

	// The run of consecutive frames with detections while idle.
	run      int
	runStart time.Time // capture time of its first frame: the event's start
	runLast  time.Time

	// The best frame of the run and then of the event. For faces the count
	// decides and the area of the boxes breaks ties; for motion the area.
	hasPeak   bool
	peakCount int
	peakArea  float64
	peakFrame FrameRef
	peakBoxes []Box // owned buffer

	// The active event.
	active   bool
	id       string
	prev     string // the id of the event this one continues, if any
	start    time.Time
	lastSeen time.Time // capture time of the latest frame with a detection
	lastEmit time.Time // Updated of the latest change emitted
	emitted  []Box     // owned buffer: the boxes of the latest change emitted
	dirty    bool      // boxes or peak changed since the latest change
}

// observe takes one frame's detections; expire has run for the frame.
func (tr *track) observe(camera string, at time.Time, boxes []Box, count int, area float64, fr FrameRef, skipped bool, out []Event) []Event {
	if skipped {
		return out
	}
	if len(boxes) == 0 {
		tr.run = 0
		return out
	}
	if tr.active && tr.maxLen > 0 && at.Sub(tr.start) >= tr.maxLen {
		// Long enough: end it on this frame and continue it as a new
		// event from this frame, its peak this frame.
		tr.lastSeen = at
		prev := tr.id
		out = append(out, tr.end(camera, at))
		tr.active, tr.start, tr.id, tr.prev, tr.lastSeen = true, at, NewID(at), prev, at
		tr.hasPeak = false
		tr.setPeak(count, area, boxes, fr)
		return append(out, tr.emit(camera, PhaseStart, at, boxes, fr))
	}
	if tr.active {
		tr.lastSeen = at
		if tr.better(count, area) {
			tr.setPeak(count, area, boxes, fr)
			tr.dirty = true
		}
		if !slices.Equal(boxes, tr.emitted) {
			tr.dirty = true
		}
		if tr.dirty && at.Sub(tr.lastEmit) >= tr.every {
			out = append(out, tr.emit(camera, PhaseUpdate, at, boxes, fr))
		}
		return out
	}
	if tr.run == 0 {
		tr.runStart = at
		tr.hasPeak = false
	}
	tr.run++
	tr.runLast = at
	if tr.better(count, area) {
		tr.setPeak(count, area, boxes, fr)
	}
	if tr.run < tr.minFrames {
		return out
	}
	tr.run = 0
	tr.active = true
	tr.start = tr.runStart
	tr.id = NewID(tr.start)
	tr.prev = ""
	tr.lastSeen = at
	return append(out, tr.emit(camera, PhaseStart, at, boxes, fr))
}

// expire ends the active event when its last detection is at least the gap
// before now, and forgets a run whose last frame is: frames that far apart
// are not consecutive.
func (tr *track) expire(camera string, now time.Time, out []Event) []Event {
	if tr.active && now.Sub(tr.lastSeen) >= tr.gap {
		out = append(out, tr.end(camera, tr.lastSeen.Add(tr.gap)))
	}
	if tr.run > 0 && now.Sub(tr.runLast) >= tr.gap {
		tr.run = 0
	}
	return out
}

func (tr *track) flush(camera string, now time.Time, out []Event) []Event {
	if tr.active {
		out = append(out, tr.end(camera, now))
	}
	tr.run = 0
	return out
}

// better reports whether a frame with count boxes covering area beats the
// peak.
func (tr *track) better(count int, area float64) bool {
	switch {
	case !tr.hasPeak:
		return true
	case tr.typ == TypeFace && count != tr.peakCount:
		return count > tr.peakCount
	}
	return area > tr.peakArea
}

func (tr *track) setPeak(count int, area float64, boxes []Box, fr FrameRef) {
	tr.hasPeak = true
	tr.peakCount, tr.peakArea, tr.peakFrame = count, area, fr
	tr.peakBoxes = append(tr.peakBoxes[:0], boxes...)
}

// emit makes a start or update of the frame fr with its boxes.
func (tr *track) emit(camera string, phase Phase, at time.Time, boxes []Box, fr FrameRef) Event {
	tr.emitted = append(tr.emitted[:0], boxes...)
	tr.lastEmit = at
	tr.dirty = false
	return tr.event(camera, phase, at, boxes, fr)
}

// end ends the active event, decided at the given time. End is the last
// detection; Updated is never before it nor before the previous change.
func (tr *track) end(camera string, decided time.Time) Event {
	end := tr.lastSeen
	updated := decided
	if updated.Before(end) {
		updated = end
	}
	if updated.Before(tr.lastEmit) {
		updated = tr.lastEmit
	}
	e := tr.event(camera, PhaseEnd, updated, tr.peakBoxes, tr.peakFrame)
	e.End = &end
	tr.active, tr.id, tr.prev, tr.run, tr.dirty = false, "", "", 0, false
	return e
}

// event is a complete snapshot of the active event; it copies boxes.
func (tr *track) event(camera string, phase Phase, updated time.Time, boxes []Box, fr FrameRef) Event {
	e := Event{
		ID:        tr.id,
		Continues: tr.prev,
		Camera:    camera,
		Type:      tr.typ,
		Phase:     phase,
		Start:     tr.start,
		Updated:   updated,
		Boxes:     append(make([]Box, 0, len(boxes)), boxes...),
		Frame:     fr,
	}
	if tr.typ == TypeMotion {
		e.Area = tr.peakArea
	} else {
		e.Faces = tr.peakCount
	}
	return e
}

// normalize appends to dst the boxes of src clamped to the frame and
// rounded (unitRound), without empty ones, and keeps the MaxBoxes largest.
func normalize(dst, src []Box) []Box {
	for _, b := range src {
		x, y := unitRound(clamp01(b.X)), unitRound(clamp01(b.Y))
		w := min(unitRound(clamp01(b.W)), unitRound(1-x))
		h := min(unitRound(clamp01(b.H)), unitRound(1-y))
		if w > 0 && h > 0 {
			dst = append(dst, Box{x, y, w, h})
		}
	}
	if len(dst) > MaxBoxes {
		slices.SortStableFunc(dst, func(a, b Box) int { return cmp.Compare(b.W*b.H, a.W*a.H) })
		dst = dst[:MaxBoxes]
	}
	return dst
}

func boxesArea(bs []Box) float64 {
	var a float64
	for _, b := range bs {
		a += b.W * b.H
	}
	return a
}

// clamp01 clamps v to 0..1, with NaN as 0.
func clamp01(v float64) float64 {
	switch {
	case !(v > 0):
		return 0
	case v > 1:
		return 1
	}
	return v
}
