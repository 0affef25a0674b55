package events

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of StoreOptions.
const (
	// DefaultHistory: a web node keeps the last hour of events, what a
	// live page's event list and timeline show. Older events belong to a
	// recording's index, not to a live view held in memory.
	DefaultHistory = time.Hour
	// DefaultMaxEvents bounds memory whatever arrives (about 400 bytes an
	// event with its index entries: 4 MB). Ten thousand events in an hour
	// is 50 cameras each starting an event every 18 s, or a flood of
	// forged records, which must not exhaust memory.
	DefaultMaxEvents = 10000
	// DefaultBacklog is how many changes the change log keeps for
	// reconnecting subscribers (Last-Event-ID) and slow ones: 100 s of
	// changes with 10 events active and updating every second, enough for
	// a browser to reconnect; about 250 bytes each (250 kB).
	DefaultBacklog = 1024
)

// StoreOptions tune a Store. A zero or negative field takes its default.
type StoreOptions struct {
	// History is how long an event is kept after its last moment: its end,
	// or for an active event its latest change (default DefaultHistory).
	History time.Duration
	// MaxEvents is the most events held (default DefaultMaxEvents).
	MaxEvents int
	// Backlog is how many of the latest changes are kept for Subscribe
	// (default DefaultBacklog).
	Backlog int
	// Now returns the current time, which places the History window
	// (default time.Now; tests inject a clock).
	Now func() time.Time
}

// Change is one applied change of an event, numbered by the Store.
type Change struct {
	// Seq increases by one with every change applied to the Store (use it
	// as the Server-Sent Events id). It starts after the Store's creation
	// time in unix microseconds, so the numbers of a restarted node are
	// larger than those it handed out before, and an old Last-Event-ID is
	// recognized as a gap rather than replayed from the wrong place.
	Seq   uint64 `json:"seq"`
	Event Event  `json:"event"`
}

// Filter selects events for Query. Zero fields select everything.
type Filter struct {
	Camera string // only this camera
	Type   Type   // only this type
	Label  string // only object events of this label
	Zone   string // only object events that entered this zone
	// Severity keeps only object events of this review severity.
	Severity Severity
	// MinScore, when above 0, keeps only events with a score at least
	// this (object events; motion and face events have none).
	MinScore float64
	// Since and Until select events that overlap [Since, Until]: that
	// started no later than Until and ended (or are still active) no
	// earlier than Since.
	Since, Until time.Time
	// Limit is the most events returned, the newest; 0 is no limit.
	Limit int
	// Allow, when set, says whether the caller may see a camera's events.
	// It is called once per camera per query, under the Store's lock: it
	// must be quick and must not call the Store.
	Allow func(camera string) bool
}

// Matches reports whether e passes the filter's Label, Zone, Severity and
// MinScore (the fields an event stream filters on besides camera and
// type).
func (f Filter) Matches(e Event) bool {
	if f.Label != "" && e.Label != f.Label {
		return false
	}
	if f.Zone != "" && !slices.Contains(e.Zones, f.Zone) {
		return false
	}
	if f.Severity != "" && e.Severity != f.Severity {
		return false
	}
	return f.MinScore <= 0 || (e.Score != nil && *e.Score >= f.MinScore)
}

// StoreStats is a snapshot of a Store's contents and counters.
type StoreStats struct {
	Events      int          `json:"events"` // held now
	Active      int          `json:"active"` // held and not ended
	ByType      map[Type]int `json:"by_type"`
	Seq         uint64       `json:"seq"` // of the latest change
	Subscribers int64        `json:"subscribers"`
	Applied     uint64       `json:"applied"`
	Ignored     uint64       `json:"ignored"` // older, repeated, after the end, or out of the window
	Invalid     uint64       `json:"invalid"` // failed Validate, or contradicted the held event
	Evicted     uint64       `json:"evicted"` // by age or count
	Dropped     uint64       `json:"dropped"` // changes skipped by slow subscribers
}

// Store is a web node's view of events: the latest state of every event of
// the last History, for queries, and a change log for live updates. It is
// safe for concurrent use.
//
// Apply takes changes in any order and any number of times (Kafka
// redelivers): a change replaces the held state only when it is newer, so
// that state never goes backwards and nothing follows an end.
//
// Eviction. An event leaves the Store when its last moment is older than
// History: its end for an ended event (not its start: an event of two hours
// that just ended stays visible for an hour), its latest change for an
// active one. An active event is thus kept as long as it shows signs of
// life; one whose analyzer died before sending the end (no change for
// History) is let go rather than shown active forever. Beyond MaxEvents
// the oldest ended events go first, active ones only when no ended one is
// left; changes of events older than one evicted for room are then
// ignored, so that a redelivered start cannot bring an evicted event back
// as a ghost.
//
// Live changes. Every applied change gets the next sequence number and
// enters a ring of the last Backlog changes. A Subscription is a cursor into
// the ring: Apply never waits for subscribers, and a subscriber that falls
// more than Backlog changes behind skips to the oldest change still held
// and counts the skipped ones. Unlike video frames, each change is the only
// news of its event, so a slow subscriber loses as few as possible; the
// Seq numbers it then receives show the gap.
type Store struct {
	history   time.Duration
	maxEvents int
	now       func() time.Time

	mu      sync.RWMutex
	byID    map[string]*Event
	order   []*Event // by start, then id
	floor   *Event   // newest event (by start, then id) evicted for room, nil if none
	base    uint64   // sequence numbers of this Store start after base
	head    uint64   // sequence number of the latest change
	log     []Change // ring: change s is at log[s%len]
	notify  chan struct{}
	applied uint64
	ignored uint64
	invalid uint64
	evicted uint64

	subscribers atomic.Int64
	dropped     atomic.Uint64
}

// NewStore returns an empty Store.
func NewStore(opts StoreOptions) *Store {
	s := &Store{
		history:   opts.History,
		maxEvents: opts.MaxEvents,
		now:       opts.Now,
		byID:      make(map[string]*Event),
		notify:    make(chan struct{}),
	}
	if s.history <= 0 {
		s.history = DefaultHistory
	}
	if s.maxEvents <= 0 {
		s.maxEvents = DefaultMaxEvents
	}
	if s.now == nil {
		s.now = time.Now
	}
	backlog := opts.Backlog
	if backlog <= 0 {
		backlog = DefaultBacklog
	}
	s.log = make([]Change, backlog)
	s.base = uint64(max(s.now().UnixMicro(), 0))
	s.head = s.base
	return s
}

// compareEvents orders events by start, then id.
func compareEvents(a, b *Event) int {
	if c := a.Start.Compare(b.Start); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// supersedes reports whether change e is newer than the held state old of
// the same event: nothing follows an end; otherwise a later Updated wins,
// and at equal Updated the later phase (an end decided at the frame of the
// last update, say).
func supersedes(e, old *Event) bool {
	if old.Phase == PhaseEnd {
		return false
	}
	if c := e.Updated.Compare(old.Updated); c != 0 {
		return c > 0
	}
	return e.Phase.rank() > old.Phase.rank()
}

// expired reports whether e's last moment is before cutoff.
func expired(e *Event, cutoff time.Time) bool {
	if e.End != nil {
		return e.End.Before(cutoff)
	}
	return e.Updated.Before(cutoff)
}

// Apply records one change (usually just read from Kafka and Unmarshaled)
// and reports whether it changed the Store. It ignores a change that fails
// Validate, contradicts the held event (another camera, type or start for
// the same id), is not newer than the held state (newer: a later Updated,
// or at an equal Updated a later phase), comes after the end, or is already
// out of the History window. An applied change
// gets the next sequence number and is delivered to subscribers. The Store
// keeps e: its Boxes must not be modified afterwards.
func (s *Store) Apply(e Event) bool {
	err := e.Validate()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.invalid++
		return false
	}
	cutoff := s.now().Add(-s.history)
	s.expireLocked(cutoff)
	if old := s.byID[e.ID]; old != nil {
		if old.Camera != e.Camera || old.Type != e.Type || !old.Start.Equal(e.Start) {
			s.invalid++
			return false
		}
		if !supersedes(&e, old) {
			s.ignored++
			return false
		}
		*old = e
	} else {
		if expired(&e, cutoff) || s.floor != nil && compareEvents(&e, s.floor) <= 0 {
			s.ignored++
			return false
		}
		p := new(Event)
		*p = e
		s.byID[e.ID] = p
		i, _ := slices.BinarySearchFunc(s.order, p, compareEvents)
		s.order = slices.Insert(s.order, i, p)
	}
	s.appendLocked(e)
	if e.Phase == PhaseStart {
		s.endOrphansLocked(e)
	}
	for len(s.order) > s.maxEvents {
		s.evictForRoomLocked()
	}
	return true
}

// expireLocked removes the events whose last moment is before cutoff. Only
// events that started before cutoff can be, and they are at the front of
// the order.
// appendLocked counts an applied change, logs it and wakes subscribers.
func (s *Store) appendLocked(e Event) {
	s.applied++
	s.head++
	s.log[s.head%uint64(len(s.log))] = Change{Seq: s.head, Event: e}
	close(s.notify)
	s.notify = make(chan struct{})
}

// endOrphansLocked ends the events of the same camera and type that are
// still active though a newer one just started. One analyzer tracks a
// camera at a time, so an older active event can only be an orphan: its
// analyzer died (or lost the camera in a rebalance) before it could send
// the end. It ends where the new event starts, as if the end had come.
func (s *Store) endOrphansLocked(e Event) {
	for _, old := range s.order {
		if old.ID == e.ID || old.Camera != e.Camera || old.Type != e.Type || !old.Active() || !old.Start.Before(e.Start) {
			continue
		}
		end := e.Start
		if end.Before(old.Updated) {
			end = old.Updated
		}
		old.Phase, old.End, old.Updated = PhaseEnd, &end, end
		s.appendLocked(*old)
	}
}

func (s *Store) expireLocked(cutoff time.Time) {
	w, i := 0, 0
	for ; i < len(s.order) && s.order[i].Start.Before(cutoff); i++ {
		e := s.order[i]
		if expired(e, cutoff) {
			delete(s.byID, e.ID)
			s.evicted++
			continue
		}
		s.order[w] = e
		w++
	}
	if w == i {
		return
	}
	n := copy(s.order[w:], s.order[i:])
	clear(s.order[w+n:])
	s.order = s.order[:w+n]
}

// evictForRoomLocked removes the oldest ended event, or the oldest event
// when all are active.
func (s *Store) evictForRoomLocked() {
	i := max(slices.IndexFunc(s.order, func(e *Event) bool { return !e.Active() }), 0)
	e := s.order[i]
	s.order = slices.Delete(s.order, i, i+1)
	delete(s.byID, e.ID)
	s.evicted++
	if s.floor == nil || compareEvents(e, s.floor) > 0 {
		s.floor = e
	}
}

// Get returns the latest state of the event with the given id.
func (s *Store) Get(id string) (Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.now().Add(-s.history))
	e, ok := s.byID[id]
	if !ok {
		return Event{}, false
	}
	return *e, true
}

// Query returns the events f selects, newest first by start (then by id,
// descending). The result is never nil, so that it encodes as a JSON array.
//
// To combine a list with live changes without missing any, take Seq before
// Query and Subscribe after it: changes made in between are both in the
// list and replayed, which is harmless since every change is a complete
// snapshot.
func (s *Store) Query(f Filter) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.now().Add(-s.history))
	out := make([]Event, 0, min(max(f.Limit, 0), len(s.order), 100))
	var allowed map[string]bool
	for i := len(s.order) - 1; i >= 0; i-- {
		e := s.order[i]
		switch {
		case f.Camera != "" && e.Camera != f.Camera,
			f.Type != "" && e.Type != f.Type,
			!f.Matches(*e),
			!f.Until.IsZero() && e.Start.After(f.Until),
			!f.Since.IsZero() && e.End != nil && e.End.Before(f.Since):
			continue
		}
		if f.Allow != nil {
			ok, seen := allowed[e.Camera]
			if !seen {
				ok = f.Allow(e.Camera)
				if allowed == nil {
					allowed = make(map[string]bool)
				}
				allowed[e.Camera] = ok
			}
			if !ok {
				continue
			}
		}
		out = append(out, *e)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out
}

// Seq returns the sequence number of the latest change (the Store's base
// when none has been applied yet). Subscribe(Seq()) delivers only changes
// that come after the call.
func (s *Store) Seq() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.head
}

// Stats returns a snapshot of the Store's contents and counters.
func (s *Store) Stats() StoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.now().Add(-s.history))
	st := StoreStats{
		Events:      len(s.order),
		ByType:      make(map[Type]int),
		Seq:         s.head,
		Subscribers: s.subscribers.Load(),
		Applied:     s.applied,
		Ignored:     s.ignored,
		Invalid:     s.invalid,
		Evicted:     s.evicted,
		Dropped:     s.dropped.Load(),
	}
	for _, e := range s.order {
		st.ByType[e.Type]++
		if e.Active() {
			st.Active++
		}
	}
	return st
}

// oldestLocked returns the sequence number of the oldest change in the log.
func (s *Store) oldestLocked() uint64 {
	if n := uint64(len(s.log)); s.head-s.base > n {
		return s.head - n + 1
	}
	return s.base + 1
}

// ErrClosed is returned by Subscription.Next after Close.
var ErrClosed = errors.New("subscription closed")

// Subscribe returns a subscription to the changes after sequence number
// after (a client's Last-Event-ID; Seq() for only new changes). It first
// replays those still in the log, then delivers new ones. Filled reports
// whether the replay is complete; when it is not (after is older than the
// log, from before a restart, or from another node), the subscription
// replays the changes the log still holds after it, and the client should
// reload the list with Query. Close it when done.
func (s *Store) Subscribe(after uint64) *Subscription {
	s.subscribers.Add(1)
	s.mu.RLock()
	head, oldest := s.head, s.oldestLocked()
	s.mu.RUnlock()
	sub := &Subscription{s: s}
	switch {
	case after > head: // never handed out by this Store: nothing to replay
		sub.next = head + 1
	case after+1 >= oldest:
		sub.next, sub.filled = after+1, true
	default:
		sub.next = oldest
	}
	return sub
}

// Subscription is one subscriber's cursor into a Store's change log. It is
// not safe for concurrent use; each belongs to one goroutine (usually an
// HTTP handler streaming Server-Sent Events).
type Subscription struct {
	s       *Store
	next    uint64 // sequence number of the next change to deliver
	filled  bool
	dropped uint64
	closed  bool
}

// Filled reports whether every change after Subscribe's after was still in
// the log, so that the replay leaves no gap.
func (sub *Subscription) Filled() bool { return sub.filled }

// Next returns the next change, waiting for one if needed. A subscriber
// whose next change has left the log skips to the oldest one held and
// counts the skipped changes (see Dropped; Seq shows the jump). It returns
// ctx.Err() when ctx ends, ErrClosed after Close.
func (sub *Subscription) Next(ctx context.Context) (Change, error) {
	if sub.closed {
		return Change{}, ErrClosed
	}
	s := sub.s
	for {
		s.mu.RLock()
		if sub.next <= s.head {
			if oldest := s.oldestLocked(); sub.next < oldest {
				skipped := oldest - sub.next
				sub.dropped += skipped
				s.dropped.Add(skipped)
				sub.next = oldest
			}
			c := s.log[sub.next%uint64(len(s.log))]
			sub.next++
			s.mu.RUnlock()
			return c, nil
		}
		wait := s.notify
		s.mu.RUnlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return Change{}, ctx.Err()
		}
	}
}

// Dropped returns how many changes this subscriber skipped because it was
// slow.
func (sub *Subscription) Dropped() uint64 { return sub.dropped }

// Close ends the subscription. It is idempotent.
func (sub *Subscription) Close() {
	if sub.closed {
		return
	}
	sub.closed = true
	sub.s.subscribers.Add(-1)
}
