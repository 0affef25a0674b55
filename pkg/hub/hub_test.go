package hub

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/frame"
)

func mkFrame(cam string, seq uint64) *frame.Frame {
	now := time.Now()
	return &frame.Frame{Camera: cam, Seq: seq, CapturedAt: now, ReceivedAt: now, ContentType: frame.TypeJPEG, Data: []byte{0xff, 0xd8, 0xff, byte(seq)}}
}

// next returns v's next frame, failing the test after 5 s. It calls
// t.Fatalf, so only the test's own goroutine may use it; other goroutines
// use nextErr and report through a channel.
func next(t *testing.T, v *Viewer) *frame.Frame {
	t.Helper()
	f, err := nextErr(v)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func nextErr(v *Viewer) (*frame.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, _, err := v.Next(ctx)
	if err != nil {
		return nil, fmt.Errorf("next: %w", err)
	}
	return f, nil
}

func TestViewerGetsLatestThenLive(t *testing.T) {
	h := New()
	for i := range uint64(5) {
		h.Publish(mkFrame("a", i))
	}
	c, ok := h.Camera("a")
	if !ok {
		t.Fatal("camera a not discovered")
	}
	v := c.Subscribe()
	defer v.Close()
	if f := next(t, v); f.Seq != 4 {
		t.Fatalf("first frame for a new viewer: seq %d, want the latest (4)", f.Seq)
	}
	go func() {
		for i := uint64(5); i < 8; i++ {
			h.Publish(mkFrame("a", i))
		}
	}()
	for want := uint64(5); want < 8; want++ {
		if f := next(t, v); f.Seq != want {
			t.Fatalf("got seq %d, want %d", f.Seq, want)
		}
	}
}

func TestRegisteredCameraWaitsForFirstFrame(t *testing.T) {
	h := New()
	c := h.Register("lobby")
	v := c.Subscribe()
	defer v.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := v.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("next on an empty camera: %v, want deadline exceeded", err)
	}
	h.Publish(mkFrame("lobby", 0))
	if f := next(t, v); f.Seq != 0 {
		t.Fatalf("seq %d", f.Seq)
	}
	if st := c.Stats(); st.Viewers != 1 || st.Frames != 1 || !st.Configured {
		t.Fatalf("stats %+v", st)
	}
	v.Close()
	v.Close() // idempotent
	if st := c.Stats(); st.Viewers != 0 {
		t.Fatalf("viewers after close: %d", st.Viewers)
	}
}

func TestSlowViewerSkipsAndCounts(t *testing.T) {
	h := New(WithMaxDelay(20*time.Millisecond), WithRingSize(64))
	c := h.Register("a")
	slow, fast := c.Subscribe(), c.Subscribe()
	defer slow.Close()
	defer fast.Close()
	// The fast viewer reads in its own goroutine and hands each frame (or
	// its error) to the test, which publishes the next frame only once the
	// previous one was read.
	type read struct {
		seq uint64
		err error
	}
	got := make(chan read, 1)
	go func() {
		for range 20 {
			f, err := nextErr(fast)
			if err != nil {
				got <- read{err: err}
				return
			}
			got <- read{seq: f.Seq}
		}
	}()
	for i := range uint64(20) {
		h.Publish(mkFrame("a", i))
		// Let the fast viewer keep up; the slow one reads nothing.
		r := <-got
		if r.err != nil {
			t.Fatalf("fast viewer, frame %d: %v", i, r.err)
		}
		if r.seq != i {
			t.Fatalf("fast viewer: seq %d, want %d", r.seq, i)
		}
		time.Sleep(2 * time.Millisecond) // 20 frames span more than MaxDelay
	}
	// The slow viewer's next frame is older than MaxDelay: it skips to the newest.
	if f := next(t, slow); f.Seq != 19 {
		t.Fatalf("slow viewer resumed at %d, want 19", f.Seq)
	}
	if slow.Dropped() != 19 || fast.Dropped() != 0 {
		t.Fatalf("dropped: slow %d (want 19), fast %d", slow.Dropped(), fast.Dropped())
	}
	if st := c.Stats(); st.Dropped != 19 {
		t.Fatalf("camera dropped %d, want 19", st.Dropped)
	}
}

func TestBurstIsNotDropped(t *testing.T) {
	h := New(WithMaxDelay(time.Hour), WithRingSize(16))
	c := h.Register("a")
	v := c.Subscribe()
	defer v.Close()
	// A burst as large as the ring arrives at once: a viewer that keeps up
	// gets all of it.
	for i := range uint64(16) {
		h.Publish(mkFrame("a", i))
	}
	for want := uint64(0); want < 16; want++ {
		if f := next(t, v); f.Seq != want {
			t.Fatalf("seq %d, want %d", f.Seq, want)
		}
	}
	// A burst larger than the ring overwrites what the viewer had not read:
	// it skips to the newest.
	for i := uint64(16); i < 16+20; i++ {
		h.Publish(mkFrame("a", i))
	}
	if f := next(t, v); f.Seq != 35 || v.Dropped() != 19 {
		t.Fatalf("after overflow: seq %d dropped %d, want 35 and 19", f.Seq, v.Dropped())
	}
}

func TestEncoderRunsOncePerFrame(t *testing.T) {
	calls := 0
	h := New(WithEncoder(func(f *frame.Frame) []byte {
		calls++
		return append([]byte("wire:"), f.Data...)
	}))
	c := h.Register("a")
	v1, v2 := c.Subscribe(), c.Subscribe()
	defer v1.Close()
	defer v2.Close()
	h.Publish(mkFrame("a", 3))
	ctx := context.Background()
	_, w1, err1 := v1.Next(ctx)
	_, w2, err2 := v2.Next(ctx)
	if err1 != nil || err2 != nil || calls != 1 || &w1[0] != &w2[0] || string(w1[:5]) != "wire:" {
		t.Fatalf("calls %d, shared %v, %q %v %v", calls, &w1[0] == &w2[0], w1, err1, err2)
	}
	// Nobody watching: no encoding.
	v1.Close()
	v2.Close()
	h.Publish(mkFrame("a", 4))
	if calls != 1 {
		t.Fatalf("encoded a frame nobody watches (%d calls)", calls)
	}
	v3 := c.Subscribe()
	defer v3.Close()
	if f, w, err := v3.Next(ctx); err != nil || f.Seq != 4 || w != nil {
		t.Fatalf("latest frame for a new viewer: %v seq %d wire %q", err, f.Seq, w)
	}
}

func TestCameraLimit(t *testing.T) {
	h := New(WithMaxCameras(2))
	h.Publish(mkFrame("a", 0))
	h.Publish(mkFrame("b", 0))
	h.Publish(mkFrame("c", 0))
	if _, ok := h.Camera("c"); ok {
		t.Fatal("third camera was created over the limit")
	}
	if h.Rejected() != 1 || len(h.Cameras()) != 2 {
		t.Fatalf("rejected %d, cameras %d", h.Rejected(), len(h.Cameras()))
	}
	// Configured cameras are always accepted.
	h.Register("d")
	if _, ok := h.Camera("d"); !ok {
		t.Fatal("registered camera missing")
	}
}

func TestConcurrentViewersSeeOrderedFrames(t *testing.T) {
	h := New()
	c := h.Register("a")
	const viewers, frames = 50, 300
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, viewers)
	ready := sync.WaitGroup{}
	ready.Add(viewers)
	for range viewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := c.Subscribe()
			defer v.Close()
			ready.Done()
			last := int64(-1)
			for {
				f, _, err := v.Next(ctx)
				if err != nil {
					return
				}
				if int64(f.Seq) <= last {
					errs <- errors.New("sequence went backwards")
					return
				}
				last = int64(f.Seq)
				if f.Seq == frames-1 {
					return
				}
			}
		}()
	}
	ready.Wait()
	for i := range uint64(frames) {
		h.Publish(mkFrame("a", i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := c.Stats().Viewers; n != 0 {
		t.Fatalf("viewers left: %d", n)
	}
}

func TestNextAllocatesNothing(t *testing.T) {
	h := New()
	c := h.Register("a")
	v := c.Subscribe()
	defer v.Close()
	ctx := context.Background()
	f := mkFrame("a", 0)
	h.Publish(f)
	// Steady state: the frame is already in the ring when the viewer asks.
	allocs := testing.AllocsPerRun(1000, func() {
		h.Publish(f)
		if _, _, err := v.Next(ctx); err != nil {
			t.Fatal(err)
		}
	})
	// Publish allocates one notification channel per frame per camera;
	// the viewer side must add nothing.
	if allocs > 1 {
		t.Fatalf("%.1f allocations per frame with one viewer, want at most 1 (the per-camera channel)", allocs)
	}
}

// BenchmarkFanOut publishes frames to a camera with many viewers, each
// reading in its own goroutine, and reports allocations per frame.
func BenchmarkFanOut(b *testing.B) {
	for _, viewers := range []int{1, 100, 1000} {
		b.Run(strconv.Itoa(viewers)+"viewers", func(b *testing.B) {
			h := New()
			c := h.Register("a")
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range viewers {
				v := c.Subscribe()
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer v.Close()
					for {
						if _, _, err := v.Next(ctx); err != nil {
							return
						}
					}
				}()
			}
			f := mkFrame("a", 0)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				h.Publish(f)
			}
			b.StopTimer()
			cancel()
			wg.Wait()
		})
	}
}

// A replay that reached the live edge continues from the ring right after
// its last frame: no gap, no duplicate; a frame gone from the ring is
// refused. The partitions frames came from are remembered.
func TestSubscribeAfter(t *testing.T) {
	h := New(WithRingSize(4))
	base := time.Now()
	pub := func(seq uint64, part int32) *frame.Frame {
		f := &frame.Frame{Camera: "c", Seq: seq, CapturedAt: base.Add(time.Duration(seq) * time.Millisecond), ReceivedAt: time.Now(), Partition: part, Data: []byte{0xff, 0xd8}}
		h.Publish(f)
		return f
	}
	var frames []*frame.Frame
	for seq := range uint64(6) {
		frames = append(frames, pub(seq, int32(seq%2)))
	}
	c, _ := h.Camera("c")
	if got := c.Partitions(); len(got) != 2 {
		t.Fatalf("partitions %v", got)
	}
	if _, ok := c.SubscribeAfter(1, frames[1].CapturedAt); ok {
		t.Fatal("frame 1 left the ring of 4, yet SubscribeAfter accepted it")
	}
	if _, ok := c.SubscribeAfter(3, frames[2].CapturedAt); ok {
		t.Fatal("accepted a seq with another capture time")
	}
	v, ok := c.SubscribeAfter(3, frames[3].CapturedAt)
	if !ok {
		t.Fatal("frame 3 is in the ring")
	}
	defer v.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, want := range []uint64{4, 5} {
		f, _, err := v.Next(ctx)
		if err != nil || f.Seq != want {
			t.Fatalf("got %v %v, want seq %d", f, err, want)
		}
	}
	// At the newest frame: the next one published is delivered.
	go pub(6, 0)
	if f, _, err := v.Next(ctx); err != nil || f.Seq != 6 {
		t.Fatalf("got %v %v, want seq 6", f, err)
	}
	if c.Stats().Viewers != 1 {
		t.Fatalf("viewers %d", c.Stats().Viewers)
	}
}

// A viewer positioned behind the newest frame on purpose catches up
// without skipping, however old its first frames are; after it reached the
// newest frame it skips like any viewer.
func TestSubscribeAfterCatchesUp(t *testing.T) {
	h := New(WithRingSize(16), WithMaxDelay(10*time.Millisecond))
	var frames []*frame.Frame
	for seq := range uint64(8) {
		f := &frame.Frame{Camera: "c", Seq: seq, CapturedAt: time.Now(), Data: []byte{0xff, 0xd8}}
		frames = append(frames, f)
		h.Publish(f)
		time.Sleep(15 * time.Millisecond) // each older than MaxDelay by the next
	}
	c, _ := h.Camera("c")
	v, ok := c.SubscribeAfter(2, frames[2].CapturedAt)
	if !ok {
		t.Fatal("frame 2 is in the ring")
	}
	defer v.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for want := uint64(3); want < 8; want++ {
		f, _, err := v.Next(ctx)
		if err != nil || f.Seq != want {
			t.Fatalf("got %v %v, want seq %d: a catching-up viewer skipped", f, err, want)
		}
	}
	if v.Dropped() != 0 {
		t.Fatalf("dropped %d", v.Dropped())
	}
}
