// Package events turns per-frame detections of security cameras into events
// with a lifecycle, and keeps the web side's view of them.
//
// An Event is one happening on one camera, motion in the scene or faces in
// view, from its start to its end. It changes in phases: "start", then
// "update"s while it goes on, then one "end". Every change is published as a
// complete snapshot of the event (its id, start, boxes, peak, ...), never as
// a diff, so that any single record tells the whole current state: a web
// node that starts in the middle of an event (its consumer starts at the
// newest records), or that misses records, still shows the event right, and
// redelivered records are harmless.
//
// The package has three parts:
//
//   - Event and its JSON form (Marshal, Unmarshal): the record value on the
//     Kafka topic DefaultTopic, keyed by camera id, and what /api/events
//     returns. Records are untrusted input, so Unmarshal validates.
//   - Tracker, on the analyzer, one per camera: it turns per-frame
//     detections into events with hysteresis, so that one person crossing
//     the scene is one event, not hundreds.
//   - Store, on each web node: the latest state of every recent event,
//     queries for the event list, and a change log with sequence numbers
//     for live updates that resume after a reconnection (Last-Event-ID).
//
// All times are wall-clock times in UTC. The Tracker measures durations in
// capture time (the producer's clock, carried with every frame), never in
// processing time, so that an analyzer that lags or runs in bursts still
// sees the scene's real rhythm.
//
// The package is pure Go: it knows nothing of Kafka clients, HTTP, OpenCV or
// the configuration.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/streamd/streamd/pkg/frame"
)

// DefaultTopic is the Kafka topic events go to unless configured otherwise.
// The record key is the camera id (so one camera's changes stay in order on
// one partition) and the value is Marshal's JSON.
const DefaultTopic = "streamd.events"

// DefaultSnapshotsTopic holds one JPEG per event, the frame with its boxes
// drawn; the record key is the event id.
const DefaultSnapshotsTopic = "streamd.snapshots"

// Limits that Validate enforces, and so Marshal and Unmarshal.
const (
	// MaxBoxes is the most boxes an event carries. The Tracker keeps the
	// largest ones; a detector rarely reports more than a handful of
	// meaningful regions, and the bound keeps records small.
	MaxBoxes = 32
	// MaxIDLen is the longest event id. Tracker ids are 24 characters.
	MaxIDLen = 64
	// MaxEventBytes is the largest record Unmarshal accepts. An event with
	// MaxBoxes boxes is about 2 kB; anything much larger is not ours.
	MaxEventBytes = 16 << 10
)

// Type is what an event is about.
type Type string

// Event types.
const (
	TypeMotion Type = "motion" // part of the scene changed
	TypeFace   Type = "face"   // one or more faces were in view
	TypeObject Type = "object" // one tracked object (Label) was in view
)

// Severity ranks an object event for review, as Frigate splits its review
// items: an alert wants a look now, a detection is kept for later.
type Severity string

// Severities.
const (
	SeverityAlert     Severity = "alert"
	SeverityDetection Severity = "detection"
)

// MaxZones is the most zones an event lists; MaxZoneLen the longest name.
const (
	MaxZones   = 16
	MaxZoneLen = 64
)

// MaxLabelLen is the longest object label.
const MaxLabelLen = 64

// Phase is which change of an event's lifecycle a record carries.
type Phase string

// Event phases. An event has exactly one start and one end, and any number
// of updates between them.
const (
	PhaseStart  Phase = "start"
	PhaseUpdate Phase = "update"
	PhaseEnd    Phase = "end"
)

// rank orders the phases of one event: a change with a higher rank supersedes
// one with the same Updated time and a lower rank.
func (p Phase) rank() int {
	switch p {
	case PhaseStart:
		return 1
	case PhaseUpdate:
		return 2
	case PhaseEnd:
		return 3
	}
	return 0
}

// Box is a rectangle in normalized frame coordinates: X and Y are the top
// left corner, W and H the size, all as fractions (0..1) of the frame's width
// and height, so that a box means the same whatever resolution the analyzer
// worked at or the browser draws at.
type Box struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	W float64 `json:"w"`
	H float64 `json:"h"`
}

// FrameRef names one video frame in Kafka: where to fetch it again (for a
// snapshot or a replay) and which capture it was.
type FrameRef struct {
	Partition  int32     `json:"partition"`   // partition of the frames topic
	Offset     int64     `json:"offset"`      // offset in that partition
	CapturedAt time.Time `json:"captured_at"` // capture time (RFC 3339 nano)
	Seq        uint64    `json:"seq"`         // producer's per-camera sequence number
}

// Event is the state of one event as of one change. Every change is a
// complete snapshot. Values returned by this package share their Boxes and
// End with other copies: treat them as read-only.
type Event struct {
	// ID identifies the event across all cameras, Frigate-style:
	// "<unix seconds of the start, 6 decimals>-<6 random [a-z0-9]>", for
	// example "1762423821.123456-k3x9q2". It sorts (within equal lengths) by
	// start time and needs no coordination between analyzers.
	ID string `json:"id"`
	// Continues is the id of the event this one continues: an event that
	// reached its tracker's maximum length (events.max_length) ends and
	// a new event, naming it here, starts on the same frame. Empty for
	// an event that started on its own.
	Continues string `json:"continues,omitempty"`
	// Camera is the camera id (also the Kafka record key).
	Camera string `json:"camera"`
	// Type is TypeMotion, TypeFace or TypeObject.
	Type Type `json:"type"`
	// Label is, for object events, what the object is ("person", "car",
	// one of the detector's labels); empty otherwise.
	Label string `json:"label,omitempty"`
	// Stationary says, for object events, that the object stopped moving
	// (a parked car): its event ends then, and it starts a new one only
	// when it moves again.
	Stationary bool `json:"stationary,omitempty"`
	// Zones are, for object events, the names of the camera's zones the
	// object has entered so far (in the order entered); empty when it has
	// entered none or the camera has no zones.
	Zones []string `json:"zones,omitempty"`
	// Severity is, for object events, how a person reviewing should see
	// the event: SeverityAlert for the labels and zones that make alerts,
	// SeverityDetection otherwise. Motion and face events leave it empty.
	Severity Severity `json:"severity,omitempty"`
	// Phase is the change this snapshot reports: start, update or end.
	Phase Phase `json:"phase"`
	// Start is the capture time of the event's first frame.
	Start time.Time `json:"start"`
	// End is the capture time of the event's last frame with a detection:
	// null while the event is active, set exactly on the end phase.
	End *time.Time `json:"end"`
	// Updated is when this change happened; changes of one event have
	// non-decreasing Updated times (equal ones order by phase), which is
	// how a Store tells a newer change from a redelivered older one. For
	// an end it is when the event was decided to be over (End plus the
	// gap, or the time of a Flush), so it follows End.
	Updated time.Time `json:"updated"`
	// Boxes are where the detections are: on start and update those of
	// Frame; on end those of the peak frame. Always an array in JSON.
	Boxes []Box `json:"boxes"`
	// Area is, for motion, the peak fraction of the frame that changed
	// (0..1) so far; 0 for faces.
	Area float64 `json:"area"`
	// Score is a detector's confidence (0..1) when it has one; omitted
	// otherwise. The Tracker leaves it unset.
	Score *float64 `json:"score,omitempty"`
	// Faces is, for face events, the most faces seen at once so far; 0 for
	// motion.
	Faces int `json:"faces"`
	// Frame is the frame this change refers to: on start and update the
	// frame observed when the change was made, on end the event's best
	// frame (the largest motion area, or the most faces).
	Frame FrameRef `json:"frame"`
	// Snapshot says that a snapshot JPEG of Frame exists for this event.
	// The Tracker leaves it false; the analyzer sets it when it has stored
	// one.
	Snapshot bool `json:"snapshot"`
}

// Active reports whether the event has not ended.
func (e Event) Active() bool { return e.End == nil }

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid event")

// Validate reports the first reason e is not a well-formed event, as an
// error wrapping ErrInvalid. It checks every field a consumer relies on:
// the id, the camera id (frame.ValidateID), type and phase, that End is set
// exactly on the end phase, the order Start <= End <= Updated, and that
// boxes, area and score are finite fractions.
func (e Event) Validate() error {
	if err := validateID(e.ID); err != nil {
		return err
	}
	if err := frame.ValidateID(e.Camera); err != nil {
		return fmt.Errorf("%w %s: camera: %v", ErrInvalid, e.ID, err)
	}
	if e.Continues != "" {
		if err := validateID(e.Continues); err != nil {
			return fmt.Errorf("%w %s: continues: %v", ErrInvalid, e.ID, err)
		}
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", ErrInvalid, e.ID, fmt.Sprintf(format, args...))
	}
	switch e.Type {
	case TypeMotion, TypeFace:
		if e.Label != "" {
			return bad("label %q on a %s event (object events only)", clip(e.Label), e.Type)
		}
		if e.Severity != "" || len(e.Zones) > 0 {
			return bad("severity or zones on a %s event (object events only)", e.Type)
		}
	case TypeObject:
		if e.Label == "" || len(e.Label) > MaxLabelLen {
			return bad("object label %q: 1 to %d characters", clip(e.Label), MaxLabelLen)
		}
	default:
		return bad("type %q, want %q, %q or %q", clip(string(e.Type)), TypeMotion, TypeFace, TypeObject)
	}
	switch e.Severity {
	case "", SeverityAlert, SeverityDetection:
	default:
		return bad("severity %q, want %q or %q", clip(string(e.Severity)), SeverityAlert, SeverityDetection)
	}
	if len(e.Zones) > MaxZones {
		return bad("%d zones, at most %d", len(e.Zones), MaxZones)
	}
	for i, z := range e.Zones {
		if z == "" || len(z) > MaxZoneLen {
			return bad("zones[%d] %q: 1 to %d characters", i, clip(z), MaxZoneLen)
		}
	}
	if e.Phase.rank() == 0 {
		return bad("phase %q, want %q, %q or %q", clip(string(e.Phase)), PhaseStart, PhaseUpdate, PhaseEnd)
	}
	if e.Start.IsZero() {
		return bad("missing start")
	}
	if e.Updated.IsZero() {
		return bad("missing updated")
	}
	if e.Updated.Before(e.Start) {
		return bad("updated %s before start %s", e.Updated.Format(time.RFC3339Nano), e.Start.Format(time.RFC3339Nano))
	}
	switch {
	case e.Phase == PhaseEnd && e.End == nil:
		return bad("phase end without an end time")
	case e.Phase != PhaseEnd && e.End != nil:
		return bad("phase %s with an end time (end is null until the end phase)", e.Phase)
	case e.End != nil && e.End.Before(e.Start):
		return bad("end %s before start %s", e.End.Format(time.RFC3339Nano), e.Start.Format(time.RFC3339Nano))
	case e.End != nil && e.End.After(e.Updated):
		return bad("end %s after updated %s", e.End.Format(time.RFC3339Nano), e.Updated.Format(time.RFC3339Nano))
	}
	if len(e.Boxes) > MaxBoxes {
		return bad("%d boxes, at most %d", len(e.Boxes), MaxBoxes)
	}
	for i, b := range e.Boxes {
		if !fraction(b.X) || !fraction(b.Y) || !fraction(b.W) || !fraction(b.H) || b.X+b.W > 1+boxSlack || b.Y+b.H > 1+boxSlack {
			return bad("boxes[%d] {x:%g y:%g w:%g h:%g} not inside the frame (0..1)", i, b.X, b.Y, b.W, b.H)
		}
	}
	if !fraction(e.Area) {
		return bad("area %g, want 0..1", e.Area)
	}
	if e.Score != nil && !fraction(*e.Score) {
		return bad("score %g, want 0..1", *e.Score)
	}
	if e.Faces < 0 {
		return bad("faces %d, want >= 0", e.Faces)
	}
	return nil
}

// boxSlack lets X+W and Y+H exceed 1 by a rounding error.
const boxSlack = 1e-6

func fraction(v float64) bool { return v >= 0 && v <= 1 } // false for NaN

// validateID accepts 1 to MaxIDLen characters from [A-Za-z0-9_.-]: ids end
// up in URLs (snapshots, /api/events/{id}) and file names.
func validateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: missing id", ErrInvalid)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: id of %d characters, at most %d", ErrInvalid, len(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("%w: id %q: character %q not allowed (use A-Z a-z 0-9 _ . -)", ErrInvalid, id, c)
		}
	}
	return nil
}

// clip shortens untrusted text quoted in an error.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// Marshal validates e and returns its JSON form (a Kafka record value or an
// element of /api/events). Nil Boxes are written as [].
func Marshal(e Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if e.Boxes == nil {
		e.Boxes = []Box{}
	}
	return json.Marshal(e)
}

// Unmarshal parses and validates one event from untrusted JSON (a Kafka
// record value). It rejects input over MaxEventBytes, malformed JSON and
// anything Validate rejects; every error wraps ErrInvalid. Unknown fields
// are ignored, so that producers may add fields without breaking older web
// nodes.
func Unmarshal(b []byte) (Event, error) {
	if len(b) > MaxEventBytes {
		return Event{}, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalid, len(b), MaxEventBytes)
	}
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// NewID returns a Frigate-like event id for an event starting at start:
// unix seconds with 6 decimals, a dash and 6 random characters from
// [a-z0-9] (36^6 = 2.2e9 possibilities: two events starting in the same
// microsecond on any cameras practically never collide).
func NewID(start time.Time) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	us := max(start.UnixMicro(), 0)
	b := make([]byte, 0, 32)
	b = strconv.AppendInt(b, us/1e6, 10)
	b = append(b, '.')
	frac := us % 1e6
	for d := int64(1e5); d > 0; d /= 10 {
		b = append(b, byte('0'+frac/d%10))
	}
	b = append(b, '-')
	for range 6 {
		b = append(b, alphabet[rand.N(len(alphabet))])
	}
	return string(b)
}

// unitRound rounds a normalized coordinate to 1/10000 of the frame, finer
// than a pixel of 4K video, so that records stay short ("0.3333" rather
// than "0.3333333333333333").
func unitRound(v float64) float64 { return math.Round(v*1e4) / 1e4 }
