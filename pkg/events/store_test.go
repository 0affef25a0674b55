package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// clock is an injectable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func newStore(t testing.TB, opts StoreOptions, now time.Time) (*Store, *clock) {
	t.Helper()
	c := &clock{now: now}
	opts.Now = c.Now
	return NewStore(opts), c
}

// ended returns an ended event: it started at start and its last detection
// was at end.
func ended(id, camera string, typ Type, start, end time.Duration) Event {
	e := event(id, camera, typ, PhaseEnd, start, end)
	e.End = ptr(at(end))
	return e
}

// active returns an active event last updated at updated.
func active(id, camera string, typ Type, start, updated time.Duration) Event {
	phase := PhaseUpdate
	if start == updated {
		phase = PhaseStart
	}
	return event(id, camera, typ, phase, start, updated)
}

func apply(t *testing.T, s *Store, events ...Event) {
	t.Helper()
	for _, e := range events {
		if !s.Apply(e) {
			t.Fatalf("change %s/%s not applied", e.ID, e.Phase)
		}
	}
}

func ids(events []Event) []string {
	out := []string{}
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

func TestStoreQuery(t *testing.T) {
	s, _ := newStore(t, StoreOptions{}, at(time.Minute))
	apply(t, s,
		ended("c", "door", TypeMotion, 20*time.Second, 30*time.Second),
		ended("a", "lobby", TypeMotion, 0, 10*time.Second),
		active("e2", "yard", TypeMotion, 50*time.Second, 55*time.Second),
		active("d", "door", TypeFace, 40*time.Second, 40*time.Second),
		active("b", "lobby", TypeFace, 5*time.Second, 6*time.Second),
		ended("e1", "yard", TypeMotion, 50*time.Second, 52*time.Second),
	)
	calls := map[string]int{}
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all, newest first by start, then id", Filter{}, []string{"e2", "e1", "d", "c", "b", "a"}},
		{"camera", Filter{Camera: "lobby"}, []string{"b", "a"}},
		{"type", Filter{Type: TypeFace}, []string{"d", "b"}},
		{"camera and type", Filter{Camera: "door", Type: TypeMotion}, []string{"c"}},
		{"limit keeps the newest", Filter{Limit: 2}, []string{"e2", "e1"}},
		{"since: ended before is out, active is in", Filter{Since: at(35 * time.Second)}, []string{"e2", "e1", "d", "b"}},
		{"until: started after is out", Filter{Until: at(15 * time.Second)}, []string{"b", "a"}},
		{"since and until: overlap", Filter{Since: at(8 * time.Second), Until: at(25 * time.Second)}, []string{"c", "b", "a"}},
		{"allow", Filter{Allow: func(camera string) bool { calls[camera]++; return camera == "door" }}, []string{"d", "c"}},
		{"nothing matches", Filter{Camera: "attic"}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s.Query(tc.f)
			if got == nil || !slices.Equal(ids(got), tc.want) {
				t.Fatalf("got %q, want %q", ids(got), tc.want)
			}
		})
	}
	if calls["door"] != 1 || calls["lobby"] != 1 || calls["yard"] != 1 {
		t.Fatalf("Allow calls %v, want one per camera", calls)
	}
	if e, ok := s.Get("b"); !ok || e.Camera != "lobby" || !e.Active() {
		t.Fatalf("get b: %+v %v", e, ok)
	}
	if _, ok := s.Get("zz"); ok {
		t.Fatal("get of an unknown id")
	}
	st := s.Stats()
	if st.Events != 6 || st.Active != 3 || st.ByType[TypeMotion] != 4 || st.ByType[TypeFace] != 2 || st.Applied != 6 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStoreKeepsLatestState(t *testing.T) {
	start := active("x", "lobby", TypeMotion, 0, 0)
	update := func(d time.Duration) Event { return active("x", "lobby", TypeMotion, 0, d) }
	end := ended("x", "lobby", TypeMotion, 0, 5*time.Second)
	other := active("x", "door", TypeMotion, 0, time.Second)
	moved := active("x", "lobby", TypeMotion, time.Second, 2*time.Second)
	bad := update(time.Second)
	bad.Phase = "new"
	tests := []struct {
		name    string
		changes []Event
		want    []bool
		phase   Phase // of the state held at the end
		ignored uint64
		invalid uint64
	}{
		{"start, updates, end", []Event{start, update(time.Second), update(2 * time.Second), end}, []bool{true, true, true, true}, PhaseEnd, 0, 0},
		{"redelivered change", []Event{start, start, update(time.Second), update(time.Second)}, []bool{true, false, true, false}, PhaseUpdate, 2, 0},
		{"older change", []Event{start, update(2 * time.Second), update(time.Second), start}, []bool{true, true, false, false}, PhaseUpdate, 2, 0},
		{"update after end", []Event{start, end, update(6 * time.Second)}, []bool{true, true, false}, PhaseEnd, 1, 0},
		{"end twice", []Event{end, end}, []bool{true, false}, PhaseEnd, 1, 0},
		{"end at the time of the update", []Event{update(5 * time.Second), end}, []bool{true, true}, PhaseEnd, 0, 0},
		{"joined in the middle", []Event{update(3 * time.Second)}, []bool{true}, PhaseUpdate, 0, 0},
		{"same id on another camera", []Event{start, other}, []bool{true, false}, PhaseStart, 0, 1},
		{"same id with another start", []Event{start, moved}, []bool{true, false}, PhaseStart, 0, 1},
		{"invalid change", []Event{start, bad}, []bool{true, false}, PhaseStart, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, StoreOptions{}, at(time.Minute))
			seq0 := s.Seq()
			var got []bool
			for _, e := range tc.changes {
				got = append(got, s.Apply(e))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("applied %v, want %v", got, tc.want)
			}
			e, ok := s.Get("x")
			if !ok || e.Phase != tc.phase || e.Camera != "lobby" {
				t.Fatalf("held %+v, want phase %s on lobby", e, tc.phase)
			}
			st := s.Stats()
			applied := uint64(0)
			for _, ok := range tc.want {
				if ok {
					applied++
				}
			}
			if st.Applied != applied || st.Seq != seq0+applied || st.Ignored != tc.ignored || st.Invalid != tc.invalid {
				t.Fatalf("stats %+v, want %d applied (seq %d), %d ignored, %d invalid", st, applied, seq0+applied, tc.ignored, tc.invalid)
			}
		})
	}
}

func TestStoreEvictsByAge(t *testing.T) {
	s, clk := newStore(t, StoreOptions{History: time.Hour}, at(0))
	apply(t, s,
		ended("short", "lobby", TypeMotion, 0, time.Minute),
		active("abandoned", "lobby", TypeMotion, 0, 0),
		active("alive", "lobby", TypeFace, 0, 58*time.Minute),
		ended("long", "door", TypeMotion, 0, 110*time.Minute),
	)
	clk.Set(at(115 * time.Minute)) // the window starts at 55 min
	if got := ids(s.Query(Filter{})); !slices.Equal(got, []string{"long", "alive"}) {
		t.Fatalf("held %q, want the event that ended in the window and the active one updated in it", got)
	}
	if _, ok := s.Get("short"); ok {
		t.Fatal("an event that ended before the window is still held")
	}
	if s.Apply(ended("late", "lobby", TypeMotion, 0, 50*time.Minute)) {
		t.Fatal("applied a change of an event that ended before the window")
	}
	if st := s.Stats(); st.Events != 2 || st.Active != 1 || st.Evicted != 2 || st.Ignored != 1 {
		t.Fatalf("stats %+v", st)
	}
	clk.Set(at(200 * time.Minute))
	if st := s.Stats(); st.Events != 0 || st.Evicted != 4 {
		t.Fatalf("stats after the window passed: %+v", st)
	}
}

func TestStoreEvictsByCount(t *testing.T) {
	s, _ := newStore(t, StoreOptions{MaxEvents: 3}, at(time.Hour))
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	apply(t, s,
		ended("e1", "cam-e1", TypeMotion, sec(1), sec(2)),
		active("e2", "cam-e2", TypeMotion, sec(2), sec(2)),
		ended("e3", "cam-e3", TypeMotion, sec(3), sec(4)),
		ended("e4", "cam-e4", TypeMotion, sec(4), sec(5)),
	)
	if got := ids(s.Query(Filter{})); !slices.Equal(got, []string{"e4", "e3", "e2"}) {
		t.Fatalf("held %q, want the oldest (ended) gone", got)
	}
	apply(t, s, ended("e5", "cam-e5", TypeMotion, sec(5), sec(6)))
	if got := ids(s.Query(Filter{})); !slices.Equal(got, []string{"e5", "e4", "e2"}) {
		t.Fatalf("held %q, want the oldest ended gone and the older active one kept", got)
	}
	// Changes of events older than one evicted for room: no ghosts.
	for _, e := range []Event{
		active("e3", "cam-e3", TypeMotion, sec(3), sec(3)),
		active("e1", "cam-e1", TypeMotion, sec(1), sec(1)),
		active("e0", "cam-e0", TypeMotion, 0, 0),
	} {
		if s.Apply(e) {
			t.Fatalf("applied %s, older than an event evicted for room", e.ID)
		}
	}
	// The remaining ended events go first; when all are active, the oldest.
	apply(t, s, active("e6", "cam-e6", TypeMotion, sec(6), sec(6)))
	apply(t, s, active("e7", "cam-e7", TypeMotion, sec(7), sec(7)))
	if got := ids(s.Query(Filter{})); !slices.Equal(got, []string{"e7", "e6", "e2"}) {
		t.Fatalf("held %q", got)
	}
	apply(t, s, active("e8", "cam-e8", TypeMotion, sec(8), sec(8)))
	if got := ids(s.Query(Filter{})); !slices.Equal(got, []string{"e8", "e7", "e6"}) {
		t.Fatalf("held %q, want the oldest active event gone when none has ended", got)
	}
	if st := s.Stats(); st.Events != 3 || st.Evicted != 5 {
		t.Fatalf("stats %+v", st)
	}
}

// next returns the subscription's next change, failing after 5 s.
func next(t *testing.T, sub *Subscription) Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	return c
}

// pending returns the changes a subscription can deliver without waiting:
// Next with an ended context returns a change when one is there.
func pending(t *testing.T, sub *Subscription) []uint64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var seqs []uint64
	for {
		c, err := sub.Next(ctx)
		if errors.Is(err, context.Canceled) {
			return seqs
		}
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		seqs = append(seqs, c.Seq)
	}
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestSubscribeReplays(t *testing.T) {
	const backlog = 8
	tests := []struct {
		name    string
		applied int                            // changes before Subscribe
		after   func(base, head uint64) uint64 // Subscribe's argument
		filled  bool
		first   func(base, head uint64) uint64 // first change replayed (head+1: none)
	}{
		{"after a recent change", 5, func(b, h uint64) uint64 { return b + 2 }, true, func(b, h uint64) uint64 { return b + 3 }},
		{"only new changes", 5, func(b, h uint64) uint64 { return h }, true, func(b, h uint64) uint64 { return h + 1 }},
		{"from the very first change", 5, func(b, h uint64) uint64 { return b }, true, func(b, h uint64) uint64 { return b + 1 }},
		{"the gap left the backlog", 20, func(b, h uint64) uint64 { return b + 2 }, false, func(b, h uint64) uint64 { return h - backlog + 1 }},
		{"just within the backlog", 20, func(b, h uint64) uint64 { return h - backlog }, true, func(b, h uint64) uint64 { return h - backlog + 1 }},
		{"from before a restart", 5, func(b, h uint64) uint64 { return 7 }, false, func(b, h uint64) uint64 { return b + 1 }},
		{"never handed out", 5, func(b, h uint64) uint64 { return h + 100 }, false, func(b, h uint64) uint64 { return h + 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, StoreOptions{Backlog: backlog}, at(time.Hour))
			base := s.Seq()
			for i := range tc.applied {
				apply(t, s, active("e"+strconv.Itoa(i), "cam"+strconv.Itoa(i), TypeMotion, time.Duration(i)*time.Second, time.Duration(i)*time.Second))
			}
			head := s.Seq()
			sub := s.Subscribe(tc.after(base, head))
			t.Cleanup(sub.Close)
			if sub.Filled() != tc.filled {
				t.Fatalf("filled %v, want %v", sub.Filled(), tc.filled)
			}
			first := tc.first(base, head)
			if got, want := pending(t, sub), seqRange(first, head); !slices.Equal(got, want) {
				t.Fatalf("replayed %v, want %v", got, want)
			}
			apply(t, s, active("new", "cam", TypeFace, time.Minute, time.Minute))
			if c := next(t, sub); c.Seq != head+1 || c.Event.ID != "new" {
				t.Fatalf("live change %d %s, want %d new", c.Seq, c.Event.ID, head+1)
			}
		})
	}
}

func TestSequenceOutlivesRestart(t *testing.T) {
	s1, _ := newStore(t, StoreOptions{}, at(0))
	for i := range 100 {
		apply(t, s1, active("e"+strconv.Itoa(i), "cam", TypeMotion, 0, time.Duration(i)*time.Millisecond))
	}
	s2, _ := newStore(t, StoreOptions{}, at(time.Second)) // the node restarted a second later
	if s2.Seq() <= s1.Seq() {
		t.Fatalf("restarted store starts at %d, not after %d", s2.Seq(), s1.Seq())
	}
	apply(t, s2, active("x", "cam", TypeMotion, 0, 0))
	if sub := s2.Subscribe(s1.Seq()); sub.Filled() {
		t.Fatal("a Last-Event-ID from before the restart counts as filled")
	}
}

func TestSlowSubscriberDropsAndCounts(t *testing.T) {
	s, _ := newStore(t, StoreOptions{Backlog: 4}, at(time.Hour))
	sub := s.Subscribe(s.Seq())
	t.Cleanup(sub.Close)
	for i := range 10 { // Apply never waits for the subscriber
		apply(t, s, active("e"+strconv.Itoa(i), "cam"+strconv.Itoa(i), TypeMotion, 0, time.Duration(i)*time.Second))
	}
	head := s.Seq()
	if got, want := pending(t, sub), seqRange(head-3, head); !slices.Equal(got, want) {
		t.Fatalf("slow subscriber got %v, want the %v still held", got, want)
	}
	if sub.Dropped() != 6 || s.Stats().Dropped != 6 {
		t.Fatalf("dropped %d (store %d), want 6", sub.Dropped(), s.Stats().Dropped)
	}
	apply(t, s, active("e10", "cam", TypeMotion, 0, time.Minute))
	if c := next(t, sub); c.Seq != head+1 || sub.Dropped() != 6 {
		t.Fatalf("after catching up: seq %d dropped %d", c.Seq, sub.Dropped())
	}
}

func TestNextHonoursContext(t *testing.T) {
	s, _ := newStore(t, StoreOptions{}, at(time.Hour))
	sub := s.Subscribe(s.Seq())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := sub.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("next without changes: %v, want deadline exceeded", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := sub.Next(ctx2)
		done <- err
	}()
	cancel2()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("next when cancelled while waiting: %v", err)
	}
	if st := s.Stats(); st.Subscribers != 1 {
		t.Fatalf("subscribers %d, want 1", st.Subscribers)
	}
	sub.Close()
	sub.Close() // idempotent
	if _, err := sub.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("next after close: %v", err)
	}
	if st := s.Stats(); st.Subscribers != 0 {
		t.Fatalf("subscribers after close: %d", st.Subscribers)
	}
}

// TestStoreConcurrent applies changes from several goroutines while
// subscribers read and others query; run it with -race. With a big backlog
// every subscriber sees every change, in order; with a tiny one they drop
// some, but still see increasing numbers and account for every change.
func TestStoreConcurrent(t *testing.T) {
	const writers, perWriter, subscribers = 4, 200, 8
	const total = writers * perWriter * 3 // start, update, end
	for _, backlog := range []int{total, 4} {
		t.Run(fmt.Sprintf("backlog %d", backlog), func(t *testing.T) {
			s := NewStore(StoreOptions{Backlog: backlog, MaxEvents: total})
			base := s.Seq()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var readers sync.WaitGroup
			errs := make(chan error, subscribers)
			for range subscribers {
				sub := s.Subscribe(base)
				readers.Go(func() {
					defer sub.Close()
					var got, last uint64 = 0, base
					for last < base+total {
						c, err := sub.Next(ctx)
						if err != nil {
							errs <- err
							return
						}
						if c.Seq <= last || c.Event.ID == "" {
							errs <- fmt.Errorf("change %d after %d: %+v", c.Seq, last, c)
							return
						}
						got, last = got+1, c.Seq
					}
					if got+sub.Dropped() != total || backlog >= total && sub.Dropped() != 0 {
						errs <- fmt.Errorf("received %d and dropped %d of %d changes", got, sub.Dropped(), total)
					}
				})
			}
			var writing, querying sync.WaitGroup
			for w := range writers {
				writing.Go(func() {
					now := time.Now()
					for i := range perWriter {
						id := fmt.Sprintf("w%d-%d", w, i)
						e := Event{ID: id, Camera: "cam" + strconv.Itoa(w), Type: TypeMotion, Phase: PhaseStart, Start: now, Updated: now}
						s.Apply(e)
						e.Phase, e.Updated = PhaseUpdate, now.Add(time.Millisecond)
						s.Apply(e)
						e.Phase, e.Updated, e.End = PhaseEnd, now.Add(2*time.Millisecond), ptr(now.Add(time.Millisecond))
						s.Apply(e)
					}
				})
			}
			stop := make(chan struct{})
			for range 2 {
				querying.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						s.Query(Filter{Camera: "cam1", Limit: 10})
						s.Get("w0-0")
						s.Stats()
					}
				})
			}
			writing.Wait()
			readers.Wait()
			close(stop)
			querying.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if st := s.Stats(); st.Applied != total || st.Events != writers*perWriter || st.Active != 0 || st.Subscribers != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestNextAllocatesNothing(t *testing.T) {
	s, _ := newStore(t, StoreOptions{}, at(time.Hour))
	sub := s.Subscribe(s.Seq())
	t.Cleanup(sub.Close)
	ctx := context.Background()
	e := active("x", "cam", TypeMotion, 0, 0)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		e.Phase, e.Updated = PhaseUpdate, at(time.Duration(i)*time.Millisecond)
		s.Apply(e)
		if _, err := sub.Next(ctx); err != nil {
			t.Fatal(err)
		}
	})
	// Apply allocates the notification channel; the subscriber must add
	// nothing.
	if allocs > 1 {
		t.Fatalf("%.1f allocations per change with one subscriber, want at most 1 (the channel)", allocs)
	}
}

// BenchmarkApply applies changes (events of 100 changes each: start,
// updates, end) while subscribers read them in their own goroutines.
func BenchmarkApply(b *testing.B) {
	for _, subs := range []int{0, 100} {
		b.Run(strconv.Itoa(subs)+"subscribers", func(b *testing.B) {
			s := NewStore(StoreOptions{Now: func() time.Time { return at(0) }})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range subs {
				sub := s.Subscribe(s.Seq())
				wg.Go(func() {
					defer sub.Close()
					for {
						if _, err := sub.Next(ctx); err != nil {
							return
						}
					}
				})
			}
			boxes := []Box{{X: 0.1, Y: 0.2, W: 0.3, H: 0.4}}
			names := make([]string, 20000) // ids repeat once evicted: the store holds 10000
			for n := range names {
				names[n] = "e" + strconv.Itoa(n)
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				n := i / 100
				start := at(time.Duration(n) * time.Second)
				e := Event{ID: names[n%len(names)], Camera: "cam", Type: TypeMotion, Phase: PhaseUpdate, Start: start,
					Updated: start.Add(time.Duration(i%100) * time.Millisecond), Boxes: boxes, Area: 0.1}
				switch i % 100 {
				case 0:
					e.Phase = PhaseStart
				case 99:
					end := e.Updated // one allocation per event
					e.Phase, e.End = PhaseEnd, &end
				}
				if !s.Apply(e) {
					b.Fatalf("change %d not applied", i)
				}
				i++
			}
			b.StopTimer()
			cancel()
			wg.Wait()
			st := s.Stats()
			b.ReportMetric(float64(st.Dropped)/float64(max(subs, 1))/float64(b.N), "dropped/change/sub")
		})
	}
}

// An analyzer that died leaves its event active; when the camera's next
// analyzer starts a new event of the same type, the orphan is ended there,
// and subscribers see that end.
func TestOrphanEndedByNewStart(t *testing.T) {
	s, _ := newStore(t, StoreOptions{}, at(time.Minute))
	apply(t, s, active("old", "lobby", TypeMotion, 0, 5*time.Second))
	apply(t, s, active("face", "lobby", TypeFace, 0, 5*time.Second))
	sub := s.Subscribe(s.Seq())
	defer sub.Close()
	apply(t, s, active("new", "lobby", TypeMotion, 20*time.Second, 20*time.Second))
	old, _ := s.Get("old")
	if old.Active() || !old.End.Equal(at(20*time.Second)) || old.Phase != PhaseEnd {
		t.Fatalf("orphan %+v", old)
	}
	if f, _ := s.Get("face"); !f.Active() {
		t.Fatal("an event of another type was ended")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var seen []string
	for range 2 {
		c, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, c.Event.ID+":"+string(c.Event.Phase))
	}
	if !slices.Contains(seen, "old:end") || !slices.Contains(seen, "new:start") {
		t.Fatalf("changes %v", seen)
	}
}
