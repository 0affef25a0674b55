package recorder

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/record"
)

func newTestRecorder(t *testing.T) *Recorder {
	t.Helper()
	return &Recorder{o: Options{Workers: 2}, log: nil, cams: map[string]*recCam{}, parts: map[int32]*recPart{},
		workers: []*encodeQueue{newEncodeQueue(), newEncodeQueue()}}
}

func TestEncodeQueueIsFIFOAndDrainsOnClose(t *testing.T) {
	q := newEncodeQueue()
	for i := range 5 {
		q.push(chunkJob{chunk: record.Chunk{{Offset: int64(i)}}})
	}
	q.close()
	var got []int64
	q.run(func(j chunkJob) { got = append(got, j.chunk[0].Offset) })
	if !slices.Equal(got, []int64{0, 1, 2, 3, 4}) {
		t.Errorf("run order = %v, want FIFO", got)
	}
}

func TestEncodeQueueWaitBlocksWhileLong(t *testing.T) {
	q := newEncodeQueue()
	for range 3 {
		q.push(chunkJob{})
	}
	waited := make(chan struct{})
	go func() { q.wait(1); close(waited) }()
	select {
	case <-waited:
		t.Fatal("wait(1) returned with 3 jobs queued")
	case <-time.After(50 * time.Millisecond):
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); q.run(func(chunkJob) {}) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not return once the queue ran down")
	}
	q.close()
	wg.Wait()
}

func TestWorkerOfIsStable(t *testing.T) {
	for _, id := range []string{"a", "b", "front-door", ""} {
		w := workerOf(id, 4)
		if w < 0 || w >= 4 || workerOf(id, 4) != w {
			t.Errorf("workerOf(%q) = %d, not stable in [0, 4)", id, w)
		}
	}
}

func TestChunkFPS(t *testing.T) {
	t0 := time.Unix(100, 0)
	mk := func(n int, step time.Duration) record.Chunk {
		var c record.Chunk
		for i := range n {
			c = append(c, &frame.Frame{CapturedAt: t0.Add(time.Duration(i) * step)})
		}
		return c
	}
	for _, tc := range []struct {
		c    record.Chunk
		want float64
	}{
		{mk(1, 0), 1}, {mk(3, 0), 30}, {mk(31, time.Second/30), 30}, {mk(3, 10*time.Second), 1}, {mk(100, time.Millisecond), 120},
	} {
		if got := chunkFPS(tc.c); got < tc.want-0.01 || got > tc.want+0.01 {
			t.Errorf("chunkFPS of %d frames = %g, want %g", len(tc.c), got, tc.want)
		}
	}
}

// The commit marks the oldest offset still needed per partition: a
// frame undecided or a chunk queued holds it back; the cameras' progress
// and what an earlier session committed for cameras not seen go with it.
func TestCommitMarksOldestNeeded(t *testing.T) {
	r := newTestRecorder(t)
	r.Assigned(map[int32]string{0: record.EncodeProgress(record.Progress{"gone": {1, 2}}), 1: ""})
	r.parts[0].next, r.parts[1].next = 100, 50
	r.mu.Lock()
	c := r.camera("c", 0)
	c.inflight = []int64{40, 60}
	c.doneFull, c.doneReduced = time.Unix(0, 7), time.Unix(0, 9)
	r.mu.Unlock()
	marks, progress := r.marks()
	if marks[0] != 40 || marks[1] != 50 {
		t.Errorf("marks = %v, want 0:40 (a queued chunk) and 1:50", marks)
	}
	if progress[0]["c"] != [2]int64{7, 9} || progress[0]["gone"] != [2]int64{1, 2} {
		t.Errorf("progress = %v, want c's and the earlier session's", progress[0])
	}
}

// A camera first seen on a partition resumes from the progress committed
// with it; one whose partition moved to another recorder forgets it.
func TestAssignedResumesAndResets(t *testing.T) {
	r := newTestRecorder(t)
	r.Assigned(map[int32]string{0: record.EncodeProgress(record.Progress{"c": {5, 6}})})
	r.mu.Lock()
	c := r.camera("c", 0)
	r.mu.Unlock()
	if c.doneFull.UnixNano() != 5 || c.doneReduced.UnixNano() != 6 {
		t.Errorf("resumed at %d/%d, want 5/6", c.doneFull.UnixNano(), c.doneReduced.UnixNano())
	}
	r.Assigned(map[int32]string{1: ""})
	if c.partition != -1 || !c.doneFull.IsZero() {
		t.Errorf("after losing partition 0: partition %d, doneFull %v; want reset", c.partition, c.doneFull)
	}
}

var _ kafka.DurableSink = (*Recorder)(nil)

// FullOn decides which events open full-rate windows: motion records every
// event, objects (the default) object and face events, alerts only object
// events of severity alert.
func TestFullOnRecords(t *testing.T) {
	motion := events.Event{Type: events.TypeMotion}
	face := events.Event{Type: events.TypeFace}
	bird := events.Event{Type: events.TypeObject, Label: "bird", Severity: events.SeverityDetection}
	person := events.Event{Type: events.TypeObject, Label: "person", Severity: events.SeverityAlert}
	for _, tc := range []struct {
		on   FullOn
		want [4]bool // motion, face, bird, person
	}{
		{FullOnMotion, [4]bool{true, true, true, true}},
		{FullOnObjects, [4]bool{false, true, true, true}},
		{"", [4]bool{false, true, true, true}},
		{FullOnAlerts, [4]bool{false, false, false, true}},
	} {
		got := [4]bool{tc.on.Records(motion), tc.on.Records(face), tc.on.Records(bird), tc.on.Records(person)}
		if got != tc.want {
			t.Errorf("%q: records motion, face, bird, person = %v, want %v", tc.on, got, tc.want)
		}
	}
}
