package eventfeed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
	"github.com/streamd/streamd/pkg/web"
)

// eventsClient names the events feed's Kafka client: a connection of its
// own, so its parked fetches never delay the frames consumer's.
const eventsClient = "events"

// eventTopics asks for the events and snapshots topics. Both are small:
// events are JSON of a few hundred bytes, snapshots one JPEG per event.
func eventTopics(cfg *config.Config, k *kafkaConns) {
	a := cfg.Analyzer
	k.ensure(a.EventsTopic, kafka.TopicOptions{
		Partitions: cfg.Kafka.Partitions, ReplicationFactor: cfg.Kafka.ReplicationFactor,
		Retention: a.EventsRetention, RetentionBytes: 64 << 20, MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
	})
	k.ensure(a.SnapshotsTopic, kafka.TopicOptions{
		Partitions: cfg.Kafka.Partitions, ReplicationFactor: cfg.Kafka.ReplicationFactor,
		Retention: a.EventsRetention, RetentionBytes: 256 << 20, MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
	})
}

// eventsFeed is a viewer node's view of the analyzer's events: it reads
// the events topic from events.history ago into an events.Store (so a
// restarted node still lists recent events) and follows it; it indexes the
// snapshots topic by event id and fetches a snapshot's JPEG from Kafka
// when asked, so memory holds no images. No consumer group: every node
// reads everything.
type eventsFeed struct {
	cfg   *config.Config
	log   *slog.Logger
	kafka *kafkaConns
	store *events.Store

	following       atomic.Bool
	invalid, errors atomic.Uint64

	mu    sync.Mutex
	snaps map[string]snapRef // event id → where its snapshot is
}

// snapRef is where a snapshot record is.
type snapRef struct {
	partition int32
	offset    int64
	at        time.Time
}

func newEventsFeed(cfg *config.Config, log *slog.Logger, k *kafkaConns) *eventsFeed {
	k.want(eventsClient, nil)
	eventTopics(cfg, k)
	return &eventsFeed{cfg: cfg, log: log.With("component", "events"), kafka: k,
		store: events.NewStore(events.StoreOptions{History: cfg.Events.History}), snaps: map[string]snapRef{}}
}

func (f *eventsFeed) Name() string { return "events" }
func (f *eventsFeed) Start() error { return nil }

// Run follows both topics, restarting a follow that fails (the oldest
// records aged out under it, say) after a pause.
func (f *eventsFeed) Run(ctx context.Context) error {
	client, err := f.kafka.await(ctx, eventsClient)
	if err != nil {
		return nil
	}
	follow := func(topic string, fn func(kafka.Record)) {
		since := time.Now().Add(-f.cfg.Events.History)
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
			since = time.Now().Add(-f.cfg.Events.History)
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); follow(f.cfg.Analyzer.EventsTopic, f.applyEvent) }()
	go func() { defer wg.Done(); follow(f.cfg.Analyzer.SnapshotsTopic, f.indexSnapshot) }()
	wg.Wait()
	return nil
}

// applyEvent applies one record of the events topic; records that are
// not events are counted and skipped.
func (f *eventsFeed) applyEvent(r kafka.Record) {
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
func (f *eventsFeed) indexSnapshot(r kafka.Record) {
	id := string(r.Key)
	if id == "" {
		f.invalid.Add(1)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snaps[id] = snapRef{partition: r.Partition, offset: r.Offset, at: r.Timestamp}
	if len(f.snaps) > 2*events.DefaultMaxEvents {
		cutoff := time.Now().Add(-f.cfg.Events.History)
		for k, v := range f.snaps {
			if v.at.Before(cutoff) {
				delete(f.snaps, k)
			}
		}
	}
}

// Snapshot reads an event's snapshot from the snapshots topic.
func (f *eventsFeed) Snapshot(ctx context.Context, id string) ([]byte, error) {
	f.mu.Lock()
	ref, ok := f.snaps[id]
	f.mu.Unlock()
	if !ok {
		return nil, web.ErrNoSnapshot
	}
	client, err := f.kafka.await(ctx, eventsClient)
	if err != nil {
		return nil, err
	}
	rec, err := kafka.FetchOne(client, f.cfg.Analyzer.SnapshotsTopic, ref.partition, ref.offset, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("snapshot of event %s: %w", id, err)
	}
	return rec.Value, nil
}

// The store's reads, for the web server.
func (f *eventsFeed) Seq() uint64                                 { return f.store.Seq() }
func (f *eventsFeed) Query(q events.Filter) []events.Event        { return f.store.Query(q) }
func (f *eventsFeed) Get(id string) (events.Event, bool)          { return f.store.Get(id) }
func (f *eventsFeed) Subscribe(after uint64) *events.Subscription { return f.store.Subscribe(after) }

func (f *eventsFeed) Ready() error {
	if !f.following.Load() {
		return errors.New("not following the events topic yet")
	}
	return nil
}

func (f *eventsFeed) Close() error { return nil }

func (f *eventsFeed) Collect(s *metrics.Snapshot) {
	st := f.store.Stats()
	s.Events = &metrics.Events{Held: uint64(st.Events), Active: uint64(st.Active), Invalid: f.invalid.Load() + st.Invalid}
}
