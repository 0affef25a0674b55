package recindex

import (
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/record"
)

func newIndex(t *testing.T, o Options) *Index {
	t.Helper()
	o.IndexTopic, o.FullTopic, o.ReducedTopic = "idx", "full", "reduced"
	return New(o, kafka.NewConns(kafka.ConnsOptions{}))
}

var t0 = time.Unix(1_700_000_000, 0)

func entry(tier string, start, end time.Duration, off int64, bytes int64) record.IndexEntry {
	return record.IndexEntry{Camera: "c", Tier: tier, Start: t0.Add(start), End: t0.Add(end), Frames: 10, Bytes: bytes, Partition: 0, Offset: off}
}

func (r *Index) addEntry(e record.IndexEntry) { r.add(kafka.Record{Value: e.Marshal()}) }

func TestAddKeepsOrderAndSums(t *testing.T) {
	r := newIndex(t, Options{})
	r.addEntry(entry(record.TierReduced, 30*time.Second, 60*time.Second, 30, 100))
	r.addEntry(entry(record.TierReduced, 0, 30*time.Second, 0, 50)) // overlapping after a restart: out of order
	r.add(kafka.Record{Value: []byte("not json")})
	if r.invalid.Load() != 1 {
		t.Errorf("invalid = %d, want 1", r.invalid.Load())
	}
	ti := r.tierOf("c", record.TierReduced)
	if ti == nil || len(ti.entries) != 2 || !ti.entries[0].Start.Equal(t0) {
		t.Fatalf("entries = %+v, want two sorted by start", ti)
	}
	if ti.bytes != 150 || ti.frames != 20 {
		t.Errorf("sums = %d bytes, %d frames; want 150, 20", ti.bytes, ti.frames)
	}
	if got := r.Oldest("c"); !got.Equal(t0) {
		t.Errorf("Oldest = %v, want %v", got, t0)
	}
	if p, ok := r.ReducedPartition("c"); !ok || p != 0 {
		t.Errorf("ReducedPartition = %d, %v", p, ok)
	}
}

func TestTrimDropsWhatRetentionRemoved(t *testing.T) {
	ti := &tierIndex{}
	for i := range 4 {
		e := entry(record.TierFull, time.Duration(i)*time.Second, time.Duration(i+1)*time.Second, int64(i*10), 7)
		ti.entries = append(ti.entries, e)
		ti.bytes += e.Bytes
		ti.frames += e.Frames
	}
	ti.trim(func(e record.IndexEntry) bool { return e.Offset < 20 })
	if len(ti.entries) != 2 || ti.entries[0].Offset != 20 {
		t.Fatalf("kept %+v, want the entries from offset 20", ti.entries)
	}
	if ti.bytes != 14 || ti.frames != 20 {
		t.Errorf("sums after trim = %d bytes, %d frames; want 14, 20", ti.bytes, ti.frames)
	}
	ti.trim(func(record.IndexEntry) bool { return true })
	if len(ti.entries) != 0 || ti.bytes != 0 || ti.frames != 0 {
		t.Errorf("trim of everything left %+v", ti)
	}
}

func TestSpansMergeFollowingEntries(t *testing.T) {
	r := newIndex(t, Options{Chunk: 2 * time.Second})
	// Full tier: two chunks that follow each other, then one 10 s later.
	r.addEntry(entry(record.TierFull, 0, 2*time.Second, 0, 1))
	r.addEntry(entry(record.TierFull, 2*time.Second, 4*time.Second, 1, 1))
	r.addEntry(entry(record.TierFull, 14*time.Second, 16*time.Second, 2, 1))
	spans := r.Spans("c", t0.Add(-time.Hour), t0.Add(time.Hour))
	if len(spans) != 2 {
		t.Fatalf("Spans = %+v, want 2", spans)
	}
	if !spans[0].Start.Equal(t0) || !spans[0].End.Equal(t0.Add(4*time.Second)) || spans[0].Tier != record.TierFull {
		t.Errorf("first span = %+v, want the two chunks merged", spans[0])
	}
	if got := r.Spans("c", t0.Add(10*time.Second), t0.Add(time.Hour)); len(got) != 1 || !got[0].Start.Equal(t0.Add(14*time.Second)) {
		t.Errorf("Spans from 10 s = %+v, want the last chunk only", got)
	}
	if got := r.ChunksFrom("c", t0.Add(3*time.Second)); len(got) != 2 {
		t.Errorf("ChunksFrom(3 s) = %d chunks, want 2", len(got))
	}
	if f := r.FullRate("c", t0, t0.Add(time.Second)); f != 4.5 {
		t.Errorf("FullRate = %g, want 4.5 (9 frame intervals in 2 s)", f)
	}
}

func TestBudgetCut(t *testing.T) {
	now := time.Now()
	r := newIndex(t, Options{MaxBytes: 1 << 20, Retain: time.Hour})
	r.addEntry(record.IndexEntry{Camera: "c", Tier: record.TierReduced, Start: now.Add(-10 * time.Minute), End: now, Frames: 1, Bytes: 1, Offset: 5})
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cut("c", now.Add(-10*time.Minute), now) {
		t.Error("cut with nothing removed from the partition")
	}
	r.starts[partKey("reduced", 0)] = 3 // retention removed records
	if !r.cut("c", now.Add(-10*time.Minute), now) {
		t.Error("no cut: 10 min held of 1 h retained, and records were removed")
	}
	if r.cut("c", now.Add(-2*time.Hour), now) {
		t.Error("cut although the recording holds more than recording.retain")
	}
	r.o.MaxBytes = 0
	if r.cut("c", now.Add(-10*time.Minute), now) {
		t.Error("cut without a byte budget")
	}
}

// A recorder's progress records (header kind: progress) give each camera's
// recorded-up-to time and lost frames, the newest by when it was written;
// word older than the age asked for is not reported; a bad record is
// counted, a kind this node does not know skipped.
func TestProgressRecords(t *testing.T) {
	r := newIndex(t, Options{})
	now := time.Now()
	progress := func(cam string, recorded, at time.Time, lost uint64) kafka.Record {
		e := record.ProgressEntry{Camera: cam, Recorded: recorded, Lost: lost, At: at}
		return kafka.Record{Value: e.Marshal(), Headers: []frame.Header{{Key: record.HeaderKind, Value: []byte(record.KindProgress)}}}
	}
	r.add(progress("c", now.Add(-8*time.Second), now.Add(-time.Second), 3))
	r.add(progress("c", now.Add(-20*time.Second), now.Add(-6*time.Second), 1)) // older word, read late
	r.add(progress("gone", now.Add(-time.Hour), now.Add(-time.Hour), 0))
	r.add(kafka.Record{Value: []byte("{}"), Headers: []frame.Header{{Key: record.HeaderKind, Value: []byte(record.KindProgress)}}})
	r.add(kafka.Record{Value: []byte("?"), Headers: []frame.Header{{Key: record.HeaderKind, Value: []byte("thumbnails")}}})
	if r.invalid.Load() != 1 {
		t.Errorf("invalid = %d, want 1 (the empty progress record)", r.invalid.Load())
	}
	got := r.Progress(time.Minute)
	if len(got) != 1 || !got["c"].Recorded.Equal(now.Add(-8*time.Second)) || got["c"].Lost != 3 {
		t.Fatalf("Progress = %+v, want camera c recorded 8 s ago with 3 lost", got)
	}
	if got := r.Progress(2 * time.Hour); len(got) != 2 {
		t.Errorf("Progress over 2 h = %+v, want c and gone", got)
	}
	if st := r.Storage(); len(st) != 2 || len(st[0].Tiers) != 0 {
		t.Errorf("Storage = %+v: progress alone holds no recording", st)
	}
}
