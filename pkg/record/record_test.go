package record_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/record"
)

// base is aligned on the second, so that the 30 fps frame 30k is the first
// of slot k of a 1 s grid.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// at30 is the capture time of frame i at exactly 30 fps from base.
func at30(i int) time.Time { return base.Add(time.Duration(i) * time.Second / 30) }

// frame30 is frame i of a 30 fps camera, read at offset 1000+i of
// partition 0.
func frame30(i int) *frame.Frame {
	return &frame.Frame{
		Camera: "cam", Seq: uint64(i), CapturedAt: at30(i),
		Width: 640, Height: 480, ContentType: frame.TypeJPEG,
		Offset: int64(1000 + i),
	}
}

// recorder feeds a Camera and gathers what it records.
type recorder struct {
	cam     *record.Camera
	reduced []*frame.Frame
	chunks  []record.Chunk
}

func newRecorder(o record.Options) *recorder { return &recorder{cam: record.NewCamera(o)} }

func (r *recorder) add(t *testing.T, f *frame.Frame) {
	t.Helper()
	red, chunks := r.cam.Add(f)
	if red != nil {
		if red != f {
			t.Fatalf("Add(seq %d) returned another frame (seq %d) for the reduced tier", f.Seq, red.Seq)
		}
		r.reduced = append(r.reduced, red)
	}
	r.chunks = append(r.chunks, chunks...)
}

// addRange adds the 30 fps frames from to to (inclusive).
func (r *recorder) addRange(t *testing.T, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		r.add(t, frame30(i))
	}
}

func (r *recorder) event(id string, start time.Time, end *time.Time) {
	r.chunks = append(r.chunks, r.cam.Event(id, start, end)...)
}

func (r *recorder) flush() { r.chunks = append(r.chunks, r.cam.Flush()...) }

// checkChunks checks the invariants of the full tier and returns the
// sequence numbers of its frames, in order.
func checkChunks(t *testing.T, chunks []record.Chunk, chunkLen time.Duration, maxFrames int) []uint64 {
	t.Helper()
	var seqs []uint64
	var last time.Time
	for n, c := range chunks {
		if len(c) == 0 {
			t.Fatalf("chunk %d is empty", n)
		}
		if span := c.End().Sub(c.Start()); span > chunkLen {
			t.Errorf("chunk %d spans %v, more than %v", n, span, chunkLen)
		}
		if len(c) > maxFrames {
			t.Errorf("chunk %d has %d frames, more than %d", n, len(c), maxFrames)
		}
		for _, f := range c {
			if f.Width != c[0].Width || f.Height != c[0].Height {
				t.Errorf("chunk %d mixes %dx%d and %dx%d frames", n, c[0].Width, c[0].Height, f.Width, f.Height)
			}
			if !last.IsZero() && !f.CapturedAt.After(last) {
				t.Fatalf("chunk %d: frame seq %d at %v not after the previous frame at %v (out of order or twice)",
					n, f.Seq, f.CapturedAt.Sub(base), last.Sub(base))
			}
			last = f.CapturedAt
			seqs = append(seqs, f.Seq)
		}
	}
	return seqs
}

// seqRange returns from..to inclusive.
func seqRange(from, to int) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, uint64(i))
	}
	return s
}

func seqsOf(fs []*frame.Frame) []uint64 {
	s := make([]uint64, len(fs))
	for i, f := range fs {
		s[i] = f.Seq
	}
	return s
}

func ptr(t time.Time) *time.Time { return &t }

func TestReducedOnePerSlot(t *testing.T) {
	for _, offset := range []time.Duration{0, 400 * time.Millisecond} {
		t.Run(fmt.Sprint("start+", offset), func(t *testing.T) {
			r := newRecorder(record.Options{})
			var want []uint64
			slot := time.Time{}
			for i := range 300 { // 10 s at 30 fps
				f := frame30(i)
				f.CapturedAt = f.CapturedAt.Add(offset)
				if s := f.CapturedAt.Truncate(time.Second); !s.Equal(slot) {
					slot = s
					want = append(want, f.Seq)
				}
				r.add(t, f)
			}
			got := seqsOf(r.reduced)
			if !slices.Equal(got, want) {
				t.Fatalf("reduced tier seqs = %v, want the first frame of each 1 s slot %v", got, want)
			}
			if offset == 0 && len(got) != 10 {
				t.Fatalf("reduced tier kept %d frames of 10 s, want 10", len(got))
			}
			if len(r.chunks) != 0 || len(r.cam.Flush()) != 0 {
				t.Fatal("full tier recorded frames without an event")
			}
		})
	}
}

// AddReduced decides the reduced tier as Add does, and holds nothing: no
// frame is pending for a reduced-tier recorder.
func TestAddReducedHoldsNothing(t *testing.T) {
	full, reduced := newRecorder(record.Options{}), record.NewCamera(record.Options{})
	var got []uint64
	for i := range 300 {
		f := frame30(i)
		full.add(t, f)
		if r := reduced.AddReduced(f); r != nil {
			got = append(got, r.Seq)
		}
	}
	if want := seqsOf(full.reduced); !slices.Equal(got, want) {
		t.Fatalf("AddReduced kept %v, Add %v", got, want)
	}
	if n := reduced.Holding(); n != 0 {
		t.Errorf("AddReduced holds %d frames, want none", n)
	}
	reduced.Pending(func(p int32, off int64) { t.Errorf("frame at %d/%d pending", p, off) })
}

func TestReducedOtherInterval(t *testing.T) {
	r := newRecorder(record.Options{Interval: 2 * time.Second})
	r.addRange(t, 0, 299)
	if got, want := seqsOf(r.reduced), []uint64{0, 60, 120, 180, 240}; !slices.Equal(got, want) {
		t.Fatalf("reduced tier at a 2 s interval = %v, want %v", got, want)
	}
}

// A restart reads frames again from the last committed offset: what was
// recorded before (Progress, then Resume) is not recorded again, in
// either tier, and nothing is missed.
func TestResumeAfterRestart(t *testing.T) {
	o := record.Options{PreRoll: time.Second, PostRoll: time.Second, Hold: time.Second, Chunk: time.Second}
	one := newRecorder(o)
	one.event("e", at30(60), nil) // window from 1 s on
	one.addRange(t, 0, 299)
	one.flush()

	first := newRecorder(o)
	first.event("e", at30(60), nil)
	first.addRange(t, 0, 140) // to 4.67 s
	first.flush()             // what it wrote before stopping
	full, reduced := first.cam.Progress()
	if !full.Equal(at30(140)) || !reduced.Equal(at30(120)) {
		t.Fatalf("Progress() = %v, %v; want %v, %v", full.Sub(base), reduced.Sub(base), at30(140).Sub(base), at30(120).Sub(base))
	}

	second := newRecorder(o)
	second.cam.Resume(full, reduced)
	second.event("e", at30(60), nil)
	second.addRange(t, 100, 299) // read again from an older offset
	second.flush()

	gotReduced := append(seqsOf(first.reduced), seqsOf(second.reduced)...)
	if want := seqsOf(one.reduced); !slices.Equal(gotReduced, want) {
		t.Errorf("reduced tier across the restart = %v, want %v (as without one)", gotReduced, want)
	}
	gotFull := append(checkChunks(t, first.chunks, time.Second, record.DefaultMaxChunkFrames),
		checkChunks(t, second.chunks, time.Second, record.DefaultMaxChunkFrames)...)
	if want := seqRange(30, 299); !slices.Equal(gotFull, want) {
		t.Errorf("full tier across the restart = %v..%v (%d frames), want %v..%v (%d)",
			gotFull[0], gotFull[len(gotFull)-1], len(gotFull), want[0], want[len(want)-1], len(want))
	}

	// Resume never goes back.
	second.cam.Resume(base, base)
	if f, r := second.cam.Progress(); !f.Equal(at30(299)) || !r.Equal(at30(270)) {
		t.Errorf("Resume with older times moved progress back to %v, %v", f.Sub(base), r.Sub(base))
	}
	if red, chunks := second.cam.Add(frame30(280)); red != nil || chunks != nil {
		t.Errorf("a frame older than what was recorded was recorded again: %v, %v", red, chunks)
	}
}

// The analyzer's start arrives 2 s after the frames it is about: the
// pre-roll is still recorded whole, from the ring.
func TestFullLateStartGetsPreRoll(t *testing.T) {
	o := record.Options{} // PreRoll 5 s, PostRoll 5 s, Hold 5 s, Chunk 1 s
	r := newRecorder(o)
	r.addRange(t, 0, 240) // to 8 s
	if len(r.chunks) != 0 {
		t.Fatal("chunks before any event")
	}
	r.event("e", at30(180), nil) // started at 6 s, known at 8 s: window from 1 s
	if len(r.chunks) == 0 {
		t.Fatal("a late start returned no chunk of the ring's 7 s of pre-roll and event")
	}
	r.addRange(t, 241, 270)
	r.event("e", at30(180), ptr(at30(270))) // ended at 9 s: window to 14 s
	r.addRange(t, 271, 600)
	r.flush()
	got := checkChunks(t, r.chunks, record.DefaultChunk, record.DefaultMaxChunkFrames)
	if want := seqRange(30, 420); !slices.Equal(got, want) {
		t.Fatalf("full tier = %d frames %v..%v, want %d frames %v..%v (1 s to 14 s)",
			len(got), got[0], got[len(got)-1], len(want), want[0], want[len(want)-1])
	}
	if r.cam.Holding() > 30*10+1 {
		t.Errorf("holding %d frames, more than PreRoll+Hold of them", r.cam.Holding())
	}
}

// An event later than Hold loses only the frames that left the ring
// (older than the newest - PreRoll - Hold), and keeps the rest.
func TestFullEventLaterThanHold(t *testing.T) {
	o := record.Options{PreRoll: 2 * time.Second, Hold: time.Second, PostRoll: time.Second}
	r := newRecorder(o)
	r.addRange(t, 0, 270)                   // to 9 s
	r.event("e", at30(150), ptr(at30(180))) // 5 s to 6 s, known at 9 s: window 3 s to 7 s
	r.event("f", at30(240), ptr(at30(255))) // 8 s to 8.5 s: window 6 s to 9.5 s
	r.addRange(t, 271, 330)                 // to 11 s
	r.flush()
	got := checkChunks(t, r.chunks, record.DefaultChunk, record.DefaultMaxChunkFrames)
	// The ring held 6 s (9 s - 2 s - 1 s) on: 3 s to 6 s left it.
	if want := seqRange(180, 285); !slices.Equal(got, want) {
		t.Fatalf("full tier = %d frames %v..%v, want %d frames %v..%v (6 s to 9.5 s)",
			len(got), got[0], got[len(got)-1], len(want), want[0], want[len(want)-1])
	}
}

func TestFullChunks(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    record.Options
	}{
		{"2s", record.Options{Chunk: 2 * time.Second}},
		{"500ms", record.Options{Chunk: 500 * time.Millisecond}},
		{"max frames", record.Options{Chunk: 10 * time.Second, MaxChunkFrames: 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder(tc.o)
			r.event("e", at30(150), nil) // open from 0 s
			var out []int
			for i := 0; i <= 300; i++ {
				before := len(r.chunks)
				r.add(t, frame30(i))
				if len(r.chunks) > before {
					out = append(out, i)
				}
			}
			if len(out) == 0 {
				t.Fatal("no chunk completed in 10 s of event")
			}
			chunkLen, maxFrames := tc.o.Chunk, tc.o.MaxChunkFrames
			if maxFrames == 0 {
				maxFrames = record.DefaultMaxChunkFrames
			}
			// A chunk is given as soon as the frame after it comes, and
			// only when that frame does not fit.
			for n, i := range out {
				c := r.chunks[n]
				if next := c[len(c)-1].Seq + 1; next != uint64(i) {
					t.Errorf("chunk %d (to seq %d) given at frame %d, want at the next frame", n, c[len(c)-1].Seq, i)
				}
				if len(c) < maxFrames && at30(i).Sub(c.Start()) < chunkLen {
					t.Errorf("chunk %d of %d frames (%v) closed though frame %d fitted", n, len(c), c.End().Sub(c.Start()), i)
				}
			}
			held := r.cam.Holding()
			r.flush()
			if held == 0 || len(r.chunks[len(r.chunks)-1]) != held {
				t.Errorf("Flush gave a chunk of %d frames, want the %d held", len(r.chunks[len(r.chunks)-1]), held)
			}
			if got := r.cam.Flush(); len(got) != 0 || r.cam.Holding() != 0 {
				t.Errorf("a second Flush gave %d chunks, holding %d", len(got), r.cam.Holding())
			}
			got := checkChunks(t, r.chunks, chunkLen, maxFrames)
			if want := seqRange(0, 300); !slices.Equal(got, want) {
				t.Fatalf("full tier = %d frames, want %d, every frame once", len(got), len(want))
			}
			// Flush did not end the window: later frames still recorded.
			r.addRange(t, 301, 310)
			r.flush()
			if got := checkChunks(t, r.chunks, chunkLen, maxFrames); got[len(got)-1] != 310 {
				t.Errorf("after Flush the open event's frames stopped at seq %d", got[len(got)-1])
			}
		})
	}
}

func TestFullNothingAfterPostRoll(t *testing.T) {
	o := record.Options{PreRoll: time.Second, PostRoll: time.Second, Chunk: time.Second}
	r := newRecorder(o)
	r.addRange(t, 0, 90)
	r.event("e", at30(60), nil)
	r.addRange(t, 91, 120)
	r.event("e", at30(60), ptr(at30(120))) // window 1 s to 5 s
	r.addRange(t, 121, 300)
	// A redelivered start after the end does not reopen the window.
	r.event("e", at30(60), nil)
	r.addRange(t, 301, 330)
	r.flush()
	got := checkChunks(t, r.chunks, o.Chunk, record.DefaultMaxChunkFrames)
	if want := seqRange(30, 150); !slices.Equal(got, want) {
		t.Fatalf("full tier = %d frames %v..%v, want %d frames %v..%v (1 s to 5 s)",
			len(got), got[0], got[len(got)-1], len(want), want[0], want[len(want)-1])
	}
	// Two events: two runs, the gap between not recorded.
	r = newRecorder(o)
	r.event("a", at30(30), ptr(at30(60)))   // 0 s to 3 s
	r.event("b", at30(210), ptr(at30(240))) // 6 s to 9 s
	r.addRange(t, 0, 330)
	r.flush()
	got = checkChunks(t, r.chunks, o.Chunk, record.DefaultMaxChunkFrames)
	if want := append(seqRange(0, 90), seqRange(180, 270)...); !slices.Equal(got, want) {
		t.Fatalf("two events: full tier = %v, want %v", got, want)
	}
	for _, c := range r.chunks {
		if c.Start().Before(at30(90)) != c.End().Before(at30(90)) {
			t.Errorf("a chunk (%v to %v) spans the gap between windows", c.Start().Sub(base), c.End().Sub(base))
		}
	}
}

func TestFullSizeChangeStartsChunk(t *testing.T) {
	r := newRecorder(record.Options{Chunk: 10 * time.Second})
	r.event("e", base, nil)
	for i := 0; i <= 90; i++ {
		f := frame30(i)
		if i >= 45 {
			f.Width, f.Height = 1280, 720
		}
		r.add(t, f)
	}
	r.flush()
	checkChunks(t, r.chunks, 10*time.Second, record.DefaultMaxChunkFrames)
	if len(r.chunks) != 2 || r.chunks[1][0].Seq != 45 || r.chunks[1][0].Width != 1280 {
		var spans []string
		for _, c := range r.chunks {
			spans = append(spans, fmt.Sprintf("%d..%d", c[0].Seq, c[len(c)-1].Seq))
		}
		t.Fatalf("chunks %v, want 0..44 and 45..90 (the size changed at 45)", spans)
	}
}

// pending returns the lowest offset Pending reports per partition.
func pending(t *testing.T, c *record.Camera) map[int32]int64 {
	t.Helper()
	m := map[int32]int64{}
	c.Pending(func(p int32, off int64) {
		if old, ok := m[p]; !ok || off < old {
			m[p] = off
		}
	})
	return m
}

func TestPending(t *testing.T) {
	o := record.Options{PreRoll: time.Second, Hold: time.Second, PostRoll: time.Second, Chunk: 2 * time.Second}
	c := record.NewCamera(o)
	if got := pending(t, c); len(got) != 0 {
		t.Fatalf("new camera: Pending = %v, want nothing", got)
	}
	for i := 0; i <= 150; i++ { // to 5 s
		c.Add(frame30(i))
	}
	// The ring holds 3 s (5 s - 2 s) on.
	if got, want := pending(t, c), map[int32]int64{0: 1090}; !mapsEqual(got, want) {
		t.Fatalf("ring only: Pending = %v, want %v", got, want)
	}
	c.Event("e", at30(135), nil) // window from 3.5 s: ring 3 s to 3.5 s stays undecided
	if got, want := pending(t, c), map[int32]int64{0: 1090}; !mapsEqual(got, want) {
		t.Fatalf("ring and chunk: Pending = %v, want %v", got, want)
	}
	for i := 151; i <= 180; i++ { // to 6 s: the ring's 3 s to 3.5 s leave it
		c.Add(frame30(i))
	}
	if got, want := pending(t, c), map[int32]int64{0: 1000 + 165}; !mapsEqual(got, want) {
		t.Fatalf("chunk only: Pending = %v, want %v (the open chunk from 5.5 s)", got, want)
	}
	c.Flush()
	if got := pending(t, c); len(got) != 0 {
		t.Fatalf("all decided: Pending = %v, want nothing", got)
	}
}

// A camera whose key moved to another partition (partitions added) holds
// frames of both: each partition's lowest offset is pending.
func TestPendingPerPartition(t *testing.T) {
	c := record.NewCamera(record.Options{})
	for i := 0; i < 60; i++ {
		f := frame30(i)
		if i >= 30 {
			f.Partition, f.Offset = 1, int64(7+i-30)
		}
		c.Add(f)
	}
	if got, want := pending(t, c), map[int32]int64{0: 1000, 1: 7}; !mapsEqual(got, want) {
		t.Fatalf("Pending = %v, want %v", got, want)
	}
}

func mapsEqual(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestReset(t *testing.T) {
	o := record.Options{PreRoll: time.Second, PostRoll: time.Second, Hold: time.Second, Chunk: time.Second}
	r := newRecorder(o)
	r.event("e", at30(60), ptr(at30(240))) // window 1 s to 9 s
	r.addRange(t, 0, 150)
	if r.cam.Holding() == 0 {
		t.Fatal("holding nothing before Reset")
	}
	r.cam.Reset()
	if f, red := r.cam.Progress(); !f.IsZero() || !red.IsZero() {
		t.Errorf("Progress after Reset = %v, %v; want zero", f, red)
	}
	if h := r.cam.Holding(); h != 0 {
		t.Errorf("holding %d frames after Reset", h)
	}
	if got := pending(t, r.cam); len(got) != 0 {
		t.Errorf("Pending after Reset = %v", got)
	}
	if got := r.cam.Flush(); len(got) != 0 {
		t.Errorf("Flush after Reset gave %d chunks", len(got))
	}
	// Another recorder went on from an older offset and came back: frames
	// recorded before are recorded again, and the window is still known.
	r.reduced, r.chunks = nil, nil
	r.addRange(t, 120, 330)
	r.flush()
	if got := seqsOf(r.reduced); !slices.Equal(got, []uint64{120, 150, 180, 210, 240, 270, 300, 330}) {
		t.Errorf("reduced tier after Reset = %v", got)
	}
	if got, want := checkChunks(t, r.chunks, o.Chunk, record.DefaultMaxChunkFrames), seqRange(120, 270); !slices.Equal(got, want) {
		t.Errorf("full tier after Reset = %v, want %v (the window kept)", got, want)
	}
}

// headerMap turns record headers into ParseChunk's lookup.
func headerMap(hs []frame.Header) map[string]string {
	m := map[string]string{}
	for _, h := range hs {
		m[h.Key] = string(h.Value)
	}
	return m
}

func lookup(m map[string]string) func(string) []byte {
	return func(k string) []byte {
		if v, ok := m[k]; ok {
			return []byte(v)
		}
		return nil
	}
}

func testChunk() record.Chunk {
	start := base.Add(123456789 * time.Nanosecond)
	var c record.Chunk
	for i := range 5 {
		c = append(c, &frame.Frame{
			Seq: uint64(1<<40 + i), CapturedAt: start.Add(time.Duration(i) * 33_333_777 * time.Nanosecond),
			Width: 1920, Height: 1080,
		})
	}
	return c
}

func TestChunkHeadersRoundTrip(t *testing.T) {
	c := testChunk()
	hs := record.ChunkHeaders(c, "h264")
	m := headerMap(hs)
	if m[record.HeaderTier] != record.TierFull || m[record.HeaderFrames] != "5" {
		t.Fatalf("headers %v", m)
	}
	ci, err := record.ParseChunk(lookup(m))
	if err != nil {
		t.Fatal(err)
	}
	if ci.Codec != "h264" || ci.Width != 1920 || ci.Height != 1080 || len(ci.Seqs) != 5 || len(ci.Times) != 5 {
		t.Fatalf("ParseChunk = %+v", ci)
	}
	for i, f := range c {
		if ci.Seqs[i] != f.Seq {
			t.Errorf("seq %d = %d, want %d", i, ci.Seqs[i], f.Seq)
		}
		if d := f.CapturedAt.Sub(ci.Times[i]); d < 0 || d >= time.Microsecond {
			t.Errorf("time %d = %v, want %v to the microsecond (off by %v)", i, ci.Times[i], f.CapturedAt, d)
		}
	}
	if !ci.Times[0].Equal(c.Start()) {
		t.Errorf("first time %v, want span-start %v exactly", ci.Times[0], c.Start())
	}
	// One frame.
	ci, err = record.ParseChunk(lookup(headerMap(record.ChunkHeaders(c[:1], "h264"))))
	if err != nil || len(ci.Seqs) != 1 || !ci.Times[0].Equal(c[0].CapturedAt) {
		t.Errorf("one frame: %+v, %v", ci, err)
	}
}

func TestParseChunkRejects(t *testing.T) {
	good := headerMap(record.ChunkHeaders(testChunk(), "h264"))
	for _, tc := range []struct {
		name string
		mod  func(m map[string]string)
	}{
		{"no headers", func(m map[string]string) { clear(m) }},
		{"no tier", func(m map[string]string) { delete(m, record.HeaderTier) }},
		{"reduced tier", func(m map[string]string) { m[record.HeaderTier] = record.TierReduced }},
		{"other tier", func(m map[string]string) { m[record.HeaderTier] = "Full" }},
		{"no span-start", func(m map[string]string) { delete(m, record.HeaderSpanStart) }},
		{"garbage span-start", func(m map[string]string) { m[record.HeaderSpanStart] = "12:00" }},
		{"no frames", func(m map[string]string) { delete(m, record.HeaderFrames) }},
		{"zero frames", func(m map[string]string) { m[record.HeaderFrames] = "0" }},
		{"negative frames", func(m map[string]string) { m[record.HeaderFrames] = "-5" }},
		{"huge frames", func(m map[string]string) { m[record.HeaderFrames] = "1000000000" }},
		{"garbage frames", func(m map[string]string) { m[record.HeaderFrames] = "5x" }},
		{"more frames than seqs", func(m map[string]string) { m[record.HeaderFrames] = "6" }},
		{"fewer frames than seqs", func(m map[string]string) { m[record.HeaderFrames] = "4" }},
		{"a seq short", func(m map[string]string) {
			m[record.HeaderSeqs] = m[record.HeaderSeqs][:strings.LastIndexByte(m[record.HeaderSeqs], ',')]
		}},
		{"a time short", func(m map[string]string) {
			m[record.HeaderTimes] = m[record.HeaderTimes][:strings.LastIndexByte(m[record.HeaderTimes], ',')]
		}},
		{"no seqs", func(m map[string]string) { delete(m, record.HeaderSeqs) }},
		{"no times", func(m map[string]string) { delete(m, record.HeaderTimes) }},
		{"garbage seq", func(m map[string]string) { m[record.HeaderSeqs] = "1,2,x,4,5" }},
		{"empty seq", func(m map[string]string) { m[record.HeaderSeqs] = "1,2,,4,5" }},
		{"negative seq", func(m map[string]string) { m[record.HeaderSeqs] = "1,2,-3,4,5" }},
		{"garbage time", func(m map[string]string) { m[record.HeaderTimes] = "0,33,6e4,99,133" }},
		{"negative time", func(m map[string]string) { m[record.HeaderTimes] = "0,33,-66,99,133" }},
		{"time overflowing", func(m map[string]string) { m[record.HeaderTimes] = "0,33,9223372036854776,99,133" }},
		{"time out of range", func(m map[string]string) { m[record.HeaderTimes] = "0,33,99999999999999999999,99,133" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range good {
				m[k] = v
			}
			tc.mod(m)
			ci, err := record.ParseChunk(lookup(m))
			if !errors.Is(err, record.ErrBadChunk) {
				t.Fatalf("ParseChunk = %+v, %v; want an error wrapping ErrBadChunk", ci, err)
			}
			if ci.Seqs != nil || ci.Times != nil {
				t.Errorf("ParseChunk returned %+v with its error", ci)
			}
		})
	}
}

func TestReducedHeaders(t *testing.T) {
	f := frame30(42)
	m := headerMap(record.ReducedHeaders(f))
	for k, v := range map[string]string{
		record.HeaderTier: record.TierReduced, record.HeaderCodec: record.CodecJPEG,
		record.HeaderFrames: "1", frame.HeaderSeq: "42",
		record.HeaderSpanStart: fmt.Sprint(f.CapturedAt.UnixNano()), record.HeaderSpanEnd: fmt.Sprint(f.CapturedAt.UnixNano()),
	} {
		if m[k] != v {
			t.Errorf("header %s = %q, want %q", k, m[k], v)
		}
	}
	if _, err := record.ParseChunk(lookup(m)); !errors.Is(err, record.ErrBadChunk) {
		t.Errorf("a reduced record parsed as a chunk: %v", err)
	}
}

func TestIndexEntry(t *testing.T) {
	e := record.IndexEntry{
		Camera: "front-door_1.main", Tier: record.TierFull,
		Start: base.Add(123456789), End: base.Add(2*time.Second + 987654321),
		Frames: 60, Bytes: 1 << 20, Partition: 3, Offset: 1 << 40,
	}
	got, err := record.ParseIndexEntry(e.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got.Camera != e.Camera || got.Tier != e.Tier || !got.Start.Equal(e.Start) || !got.End.Equal(e.End) ||
		got.Frames != e.Frames || got.Bytes != e.Bytes || got.Partition != e.Partition || got.Offset != e.Offset {
		t.Fatalf("round trip = %+v, want %+v", got, e)
	}
	e.Tier, e.End, e.Frames = record.TierReduced, e.Start, 1
	if got, err := record.ParseIndexEntry(e.Marshal()); err != nil || got.Tier != record.TierReduced || !got.End.Equal(got.Start) {
		t.Fatalf("one reduced frame: %+v, %v", got, err)
	}

	valid := string(e.Marshal())
	for _, tc := range []struct{ name, json string }{
		{"empty", ""},
		{"not json", "camera=front"},
		{"truncated", valid[:len(valid)-1]},
		{"array", "[]"},
		{"wrong type", strings.Replace(valid, `"frames":1`, `"frames":"1"`, 1)},
		{"bad time", strings.Replace(valid, `"start":"`, `"start":"x`, 1)},
		{"no camera", strings.Replace(valid, `"camera":"front-door_1.main"`, `"camera":""`, 1)},
		{"camera with slash", strings.Replace(valid, `"camera":"front-door_1.main"`, `"camera":"../etc"`, 1)},
		{"camera with dash first", strings.Replace(valid, `"camera":"front-door_1.main"`, `"camera":"-x"`, 1)},
		{"camera too long", strings.Replace(valid, `"camera":"front-door_1.main"`, `"camera":"`+strings.Repeat("a", 65)+`"`, 1)},
		{"unknown tier", strings.Replace(valid, `"tier":"reduced"`, `"tier":"thumbs"`, 1)},
		{"no tier", strings.Replace(valid, `"tier":"reduced"`, `"tier":""`, 1)},
		{"end before start", string(record.IndexEntry{
			Camera: "cam", Tier: record.TierFull, Start: base.Add(time.Second), End: base, Frames: 1,
		}.Marshal())},
		{"no frames", strings.Replace(valid, `"frames":1`, `"frames":0`, 1)},
		{"negative bytes", strings.Replace(valid, `"bytes":1048576`, `"bytes":-1`, 1)},
		{"too large", strings.Replace(valid, `{`, `{"pad":"`+strings.Repeat("x", 5000)+`",`, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.json == valid {
				t.Fatal("the case did not change the valid entry")
			}
			if got, err := record.ParseIndexEntry([]byte(tc.json)); err == nil {
				t.Fatalf("ParseIndexEntry(%.80q) = %+v, want an error", tc.json, got)
			}
		})
	}
}

func TestProgressEntry(t *testing.T) {
	e := record.ProgressEntry{Camera: "front", Recorded: base.Add(1500 * time.Millisecond), Lost: 42, At: base.Add(3 * time.Second)}
	got, err := record.ParseProgressEntry(e.Marshal())
	if err != nil || got.Camera != e.Camera || !got.Recorded.Equal(e.Recorded) || got.Lost != 42 || !got.At.Equal(e.At) {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, e)
	}
	valid := string(e.Marshal())
	for _, tc := range []struct{ name, json string }{
		{"not json", "front"},
		{"bad camera", strings.Replace(valid, `"camera":"front"`, `"camera":"../x"`, 1)},
		{"no recorded", strings.Replace(valid, `"recorded":"`, `"recorded_at":"`, 1)},
		{"no at", strings.Replace(valid, `"at":"`, `"when":"`, 1)},
		{"negative lost", strings.Replace(valid, `"lost":42`, `"lost":-1`, 1)},
		{"too large", strings.Replace(valid, `{`, `{"pad":"`+strings.Repeat("x", 2000)+`",`, 1)},
	} {
		if tc.json == valid {
			t.Fatalf("%s: the case did not change the valid entry", tc.name)
		}
		if got, err := record.ParseProgressEntry([]byte(tc.json)); err == nil {
			t.Errorf("%s: ParseProgressEntry(%.80q) = %+v, want an error", tc.name, tc.json, got)
		}
	}
}

func TestProgress(t *testing.T) {
	p := record.Progress{"cam-a": {base.UnixNano(), base.Add(-time.Second).UnixNano()}, "cam_b": {0, 42}}
	s := record.EncodeProgress(p)
	if len(s) > 200 {
		t.Errorf("EncodeProgress of two cameras is %d bytes: not terse", len(s))
	}
	got := record.DecodeProgress(s)
	if len(got) != len(p) || got["cam-a"] != p["cam-a"] || got["cam_b"] != p["cam_b"] {
		t.Fatalf("round trip = %v, want %v", got, p)
	}
	if got := record.DecodeProgress(record.EncodeProgress(record.Progress{})); len(got) != 0 {
		t.Errorf("empty round trip = %v", got)
	}
	for _, s := range []string{"", "garbage", "{", `{"cam":`, "[1,2]", `"cam"`, "42", "null", `{"cam":"x"}`} {
		if got := record.DecodeProgress(s); len(got) != 0 {
			t.Errorf("DecodeProgress(%q) = %v, want no progress", s, got)
		}
	}
}

// source is a Source over a slice, with io.EOF at its end; fail[i] is
// returned once instead of frame i.
type source struct {
	frames []*frame.Frame
	i      int
	fail   map[int]error
	closed int
}

func (s *source) Next(context.Context) (*frame.Frame, error) {
	if s.closed > 0 {
		return nil, errors.New("source read after Close")
	}
	if err, ok := s.fail[s.i]; ok {
		delete(s.fail, s.i)
		return nil, err
	}
	if s.i >= len(s.frames) {
		return nil, io.EOF
	}
	f := s.frames[s.i]
	s.i++
	return f, nil
}

func (s *source) Close() { s.closed++ }

// at10 is the capture time of frame i at 10 fps from base.
func at10(i int) time.Time { return base.Add(time.Duration(i) * 100 * time.Millisecond) }

// frames10 returns new frames from to to (inclusive) at 10 fps: each call
// new copies, as another tier or topic gives.
func frames10(from, to int) []*frame.Frame {
	var fs []*frame.Frame
	for i := from; i <= to; i++ {
		fs = append(fs, &frame.Frame{Camera: "cam", Seq: uint64(i), CapturedAt: at10(i)})
	}
	return fs
}

// readAll reads s to its first error, which it returns.
func readAll(t *testing.T, s record.Source) ([]*frame.Frame, error) {
	t.Helper()
	var out []*frame.Frame
	for range 100_000 {
		f, err := s.Next(context.Background())
		if err != nil {
			return out, err
		}
		out = append(out, f)
	}
	t.Fatal("source never ended")
	return nil, nil
}

func TestMerge(t *testing.T) {
	reduced := &source{frames: []*frame.Frame{
		{Seq: 0, CapturedAt: at10(0)}, {Seq: 10, CapturedAt: at10(10)}, {Seq: 20, CapturedAt: at10(20)}, {Seq: 30, CapturedAt: at10(30)},
	}}
	// The full tier holds 8 to 14 and 29 to 30, at times kept to the
	// microsecond.
	full := &source{frames: append(frames10(8, 14), frames10(29, 30)...)}
	for _, f := range full.frames {
		f.CapturedAt = f.CapturedAt.Add(-400 * time.Nanosecond)
	}
	m := record.Merge(reduced, full)
	got, err := readAll(t, m)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Merge ended with %v, want io.EOF", err)
	}
	if want := []uint64{0, 8, 9, 10, 11, 12, 13, 14, 20, 29, 30}; !slices.Equal(seqsOf(got), want) {
		t.Fatalf("Merge = %v, want %v", seqsOf(got), want)
	}
	if got[3] != full.frames[2] || got[10] != full.frames[8] {
		t.Error("the frame both tiers hold was not given as the full tier's copy")
	}
	if _, err := m.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Errorf("Next after the end = %v, want io.EOF", err)
	}
	m.Close()
	if reduced.closed != 1 || full.closed != 1 {
		t.Errorf("Close closed reduced %d times, full %d times; want once each", reduced.closed, full.closed)
	}
}

func TestMergeNotDuplicates(t *testing.T) {
	// The same seq 2 ms apart (a producer restarted), and another seq at
	// the same time: different frames, both given.
	reduced := &source{frames: []*frame.Frame{{Seq: 5, CapturedAt: at10(5)}, {Seq: 7, CapturedAt: at10(9)}}}
	full := &source{frames: []*frame.Frame{{Seq: 5, CapturedAt: at10(5).Add(2 * time.Millisecond)}, {Seq: 9, CapturedAt: at10(9)}}}
	got, err := readAll(t, record.Merge(reduced, full))
	if !errors.Is(err, io.EOF) || len(got) != 4 {
		t.Fatalf("Merge = %v, %v; want 4 frames", seqsOf(got), err)
	}
	if got[0] != reduced.frames[0] || got[1] != full.frames[0] {
		t.Errorf("Merge order = %v, want capture order", seqsOf(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].CapturedAt.Before(got[i-1].CapturedAt) {
			t.Errorf("Merge gave %v before %v", got[i-1].CapturedAt, got[i].CapturedAt)
		}
	}
}

func TestMergeNil(t *testing.T) {
	for _, tc := range []struct {
		name          string
		reduced, full bool
	}{{"reduced only", true, false}, {"full only", false, true}, {"neither", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			var r, f record.Source
			var want []uint64
			if tc.reduced {
				r = &source{frames: frames10(0, 3)}
				want = seqRange(0, 3)
			}
			if tc.full {
				f = &source{frames: frames10(4, 6)}
				want = seqRange(4, 6)
			}
			m := record.Merge(r, f)
			got, err := readAll(t, m)
			if !errors.Is(err, io.EOF) || !slices.Equal(seqsOf(got), want) {
				t.Fatalf("Merge = %v, %v; want %v, io.EOF", seqsOf(got), err, want)
			}
			m.Close() // no panic on the nil one
		})
	}
}

func TestMergeEmptyAndErrors(t *testing.T) {
	boom := errors.New("broker away")
	reduced := &source{frames: frames10(0, 0), fail: map[int]error{1: boom}}
	full := &source{fail: map[int]error{0: boom}}
	m := record.Merge(reduced, full)
	var got []uint64
	var errs int
	for range 10 {
		f, err := m.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if !errors.Is(err, boom) {
				t.Fatalf("Merge error %v, want %v", err, boom)
			}
			errs++
			continue
		}
		got = append(got, f.Seq)
	}
	if errs != 2 || !slices.Equal(got, []uint64{0}) {
		t.Fatalf("Merge gave %v with %d errors; want [0] after 2 errors", got, errs)
	}
}

// liveOpener is a fake frames topic: each openLive returns a new source of
// copies of frames from to to at 10 fps, whatever since asks (the
// timeline must skip what it gave already).
type liveOpener struct {
	from, to int
	since    []time.Time
	opened   []*source
	fail     []map[int]error // for the n-th source opened
	err      error           // returned once by openLive
}

func (l *liveOpener) open(since time.Time) (record.Source, error) {
	l.since = append(l.since, since)
	if err := l.err; err != nil {
		l.err = nil
		return nil, err
	}
	s := &source{frames: frames10(l.from, l.to)}
	if n := len(l.opened); n < len(l.fail) {
		s.fail = l.fail[n]
	}
	l.opened = append(l.opened, s)
	return s, nil
}

// checkTimeline reads tl to io.EOF, retrying after other errors, and
// checks it gave want, strictly increasing.
func checkTimeline(t *testing.T, tl *record.Timeline, want []uint64) []*frame.Frame {
	t.Helper()
	var got []*frame.Frame
	for range 10_000 {
		f, err := tl.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			continue // a transient error: the caller asks again
		}
		if len(got) > 0 && !f.CapturedAt.After(got[len(got)-1].CapturedAt) {
			t.Fatalf("timeline gave seq %d at %v after seq %d at %v", f.Seq, f.CapturedAt.Sub(base),
				got[len(got)-1].Seq, got[len(got)-1].CapturedAt.Sub(base))
		}
		got = append(got, f)
	}
	if !slices.Equal(seqsOf(got), want) {
		t.Fatalf("timeline = %v\nwant       %v", seqsOf(got), want)
	}
	return got
}

// The frames topic's start moved from 5 s (when asked) to 7 s (when read):
// the recording fills 5 s to 7 s.
func TestTimelineRetentionMoved(t *testing.T) {
	rec := &source{frames: frames10(0, 89)} // 0 to 8.9 s, at full rate
	live := &liveOpener{from: 70, to: 120}
	asked := 0
	liveFrom := func() time.Time { asked++; return at10(50) }
	tl := record.NewTimeline(rec, base, liveFrom, live.open)
	for i := range 50 {
		f, err := tl.Next(context.Background())
		if err != nil || f.Seq != uint64(i) || f != rec.frames[i] {
			t.Fatalf("frame %d = %v, %v; want the recording's", i, f, err)
		}
		if tl.Live() || len(live.since) > 0 {
			t.Fatalf("crossed at frame %d, before the frames topic's start", i)
		}
	}
	if asked < 50 {
		t.Errorf("liveFrom asked %d times for 50 frames of the recording", asked)
	}
	got := checkTimeline(t, tl, seqRange(50, 120))
	if len(live.since) != 1 || !live.since[0].Equal(at10(49).Add(time.Nanosecond)) {
		t.Errorf("openLive(%v), want once, 1 ns after the last frame given (%v)", live.since, at10(49).Sub(base))
	}
	for _, f := range got {
		if fromRec := f.Seq < 70; fromRec != slices.Contains(rec.frames, f) {
			t.Errorf("seq %d from the recording: %v, want %v", f.Seq, !fromRec, fromRec)
		}
	}
	if !tl.Live() || rec.closed != 1 {
		t.Errorf("after crossing: Live %v, recording closed %d times", tl.Live(), rec.closed)
	}
	tl.Close()
	tl.Close()
	if live.opened[0].closed != 1 || rec.closed != 1 {
		t.Errorf("Close closed live %d, recording %d times; want once each", live.opened[0].closed, rec.closed)
	}
	if _, err := tl.Next(context.Background()); err == nil {
		t.Error("Next after Close gave no error")
	}
}

func TestTimeline(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rec      []*frame.Frame
		at       time.Time
		liveFrom time.Time
		live     [2]int
		want     []uint64
		since    time.Time
	}{
		{
			name: "frames topic as said", rec: frames10(0, 89), at: base, liveFrom: at10(50),
			live: [2]int{50, 100}, want: seqRange(0, 100), since: at10(49).Add(time.Nanosecond),
		},
		{
			name: "frames topic earlier than said", rec: frames10(0, 89), at: base, liveFrom: at10(50),
			live: [2]int{40, 100}, want: seqRange(0, 100), since: at10(49).Add(time.Nanosecond),
		},
		{
			name: "from the middle", rec: frames10(0, 89), at: at10(20).Add(-time.Millisecond), liveFrom: at10(50),
			live: [2]int{70, 100}, want: seqRange(20, 100), since: at10(49).Add(time.Nanosecond),
		},
		{
			name: "empty recording", at: at10(20), liveFrom: at10(50),
			live: [2]int{15, 40}, want: seqRange(20, 40), since: at10(20),
		},
		{
			name: "recording before at", rec: frames10(0, 10), at: at10(20), liveFrom: at10(50),
			live: [2]int{15, 40}, want: seqRange(20, 40), since: at10(20),
		},
		{
			name: "recording ends before the frames topic", rec: frames10(0, 29), at: base, liveFrom: at10(50),
			live: [2]int{50, 60}, want: append(seqRange(0, 29), seqRange(50, 60)...), since: at10(29).Add(time.Nanosecond),
		},
		{
			name: "frames topic older than at", rec: frames10(0, 89), at: at10(30), liveFrom: base,
			live: [2]int{0, 40}, want: seqRange(30, 40), since: at10(30),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &source{frames: tc.rec}
			live := &liveOpener{from: tc.live[0], to: tc.live[1]}
			tl := record.NewTimeline(rec, tc.at, func() time.Time { return tc.liveFrom }, live.open)
			defer tl.Close()
			checkTimeline(t, tl, tc.want)
			if len(live.since) != 1 || !live.since[0].Equal(tc.since) {
				t.Errorf("openLive(%v), want once at %v", live.since, tc.since)
			}
		})
	}
}

// The caller asks again after an error (a replay's deadline): nothing is
// lost or given twice.
func TestTimelineErrorsLoseNothing(t *testing.T) {
	boom := errors.New("deadline")
	t.Run("opening the frames topic", func(t *testing.T) {
		live := &liveOpener{from: 70, to: 100, err: boom}
		tl := record.NewTimeline(&source{frames: frames10(0, 89)}, base, func() time.Time { return at10(50) }, live.open)
		defer tl.Close()
		checkTimeline(t, tl, seqRange(0, 100))
	})
	t.Run("reading the frames topic's first frame", func(t *testing.T) {
		live := &liveOpener{from: 70, to: 100, fail: []map[int]error{{0: boom}}}
		tl := record.NewTimeline(&source{frames: frames10(0, 89)}, base, func() time.Time { return at10(50) }, live.open)
		defer tl.Close()
		checkTimeline(t, tl, seqRange(0, 100))
		for i, s := range live.opened[:len(live.opened)-1] {
			if s.closed != 1 {
				t.Errorf("frames topic source %d, abandoned, closed %d times", i, s.closed)
			}
		}
	})
	t.Run("reading the recording while crossing", func(t *testing.T) {
		live := &liveOpener{from: 70, to: 100}
		rec := &source{frames: frames10(0, 89), fail: map[int]error{60: boom}}
		tl := record.NewTimeline(rec, base, func() time.Time { return at10(50) }, live.open)
		defer tl.Close()
		checkTimeline(t, tl, seqRange(0, 100))
	})
	t.Run("reading the frames topic", func(t *testing.T) {
		live := &liveOpener{from: 70, to: 100, fail: []map[int]error{{10: boom}}}
		tl := record.NewTimeline(&source{frames: frames10(0, 89)}, base, func() time.Time { return at10(50) }, live.open)
		defer tl.Close()
		checkTimeline(t, tl, seqRange(0, 100))
	})
}

// A camera's recording: an event known 1.5 s late still gets its 2 s of
// pre-roll, one frame a second is kept always.
func ExampleCamera() {
	cam := record.NewCamera(record.Options{PreRoll: 2 * time.Second, PostRoll: time.Second, Chunk: 2 * time.Second})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	reduced := 0
	var chunks []record.Chunk
	for i := range 100 { // 10 s at 10 fps
		now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		if i == 55 { // at 5.5 s, the analyzer says: started at 4 s, ended at 5 s
			end := t0.Add(5 * time.Second)
			chunks = append(chunks, cam.Event("person", t0.Add(4*time.Second), &end)...)
		}
		red, done := cam.Add(&frame.Frame{Seq: uint64(i), CapturedAt: now})
		if red != nil {
			reduced++
		}
		chunks = append(chunks, done...)
	}
	chunks = append(chunks, cam.Flush()...)
	fmt.Println("reduced tier:", reduced, "frames")
	for _, c := range chunks {
		fmt.Printf("chunk %v to %v, %d frames\n", c.Start().Sub(t0), c.End().Sub(t0), len(c))
	}
	// Output:
	// reduced tier: 10 frames
	// chunk 2s to 3.9s, 20 frames
	// chunk 4s to 5.9s, 20 frames
	// chunk 6s to 6s, 1 frames
}

func BenchmarkCameraAdd(b *testing.B) {
	// Frames are reused once they left the ring (PreRoll+Hold is 10 s,
	// 300 frames at 30 fps).
	pool := make([]*frame.Frame, 1024)
	for i := range pool {
		pool[i] = &frame.Frame{Camera: "cam", Width: 1920, Height: 1080}
	}
	cam := record.NewCamera(record.Options{})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f := pool[i%len(pool)]
		f.Seq, f.CapturedAt, f.Offset = uint64(i), at30(i), int64(i)
		cam.Add(f)
	}
}

// When the frames topic's reader ends under the timeline (retention), it
// goes back to the recording from the last frame given and crosses again:
// no gap, nothing twice.
func TestTimelineReopensAfterTheLiveReaderEnds(t *testing.T) {
	recFrom := func(since time.Time) record.Source {
		var fs []*frame.Frame
		for _, f := range frames10(0, 19) {
			if !f.CapturedAt.Before(since) {
				fs = append(fs, f)
			}
		}
		return &source{frames: fs}
	}
	opened := 0
	openLive := func(time.Time) (record.Source, error) {
		opened++
		if opened == 1 {
			// Two frames, then retention takes the rest under the reader.
			return &source{frames: frames10(10, 11), fail: map[int]error{2: errors.New("history ended")}}, nil
		}
		return &source{frames: frames10(15, 24)}, nil // the topic now starts at frame 15
	}
	tl := record.NewTimeline(recFrom(base), base, func() time.Time { return at10(10) }, openLive)
	tl.Reopen(func(since time.Time) (record.Source, error) { return recFrom(since), nil })
	for i := 0; i < 25; i++ {
		f, err := tl.Next(t.Context())
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !f.CapturedAt.Equal(at10(i)) {
			t.Fatalf("frame %d captured at %s, want %s", i, f.CapturedAt.Sub(base), at10(i).Sub(base))
		}
	}
	if opened != 2 {
		t.Errorf("the frames topic was opened %d times, want 2", opened)
	}
	// Without Reopen the error ends the timeline.
	opened = 0
	tl = record.NewTimeline(recFrom(base), base, func() time.Time { return at10(10) }, openLive)
	for i := 0; i < 12; i++ {
		if _, err := tl.Next(t.Context()); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if _, err := tl.Next(t.Context()); err == nil {
		t.Error("the reader's error was swallowed without Reopen")
	}
}
