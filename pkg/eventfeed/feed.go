// Package eventfeed is a viewer node's feed of the analyzer's events: it
// reads the events topic from History ago into an events.Store (so a
// restarted node still lists recent events) and follows it, and it indexes
// the snapshots topic by event id, fetching a snapshot's JPEG from Kafka
// when asked, so memory holds no images.
//
// It is not part of package events, which is pure (the event model, the
// tracker and the store) and knows no Kafka. It may not write to Kafka,
// read the configuration (it takes Options), or serve HTTP itself: it
// implements web.Events.
package eventfeed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
	"github.com/streamd/streamd/pkg/web"
)

// Client names the feed's Kafka client: a connection of its own, so its
// parked fetches never delay the frames consumer's.
const Client = "events"

// Options configures a Feed. The events and snapshots topics must be set.
type Options struct {
	// EventsTopic and SnapshotsTopic are the analyzer's topics.
	EventsTopic, SnapshotsTopic string
	// ActivityTopic, if set, is the analyzer's activity per camera and
	// minute, read back ActivityKeep (events.DefaultActivityKeep if zero)
	// and held for the day timeline.
	ActivityTopic string
	ActivityKeep  time.Duration
	// History is how far back events are read and kept; zero:
	// events.DefaultHistory.
	History time.Duration
	// MaxEvents bounds the events held; zero: events.DefaultMaxEvents.
	MaxEvents int
	// SnapshotWait is how long a snapshot announced by its event but not
	// indexed yet is waited for; zero: DefaultSnapshotWait.
	SnapshotWait time.Duration
	// Logger logs what cannot be read; nil: slog.Default().
	Logger *slog.Logger
}

// Feed is a viewer node's view of the analyzer's events: it reads
// the events topic from events.history ago into an events.Store (so a
// restarted node still lists recent events) and follows it; it indexes the
// snapshots topic by event id and fetches a snapshot's JPEG from Kafka
// when asked, so memory holds no images. No consumer group: every node
// reads everything.
type Feed struct {
	o     Options
	log   *slog.Logger
	kafka *kafka.Conns
	store *events.Store
	act   *events.ActivityLog

	following       atomic.Bool
	invalid, errors atomic.Uint64

	mu    sync.Mutex
	snaps map[string]snapRef // event id → where its snapshot is
	// indexed is closed (and replaced) whenever a snapshot is indexed,
	// waking the requests that wait for one (Snapshot).
	indexed chan struct{}
}

// DefaultSnapshotWait is how long Snapshot waits for the snapshot of an
// event that says it has one but whose record has not been read yet: the
// events and snapshots topics are followed apart, so an event can be
// listed a moment before its snapshot is indexed.
const DefaultSnapshotWait = 5 * time.Second

// snapRef is where a snapshot record is.
type snapRef struct {
	partition int32
	offset    int64
	at        time.Time
}

// New returns a feed that asks k for its client (Client); it reads
// nothing until Run.
func New(o Options, k *kafka.Conns) *Feed {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.History <= 0 {
		o.History = events.DefaultHistory
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = events.DefaultMaxEvents
	}
	if o.ActivityKeep <= 0 {
		o.ActivityKeep = events.DefaultActivityKeep
	}
	if o.SnapshotWait <= 0 {
		o.SnapshotWait = DefaultSnapshotWait
	}
	k.Want(Client, nil)
	return &Feed{o: o, log: o.Logger.With("component", "events"), kafka: k,
		store: events.NewStore(events.StoreOptions{History: o.History, MaxEvents: o.MaxEvents}), snaps: map[string]snapRef{},
		indexed: make(chan struct{}),
		act:     events.NewActivityLog(o.ActivityKeep, 0, nil)}
}

// Name names the feed among a process's components.
func (f *Feed) Name() string { return "events" }

// Start does nothing: the topics are read in Run.
func (f *Feed) Start() error { return nil }

// Run follows both topics, restarting a follow that fails (the oldest
// records aged out under it, say) after a pause.
func (f *Feed) Run(ctx context.Context) error {
	client, err := f.kafka.Await(ctx, Client)
	if err != nil {
		return nil
	}
	follow := func(topic string, back time.Duration, fn func(kafka.Record)) {
		since := time.Now().Add(-back)
		for ctx.Err() == nil {
			f.following.Store(true)
			err := kafka.Follow(ctx, client, topic, since, fn, f.log)
			if err == nil || ctx.Err() != nil {
				return
			}
			f.following.Store(false)
			f.errors.Add(1)
			f.log.Warn("following events failed, retrying", "topic", topic, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
			since = time.Now().Add(-back)
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); follow(f.o.EventsTopic, f.o.History, f.applyEvent) }()
	go func() { defer wg.Done(); follow(f.o.SnapshotsTopic, f.o.History, f.indexSnapshot) }()
	if f.o.ActivityTopic != "" {
		wg.Add(1)
		go func() { defer wg.Done(); follow(f.o.ActivityTopic, f.o.ActivityKeep, f.applyActivity) }()
	}
	wg.Wait()
	return nil
}

// applyActivity merges one record of the activity topic into the log;
// records that are not activity are counted and skipped.
func (f *Feed) applyActivity(r kafka.Record) {
	a, err := events.UnmarshalActivity(r.Value)
	if err != nil {
		if f.invalid.Add(1) == 1 {
			f.log.Warn("skipping a record that is not activity", "partition", r.Partition, "offset", r.Offset, "err", err)
		}
		return
	}
	f.act.Apply(a)
}

// Activity returns camera's minutes of activity that start in [from, to)
// (web.Activity).
func (f *Feed) Activity(camera string, from, to time.Time) []events.Activity {
	return f.act.Minutes(camera, from, to)
}

// applyEvent applies one record of the events topic; records that are
// not events are counted and skipped.
func (f *Feed) applyEvent(r kafka.Record) {
	e, err := events.Unmarshal(r.Value)
	if err != nil {
		if f.invalid.Add(1) == 1 {
			f.log.Warn("skipping a record that is not an event", "partition", r.Partition, "offset", r.Offset, "err", err)
		}
		return
	}
	f.store.Apply(e)
}

// indexSnapshot remembers where an event's snapshot is, forgetting those
// older than the history.
func (f *Feed) indexSnapshot(r kafka.Record) {
	id := string(r.Key)
	if id == "" {
		f.invalid.Add(1)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snaps[id] = snapRef{partition: r.Partition, offset: r.Offset, at: r.Timestamp}
	close(f.indexed)
	f.indexed = make(chan struct{})
	if len(f.snaps) > 2*f.o.MaxEvents {
		cutoff := time.Now().Add(-f.o.History)
		for k, v := range f.snaps {
			if v.at.Before(cutoff) {
				delete(f.snaps, k)
			}
		}
	}
}

// Snapshot reads an event's snapshot from the snapshots topic. If the
// event says it has one that is not indexed yet, it waits up to
// Options.SnapshotWait (or ctx) for it.
func (f *Feed) Snapshot(ctx context.Context, id string) ([]byte, error) {
	ref, err := f.snapshotRef(ctx, id)
	if err != nil {
		return nil, err
	}
	client, err := f.kafka.Await(ctx, Client)
	if err != nil {
		return nil, err
	}
	rec, err := kafka.FetchOne(client, f.o.SnapshotsTopic, ref.partition, ref.offset, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("snapshot of event %s: %w", id, err)
	}
	return rec.Value, nil
}

// snapshotRef finds where id's snapshot is, waiting up to
// Options.SnapshotWait for it if the event says it has one.
func (f *Feed) snapshotRef(ctx context.Context, id string) (snapRef, error) {
	var timeout <-chan time.Time
	for {
		f.mu.Lock()
		ref, ok := f.snaps[id]
		indexed := f.indexed
		f.mu.Unlock()
		if ok {
			return ref, nil
		}
		if timeout == nil {
			if e, ok := f.store.Get(id); !ok || !e.Snapshot {
				return snapRef{}, web.ErrNoSnapshot
			}
			t := time.NewTimer(f.o.SnapshotWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-indexed:
		case <-timeout:
			return snapRef{}, web.ErrNoSnapshot
		case <-ctx.Done():
			return snapRef{}, fmt.Errorf("snapshot of event %s: %w", id, ctx.Err())
		}
	}
}

// Seq is the store's newest change (events.Store.Seq).
func (f *Feed) Seq() uint64 { return f.store.Seq() }

// Query lists the events held that match q (events.Store.Query).
func (f *Feed) Query(q events.Filter) []events.Event { return f.store.Query(q) }

// Get returns an event by id (events.Store.Get).
func (f *Feed) Get(id string) (events.Event, bool) { return f.store.Get(id) }

// Subscribe follows the store's changes after after (events.Store.Subscribe).
func (f *Feed) Subscribe(after uint64) *events.Subscription { return f.store.Subscribe(after) }

// Ready says whether the events topic is followed.
func (f *Feed) Ready() error {
	if !f.following.Load() {
		return errors.New("not following the events topic yet")
	}
	return nil
}

// Close does nothing: Run owns the follows.
func (f *Feed) Close() error { return nil }

// Collect adds the feed's counters to a metrics scrape.
func (f *Feed) Collect(s *metrics.Snapshot) {
	st := f.store.Stats()
	s.Events = &metrics.Events{Held: uint64(st.Events), Active: uint64(st.Active), Invalid: f.invalid.Load() + st.Invalid}
}
