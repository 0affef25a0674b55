// Package analysis runs the analyze role: a consumer group on the frames
// topic, shared by every analyzer process, feeds package analyzer, whose
// events and snapshots it publishes to their topics; it makes each camera's
// OpenCV detectors (package vision) from per-camera settings
// (detectors_cv.go; a binary without OpenCV refuses).
//
// It may not read the configuration (it takes Options), serve HTTP, or
// decide what an event is (package analyzer and package events do).
package analysis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/streamd/streamd/pkg/analyzer"
	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
)

// Options configures an Analysis. The topics and the group must be set.
type Options struct {
	// FramesTopic is read in Group, with SessionTimeout (zero:
	// kafka.DefaultSessionTimeout).
	FramesTopic, Group string
	SessionTimeout     time.Duration
	// EventsTopic and SnapshotsTopic are where events and their
	// snapshots are published; ActivityTopic, if set, where each
	// camera's activity per minute is.
	EventsTopic, SnapshotsTopic, ActivityTopic string
	// MaxMessageBytes bounds a record; zero: kafka.DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Analyzer tunes the analyzer; its Camera, Annotate, Sink and Logger
	// are set by New.
	Analyzer analyzer.Options
	// Motion is every camera's motion detection, unless its Camera says
	// otherwise; zero fields take package vision's defaults.
	Motion Motion
	// Faces turns face detection on, with the cascade file FaceCascade
	// ("": package vision's default).
	Faces       bool
	FaceCascade string
	// Objects turns object detection on, with the model ObjectModel at
	// input size ObjectSize (0: package vision's defaults) on
	// ObjectWorkers detectors (0: 1) shared by the cameras. With
	// ObjectModelOptional a missing model turns it off with a warning
	// instead of failing: detection is on by default where the model is
	// installed.
	Objects             bool
	ObjectModel         string
	ObjectModelOptional bool
	ObjectSize          int
	ObjectWorkers       int
	// Cameras are the cameras the configuration names; others are
	// analyzed with Motion.
	Cameras []Camera
	// Logger logs the analysis; nil: slog.Default().
	Logger *slog.Logger
}

// Motion is a motion detector's settings; zero fields: the defaults.
type Motion struct {
	Threshold      int
	MinArea        float64
	GlobalFraction float64
}

// Camera is one camera's analysis settings.
type Camera struct {
	ID string
	// Off means the camera is not analyzed.
	Off bool
	// NoObjects means no object detection on the camera.
	NoObjects bool
	// Threshold and MinArea override Motion's when not zero.
	Threshold int
	MinArea   float64
	// FPS caps the camera's analysis rate; zero: Analyzer.FPS.
	FPS float64
	// Masks are polygons of [x, y] points in 0..1 coordinates where
	// changes are ignored.
	Masks [][][]float64
	// Zones are the camera's named regions for object events.
	Zones []events.Zone
}

// SettingError is a setting whose value turns out wrong only when the
// analysis is built (a face cascade or an object model that does not
// load): the configuration's fault, not the machine's, so that the
// process exits as it does for a bad configuration.
type SettingError struct {
	Key string // the configuration key, such as "analyzer.objects.model"
	Err error
}

// Error names the key, as the configuration's errors do.
func (e *SettingError) Error() string { return fmt.Sprintf("%q: %v", e.Key, e.Err) }

// Unwrap returns the cause.
func (e *SettingError) Unwrap() error { return e.Err }

// The analysis consumer's buffer per partition: a few frames, and fetches
// of 1 MiB at first (larger frames still come through).
const (
	consumerBuffered = 4
	consumerFetch    = 1 << 20
)

// The analysis' Kafka clients: one for its consumer group, one to
// publish events (a fetch parked on a shared connection would delay them).
const (
	InClient  = "analyzer"
	OutClient = "analyzer-out"
)

// Analysis is the security-camera analysis: a consumer group shared by
// every analyzer process feeds the analyzer, which publishes events and
// snapshots. Unlike viewer nodes, analyzers are dynamic members of one
// group with a short session: when one dies, its partitions (and so its
// cameras) move to the survivors within analyzer.session_timeout plus a
// rebalance.
type Analysis struct {
	o     Options
	log   *slog.Logger
	kafka *kafka.Conns
	an    *analyzer.Analyzer
	det   detectors

	mu       sync.Mutex
	consumer *kafka.Consumer
	producer *kafka.Producer
}

// New returns an analysis that asks k for its clients (InClient,
// OutClient); it reads nothing until Run. An error means a detector cannot
// be made (a face cascade that does not load, a binary without OpenCV).
func New(o Options, k *kafka.Conns) (*Analysis, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = kafka.DefaultMaxMessageBytes
	}
	detectors, err := newDetectors(o)
	if err != nil {
		return nil, err
	}
	a := &Analysis{o: o, log: o.Logger.With("component", "analyzer"), kafka: k, det: detectors}
	// The analyzer takes the newest frame of a camera and skips the rest:
	// a deep buffer per partition would only hold stale frames (and tens
	// of megabytes of them).
	k.Want(InClient, func(ko *kafka.Options) {
		ko.SessionTimeout, ko.Buffered, ko.FetchDefault = o.SessionTimeout, consumerBuffered, consumerFetch
	})
	k.Want(OutClient, nil)
	ao := o.Analyzer
	ao.Camera, ao.Annotate, ao.Sink, ao.Logger = detectors.camera, detectors.annotate, a, a.log
	ao.ObjectDetectors = detectors.objects
	a.an = analyzer.New(ao)
	return a, nil
}

// Objects reports whether the analysis detects objects: object detection
// is on and its model loaded.
func (a *Analysis) Objects() bool { return len(a.det.objects) > 0 }

// Name names the analysis among a process's components.
func (a *Analysis) Name() string { return "analyzer" }

// Start does nothing: the analysis starts in Run, once Kafka is there.
func (a *Analysis) Start() error { return nil }

// Run consumes the frames topic into the analyzer until ctx ends and every
// camera's active event has been ended.

func (a *Analysis) Run(ctx context.Context) error {
	in, err := a.kafka.Await(ctx, InClient)
	if err != nil {
		return nil
	}
	out, err := a.kafka.Await(ctx, OutClient)
	if err != nil {
		return nil
	}
	p, err := kafka.NewProducer(out, a.o.EventsTopic, a.o.MaxMessageBytes, 256, a.log.With("role", "events-producer"))
	if err != nil {
		return err
	}
	c, err := kafka.NewConsumer(in, a.o.Group, a.o.FramesTopic, a.o.MaxMessageBytes, a.an.Feed, a.log.With("role", "consumer"))
	if err != nil {
		_ = p.Close()
		return err
	}
	a.mu.Lock()
	a.producer, a.consumer = p, c
	a.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = c.Run(ctx) }()
	// Run returns once ctx ends and every camera's active event has
	// been ended (published through the producer, still open).
	err = a.an.Run(ctx)
	wg.Wait()
	return err
}

// Reload makes new cameras' settings known; cameras already analyzed keep
// their detectors until a restart, and the log says so.
func (a *Analysis) Reload(cams []Camera) {
	a.det.reload(cams)
	if len(a.an.Stats()) > 0 {
		a.log.Warn("reload: cameras already analyzed keep their motion settings and masks until a restart")
	}
}

// PublishEvent sends an event to the events topic, keyed by camera.
func (a *Analysis) PublishEvent(e events.Event) error {
	data, err := events.Marshal(e)
	if err != nil {
		return err
	}
	return a.out().PublishRecord(a.o.EventsTopic, e.Camera, data, e.Updated, nil)
}

// PublishActivity sends a camera's minute of activity, keyed by camera,
// stamped with the minute's start; nothing without an ActivityTopic.
func (a *Analysis) PublishActivity(act events.Activity) error {
	if a.o.ActivityTopic == "" {
		return nil
	}
	data, err := events.MarshalActivity(act)
	if err != nil {
		return err
	}
	return a.out().PublishRecord(a.o.ActivityTopic, act.Camera, data, act.Minute, nil)
}

// PublishSnapshot sends an event's snapshot, keyed by event id.
func (a *Analysis) PublishSnapshot(e events.Event, jpeg []byte) error {
	return a.out().PublishRecord(a.o.SnapshotsTopic, e.ID, jpeg, e.Frame.CapturedAt,
		[]frame.Header{{Key: frame.HeaderContentType, Value: []byte(frame.TypeJPEG)}, {Key: "camera", Value: []byte(e.Camera)}})
}

func (a *Analysis) out() *kafka.Producer {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.producer
}

// Ready says whether the consumer and the events producer work.
func (a *Analysis) Ready() error {
	a.mu.Lock()
	c, p := a.consumer, a.producer
	a.mu.Unlock()
	if c == nil || p == nil {
		return errors.New("analyzer not started")
	}
	if err := c.Ready(); err != nil {
		return err
	}
	if err := p.Ready(); err != nil {
		return err
	}
	return a.an.Health()
}

// Close leaves the group (the partitions move at once) and flushes the
// last events.
func (a *Analysis) Close() error {
	a.mu.Lock()
	c, p := a.consumer, a.producer
	a.mu.Unlock()
	var errs []error
	if c != nil {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("analyzer consumer: %w", err))
		}
	}
	if p != nil {
		if err := p.Close(); err != nil {
			errs = append(errs, fmt.Errorf("events producer: %w", err))
		}
	}
	return errors.Join(errs...)
}

// AnalysisStatus lists the analyzed cameras for /api/status.
func (a *Analysis) AnalysisStatus() any { return a.an.Stats() }

// Collect adds the analysis' counters to a metrics scrape.
func (a *Analysis) Collect(s *metrics.Snapshot) {
	now := time.Now()
	for _, st := range a.an.Stats() {
		m := s.Camera(st.Camera)
		m.Analyzed, m.AnalysisSkipped = st.Analyzed, st.Skipped
		m.DecodeSeconds, m.MotionSeconds, m.FaceSeconds = st.Decode.Seconds(), st.Motion.Seconds(), st.FaceDetection.Seconds()
		if !st.LastCaptured.IsZero() {
			m.AnalysisLag = now.Sub(st.LastCaptured).Seconds()
		}
		m.MotionEvents, m.FaceEvents, m.FaceDetections = st.MotionEvents, st.FaceEvents, st.Faces
		m.ObjectEvents, m.ObjectDetections, m.ObjectsBusy, m.ObjectSeconds = st.ObjectEvents, st.Objects, st.ObjectsBusy, st.ObjectTime.Seconds()
		m.ObjectRuns = st.ObjectRuns
	}
	s.Analyzer = &metrics.Analyzer{Invalid: a.an.Invalid(), CameraLimitDropped: a.an.OverLimit(), ObjectErrors: a.an.ObjectErrors()}
	a.mu.Lock()
	c := a.consumer
	a.mu.Unlock()
	if c != nil {
		// Records the consumer refused (not an image, truncated, too
		// large) never reach the analyzer; count them as the viewer's
		// consumer does, adding up in an all-in-one process.
		cs := c.Stats()
		if s.Consumer == nil {
			s.Consumer = &metrics.Consumer{}
		}
		s.Consumer.Invalid += cs.Invalid
		s.Consumer.Errors += cs.Errors
	}
}

// ErrNoOpenCV is New's error in a binary built without OpenCV (-tags
// nocv): there are no detectors.
var ErrNoOpenCV = errors.New("analysis needs OpenCV, and this binary was built without OpenCV (-tags nocv)")
