// Package review keeps the reviewed marks of events: which events a person
// has looked at on the review page, by whom and when. Marks live in a
// compacted Kafka topic keyed by event id (a mark is a JSON record, its
// removal a tombstone), which every web node reads from its oldest record
// and follows: a mark made on one node shows on every node within a
// fetch, and marks survive restarts of any of them. Compaction keeps one
// record per event, and the topic's retention (the events' own) lets the
// marks of events no longer held go too.
//
// A mark is written synchronously (Mark returns once the broker has it)
// and applied to this node's view at once, so the page that made it sees
// it on its next request; the follow applies it again, which is harmless:
// the newest record of a key wins.
//
// It implements web.Reviews. It may not read the configuration (it takes
// Options) or serve HTTP itself.
package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
	"github.com/streamd/streamd/pkg/web"
)

// DefaultTopic is the marks' topic unless configured otherwise.
const DefaultTopic = "streamd.reviews"

// Client names the marks' Kafka client: a connection of its own, so that
// its parked fetches never delay another component's requests.
const Client = "reviews"

// DefaultMaxMarks bounds the marks held (about 150 bytes each: 15 MB):
// far more than a week of events of a few dozen cameras, and a bound on
// what a flood of forged records can take. Past it the oldest marks go.
const DefaultMaxMarks = 100000

// maxMarkBytes is the largest mark record accepted.
const maxMarkBytes = 1024

// Options configures Marks.
type Options struct {
	// Topic is the compacted topic of the marks (DefaultTopic if empty).
	Topic string
	// MaxMarks bounds the marks held (DefaultMaxMarks if zero).
	MaxMarks int
	// Logger logs what cannot be read; nil: slog.Default().
	Logger *slog.Logger
}

// Marks is a web node's view of the reviewed marks, and the writer of
// new ones. Its methods are safe for concurrent use.
type Marks struct {
	o     Options
	log   *slog.Logger
	kafka *kafka.Conns

	following atomic.Bool
	invalid   atomic.Uint64
	errors    atomic.Uint64

	mu    sync.RWMutex
	marks map[string]web.Mark

	// wmu guards writer: writes hold it shared, Run takes it to close
	// the writer, so that no write runs on a closed one.
	wmu    sync.RWMutex
	writer *kafka.Writer // set once Run has a client
}

// New returns marks that ask k for their client (Client); nothing is read
// until Run.
func New(o Options, k *kafka.Conns) *Marks {
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	if o.MaxMarks <= 0 {
		o.MaxMarks = DefaultMaxMarks
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	k.Want(Client, nil)
	return &Marks{o: o, log: o.Logger.With("component", "reviews"), kafka: k, marks: map[string]web.Mark{}}
}

// Name names the marks among a process's components.
func (m *Marks) Name() string { return "reviews" }

// Start does nothing: the topic is read in Run.
func (m *Marks) Start() error { return nil }

// Run reads the topic from its oldest record and follows it until ctx
// ends, restarting a follow that fails after a pause.
func (m *Marks) Run(ctx context.Context) error {
	client, err := m.kafka.Await(ctx, Client)
	if err != nil {
		return nil
	}
	w, err := kafka.NewWriter(client)
	if err != nil {
		return fmt.Errorf("reviews: %w", err)
	}
	m.wmu.Lock()
	m.writer = w
	m.wmu.Unlock()
	defer func() {
		m.wmu.Lock()
		m.writer = nil
		m.wmu.Unlock()
		_ = w.Close()
	}()
	for ctx.Err() == nil {
		m.following.Store(true)
		err := kafka.Follow(ctx, client, m.o.Topic, time.Unix(0, 0), m.apply, m.log)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		m.following.Store(false)
		m.errors.Add(1)
		m.log.Warn("following the review marks failed, retrying", "topic", m.o.Topic, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	return nil
}

// apply applies one record of the topic: a mark, or a tombstone (a null
// value) removing one. Records that are neither are counted and skipped.
func (m *Marks) apply(r kafka.Record) {
	id := string(r.Key)
	if r.Value == nil {
		if validID(id) {
			m.mu.Lock()
			delete(m.marks, id)
			m.mu.Unlock()
			return
		}
		m.bad(r, errors.New("tombstone without an event id"))
		return
	}
	mk, err := decode(r.Value)
	if err == nil && mk.ID != id {
		err = fmt.Errorf("key %q names another event than the mark (%q)", id, mk.ID)
	}
	if err != nil {
		m.bad(r, err)
		return
	}
	m.put(mk)
}

func (m *Marks) bad(r kafka.Record, err error) {
	if m.invalid.Add(1) == 1 {
		m.log.Warn("skipping a record that is not a review mark", "partition", r.Partition, "offset", r.Offset, "err", err)
	}
}

// put holds a mark; past MaxMarks the oldest tenth go.
func (m *Marks) put(mk web.Mark) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.marks[mk.ID] = mk
	if len(m.marks) <= m.o.MaxMarks {
		return
	}
	all := make([]web.Mark, 0, len(m.marks))
	for _, v := range m.marks {
		all = append(all, v)
	}
	slices.SortFunc(all, func(a, b web.Mark) int { return a.At.Compare(b.At) })
	for _, v := range all[:len(all)-m.o.MaxMarks*9/10] {
		delete(m.marks, v.ID)
	}
}

// decode parses and checks a mark record.
func decode(b []byte) (web.Mark, error) {
	if len(b) > maxMarkBytes {
		return web.Mark{}, fmt.Errorf("%d bytes, at most %d", len(b), maxMarkBytes)
	}
	var mk web.Mark
	if err := json.Unmarshal(b, &mk); err != nil {
		return web.Mark{}, err
	}
	switch {
	case !validID(mk.ID):
		return web.Mark{}, fmt.Errorf("event id %q", mk.ID)
	case frame.ValidateID(mk.Camera) != nil:
		return web.Mark{}, fmt.Errorf("camera %q", mk.Camera)
	case mk.By == "" || len(mk.By) > 128:
		return web.Mark{}, errors.New("by: 1 to 128 characters")
	case mk.At.IsZero():
		return web.Mark{}, errors.New("missing at")
	}
	return mk, nil
}

// validID accepts what events accept as an event id: 1 to
// events.MaxIDLen characters of [A-Za-z0-9_.-].
func validID(id string) bool {
	if id == "" || len(id) > events.MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Marked returns an event's mark (web.Reviews).
func (m *Marks) Marked(id string) (web.Mark, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	mk, ok := m.marks[id]
	return mk, ok
}

// Mark stores marks, one record each keyed by the event id, and returns
// once the broker acknowledged them (web.Reviews); they are held here at
// once. An error before Kafka is reachable.
func (m *Marks) Mark(ctx context.Context, marks []web.Mark) error {
	w, err := m.await(ctx)
	if err != nil {
		return err
	}
	defer m.wmu.RUnlock()
	for _, mk := range marks {
		b, err := json.Marshal(mk)
		if err != nil {
			return fmt.Errorf("mark %s: %w", mk.ID, err)
		}
		if _, _, err := w.Write(m.o.Topic, mk.ID, b, mk.At, nil); err != nil {
			return fmt.Errorf("mark %s: %w", mk.ID, err)
		}
		m.put(mk)
	}
	return nil
}

// Unmark removes an event's mark with a tombstone (web.Reviews).
func (m *Marks) Unmark(ctx context.Context, id, camera string) error {
	w, err := m.await(ctx)
	if err != nil {
		return err
	}
	defer m.wmu.RUnlock()
	if _, _, err := w.Write(m.o.Topic, id, nil, time.Now(), nil); err != nil {
		return fmt.Errorf("unmark %s (camera %s): %w", id, camera, err)
	}
	m.mu.Lock()
	delete(m.marks, id)
	m.mu.Unlock()
	return nil
}

// await returns the writer once Run has one, with wmu held shared (the
// caller releases it), or an error when ctx ends first.
func (m *Marks) await(ctx context.Context) (*kafka.Writer, error) {
	for {
		m.wmu.RLock()
		if w := m.writer; w != nil {
			return w, nil
		}
		m.wmu.RUnlock()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("review marks: kafka not reachable yet: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Ready says whether the topic is followed.
func (m *Marks) Ready() error {
	if !m.following.Load() {
		return errors.New("not following the review marks yet")
	}
	return nil
}

// Close does nothing: Run owns the follow and the writer.
func (m *Marks) Close() error { return nil }

// Collect adds the marks' counters to a metrics scrape.
func (m *Marks) Collect(s *metrics.Snapshot) {
	m.mu.RLock()
	n := len(m.marks)
	m.mu.RUnlock()
	s.Reviews = &metrics.Reviews{Marks: uint64(n), Invalid: m.invalid.Load(), Errors: m.errors.Load()}
}
