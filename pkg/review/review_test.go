package review

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/broker"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
	"github.com/streamd/streamd/pkg/web"
)

// node is one web node's marks, running against the broker at addr, with
// the topic asked for as the app asks for it.
func node(t *testing.T, addr string, o Options) *Marks {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	k := kafka.NewConns(kafka.ConnsOptions{Client: kafka.Options{FetchMaxWait: 20 * time.Millisecond}, Brokers: func() []string { return []string{addr} }, Logger: log})
	o.Logger = log
	m := New(o, k)
	k.Ensure(m.o.Topic, kafka.TopicOptions{Partitions: 2, ReplicationFactor: 1, Retention: time.Hour, MaxMessageBytes: 1 << 20, Compact: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = k.Run(ctx); done <- struct{}{} }()
	go func() { _ = m.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done; _ = k.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for m.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("marks not ready: %v", m.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return m
}

func startBroker(t *testing.T) string {
	t.Helper()
	b, err := broker.Start(broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Addr()
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A mark made on one node shows on another, its removal too, and a node
// that starts later reads the marks there are.
func TestMarksReachEveryNode(t *testing.T) {
	addr := startBroker(t)
	a, b := node(t, addr, Options{}), node(t, addr, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	at := time.Date(2026, 12, 3, 6, 30, 0, 0, time.UTC)
	marks := []web.Mark{{ID: "1764743400.000001-abc123", Camera: "yard", By: "alice", At: at}, {ID: "1764743460.5-zz9", Camera: "door", By: "alice", At: at}}
	if err := a.Mark(ctx, marks); err != nil {
		t.Fatal(err)
	}
	// The node that made them holds them at once.
	if m, ok := a.Marked(marks[0].ID); !ok || m != marks[0] {
		t.Fatalf("node a: %+v %v right after marking, want %+v", m, ok, marks[0])
	}
	waitFor(t, "node b sees both marks", func() bool {
		m0, ok0 := b.Marked(marks[0].ID)
		m1, ok1 := b.Marked(marks[1].ID)
		return ok0 && ok1 && m0.By == "alice" && m0.At.Equal(at) && m1.Camera == "door"
	})
	if err := b.Unmark(ctx, marks[1].ID, "door"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node a sees the mark removed", func() bool { _, ok := a.Marked(marks[1].ID); return !ok })
	// A node started now reads what is there: one mark.
	c := node(t, addr, Options{})
	waitFor(t, "a new node reads the marks", func() bool { _, ok := c.Marked(marks[0].ID); return ok })
	if _, ok := c.Marked(marks[1].ID); ok {
		t.Error("a new node holds a mark that was removed")
	}
	var s metrics.Snapshot
	c.Collect(&s)
	if s.Reviews == nil || s.Reviews.Marks != 1 || s.Reviews.Invalid != 0 {
		t.Errorf("node c's metrics %+v, want 1 mark and nothing invalid", s.Reviews)
	}
}

// Records that are not marks (a foreign writer, a key that is not the
// mark's event) are skipped and counted; the bound on marks held drops the
// oldest.
func TestForeignRecordsAndTheBound(t *testing.T) {
	m := New(Options{MaxMarks: 10}, kafka.NewConns(kafka.ConnsOptions{}))
	at := time.Now()
	good := func(i int) kafka.Record {
		return kafka.Record{Key: fmt.Appendf(nil, "e%d", i), Value: fmt.Appendf(nil, `{"id":"e%d","camera":"c","by":"bob","at":%q}`, i, at.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano))}
	}
	for _, r := range []kafka.Record{
		{Key: []byte("e1"), Value: []byte("{not json")},
		{Key: []byte("e1"), Value: []byte(`{"id":"e2","camera":"c","by":"bob","at":"2026-12-03T06:00:00Z"}`)},
		{Key: []byte("e1"), Value: []byte(`{"id":"e1","camera":"a b","by":"bob","at":"2026-12-03T06:00:00Z"}`)},
		{Key: []byte("e1"), Value: []byte(`{"id":"e1","camera":"c","by":"","at":"2026-12-03T06:00:00Z"}`)},
		{Key: []byte("../x"), Value: nil},
	} {
		m.apply(r)
	}
	if n := m.invalid.Load(); n != 5 {
		t.Fatalf("invalid %d, want 5", n)
	}
	if _, ok := m.Marked("e1"); ok {
		t.Fatal("an invalid record made a mark")
	}
	for i := range 11 {
		m.apply(good(i))
	}
	// Over the bound of 10: the oldest tenth and more go (9 left).
	if _, ok := m.Marked("e0"); ok {
		t.Error("the oldest mark was kept past the bound")
	}
	if _, ok := m.Marked("e10"); !ok {
		t.Error("the newest mark was dropped")
	}
	m.mu.RLock()
	n := len(m.marks)
	m.mu.RUnlock()
	if n > 10 {
		t.Errorf("%d marks held, bound 10", n)
	}
	m.apply(kafka.Record{Key: []byte("e10")}) // tombstone
	if _, ok := m.Marked("e10"); ok {
		t.Error("a tombstone left the mark")
	}
}

// Marking before Kafka is reachable fails once the context ends, and
// says why.
func TestMarkWithoutKafka(t *testing.T) {
	m := New(Options{}, kafka.NewConns(kafka.ConnsOptions{}))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := m.Mark(ctx, []web.Mark{{ID: "e1", Camera: "c", By: "x", At: time.Now()}})
	if err == nil || m.Ready() == nil {
		t.Fatalf("mark without kafka: %v; ready %v", err, m.Ready())
	}
}
