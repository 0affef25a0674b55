package events

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/streamd/streamd/pkg/frame"
)

// DefaultActivityTopic holds each camera's activity per minute (Activity),
// keyed by camera id.
const DefaultActivityTopic = "streamd.activity"

// Activity is how much one camera's scene moved during one minute of
// capture time, as the analyzer measured it on the frames it analyzed: the
// density a day timeline draws. It is measured on every analyzed frame,
// events or not, so a quiet minute reads 0 and a minute the analyzer did
// not see has no record at all (the timeline then shows nothing rather
// than a calm that was not observed).
//
// A record is additive: two records of the same camera and minute (an
// analyzer restarted within the minute, the camera moved to another
// analyzer) merge into their sums (Merge), so the means stay right; a
// record delivered twice doubles Frames and Moving but leaves the means
// (Area, MovingShare) as they were.
type Activity struct {
	Camera string    `json:"camera"`
	Minute time.Time `json:"minute"` // the minute's start (capture time, UTC)
	Frames int       `json:"frames"` // frames analyzed in it
	Moving int       `json:"moving"` // of which had motion
	// Area is the mean fraction of the frame that changed, over Frames
	// (0..1): how much of the frame moved.
	Area float64 `json:"area"`
	// Peak is the largest fraction of one frame that changed (0..1).
	Peak float64 `json:"peak"`
	// Objects says that the analyzer runs object detection on the camera
	// (configured, and its model loaded): the review then lists what
	// moved (object events), not motion alone. A web node learns it from
	// here, whatever its own configuration says.
	Objects bool `json:"objects,omitempty"`
}

// MovingShare is the fraction of the minute's analyzed frames with motion.
func (a Activity) MovingShare() float64 {
	if a.Frames == 0 {
		return 0
	}
	return float64(a.Moving) / float64(a.Frames)
}

// maxActivityFrames bounds Frames: a minute at 240 fps, twice over.
const maxActivityFrames = 2 * 240 * 60

// Validate reports the first reason a is not a well-formed record.
func (a Activity) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: activity of %q at %s: %s", ErrInvalid, a.Camera, a.Minute.Format(time.RFC3339), fmt.Sprintf(format, args...))
	}
	switch {
	case frame.ValidateID(a.Camera) != nil:
		return bad("camera: %v", frame.ValidateID(a.Camera))
	case a.Minute.IsZero() || !a.Minute.Equal(a.Minute.Truncate(time.Minute)):
		return bad("minute is not the start of a minute")
	case a.Frames < 1 || a.Frames > maxActivityFrames:
		return bad("frames %d, want 1 to %d", a.Frames, maxActivityFrames)
	case a.Moving < 0 || a.Moving > a.Frames:
		return bad("moving %d of %d frames", a.Moving, a.Frames)
	case !fraction(a.Area) || !fraction(a.Peak) || a.Area > a.Peak+1e-9:
		return bad("area %g and peak %g: fractions 0..1, the mean at most the peak", a.Area, a.Peak)
	}
	return nil
}

// MarshalActivity validates a and returns its JSON (the record value).
func MarshalActivity(a Activity) ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(a)
}

// UnmarshalActivity parses and validates one record from untrusted JSON.
func UnmarshalActivity(b []byte) (Activity, error) {
	if len(b) > 1024 {
		return Activity{}, fmt.Errorf("%w: activity record of %d bytes", ErrInvalid, len(b))
	}
	var a Activity
	if err := json.Unmarshal(b, &a); err != nil {
		return Activity{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	a.Minute = a.Minute.UTC()
	return a, a.Validate()
}

// Merge adds b, a record of the same camera and minute, to a.
func (a Activity) Merge(b Activity) Activity {
	n := a.Frames + b.Frames
	out := a
	out.Frames, out.Moving = n, a.Moving+b.Moving
	out.Area = unitRound((a.Area*float64(a.Frames) + b.Area*float64(b.Frames)) / float64(n))
	out.Peak = max(a.Peak, b.Peak)
	out.Area = min(out.Area, out.Peak)
	out.Objects = a.Objects || b.Objects
	return out
}

// ActivityMeter sums one camera's analyzed frames into minutes, on the
// analyzer. It is not safe for concurrent use: it belongs to the camera's
// worker, like its Tracker.
type ActivityMeter struct {
	camera string
	// Objects marks the camera's records: object detection runs on it.
	Objects bool
	cur     Activity
	sum     float64 // of the areas of the minute's frames
	open    bool    // cur holds frames
}

// NewActivityMeter returns a meter for the camera with the given id.
func NewActivityMeter(camera string) *ActivityMeter { return &ActivityMeter{camera: camera} }

// Observe counts one analyzed frame captured at at, area of it changed
// (0: none; motion a detector dismissed as a global change counts as 0).
// It returns the previous minute's record when the frame starts a later
// minute; a frame of an earlier minute than the open one (capture time
// going back) counts in the open one.
func (m *ActivityMeter) Observe(at time.Time, area float64, moving bool) (done *Activity) {
	minute := at.UTC().Truncate(time.Minute)
	if m.open && minute.After(m.cur.Minute) {
		done = m.finish()
	}
	if !m.open {
		m.cur = Activity{Camera: m.camera, Minute: minute, Objects: m.Objects}
		m.sum, m.open = 0, true
	}
	area = clamp01(area) // NaN too
	m.cur.Frames++
	if moving {
		m.cur.Moving++
	}
	m.sum += area
	m.cur.Peak = max(m.cur.Peak, unitRound(area))
	return done
}

// Tick returns the open minute's record once now is past its end by
// grace (frames stopped coming: the camera is lost or moved); nil
// otherwise. Call it with the clock of the capture times.
func (m *ActivityMeter) Tick(now time.Time, grace time.Duration) *Activity {
	if m.open && now.Sub(m.cur.Minute.Add(time.Minute)) >= grace {
		return m.finish()
	}
	return nil
}

// Flush returns the open minute's record, partial, for shutdown; nil
// without one. Another analyzer's record of the rest of the minute merges
// with it on the web side.
func (m *ActivityMeter) Flush() *Activity {
	if !m.open {
		return nil
	}
	return m.finish()
}

func (m *ActivityMeter) finish() *Activity {
	a := m.cur
	a.Area = min(unitRound(m.sum/float64(a.Frames)), a.Peak)
	m.open = false
	return &a
}

// Defaults of ActivityLog.
const (
	// DefaultActivityKeep: a week of minutes, what the recording keeps by
	// default (and the events topic).
	DefaultActivityKeep = 7 * 24 * time.Hour
	// DefaultActivityCameras bounds the cameras held: a flood of forged
	// keys must not exhaust memory (a camera's week is about 400 kB).
	DefaultActivityCameras = 256
)

// minuteStat is a minute of a camera as held: 20 bytes.
type minuteStat struct {
	frames, moving uint32
	area, peak     float32
	objects        bool
}

// ActivityLog is a web node's view of the cameras' activity: per camera,
// the minutes of the last Keep, merged as records come (in any order, any
// number of times). It is safe for concurrent use.
type ActivityLog struct {
	keep       time.Duration
	maxCameras int
	now        func() time.Time

	mu      sync.RWMutex
	cams    map[string]map[int64]minuteStat // camera → unix minute → stat
	applied uint64
	dropped uint64 // too old, or a camera over the bound
}

// NewActivityLog returns an empty log keeping keep (0: DefaultActivityKeep)
// of at most maxCameras cameras (0: DefaultActivityCameras); now is the
// clock that places keep (nil: time.Now).
func NewActivityLog(keep time.Duration, maxCameras int, now func() time.Time) *ActivityLog {
	if keep <= 0 {
		keep = DefaultActivityKeep
	}
	if maxCameras <= 0 {
		maxCameras = DefaultActivityCameras
	}
	if now == nil {
		now = time.Now
	}
	return &ActivityLog{keep: keep, maxCameras: maxCameras, now: now, cams: map[string]map[int64]minuteStat{}}
}

// Apply merges a valid record in; it reports whether it was kept.
func (l *ActivityLog) Apply(a Activity) bool {
	cutoff := l.now().Add(-l.keep)
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.Minute.Before(cutoff) {
		l.dropped++
		return false
	}
	m, ok := l.cams[a.Camera]
	if !ok {
		if len(l.cams) >= l.maxCameras {
			l.dropped++
			return false
		}
		m = map[int64]minuteStat{}
		l.cams[a.Camera] = m
	}
	key := a.Minute.Unix() / 60
	if old, ok := m[key]; ok {
		a = old.activity(a.Camera, a.Minute).Merge(a)
	}
	m[key] = minuteStat{frames: uint32(a.Frames), moving: uint32(a.Moving), area: float32(a.Area), peak: float32(a.Peak), objects: a.Objects}
	l.applied++
	// Forget what is older than keep, a camera at a time, now and then.
	if l.applied%1024 == 0 {
		for cam, mm := range l.cams {
			for k := range mm {
				if k*60 < cutoff.Unix() {
					delete(mm, k)
				}
			}
			if len(mm) == 0 {
				delete(l.cams, cam)
			}
		}
	}
	return true
}

func (s minuteStat) activity(camera string, minute time.Time) Activity {
	return Activity{Camera: camera, Minute: minute, Frames: int(s.frames), Moving: int(s.moving),
		Area: unitRound(float64(s.area)), Peak: unitRound(float64(s.peak)), Objects: s.objects}
}

// Minutes returns camera's minutes that start in [from, to), in order.
func (l *ActivityLog) Minutes(camera string, from, to time.Time) []Activity {
	l.mu.RLock()
	defer l.mu.RUnlock()
	m := l.cams[camera]
	out := make([]Activity, 0, min(len(m), int(to.Sub(from)/time.Minute)+1))
	lo, hi := (from.Unix()+59)/60, (to.Unix()+59)/60
	if int64(len(m)) < hi-lo {
		for k, s := range m {
			if k >= lo && k < hi {
				out = append(out, s.activity(camera, time.Unix(k*60, 0).UTC()))
			}
		}
		slices.SortFunc(out, func(a, b Activity) int { return a.Minute.Compare(b.Minute) })
		return out
	}
	for k := lo; k < hi; k++ {
		if s, ok := m[k]; ok {
			out = append(out, s.activity(camera, time.Unix(k*60, 0).UTC()))
		}
	}
	return out
}

// ActivityStats counts a log's contents.
type ActivityStats struct {
	Cameras, Minutes int
	Applied, Dropped uint64
}

// Stats returns the log's counts.
func (l *ActivityLog) Stats() ActivityStats {
	l.mu.RLock()
	defer l.mu.RUnlock()
	s := ActivityStats{Cameras: len(l.cams), Applied: l.applied, Dropped: l.dropped}
	for _, m := range l.cams {
		s.Minutes += len(m)
	}
	return s
}
