package eventfeed

import (
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/kafka"
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
