package eventfeed

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/web"
)

func newFeed(t *testing.T) *Feed {
	t.Helper()
	return New(Options{EventsTopic: "ev", SnapshotsTopic: "snap"}, kafka.NewConns(kafka.ConnsOptions{}))
}

func TestApplyEventSkipsRecordsThatAreNotEvents(t *testing.T) {
	f := newFeed(t)
	now := time.Now()
	data, err := events.Marshal(events.Event{ID: "e1", Camera: "c", Type: events.TypeMotion, Phase: events.PhaseStart, Start: now, Updated: now})
	if err != nil {
		t.Fatal(err)
	}
	f.applyEvent(kafka.Record{Value: data})
	f.applyEvent(kafka.Record{Value: []byte("{not json")})
	if _, ok := f.Get("e1"); !ok {
		t.Error("the event was not applied to the store")
	}
	if f.invalid.Load() != 1 {
		t.Errorf("invalid = %d, want 1", f.invalid.Load())
	}
	if f.o.History != events.DefaultHistory {
		t.Errorf("History = %v, want the default %v", f.o.History, events.DefaultHistory)
	}
}

func TestIndexSnapshotForgetsOldOnes(t *testing.T) {
	f := newFeed(t)
	f.indexSnapshot(kafka.Record{Key: nil})
	if f.invalid.Load() != 1 {
		t.Errorf("a snapshot without an event id: invalid = %d, want 1", f.invalid.Load())
	}
	old := time.Now().Add(-2 * events.DefaultHistory)
	for i := range 2 * events.DefaultMaxEvents {
		f.indexSnapshot(kafka.Record{Key: []byte{byte(i), byte(i >> 8), byte(i >> 16)}, Timestamp: old})
	}
	f.indexSnapshot(kafka.Record{Key: []byte("new"), Partition: 2, Offset: 9, Timestamp: time.Now()})
	if len(f.snaps) != 1 || f.snaps["new"] != (snapRef{partition: 2, offset: 9, at: f.snaps["new"].at}) {
		t.Errorf("held %d snapshots, want the new one only", len(f.snaps))
	}
}

// An event can be listed a moment before its snapshot is indexed (the
// topics are followed apart): the request waits for it rather than
// answering 404; an event without a snapshot is answered at once.
func TestSnapshotRefWaitsForAnAnnouncedSnapshot(t *testing.T) {
	f := newFeed(t)
	now := time.Now()
	for _, e := range []events.Event{
		{ID: "with", Camera: "c", Type: events.TypeMotion, Phase: events.PhaseStart, Start: now, Updated: now, Snapshot: true},
		{ID: "without", Camera: "c", Type: events.TypeMotion, Phase: events.PhaseStart, Start: now, Updated: now},
	} {
		data, err := events.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		f.applyEvent(kafka.Record{Value: data})
	}
	if _, err := f.snapshotRef(t.Context(), "without"); !errors.Is(err, web.ErrNoSnapshot) {
		t.Fatalf("an event without a snapshot: %v, want ErrNoSnapshot", err)
	}
	if _, err := f.snapshotRef(t.Context(), "unknown"); !errors.Is(err, web.ErrNoSnapshot) {
		t.Fatalf("an unknown event: %v, want ErrNoSnapshot", err)
	}
	// Indexed only once the request waits: without the wait it would
	// answer ErrNoSnapshot.
	go func() {
		time.Sleep(100 * time.Millisecond)
		f.indexSnapshot(kafka.Record{Key: []byte("other"), Partition: 1, Offset: 3, Timestamp: now})
		f.indexSnapshot(kafka.Record{Key: []byte("with"), Partition: 2, Offset: 7, Timestamp: now})
	}()
	ref, err := f.snapshotRef(t.Context(), "with")
	if err != nil {
		t.Fatalf("the snapshot indexed while the request waited: %v", err)
	}
	if ref.partition != 2 || ref.offset != 7 {
		t.Errorf("ref = %+v, want partition 2 offset 7", ref)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	f.applyEvent(kafka.Record{Value: mustMarshal(t, events.Event{ID: "late", Camera: "c", Type: events.TypeMotion, Phase: events.PhaseStart, Start: now, Updated: now, Snapshot: true})})
	if _, err := f.snapshotRef(ctx, "late"); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled request: %v, want context.Canceled", err)
	}
}

func mustMarshal(t *testing.T, e events.Event) []byte {
	t.Helper()
	data, err := events.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A snapshot announced but never indexed is answered ErrNoSnapshot once
// the wait is over.
func TestSnapshotRefGivesUpAfterTheWait(t *testing.T) {
	f := New(Options{EventsTopic: "ev", SnapshotsTopic: "snap", SnapshotWait: 50 * time.Millisecond}, kafka.NewConns(kafka.ConnsOptions{}))
	now := time.Now()
	f.applyEvent(kafka.Record{Value: mustMarshal(t, events.Event{ID: "lost", Camera: "c", Type: events.TypeMotion, Phase: events.PhaseStart, Start: now, Updated: now, Snapshot: true})})
	if _, err := f.snapshotRef(t.Context(), "lost"); !errors.Is(err, web.ErrNoSnapshot) {
		t.Fatalf("a snapshot never indexed: %v, want ErrNoSnapshot", err)
	}
}
