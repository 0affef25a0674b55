// Package hub fans frames out in memory from one Kafka consumption per camera
// to any number of viewers.
//
// Each camera keeps a small ring of the newest frames. Frames are shared,
// never copied per viewer: a viewer is only a cursor into the ring. A viewer
// whose next frame arrived more than MaxDelay before the newest one jumps to
// the newest frame and the skipped frames are counted as drops, so a slow
// viewer never delays the others, never grows memory and never lets its
// latency build up. Frames that arrive together in a burst (one Kafka fetch)
// are not dropped for a viewer that keeps up. A viewer that joins gets the
// latest frame at once, then live frames.
package hub

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/lograte"
)

// Defaults of the hub's options.
const (
	DefaultRingSize   = 32
	DefaultMaxDelay   = 250 * time.Millisecond
	DefaultMaxCameras = 1000
)

// Option configures a Hub.
type Option func(*Hub)

// WithRingSize sets how many recent frames each camera keeps (default
// DefaultRingSize, at least 2). A viewer more than this many frames behind
// always skips to the newest frame.
func WithRingSize(n int) Option { return func(h *Hub) { h.ringSize = n } }

// WithMaxDelay sets how much older than the newest frame a viewer's next
// frame may be before the viewer skips to the newest (default
// DefaultMaxDelay). Ages are measured by arrival at the hub, so a burst of
// frames from one Kafka fetch counts as one moment.
func WithMaxDelay(d time.Duration) Option { return func(h *Hub) { h.maxDelay = d } }

// WithMaxCameras bounds how many cameras may be discovered from records
// (default DefaultMaxCameras); frames of further unknown cameras are dropped
// and counted, so a flood of random keys cannot exhaust memory.
func WithMaxCameras(n int) Option { return func(h *Hub) { h.maxCameras = n } }

// WithEncoder sets a function that turns each frame into its wire form
// once, when it is published while the camera has viewers; every viewer then
// gets the same bytes from Next (for MJPEG: the whole part, so that each
// viewer sends it with one write). Frames published while nobody watched
// have nil bytes. Default: none, Next always returns nil bytes.
func WithEncoder(fn func(*frame.Frame) []byte) Option { return func(h *Hub) { h.encode = fn } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(h *Hub) { h.log = l } }

// Hub holds the cameras and their viewers.
type Hub struct {
	log        *slog.Logger
	ringSize   int
	maxDelay   time.Duration
	maxCameras int
	epoch      time.Time // arrival times are monotonic nanoseconds since epoch
	encode     func(*frame.Frame) []byte

	mu      sync.RWMutex
	cameras map[string]*Camera

	rejected atomic.Uint64 // frames of cameras over maxCameras
}

// New returns an empty Hub.
func New(opts ...Option) *Hub {
	h := &Hub{
		log:        slog.New(slog.DiscardHandler),
		ringSize:   DefaultRingSize,
		maxDelay:   DefaultMaxDelay,
		maxCameras: DefaultMaxCameras,
		cameras:    make(map[string]*Camera),
		epoch:      time.Now(),
	}
	for _, o := range opts {
		o(h)
	}
	h.ringSize = max(h.ringSize, 2)
	return h
}

// Register makes a camera known before any of its frames arrives, so that
// viewers can connect to it and wait. Registering an existing id is a no-op.
func (h *Hub) Register(id string) *Camera {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.addLocked(id, true)
}

func (h *Hub) addLocked(id string, configured bool) *Camera {
	if c, ok := h.cameras[id]; ok {
		return c
	}
	if !configured && len(h.cameras) >= h.maxCameras {
		return nil
	}
	c := &Camera{
		id:         id,
		hub:        h,
		configured: configured,
		ring:       make([]slot, h.ringSize),
		notify:     make(chan struct{}),
		dropLog:    lograte.New(DropLogInterval),
	}
	h.cameras[id] = c
	if !configured {
		h.log.Info("camera discovered", "camera", id)
	}
	return c
}

// Publish hands f to every viewer of its camera, creating the camera if it
// is new. f must not be modified afterwards.
func (h *Hub) Publish(f *frame.Frame) {
	h.mu.RLock()
	c := h.cameras[f.Camera]
	h.mu.RUnlock()
	if c == nil {
		h.mu.Lock()
		c = h.addLocked(f.Camera, false)
		h.mu.Unlock()
		if c == nil {
			if h.rejected.Add(1) == 1 {
				h.log.Warn("camera limit reached, dropping frames of new cameras", "camera", f.Camera, "limit", h.maxCameras)
			}
			return
		}
	}
	c.publish(f)
}

// Camera returns the camera with the given id.
func (h *Hub) Camera(id string) (*Camera, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	c, ok := h.cameras[id]
	return c, ok
}

// Cameras returns a snapshot of every camera's statistics, sorted by id.
func (h *Hub) Cameras() []Stats {
	h.mu.RLock()
	cams := make([]*Camera, 0, len(h.cameras))
	for _, c := range h.cameras {
		cams = append(cams, c)
	}
	h.mu.RUnlock()
	out := make([]Stats, 0, len(cams))
	for _, c := range cams {
		out = append(out, c.Stats())
	}
	slices.SortFunc(out, func(a, b Stats) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Rejected returns how many frames were dropped because the camera limit was
// reached.
func (h *Hub) Rejected() uint64 { return h.rejected.Load() }

// Camera is one camera's ring of recent frames and its viewers.
type Camera struct {
	id         string
	hub        *Hub
	configured bool

	mu     sync.RWMutex
	ring   []slot
	head   uint64        // frames published so far; the newest is ring[(head-1)%len]
	notify chan struct{} // closed and replaced on every publish

	viewers atomic.Int64
	frames  atomic.Uint64
	bytes   atomic.Uint64
	dropped atomic.Uint64 // frames skipped by slow viewers, summed over viewers

	dropLog    *lograte.Limiter
	dropLogged atomic.Uint64 // dropped as of the last log line

	// partitions the camera's frames came from: usually one, but each
	// producer's partitioner decides (kcat, kafka-python and sarama hash
	// keys differently), and replay must read them all. Guarded by mu;
	// a new partition is rare, so checking costs a read of a small slice.
	partitions []int32
}

// DropLogInterval is how often at most a camera logs that viewers are too slow.
const DropLogInterval = 10 * time.Second

// noteDrops logs, rate-limited per camera, that slow viewers skip frames.
func (c *Camera) noteDrops() {
	if ok, _ := c.dropLog.Allow(); !ok {
		return
	}
	total := c.dropped.Load()
	prev := c.dropLogged.Swap(total)
	c.hub.log.Warn("viewers too slow, skipping frames", "camera", c.id, "skipped", total-prev, "in_the_last", DropLogInterval, "viewers", c.viewers.Load())
}

// slot is a ring entry: a frame, its wire form and when it arrived.
type slot struct {
	f    *frame.Frame
	wire []byte        // from the hub's encoder, nil without one
	at   time.Duration // since the hub's epoch (monotonic)
}

// ID returns the camera id.
func (c *Camera) ID() string { return c.id }

func (c *Camera) publish(f *frame.Frame) {
	// Encode only while someone watches: a camera without viewers costs
	// nothing beyond its consumption. (A viewer that joins then gets the
	// latest frame without wire form; callers must handle nil bytes.)
	var wire []byte
	if c.hub.encode != nil && c.viewers.Load() > 0 {
		wire = c.hub.encode(f)
	}
	at := time.Since(c.hub.epoch)
	c.mu.Lock()
	if !slices.Contains(c.partitions, f.Partition) {
		c.partitions = append(c.partitions, f.Partition)
	}
	c.ring[c.head%uint64(len(c.ring))] = slot{f, wire, at}
	c.head++
	ch := c.notify
	c.notify = make(chan struct{})
	c.mu.Unlock()
	close(ch)
	c.frames.Add(1)
	c.bytes.Add(uint64(len(f.Data)))
}

// Latest returns the newest frame, or nil if none has arrived.
func (c *Camera) Latest() *frame.Frame {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.head == 0 {
		return nil
	}
	return c.ring[(c.head-1)%uint64(len(c.ring))].f
}

// Subscribe adds a viewer. Its first frame is the newest one at the time of
// the call (if any), then every frame after it. Close it when done.
func (c *Camera) Subscribe() *Viewer {
	c.viewers.Add(1)
	c.mu.RLock()
	next := c.head
	if next > 0 {
		next--
	}
	c.mu.RUnlock()
	return &Viewer{c: c, next: next}
}

// SubscribeAfter adds a viewer whose first frame is the one right after the
// frame with seq captured at capturedAt, if that frame is still in the
// ring: a replay that reached the live edge continues here with no gap and
// no duplicate. The viewer catches up first: it does not skip for MaxDelay
// until it has reached the newest frame (only a ring overrun makes it
// skip), so the frames between the replay's last one and now come at once,
// then live ones. ok is false (and no viewer added) when the frame is not
// in the ring.
func (c *Camera) SubscribeAfter(seq uint64, capturedAt time.Time) (v *Viewer, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := uint64(len(c.ring))
	for pos := c.head; pos > 0 && c.head-pos < n; pos-- {
		f := c.ring[(pos-1)%n].f
		if f.Seq == seq && f.CapturedAt.Equal(capturedAt) {
			c.viewers.Add(1)
			return &Viewer{c: c, next: pos, catchUp: true}, true
		}
	}
	return nil, false
}

// Partitions returns the Kafka partitions the camera's frames came from.
func (c *Camera) Partitions() []int32 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.partitions)
}

// Stats is a snapshot of a camera's state.
type Stats struct {
	ID          string    `json:"id"`
	Configured  bool      `json:"configured"` // named in the config, not only discovered
	Viewers     int64     `json:"viewers"`
	Frames      uint64    `json:"frames"`  // frames received from Kafka
	Bytes       uint64    `json:"bytes"`   // bytes received from Kafka
	Dropped     uint64    `json:"dropped"` // frames skipped by slow viewers
	FPS         float64   `json:"fps"`     // over the recent frames in the ring
	LatencyMS   float64   `json:"latency_ms"`
	LastSeq     uint64    `json:"last_seq"`
	LastFrameAt time.Time `json:"last_frame_at,omitzero"` // capture time of the newest frame
	Width       int       `json:"width"`
	Height      int       `json:"height"`
	ContentType string    `json:"content_type,omitempty"`
	Live        bool      `json:"live"`      // a frame arrived in the last StaleAfter
	NoSignal    bool      `json:"no_signal"` // the newest frame says the source is lost
}

// StaleAfter is how long after its last frame a camera stops counting as live.
const StaleAfter = 3 * time.Second

// Stats returns a snapshot of the camera's counters and recent frame rate.
func (c *Camera) Stats() Stats {
	s := Stats{
		ID:         c.id,
		Configured: c.configured,
		Viewers:    c.viewers.Load(),
		Frames:     c.frames.Load(),
		Bytes:      c.bytes.Load(),
		Dropped:    c.dropped.Load(),
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.head == 0 {
		return s
	}
	n := uint64(len(c.ring))
	newest := c.ring[(c.head-1)%n].f
	s.LastSeq = newest.Seq
	s.LastFrameAt = newest.CapturedAt
	s.Width, s.Height, s.ContentType = newest.Width, newest.Height, newest.ContentType
	s.NoSignal = newest.NoSignal
	if !newest.ReceivedAt.IsZero() {
		s.LatencyMS = float64(newest.ReceivedAt.Sub(newest.CapturedAt).Microseconds()) / 1000
	}
	now := time.Now()
	s.Live = now.Sub(newest.ReceivedAt) < StaleAfter
	if !s.Live {
		return s
	}
	// Frame rate over the frames of the last two seconds still in the ring.
	count := min(c.head, n)
	oldest := newest
	frames := 0
	for i := uint64(1); i < count; i++ {
		f := c.ring[(c.head-1-i)%n].f
		if now.Sub(f.ReceivedAt) > 2*time.Second {
			break
		}
		oldest = f
		frames++
	}
	if span := newest.ReceivedAt.Sub(oldest.ReceivedAt); frames > 0 && span > 0 {
		s.FPS = float64(frames) / span.Seconds()
	}
	return s
}

// ErrClosed is returned by Viewer.Next after Close.
var ErrClosed = errors.New("viewer closed")

// Viewer is one consumer of a camera's frames. It is not safe for concurrent
// use; each viewer belongs to one goroutine (usually an HTTP handler).
type Viewer struct {
	c       *Camera
	next    uint64 // sequence (ring position) of the next frame to deliver
	dropped uint64
	closed  bool
	catchUp bool // positioned behind the newest on purpose: no MaxDelay skip until it reaches it
}

// Next returns the next frame for this viewer and its wire form (nil
// without an encoder), waiting for one if needed. If the viewer's next frame
// arrived more than MaxDelay before the newest, or was already overwritten
// in the ring, it skips to the newest frame and counts the skipped ones. It
// returns ctx.Err() when ctx ends. The bytes are shared: do not modify them.
func (v *Viewer) Next(ctx context.Context) (*frame.Frame, []byte, error) {
	if v.closed {
		return nil, nil, ErrClosed
	}
	c := v.c
	n := uint64(len(c.ring))
	for {
		c.mu.RLock()
		head := c.head
		if v.next < head {
			newest := c.ring[(head-1)%n].at
			if v.next == head-1 {
				v.catchUp = false
			}
			if head-v.next > n || !v.catchUp && newest-c.ring[v.next%n].at > c.hub.maxDelay {
				skipped := head - 1 - v.next
				v.next = head - 1
				v.dropped += skipped
				c.dropped.Add(skipped)
				c.noteDrops()
			}
			sl := c.ring[v.next%n]
			v.next++
			c.mu.RUnlock()
			return sl.f, sl.wire, nil
		}
		wait := c.notify
		c.mu.RUnlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// Dropped returns how many frames this viewer skipped because it was slow.
func (v *Viewer) Dropped() uint64 { return v.dropped }

// Close removes the viewer from its camera. It is idempotent.
func (v *Viewer) Close() {
	if v.closed {
		return
	}
	v.closed = true
	v.c.viewers.Add(-1)
}
