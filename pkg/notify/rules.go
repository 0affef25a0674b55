package notify

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/streamd/streamd/pkg/events"
)

// Notification types: what a receiver is told about an event. They are
// Frigate's MQTT types, so "new" is streamd's start phase.
const (
	TypeNew    = "new"
	TypeUpdate = "update"
	TypeEnd    = "end"
)

// DefaultPhases are the notification types a target gets unless its rules
// say otherwise: one message when something happens, one when it is over.
var DefaultPhases = []string{TypeNew, TypeEnd}

// DefaultCooldown is how long after a notification about a camera and
// label a new event of the same camera and label is held back.
const DefaultCooldown = 30 * time.Second

// Reasons a change is not sent to a target (the reason label of
// streamd_notify_dropped_total).
const (
	DropRule       = "rule"        // cameras, types, labels, zones or severity
	DropPhase      = "phase"       // a notification type the target does not want
	DropCooldown   = "cooldown"    // another event of the camera and label was notified within the cooldown
	DropQuietHours = "quiet_hours" // the event began in the target's quiet hours
)

// Rules decide which event changes a target is told about. Empty lists
// allow everything.
type Rules struct {
	Cameras []string // camera ids
	Types   []string // event types: motion, face, object
	// Labels are what the event is about: the object label for object
	// events ("person", "car"), "face" for face events and "motion" for
	// motion events.
	Labels []string
	// Zones: the event must have entered at least one of them.
	Zones []string
	// Severity: the event's severity must be one of them (alert,
	// detection); only object events have one.
	Severity []string
	// Phases are the notification types sent: new, update, end; nil:
	// DefaultPhases.
	Phases []string
	// Cooldown holds back a new event of a camera and label for this long
	// after the last one notified (event time); zero: none.
	Cooldown time.Duration
	// QuietHours are times of day when new events are not notified.
	QuietHours []QuietHours
	// Location is the time zone of the quiet hours; nil: time.Local.
	Location *time.Location
}

// QuietHours is a daily span, From up to To (exclusive), as minutes after
// midnight; a span that ends before it starts runs over midnight.
type QuietHours struct{ From, To int }

// ParseQuietHours reads a span written "HH:MM-HH:MM" ("22:30-06:00").
func ParseQuietHours(s string) (QuietHours, error) {
	from, to, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return QuietHours{}, fmt.Errorf("quiet hours %q: want HH:MM-HH:MM, such as 22:30-06:00", s)
	}
	f, err := parseClock(from)
	if err != nil {
		return QuietHours{}, fmt.Errorf("quiet hours %q: %w", s, err)
	}
	t, err := parseClock(to)
	if err != nil {
		return QuietHours{}, fmt.Errorf("quiet hours %q: %w", s, err)
	}
	if f == t {
		return QuietHours{}, fmt.Errorf("quiet hours %q: start and end are the same time", s)
	}
	return QuietHours{From: f, To: t}, nil
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || (hh == 24 && mm != 0) || len(h) != 2 || len(m) != 2 {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return hh*60 + mm, nil
}

// contains reports whether t's time of day (in loc) is inside the span.
func (q QuietHours) contains(t time.Time, loc *time.Location) bool {
	lt := t.In(loc)
	m := lt.Hour()*60 + lt.Minute()
	if q.From < q.To {
		return m >= q.From && m < q.To
	}
	return m >= q.From || m < q.To
}

// Label is what an event is about, as rules and topics name it: the
// object's label, "face" or "motion".
func Label(e events.Event) string {
	switch e.Type {
	case events.TypeObject:
		return e.Label
	case events.TypeFace:
		return "face"
	}
	return "motion"
}

// maxTracked bounds the events a target remembers (whether each was
// notified, held back, and its last change): past it the events not
// changed for the longest are forgotten, as if never seen.
const maxTracked = 4096

// Notification is one message to a target about one change of an event.
type Notification struct {
	// Type is new (the first message this target gets about the event),
	// update or end.
	Type string
	// Key is the idempotency key: the event id and the type (and, for
	// an update, the change's time in Unix milliseconds). A message sent
	// again (after a restart, a rebalance or a lost acknowledgement)
	// carries the same key.
	Key string
	// Event is the event as of this change.
	Event events.Event
	// Before is the change the target saw before this one (the same as
	// Event for the first change it saw).
	Before events.Event
}

// keyOf is a notification's idempotency key.
func keyOf(typ string, e events.Event) string {
	if typ == TypeUpdate {
		return e.ID + ":update:" + strconv.FormatInt(e.Updated.UnixMilli(), 10)
	}
	return e.ID + ":" + typ
}

// decider applies one target's rules to the changes it reads. The
// decision about an event is made once, the first time a change of it
// matches every rule, and holds for the rest of the event: an event held
// back by the cooldown or quiet hours stays held back, so a receiver never
// gets an end without its new, and one notified gets its end even when the
// quiet hours begin meanwhile.
type decider struct {
	r Rules

	mu      sync.Mutex
	events  map[string]*eventState // by event id
	lastNew map[string]stamp       // camera + "\x00" + label -> the last new notified
}

// stamp is when a camera and label were last notified, and the partition
// of the camera's events.
type stamp struct {
	at        time.Time
	partition int32
}

type eventState struct {
	partition int32  // of the events topic: its commits carry the state
	notified  bool   // a new was decided
	held      string // the reason it is held back, or ""
	last      events.Event
	seen      time.Time // when its last change was read, for forgetting
}

func newDecider(r Rules) *decider {
	if r.Phases == nil {
		r.Phases = DefaultPhases
	}
	if r.Location == nil {
		r.Location = time.Local
	}
	return &decider{r: r, events: map[string]*eventState{}, lastNew: map[string]stamp{}}
}

// cameraAllowed reports whether the target wants anything of camera.
func (d *decider) cameraAllowed(camera string) bool {
	return len(d.r.Cameras) == 0 || slices.Contains(d.r.Cameras, camera)
}

// decide returns the notifications one change makes (in order), or none
// and the reason it makes none.
func (d *decider) decide(partition int32, e events.Event) (out []Notification, dropped string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.events[e.ID]
	if st == nil {
		st = &eventState{last: e}
		d.events[e.ID] = st
		d.forget()
	}
	st.partition = partition
	before := st.last
	st.last, st.seen = e, time.Now()
	if e.Phase == events.PhaseEnd {
		delete(d.events, e.ID)
	}
	r := d.r
	switch {
	case !d.cameraAllowed(e.Camera),
		len(r.Types) > 0 && !slices.Contains(r.Types, string(e.Type)),
		len(r.Labels) > 0 && !slices.Contains(r.Labels, Label(e)):
		return nil, DropRule
	}
	if st.held != "" {
		return nil, st.held
	}
	var types []string
	if st.notified {
		types = []string{TypeUpdate}
		if e.Phase == events.PhaseEnd {
			types = []string{TypeEnd}
		}
	} else {
		if len(r.Zones) > 0 && !slices.ContainsFunc(e.Zones, func(z string) bool { return slices.Contains(r.Zones, z) }) ||
			len(r.Severity) > 0 && !slices.Contains(r.Severity, string(e.Severity)) {
			return nil, DropRule // may match later: zones are entered, severity rises
		}
		// The event matches: now it is decided, by the time of this change.
		at := e.Updated
		for _, q := range r.QuietHours {
			if q.contains(at, r.Location) {
				st.held = DropQuietHours
				return nil, st.held
			}
		}
		key := e.Camera + "\x00" + Label(e)
		if last, ok := d.lastNew[key]; ok && r.Cooldown > 0 && !at.Before(last.at) && at.Sub(last.at) < r.Cooldown {
			st.held = DropCooldown
			return nil, st.held
		}
		d.lastNew[key] = stamp{at, partition}
		st.notified = true
		types = []string{TypeNew}
		if e.Phase == events.PhaseEnd {
			// Matched only as it ended: new, then end at once.
			types = append(types, TypeEnd)
		}
	}
	for _, t := range types {
		if slices.Contains(r.Phases, t) {
			out = append(out, Notification{Type: t, Key: keyOf(t, e), Event: e, Before: before})
		}
	}
	if len(out) == 0 {
		return nil, DropPhase
	}
	return out, ""
}

// forget drops the events not changed for the longest once more than
// maxTracked are held. d.mu is held.
func (d *decider) forget() {
	if len(d.events) <= maxTracked {
		return
	}
	type aged struct {
		id   string
		seen time.Time
	}
	all := make([]aged, 0, len(d.events))
	for id, st := range d.events {
		all = append(all, aged{id, st.seen})
	}
	slices.SortFunc(all, func(a, b aged) int { return a.seen.Compare(b.seen) })
	for _, a := range all[:len(all)-maxTracked*3/4] {
		delete(d.events, a.id)
	}
	// Cooldowns older than any cooldown are of no use.
	for k, t := range d.lastNew {
		if time.Since(t.at) > d.r.Cooldown+time.Hour {
			delete(d.lastNew, k)
		}
	}
}

// decisions is what a partition's commit carries: the decisions about
// the events of its cameras that have not ended, and the cameras' last
// notifications, so that whoever reads the partition next (this process
// after a restart, another after a rebalance) goes on deciding as this
// one would have: an event notified before gets its update and end, not a
// second new; one held back stays held back; a cooldown still runs.
type decisions struct {
	Notified []string          `json:"n,omitempty"` // event ids
	Held     map[string]string `json:"h,omitempty"` // event id -> reason
	Last     map[string]int64  `json:"c,omitempty"` // camera + "\x00" + label -> Unix ms
}

// maxMetadata bounds a commit's metadata (Kafka's offset.metadata.max.bytes
// is 4096 by default): past it the oldest cooldowns, then events, are left
// out (they are decided afresh after a move).
const maxMetadata = 3500

// metadata is partition's decisions, as JSON.
func (d *decider) metadata(partition int32) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var m decisions
	type aged struct {
		id   string
		seen time.Time
	}
	var evs []aged
	for id, st := range d.events {
		if st.partition == partition && (st.notified || st.held != "") {
			evs = append(evs, aged{id, st.seen})
		}
	}
	slices.SortFunc(evs, func(a, b aged) int { return b.seen.Compare(a.seen) }) // newest first
	var lasts []string
	for k, s := range d.lastNew {
		if s.partition == partition {
			lasts = append(lasts, k)
		}
	}
	slices.SortFunc(lasts, func(a, b string) int { return d.lastNew[b].at.Compare(d.lastNew[a].at) })
	for n := len(evs); n >= 0; n-- {
		m = decisions{}
		for _, a := range evs[:n] {
			if st := d.events[a.id]; st.held != "" {
				if m.Held == nil {
					m.Held = map[string]string{}
				}
				m.Held[a.id] = st.held
			} else {
				m.Notified = append(m.Notified, a.id)
			}
		}
		for _, k := range lasts[:min(len(lasts), max(n, 4))] {
			if m.Last == nil {
				m.Last = map[string]int64{}
			}
			m.Last[k] = d.lastNew[k].at.UnixMilli()
		}
		b, _ := json.Marshal(m)
		if len(b) <= maxMetadata || n == 0 {
			if len(b) > maxMetadata {
				return ""
			}
			return string(b)
		}
	}
	return ""
}

// restore replaces partition's decisions with those a commit carried.
func (d *decider) restore(partition int32, metadata string) {
	var m decisions
	if metadata != "" && json.Unmarshal([]byte(metadata), &m) != nil {
		m = decisions{} // not ours: decide afresh
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, st := range d.events {
		if st.partition == partition {
			delete(d.events, id)
		}
	}
	for k, s := range d.lastNew {
		if s.partition == partition {
			delete(d.lastNew, k)
		}
	}
	now := time.Now()
	for _, id := range m.Notified {
		d.events[id] = &eventState{partition: partition, notified: true, seen: now}
	}
	for id, why := range m.Held {
		if why == DropCooldown || why == DropQuietHours {
			d.events[id] = &eventState{partition: partition, held: why, seen: now}
		}
	}
	for k, ms := range m.Last {
		d.lastNew[k] = stamp{time.UnixMilli(ms), partition}
	}
}
