// Package record decides what a security camera's recording keeps, so that
// days of video fit a disk budget: every frame while something happens, a
// trickle the rest of the time.
//
// The recording has two tiers, each a Kafka topic of its own (retention is
// per topic, so tiers that may live for different times need their own):
//
//   - The reduced tier holds one frame per Interval of capture time (1 s by
//     default), always, as the JPEG the camera sent: no CPU is spent on it,
//     any Kafka tool can read it, and a web node without OpenCV can play it.
//     Frames are chosen on a fixed grid of capture time (the first frame of
//     each Interval-aligned slot), so the choice does not depend on when the
//     recorder started or restarted.
//   - The full tier holds every frame of each event's window, the event
//     from PreRoll before its start to PostRoll after its end, as Chunks of
//     about Chunk length that the caller encodes (H.264, package video).
//
// Events are decided by the analyzer after the frames they are about: a
// start arrives tens of milliseconds, sometimes a second, after its first
// frame. So that the pre-roll is really recorded, a Camera holds the frames
// of the last PreRoll+Hold in a ring, undecided; when an event's start
// arrives, the ring's frames inside its window join the full tier. A frame
// that leaves the ring without a window is only in the reduced tier.
//
// A Camera records what it decided up to (FullUpTo, ReducedUpTo); the
// recorder commits these with its consumer offsets, so that after a
// restart, when frames are read again from the last committed offset, the
// frames already recorded are not recorded twice (Resume).
//
// The package is pure Go: it knows nothing of Kafka clients, OpenCV or HTTP.
package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/streamd/streamd/pkg/frame"
)

// Tiers of a recording.
const (
	TierFull    = "full"    // every frame of event windows, H.264 chunks
	TierReduced = "reduced" // one frame per Interval, always, JPEG
)

// Header names of recording records, beside package frame's on the reduced
// tier (whose records are frames like those of the frames topic). Times are
// unix nanoseconds of capture time, in ASCII like frame's headers.
const (
	HeaderTier      = "tier"       // TierFull or TierReduced
	HeaderCodec     = "codec"      // "jpeg" or video.Codec
	HeaderSpanStart = "span-start" // capture time of the record's first frame
	HeaderSpanEnd   = "span-end"   // capture time of its last frame
	HeaderFrames    = "frames"     // how many frames the record holds
	// HeaderSeqs and HeaderTimes list, for each frame of a chunk, its
	// producer sequence number and its capture time in microseconds after
	// span-start, comma-separated: the video itself has only a rate.
	HeaderSeqs  = "seqs"
	HeaderTimes = "times"
)

// CodecJPEG is the reduced tier's codec.
const CodecJPEG = "jpeg"

// IndexPeriod is how much of the reduced tier one index entry summarizes.
const IndexPeriod = 30 * time.Second

// Defaults of Options, used for zero fields.
const (
	DefaultInterval = time.Second
	DefaultPreRoll  = 5 * time.Second
	DefaultPostRoll = 5 * time.Second
	// DefaultHold is how long beyond PreRoll a frame waits for an event
	// that may still cover it: analyzers publish within about a second
	// (analyzer.max_lag), so 5 s leaves a wide margin.
	DefaultHold = 5 * time.Second
	// DefaultChunk is a second: the full tier is recorded up to a chunk
	// and an encode behind the camera (its lag), within 2 s on a busy box.
	DefaultChunk = time.Second
	// DefaultMaxChunkFrames bounds a chunk whatever the frame rate.
	DefaultMaxChunkFrames = 240
)

// Options tune a Camera. Zero fields take the defaults.
type Options struct {
	Interval          time.Duration // reduced tier: one frame per Interval
	PreRoll, PostRoll time.Duration // full tier: around each event
	Hold              time.Duration // how long past PreRoll an event may be late
	Chunk             time.Duration // full tier: length of a chunk
	MaxChunkFrames    int
}

func (o Options) withDefaults() Options {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.PreRoll < 0 {
		o.PreRoll = 0
	} else if o.PreRoll == 0 {
		o.PreRoll = DefaultPreRoll
	}
	if o.PostRoll < 0 {
		o.PostRoll = 0
	} else if o.PostRoll == 0 {
		o.PostRoll = DefaultPostRoll
	}
	if o.Hold <= 0 {
		o.Hold = DefaultHold
	}
	if o.Chunk <= 0 {
		o.Chunk = DefaultChunk
	}
	if o.MaxChunkFrames <= 0 {
		o.MaxChunkFrames = DefaultMaxChunkFrames
	}
	return o
}

// Chunk is a run of consecutive frames of one event window, for the full
// tier, in capture order.
type Chunk []*frame.Frame

// Start and End are the capture times of the chunk's first and last frame.
func (c Chunk) Start() time.Time { return c[0].CapturedAt }

// End is the capture time of the chunk's last frame.
func (c Chunk) End() time.Time { return c[len(c)-1].CapturedAt }

// window is the full-rate span of one event; end is zero while it is open.
type window struct{ start, end time.Time }

func (w window) covers(t time.Time) bool {
	return !t.Before(w.start) && (w.end.IsZero() || !t.After(w.end))
}

// Camera is one camera's recording state. It is not safe for concurrent
// use.
type Camera struct {
	o       Options
	ring    []*frame.Frame    // undecided frames, capture order
	chunk   Chunk             // the full-tier chunk being built
	windows map[string]window // by event id
	newest  time.Time         // the newest capture time seen
	// Progress: the capture time of the last frame each tier recorded.
	fullUpTo, reducedUpTo time.Time
}

// NewCamera returns the state of a camera with nothing recorded yet.
func NewCamera(o Options) *Camera {
	return &Camera{o: o.withDefaults(), windows: map[string]window{}}
}

// Resume says what was recorded before a restart: frames captured at or
// before fullUpTo (reducedUpTo) are not recorded in the full (reduced)
// tier again.
func (c *Camera) Resume(fullUpTo, reducedUpTo time.Time) {
	c.fullUpTo = latest(c.fullUpTo, fullUpTo)
	c.reducedUpTo = latest(c.reducedUpTo, reducedUpTo)
}

// Reset forgets the frames held and what was recorded, keeping the event
// windows: the camera's frames are now read by another recorder, which
// may go on from where this one was.
func (c *Camera) Reset() {
	c.ring, c.chunk = nil, nil
	c.fullUpTo, c.reducedUpTo, c.newest = time.Time{}, time.Time{}, time.Time{}
}

// Progress returns the capture time of the last frame recorded (or
// decided: a frame left in the chunk being built counts) in each tier.
func (c *Camera) Progress() (fullUpTo, reducedUpTo time.Time) { return c.fullUpTo, c.reducedUpTo }

// Add takes the camera's next frame, in capture order. It returns the frame
// if the reduced tier records it, and the chunks the full tier completed.
// Frames older than what was recorded already are ignored (they are the
// replay of a restart, or a producer's clock going back).
func (c *Camera) Add(f *frame.Frame) (reduced *frame.Frame, chunks []Chunk) {
	t := f.CapturedAt
	if t.After(c.newest) {
		c.newest = t
	}
	if c.slot(t) > c.slot(c.reducedUpTo) || c.reducedUpTo.IsZero() {
		reduced = f
		c.reducedUpTo = t
	}
	if !t.After(c.fullUpTo) {
		return reduced, nil
	}
	if c.covered(t) {
		chunks = c.appendChunk(nil, f)
	} else {
		chunks = c.closeChunk(nil)
		c.ring = append(c.ring, f)
	}
	c.trim()
	return reduced, chunks
}

// AddReduced is Add for a recorder of the reduced tier alone: it returns
// f when f is the first frame of its Interval slot, and holds nothing (no
// ring: without event windows nothing waits for a decision).
func (c *Camera) AddReduced(f *frame.Frame) (reduced *frame.Frame) {
	t := f.CapturedAt
	if t.After(c.newest) {
		c.newest = t
	}
	if c.slot(t) > c.slot(c.reducedUpTo) || c.reducedUpTo.IsZero() {
		c.reducedUpTo = t
		return f
	}
	return nil
}

// slot is the Interval-aligned slot of capture time t.
func (c *Camera) slot(t time.Time) int64 {
	return t.UnixNano() / int64(c.o.Interval)
}

// Event takes an event's change: its window is start-PreRoll to
// end+PostRoll (open while end is nil). The ring's frames in the window
// join the full tier; completed chunks are returned.
func (c *Camera) Event(id string, start time.Time, end *time.Time) []Chunk {
	w := window{start: start.Add(-c.o.PreRoll)}
	if end != nil {
		w.end = end.Add(c.o.PostRoll)
	}
	if old, ok := c.windows[id]; ok && !old.end.IsZero() && w.end.IsZero() {
		w.end = old.end // a redelivered start after the end
	}
	c.windows[id] = w
	var chunks []Chunk
	keep := c.ring[:0]
	for _, f := range c.ring {
		switch {
		case !f.CapturedAt.After(c.fullUpTo):
			// Recorded already, or older than a chunk already out.
		case w.covers(f.CapturedAt):
			chunks = c.appendChunk(chunks, f)
		default:
			keep = append(keep, f)
			continue
		}
	}
	clear(c.ring[len(keep):])
	c.ring = keep
	c.trim()
	return chunks
}

// Flush completes the chunk being built, if any: call it when the camera's
// frames stop (idle, or shutdown), so a chunk does not wait for a frame
// that may not come.
func (c *Camera) Flush() []Chunk { return c.closeChunk(nil) }

// Pending returns the Kafka offsets of the frames the camera still holds
// undecided or unsent, by partition: the lowest offset still needed of
// each (what a consumer may commit, at most).
func (c *Camera) Pending(fn func(partition int32, offset int64)) {
	// Usually one partition; more when the camera's key moved (partitions
	// added) while frames of the old one are still held.
	type mark struct {
		partition int32
		offset    int64
	}
	var buf [4]mark
	low := buf[:0]
	for _, held := range [2][]*frame.Frame{c.ring, c.chunk} {
		for _, f := range held {
			i := 0
			for i < len(low) && low[i].partition != f.Partition {
				i++
			}
			switch {
			case i == len(low):
				low = append(low, mark{f.Partition, f.Offset})
			case f.Offset < low[i].offset:
				low[i].offset = f.Offset
			}
		}
	}
	for _, m := range low {
		fn(m.partition, m.offset)
	}
}

// Holding returns how many frames the camera holds (ring and chunk).
func (c *Camera) Holding() int { return len(c.ring) + len(c.chunk) }

func (c *Camera) covered(t time.Time) bool {
	for _, w := range c.windows {
		if w.covers(t) {
			return true
		}
	}
	return false
}

func (c *Camera) appendChunk(out []Chunk, f *frame.Frame) []Chunk {
	if len(c.chunk) > 0 && (f.CapturedAt.Sub(c.chunk.Start()) >= c.o.Chunk || len(c.chunk) >= c.o.MaxChunkFrames ||
		f.Width != c.chunk[0].Width || f.Height != c.chunk[0].Height) {
		out = c.closeChunk(out)
	}
	c.chunk = append(c.chunk, f)
	c.fullUpTo = f.CapturedAt
	return out
}

func (c *Camera) closeChunk(out []Chunk) []Chunk {
	if len(c.chunk) == 0 {
		return out
	}
	out = append(out, c.chunk)
	c.chunk = nil
	return out
}

// trim lets go of ring frames too old for any event's pre-roll, and of
// windows that ended before them.
func (c *Camera) trim() {
	horizon := c.newest.Add(-c.o.PreRoll - c.o.Hold)
	i := 0
	for i < len(c.ring) && c.ring[i].CapturedAt.Before(horizon) {
		i++
	}
	if i > 0 {
		clear(c.ring[:i])
		c.ring = slices.Delete(c.ring, 0, i)
	}
	for id, w := range c.windows {
		if !w.end.IsZero() && w.end.Before(horizon) {
			delete(c.windows, id)
		}
	}
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// ChunkHeaders returns the headers of a full-tier record holding c.
func ChunkHeaders(c Chunk, codec string) []frame.Header {
	start := c.Start()
	seqs := make([]byte, 0, len(c)*6)
	times := make([]byte, 0, len(c)*5)
	for i, f := range c {
		if i > 0 {
			seqs, times = append(seqs, ','), append(times, ',')
		}
		seqs = strconv.AppendUint(seqs, f.Seq, 10)
		times = strconv.AppendInt(times, f.CapturedAt.Sub(start).Microseconds(), 10)
	}
	return []frame.Header{
		{Key: HeaderTier, Value: []byte(TierFull)},
		{Key: HeaderCodec, Value: []byte(codec)},
		{Key: HeaderSpanStart, Value: strconv.AppendInt(nil, start.UnixNano(), 10)},
		{Key: HeaderSpanEnd, Value: strconv.AppendInt(nil, c.End().UnixNano(), 10)},
		{Key: HeaderFrames, Value: strconv.AppendInt(nil, int64(len(c)), 10)},
		{Key: HeaderSeqs, Value: seqs},
		{Key: HeaderTimes, Value: times},
		{Key: frame.HeaderWidth, Value: strconv.AppendInt(nil, int64(c[0].Width), 10)},
		{Key: frame.HeaderHeight, Value: strconv.AppendInt(nil, int64(c[0].Height), 10)},
	}
}

// ReducedHeaders returns the headers of a reduced-tier record of f: f's
// own (it stays a frame any streamd reader decodes) and the tier's.
func ReducedHeaders(f *frame.Frame) []frame.Header {
	t := strconv.AppendInt(nil, f.CapturedAt.UnixNano(), 10)
	return append(f.Headers(),
		frame.Header{Key: HeaderTier, Value: []byte(TierReduced)},
		frame.Header{Key: HeaderCodec, Value: []byte(CodecJPEG)},
		frame.Header{Key: HeaderSpanStart, Value: t},
		frame.Header{Key: HeaderSpanEnd, Value: t},
		frame.Header{Key: HeaderFrames, Value: []byte("1")},
	)
}

// ChunkInfo is what a full-tier record's headers say of its frames.
type ChunkInfo struct {
	Codec         string
	Width, Height int
	Seqs          []uint64
	Times         []time.Time // capture time of each frame
}

// ErrBadChunk is wrapped by ParseChunk's errors.
var ErrBadChunk = errors.New("bad recording chunk")

// ParseChunk reads a full-tier record's headers (header returns a header's
// value, nil when absent). Records are untrusted input: every list must
// agree with the frame count.
func ParseChunk(header func(string) []byte) (ChunkInfo, error) {
	var ci ChunkInfo
	bad := func(format string, a ...any) (ChunkInfo, error) {
		return ChunkInfo{}, fmt.Errorf("%w: %s", ErrBadChunk, fmt.Sprintf(format, a...))
	}
	if t := string(header(HeaderTier)); t != TierFull {
		return bad("tier %q, want %q", t, TierFull)
	}
	ci.Codec = string(header(HeaderCodec))
	start, err := strconv.ParseInt(string(header(HeaderSpanStart)), 10, 64)
	if err != nil {
		return bad("span-start: %v", err)
	}
	n, err := strconv.Atoi(string(header(HeaderFrames)))
	if err != nil || n < 1 || n > 100_000 {
		return bad("frames %q", header(HeaderFrames))
	}
	ci.Width, _ = strconv.Atoi(string(header(frame.HeaderWidth)))
	ci.Height, _ = strconv.Atoi(string(header(frame.HeaderHeight)))
	seqs := strings.Split(string(header(HeaderSeqs)), ",")
	times := strings.Split(string(header(HeaderTimes)), ",")
	if len(seqs) != n || len(times) != n {
		return bad("%d frames but %d seqs and %d times", n, len(seqs), len(times))
	}
	ci.Seqs = make([]uint64, n)
	ci.Times = make([]time.Time, n)
	base := time.Unix(0, start).UTC()
	for i := range n {
		if ci.Seqs[i], err = strconv.ParseUint(seqs[i], 10, 64); err != nil {
			return bad("seq %d: %v", i, err)
		}
		us, err := strconv.ParseInt(times[i], 10, 64)
		if err != nil || us < 0 || us > math.MaxInt64/int64(time.Microsecond) {
			return bad("time %d: %q", i, times[i])
		}
		ci.Times[i] = base.Add(time.Duration(us) * time.Microsecond)
	}
	return ci, nil
}

// IndexEntry is one record of the index topic: a summary of what the
// recorder wrote of one camera in one tier, a full-tier chunk or a minute
// of the reduced tier. Web nodes read the small index topic instead of the
// large tiers to know spans, bytes held and where to seek.
type IndexEntry struct {
	Camera    string    `json:"camera"`
	Tier      string    `json:"tier"`
	Start     time.Time `json:"start"`     // capture time of the first frame
	End       time.Time `json:"end"`       // capture time of the last frame
	Frames    int       `json:"frames"`    // frames written
	Bytes     int64     `json:"bytes"`     // record value bytes written
	Partition int32     `json:"partition"` // of the tier's topic (full: the chunk's)
	Offset    int64     `json:"offset"`    // of the chunk, or of the first reduced frame
}

// Marshal returns the entry's JSON.
func (e IndexEntry) Marshal() []byte {
	b, _ := json.Marshal(e) // no field can fail
	return b
}

// ParseIndexEntry reads an index record's value; it is untrusted input.
func ParseIndexEntry(b []byte) (IndexEntry, error) {
	var e IndexEntry
	if len(b) > 4<<10 {
		return e, fmt.Errorf("index entry of %d bytes: too large", len(b))
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("index entry: %w", err)
	}
	if err := frame.ValidateID(e.Camera); err != nil {
		return e, fmt.Errorf("index entry: camera: %w", err)
	}
	if e.Tier != TierFull && e.Tier != TierReduced {
		return e, fmt.Errorf("index entry: tier %q", e.Tier)
	}
	if e.End.Before(e.Start) || e.Frames < 1 || e.Bytes < 0 {
		return e, fmt.Errorf("index entry: bad span %s..%s, %d frames, %d bytes", e.Start, e.End, e.Frames, e.Bytes)
	}
	return e, nil
}

// HeaderKind marks an index record that is not an IndexEntry: its value
// ("progress") says what it is. IndexEntry records carry no headers.
const (
	HeaderKind   = "kind"
	KindProgress = "progress"
)

// ProgressPeriod is how often a recorder writes each camera's
// ProgressEntry to the index topic.
const ProgressPeriod = 5 * time.Second

// ProgressEntry is a record of the index topic (header HeaderKind:
// KindProgress) by which a recorder tells web nodes how far it is with a
// camera, so that a web node in another process shows the recorder's lag
// and lost frames as the recorder's own metrics do.
type ProgressEntry struct {
	Camera string `json:"camera"`
	// Recorded is the capture time the camera is recorded up to; the
	// recorder's lag is now minus this.
	Recorded time.Time `json:"recorded"`
	// Lost counts the camera's frames never recorded: retention removed
	// them from the frames topic before the recorder read them.
	Lost uint64 `json:"lost"`
	// At is when the recorder wrote it (wall clock): a web node that
	// hears nothing newer for long knows the recorder is gone.
	At time.Time `json:"at"`
}

// Marshal returns the entry's JSON.
func (e ProgressEntry) Marshal() []byte {
	b, _ := json.Marshal(e) // no field can fail
	return b
}

// ParseProgressEntry reads a progress record's value; it is untrusted
// input.
func ParseProgressEntry(b []byte) (ProgressEntry, error) {
	var e ProgressEntry
	if len(b) > 1<<10 {
		return e, fmt.Errorf("progress entry of %d bytes: too large", len(b))
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("progress entry: %w", err)
	}
	if err := frame.ValidateID(e.Camera); err != nil {
		return e, fmt.Errorf("progress entry: camera: %w", err)
	}
	if e.Recorded.IsZero() || e.At.IsZero() {
		return e, fmt.Errorf("progress entry: missing recorded or at")
	}
	return e, nil
}

// Progress is what a recorder commits with its consumer offsets, per
// camera: how far each tier recorded. It travels as the offset commit's
// metadata (at most about 4 kB in Kafka), so it is terse.
type Progress map[string][2]int64 // camera → unix nanoseconds of fullUpTo, reducedUpTo

// EncodeProgress returns p as commit metadata.
func EncodeProgress(p Progress) string {
	b, _ := json.Marshal(p)
	return string(b)
}

// DecodeProgress reads commit metadata; anything unreadable is no progress.
func DecodeProgress(s string) Progress {
	p := Progress{}
	if s != "" {
		if err := json.Unmarshal([]byte(s), &p); err != nil || p == nil {
			return Progress{} // not what json.Unmarshal left half done
		}
	}
	return p
}
