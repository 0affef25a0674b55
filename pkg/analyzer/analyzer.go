// Package analyzer watches cameras the way a security system does: it takes
// the frames of the cameras assigned to this process, finds motion and
// faces with injected detectors, turns them into events with hysteresis
// (events.Tracker), and hands events and their snapshots to a sink (Kafka).
//
// It must stay live. Feed never blocks the consumer that calls it: each
// camera has a one-frame slot that the newest frame overwrites, and a
// goroutine per camera that analyzes whatever is newest when it is free, at
// most FPS times a second. Frames overwritten in the slot, or captured more
// than MaxLag ago when their turn comes, are skipped and counted: a system
// that reports motion a minute late is broken, one that skips frames of a
// still scene is not. Face detection, twenty times dearer than motion, runs
// only on frames with motion, on the moving region, at most FacesFPS times
// a second. Object detection, dearer still (about 0.1 s of a core per
// inference), runs the same way at most ObjectsFPS times a second, on a
// pool of detectors shared by every camera, each of which rests after an
// inference in proportion to it, so that together they use at most
// ObjectsCPU cores on average. A camera whose turn finds no detector
// ready skips that frame's detection (counted) instead of waiting, so
// nothing queues behind the pool. With objects on, faces are searched
// only inside the person boxes of the latest detection.
//
// The detectors are interfaces so that this package stays pure Go and is
// tested with fakes; package vision implements them with OpenCV.
package analyzer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/frame"
)

// Defaults of Options.
const (
	// DefaultFPS caps analysis per camera: motion every 100 ms finds a
	// person crossing a room in plenty of frames, at a third of the cost
	// of every frame of a 30 fps camera.
	DefaultFPS = 10
	// DefaultFacesFPS caps face detection per camera (20-50 ms each).
	DefaultFacesFPS = 5
	// DefaultObjectsFPS caps object detection per camera, Frigate's
	// detect rate: a person crossing a room is seen on tens of frames.
	DefaultObjectsFPS = 5
	// DefaultObjectsCPU is the cores object detection may use on
	// average, every camera together: a quarter of a core, about two
	// inferences a second at 320 pixels on one thread, leaving the rest
	// of a 2-core machine to capture, viewers and recording.
	DefaultObjectsCPU = 0.25
	// personFresh is how long a person box stays where faces are
	// searched after the detection that found it.
	personFresh = time.Second
	// DefaultMaxLag: a frame older than this when its turn comes is
	// skipped.
	DefaultMaxLag = time.Second
	// DefaultMaxCameras bounds the cameras one analyzer analyzes: each
	// costs a goroutine and its detectors (~0.5 MB), so a flood of
	// random record keys must not exhaust memory. Frames of further
	// cameras are counted and dropped, like the hub's.
	DefaultMaxCameras = 1000
	// tickEvery is how often a camera's events are checked for their
	// end when no frame arrives (a camera lost, or moved to another
	// analyzer).
	tickEvery = time.Second
	// activityGrace: a camera's minute of activity is published this long
	// after its end when no frame of a later minute came (the camera was
	// lost or moved): long enough for a frame in flight.
	activityGrace = 5 * time.Second
)

// ErrBadFrame is wrapped by a detector's error when the frame is at fault
// (it does not decode): the frame is skipped and counted, and the detector
// is still healthy. Any other error of an object detector is the
// detector's own, and makes Health report it until a detection succeeds.
var ErrBadFrame = errors.New("bad frame")

// Motion is what a motion detector found on one frame.
type Motion struct {
	Boxes  []events.Box // moving regions, normalized to the frame
	Area   float64      // fraction of the frame that changed
	Global bool         // most of the frame changed at once: background reset, not motion
}

// Timing is how long one frame's analysis took, by stage.
type Timing struct {
	Decode, Motion time.Duration
}

// MotionDetector finds motion in one camera's frames; it keeps that
// camera's background, so each camera has its own.
type MotionDetector interface {
	Detect(jpeg []byte) (Motion, Timing, error)
	Close() error
}

// FaceDetector finds faces in a frame, optionally only inside region.
type FaceDetector interface {
	Detect(jpeg []byte, region *events.Box) ([]events.Box, error)
	Close() error
}

// ObjectDetector finds objects in a frame, optionally only around region.
type ObjectDetector interface {
	Detect(jpeg []byte, region *events.Box) ([]events.ObjectDetection, error)
	Close() error
}

// Sink receives what the analyzer publishes. Its methods must not block
// for long (a Kafka producer's queue).
type Sink interface {
	PublishEvent(e events.Event) error
	PublishSnapshot(e events.Event, jpeg []byte) error
	// PublishActivity publishes a camera's activity of one minute.
	PublishActivity(a events.Activity) error
}

// Camera is how one camera is analyzed.
type Camera struct {
	FPS    float64        // analysis rate cap; 0: Options.FPS
	Motion MotionDetector // required
	Faces  FaceDetector   // nil: no face detection
	// Objects turns object detection on for the camera (when the
	// analyzer has ObjectDetectors).
	Objects bool
	// Zones are the camera's named regions, which object events list
	// when their object enters them.
	Zones []events.Zone
}

// Options configure an Analyzer. Zero fields take the defaults.
type Options struct {
	FPS      float64       // default DefaultFPS
	FacesFPS float64       // default DefaultFacesFPS
	MaxLag   time.Duration // default DefaultMaxLag
	Tracker  events.TrackerOptions
	// ObjectDetectors are the pool every camera's object detection
	// shares: at most this many inferences run at once. The analyzer
	// owns them and closes them when Run returns.
	ObjectDetectors []ObjectDetector
	ObjectsFPS      float64 // default DefaultObjectsFPS
	// ObjectsCPU bounds the detectors' average use, in cores (wall time
	// of inferences per second, which is CPU time when OpenCV runs one
	// thread per operation): after an inference of d a detector rests
	// d*(len(ObjectDetectors)/ObjectsCPU - 1). Default DefaultObjectsCPU.
	ObjectsCPU float64
	Objects    events.ObjectTrackerOptions
	// Camera returns how to analyze a camera, or ok false for a camera
	// that is not analyzed (its frames are counted and dropped). It is
	// called once per camera, on its first frame.
	Camera func(id string) (c Camera, ok bool, err error)
	// Annotate draws an event's boxes (with its label, for objects) on
	// the frame of its snapshot; nil: the frame as it is.
	Annotate   func(jpeg []byte, e events.Event) ([]byte, error)
	MaxCameras int          // default DefaultMaxCameras
	Sink       Sink         // required
	Logger     *slog.Logger // default: discard
	Now        func() time.Time
}

// Analyzer analyzes the cameras whose frames it is fed.
type Analyzer struct {
	o      Options
	ctx    context.Context // ends the camera workers
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	cameras map[string]*cam
	closed  bool

	pool chan pooled // the idle object detectors

	// objectsFailing is the object detectors' last own failure, nil once
	// a detection succeeds again.
	objectsFailing atomic.Pointer[failure]

	invalid      atomic.Uint64 // frames a detector could not decode
	objectErrors atomic.Uint64 // object detections that failed, not for the frame
	ignored      atomic.Uint64 // frames of cameras not analyzed
	overLimit    atomic.Uint64 // frames of cameras past MaxCameras
	analyzed     int           // cameras with a worker, under mu
}

// New returns an analyzer; call Run before feeding it.
func New(o Options) *Analyzer {
	if o.FPS <= 0 {
		o.FPS = DefaultFPS
	}
	if o.FacesFPS <= 0 {
		o.FacesFPS = DefaultFacesFPS
	}
	if o.MaxLag <= 0 {
		o.MaxLag = DefaultMaxLag
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxCameras <= 0 {
		o.MaxCameras = DefaultMaxCameras
	}
	if o.ObjectsFPS <= 0 {
		o.ObjectsFPS = DefaultObjectsFPS
	}
	if o.ObjectsCPU <= 0 {
		o.ObjectsCPU = DefaultObjectsCPU
	}
	a := &Analyzer{o: o, cameras: map[string]*cam{}, pool: make(chan pooled, len(o.ObjectDetectors))}
	for _, d := range o.ObjectDetectors {
		a.pool <- pooled{det: d}
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	return a
}

// failure is a detector's error and when it began.
type failure struct {
	err   error
	since time.Time
}

// pooled is an idle object detector and when its rest ends.
type pooled struct {
	det     ObjectDetector
	readyAt time.Time
}

// cam is one camera's slot, worker state and counters.
type cam struct {
	id      string
	cfg     Camera
	skip    bool // not analyzed
	tracker *events.Tracker
	meter   *events.ActivityMeter
	objects *events.ObjectTracker // nil: no object detection
	snaps   map[string]bool       // ids of events whose snapshot was published

	mu     sync.Mutex
	latest *frame.Frame // the newest frame not yet taken
	wake   chan struct{}

	analyzed, skipped, faces, motionEvents, faceEvents  atomic.Uint64
	objectsFound, objectEvents, objectsBusy, objectRuns atomic.Uint64
	decodeNS, motionNS, faceNS, objectNS                atomic.Int64
	lastAt                                              atomic.Int64 // capture time of the last analyzed frame, unix ns
	lastFace, lastObjects                               time.Time
	persons                                             []events.Box // person boxes of the latest object detection
	personsAt                                           time.Time    // when it ran
}

// Run blocks until ctx ends; then it stops the camera workers, which end
// every active event (publishing their ends) and free their detectors.
// Frames fed after that are dropped.
func (a *Analyzer) Run(ctx context.Context) error {
	<-ctx.Done()
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.cancel()
	a.wg.Wait()
	// Every camera worker has returned its detector.
	for range len(a.o.ObjectDetectors) {
		_ = (<-a.pool).det.Close()
	}
	return nil
}

// Feed hands a frame to its camera's worker without blocking. A frame not
// yet taken when a newer one comes is skipped and counted.
func (a *Analyzer) Feed(f *frame.Frame) {
	if f.Rendition != "" {
		return // a substream: the main stream is analyzed
	}
	c := a.camera(f.Camera)
	if c == nil {
		return
	}
	if c.skip {
		a.ignored.Add(1)
		return
	}
	c.mu.Lock()
	if c.latest != nil {
		c.skipped.Add(1)
	}
	c.latest = f
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// camera returns the camera's state, starting its worker on first use; nil
// once the analyzer is closed.
func (a *Analyzer) camera(id string) *cam {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	if c, ok := a.cameras[id]; ok {
		return c
	}
	if a.analyzed >= a.o.MaxCameras {
		a.overLimit.Add(1)
		return nil
	}
	c := &cam{id: id, wake: make(chan struct{}, 1), snaps: map[string]bool{}}
	a.cameras[id] = c
	cfg, ok, err := a.o.Camera(id)
	if err != nil {
		a.o.Logger.Error("cannot analyze camera", "camera", id, "err", err)
	}
	if !ok || err != nil || cfg.Motion == nil {
		c.skip = true
		return c
	}
	if cfg.FPS <= 0 {
		cfg.FPS = a.o.FPS
	}
	c.cfg = cfg
	c.tracker = events.NewTracker(id, a.o.Tracker)
	c.meter = events.NewActivityMeter(id)
	if cfg.Objects && len(a.o.ObjectDetectors) > 0 {
		oo := a.o.Objects
		oo.Zones = cfg.Zones
		c.objects = events.NewObjectTracker(id, oo)
		c.meter.Objects = true
	}
	a.analyzed++
	a.wg.Add(1)
	go a.work(a.ctx, c)
	return c
}

// work analyzes one camera's newest frames, at most cfg.FPS a second,
// until ctx ends.
func (a *Analyzer) work(ctx context.Context, c *cam) {
	defer a.wg.Done()
	defer func() {
		a.publishActivity(c, c.meter.Flush())
		a.publish(c, c.tracker.Flush(a.o.Now()), nil)
		if c.objects != nil {
			a.publish(c, c.objects.Flush(a.o.Now()), nil)
		}
		_ = c.cfg.Motion.Close()
		if c.cfg.Faces != nil {
			_ = c.cfg.Faces.Close()
		}
	}()
	period := time.Duration(float64(time.Second) / c.cfg.FPS)
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	var next time.Time // earliest start of the next analysis
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			a.publishActivity(c, c.meter.Tick(a.o.Now(), activityGrace))
			a.publish(c, c.tracker.Tick(a.o.Now()), nil)
			if c.objects != nil {
				a.publish(c, c.objects.Tick(a.o.Now()), nil)
			}
			continue
		case <-c.wake:
		}
		if wait := time.Until(next); wait > 0 {
			// Over the rate cap: wait for the slot; frames that
			// arrive meanwhile replace the one waiting.
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		c.mu.Lock()
		f := c.latest
		c.latest = nil
		c.mu.Unlock()
		if f == nil {
			continue
		}
		now := a.o.Now()
		if now.Sub(f.CapturedAt) > a.o.MaxLag {
			c.skipped.Add(1)
			continue
		}
		next = now.Add(period)
		a.analyze(c, f, now)
	}
}

// analyze runs the detectors on one frame and feeds the tracker.
func (a *Analyzer) analyze(c *cam, f *frame.Frame, now time.Time) {
	m, t, err := c.cfg.Motion.Detect(f.Data)
	if err != nil {
		if a.invalid.Add(1) == 1 {
			a.o.Logger.Warn("cannot analyze a frame", "camera", c.id, "seq", f.Seq, "err", err)
		}
		return
	}
	c.analyzed.Add(1)
	c.decodeNS.Add(int64(t.Decode))
	c.motionNS.Add(int64(t.Motion))
	c.lastAt.Store(f.CapturedAt.UnixNano())
	d := events.Detection{At: f.CapturedAt, Motion: m.Boxes, Area: m.Area, FacesSkipped: true,
		Frame: events.FrameRef{Partition: f.Partition, Offset: f.Offset, CapturedAt: f.CapturedAt, Seq: f.Seq}}
	if m.Global {
		d.Motion, d.Area = nil, 0
	}
	a.publishActivity(c, c.meter.Observe(f.CapturedAt, d.Area, len(d.Motion) > 0))
	if c.objects != nil {
		a.detectObjects(c, f, d.Motion, now)
	}
	// Faces where motion is; with objects on, only inside the people
	// found last (a face is on a person, and the boxes are small).
	search := d.Motion
	if c.objects != nil {
		search = nil
		if now.Sub(c.personsAt) < personFresh {
			search = c.persons
		}
	}
	if c.cfg.Faces != nil && len(search) > 0 && now.Sub(c.lastFace) >= time.Duration(float64(time.Second)/a.o.FacesFPS) {
		c.lastFace = now
		region := union(search)
		t0 := time.Now()
		faces, err := c.cfg.Faces.Detect(f.Data, &region)
		c.faceNS.Add(int64(time.Since(t0)))
		if err == nil {
			d.Faces, d.FacesSkipped = faces, false
			c.faces.Add(uint64(len(faces)))
		}
	}
	a.publish(c, c.tracker.Observe(d), f)
}

// detectObjects runs object detection on the moving region of f, at most
// ObjectsFPS a second, if a detector of the pool is free; without motion
// it only ages the camera's objects.
func (a *Analyzer) detectObjects(c *cam, f *frame.Frame, motion []events.Box, now time.Time) {
	if len(motion) == 0 || now.Sub(c.lastObjects) < time.Duration(float64(time.Second)/a.o.ObjectsFPS) {
		a.publish(c, c.objects.Tick(f.CapturedAt), f)
		return
	}
	var p pooled
	select {
	case p = <-a.pool:
	default:
		c.objectsBusy.Add(1) // every detector busy: the next frame tries again
		return
	}
	t0 := time.Now()
	if t0.Before(p.readyAt) {
		a.pool <- p // resting: over the CPU budget
		c.objectsBusy.Add(1)
		return
	}
	c.lastObjects = now
	region := union(motion)
	found, err := p.det.Detect(f.Data, &region)
	took := time.Since(t0)
	c.objectNS.Add(int64(took))
	c.objectRuns.Add(1)
	if rest := float64(len(a.o.ObjectDetectors))/a.o.ObjectsCPU - 1; rest > 0 {
		p.readyAt = t0.Add(took + time.Duration(float64(took)*rest))
	}
	a.pool <- p
	if err != nil {
		if errors.Is(err, ErrBadFrame) {
			if a.invalid.Add(1) == 1 {
				a.o.Logger.Warn("cannot detect objects on a frame", "camera", c.id, "seq", f.Seq, "err", err)
			}
			return
		}
		// The detector's own failure: motion goes on without objects,
		// and Health says so until a detection succeeds.
		a.objectErrors.Add(1)
		if a.objectsFailing.CompareAndSwap(nil, &failure{err: err, since: time.Now()}) {
			a.o.Logger.Error("object detection failing; motion detection goes on", "camera", c.id, "err", err)
		}
		return
	}
	if old := a.objectsFailing.Swap(nil); old != nil {
		a.o.Logger.Info("object detection works again", "failing_for", time.Since(old.since).Round(time.Second))
	}
	c.objectsFound.Add(uint64(len(found)))
	c.persons, c.personsAt = c.persons[:0], now
	for _, o := range found {
		if o.Label == "person" && o.Score >= c.objects.Filter("person").MinScore {
			c.persons = append(c.persons, o.Box)
		}
	}
	a.publish(c, c.objects.Observe(f.CapturedAt, found, events.FrameRef{Partition: f.Partition, Offset: f.Offset, CapturedAt: f.CapturedAt, Seq: f.Seq}), f)
}

// publish hands the tracker's changes to the sink; a new event gets a
// snapshot of the frame that started it, with its boxes drawn.
func (a *Analyzer) publish(c *cam, changes []events.Event, f *frame.Frame) {
	for _, e := range changes {
		if e.Phase == events.PhaseStart {
			switch e.Type {
			case events.TypeMotion:
				c.motionEvents.Add(1)
			case events.TypeFace:
				c.faceEvents.Add(1)
			case events.TypeObject:
				c.objectEvents.Add(1)
			}
			if f != nil {
				img := f.Data
				if a.o.Annotate != nil {
					if out, err := a.o.Annotate(f.Data, e); err == nil {
						img = out
					}
				}
				e.Snapshot = true
				if err := a.o.Sink.PublishSnapshot(e, img); err != nil {
					e.Snapshot = false
					a.o.Logger.Warn("snapshot not published", "camera", c.id, "event", e.ID, "err", err)
				} else {
					c.snaps[e.ID] = true
				}
			}
		} else {
			e.Snapshot = c.snaps[e.ID]
		}
		if e.Phase == events.PhaseEnd {
			delete(c.snaps, e.ID)
		}
		if err := a.o.Sink.PublishEvent(e); err != nil {
			a.o.Logger.Warn("event not published", "camera", c.id, "event", e.ID, "phase", e.Phase, "err", err)
		}
	}
}

// publishActivity hands a finished minute of activity to the sink.
func (a *Analyzer) publishActivity(c *cam, act *events.Activity) {
	if act == nil {
		return
	}
	if err := a.o.Sink.PublishActivity(*act); err != nil {
		a.o.Logger.Warn("activity not published", "camera", c.id, "minute", act.Minute, "err", err)
	}
}

// union is the smallest box holding every box (not empty).
func union(boxes []events.Box) events.Box {
	u := boxes[0]
	for _, b := range boxes[1:] {
		x1, y1 := min(u.X, b.X), min(u.Y, b.Y)
		x2, y2 := max(u.X+u.W, b.X+b.W), max(u.Y+u.H, b.Y+b.H)
		u = events.Box{X: x1, Y: y1, W: x2 - x1, H: y2 - y1}
	}
	return u
}

// Stats is one camera's analysis counters.
type Stats struct {
	Camera        string        `json:"camera"`
	Analyzed      uint64        `json:"analyzed"`
	Skipped       uint64        `json:"skipped"` // to stay live
	MotionEvents  uint64        `json:"motion_events"`
	FaceEvents    uint64        `json:"face_events"`
	Faces         uint64        `json:"faces"`
	Decode        time.Duration `json:"decode_ns"` // totals
	Motion        time.Duration `json:"motion_ns"`
	FaceDetection time.Duration `json:"faces_ns"`
	ObjectEvents  uint64        `json:"object_events"`
	Objects       uint64        `json:"objects"`      // detections, before tracking
	ObjectsBusy   uint64        `json:"objects_busy"` // detections skipped: every detector busy
	ObjectTime    time.Duration `json:"objects_ns"`
	ObjectRuns    uint64        `json:"object_runs"`            // inferences run
	LastCaptured  time.Time     `json:"last_captured,omitzero"` // capture time of the last analyzed frame
}

// Stats returns every analyzed camera's counters.
func (a *Analyzer) Stats() []Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Stats, 0, len(a.cameras))
	for _, c := range a.cameras {
		if c.skip {
			continue
		}
		s := Stats{Camera: c.id, Analyzed: c.analyzed.Load(), Skipped: c.skipped.Load(), MotionEvents: c.motionEvents.Load(),
			FaceEvents: c.faceEvents.Load(), Faces: c.faces.Load(), Decode: time.Duration(c.decodeNS.Load()),
			Motion: time.Duration(c.motionNS.Load()), FaceDetection: time.Duration(c.faceNS.Load()),
			ObjectEvents: c.objectEvents.Load(), Objects: c.objectsFound.Load(), ObjectsBusy: c.objectsBusy.Load(),
			ObjectTime: time.Duration(c.objectNS.Load()), ObjectRuns: c.objectRuns.Load()}
		if ns := c.lastAt.Load(); ns != 0 {
			s.LastCaptured = time.Unix(0, ns)
		}
		out = append(out, s)
	}
	return out
}

// OverLimit counts frames dropped because their camera was past MaxCameras.
func (a *Analyzer) OverLimit() uint64 { return a.overLimit.Load() }

// Health reports whether object detection works: an error naming the
// detector's last failure while its detections fail (motion detection goes
// on meanwhile), nil when the latest detection succeeded or none failed.
func (a *Analyzer) Health() error {
	if f := a.objectsFailing.Load(); f != nil {
		return fmt.Errorf("object detection failing since %s (motion detection goes on): %w", f.since.UTC().Format(time.RFC3339), f.err)
	}
	return nil
}

// ObjectErrors counts object detections that failed for the detector's
// own reasons (not the frame's).
func (a *Analyzer) ObjectErrors() uint64 { return a.objectErrors.Load() }

// Invalid counts frames no detector could decode.
func (a *Analyzer) Invalid() uint64 { return a.invalid.Load() }
