package analysis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/streamd/streamd/pkg/analyzer"
	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
)

// The analyze part's Kafka clients: one for its consumer group, one to
// publish events (a fetch parked on a shared connection would delay them).
const (
	analyzeInClient  = "analyzer"
	analyzeOutClient = "analyzer-out"
)

// analyze is the security-camera analysis: a consumer group shared by
// every analyzer process feeds the analyzer, which publishes events and
// snapshots. Unlike viewer nodes, analyzers are dynamic members of one
// group with a short session: when one dies, its partitions (and so its
// cameras) move to the survivors within analyzer.session_timeout plus a
// rebalance.
type analyze struct {
	cfg   *config.Config
	log   *slog.Logger
	kafka *kafka.Conns
	an    *analyzer.Analyzer
	det   detectors

	mu       sync.Mutex
	consumer *kafka.Consumer
	producer *kafka.Producer
}

func newAnalyze(cfg *config.Config, log *slog.Logger, k *kafka.Conns) (*analyze, error) {
	detectors, err := newDetectors(cfg)
	if err != nil {
		return nil, err
	}
	a := &analyze{cfg: cfg, log: log.With("component", "analyzer"), kafka: k, det: detectors}
	k.Want(analyzeInClient, func(o *kafka.Options) { o.SessionTimeout = cfg.Analyzer.SessionTimeout })
	k.Want(analyzeOutClient, nil)
	eventTopics(cfg, k)
	ac := cfg.Analyzer
	a.an = analyzer.New(analyzer.Options{
		FPS:      ac.FPS,
		FacesFPS: ac.Faces.FPS,
		MaxLag:   ac.MaxLag,
		Tracker:  events.TrackerOptions{MinFrames: ac.MinFrames, Gap: ac.Gap, FaceGap: ac.Faces.Gap},
		Camera:   detectors.camera,
		Annotate: detectors.annotate,
		Sink:     a,
		Logger:   a.log,
	})
	return a, nil
}

func (a *analyze) Name() string { return "analyzer" }
func (a *analyze) Start() error { return nil }

func (a *analyze) Run(ctx context.Context) error {
	in, err := a.kafka.Await(ctx, analyzeInClient)
	if err != nil {
		return nil
	}
	out, err := a.kafka.Await(ctx, analyzeOutClient)
	if err != nil {
		return nil
	}
	p, err := kafka.NewProducer(out, a.cfg.Analyzer.EventsTopic, a.cfg.Kafka.MaxMessageBytes, 256, a.log.With("role", "events-producer"))
	if err != nil {
		return err
	}
	c, err := kafka.NewConsumer(in, a.cfg.Analyzer.Group, a.cfg.Kafka.Topic, a.cfg.Kafka.MaxMessageBytes, a.an.Feed, a.log.With("role", "consumer"))
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
func (a *analyze) Reload(next *config.Config) {
	a.det.reload(next.Cameras)
	if len(a.an.Stats()) > 0 {
		a.log.Warn("reload: cameras already analyzed keep their motion settings and masks until a restart")
	}
}

// PublishEvent sends an event to the events topic, keyed by camera.
func (a *analyze) PublishEvent(e events.Event) error {
	data, err := events.Marshal(e)
	if err != nil {
		return err
	}
	return a.out().PublishRecord(a.cfg.Analyzer.EventsTopic, e.Camera, data, e.Updated, nil)
}

// PublishSnapshot sends an event's snapshot, keyed by event id.
func (a *analyze) PublishSnapshot(e events.Event, jpeg []byte) error {
	return a.out().PublishRecord(a.cfg.Analyzer.SnapshotsTopic, e.ID, jpeg, e.Frame.CapturedAt,
		[]frame.Header{{Key: frame.HeaderContentType, Value: []byte(frame.TypeJPEG)}, {Key: "camera", Value: []byte(e.Camera)}})
}

func (a *analyze) out() *kafka.Producer {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.producer
}

func (a *analyze) Ready() error {
	a.mu.Lock()
	c, p := a.consumer, a.producer
	a.mu.Unlock()
	if c == nil || p == nil {
		return errors.New("analyzer not started")
	}
	if err := c.Ready(); err != nil {
		return err
	}
	return p.Ready()
}

// Close leaves the group (the partitions move at once) and flushes the
// last events.
func (a *analyze) Close() error {
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

// Status lists the analyzed cameras for /api/status.
func (a *analyze) analysisStatus() any { return a.an.Stats() }

func (a *analyze) Collect(s *metrics.Snapshot) {
	now := time.Now()
	for _, st := range a.an.Stats() {
		m := s.Camera(st.Camera)
		m.Analyzed, m.AnalysisSkipped = st.Analyzed, st.Skipped
		m.DecodeSeconds, m.MotionSeconds, m.FaceSeconds = st.Decode.Seconds(), st.Motion.Seconds(), st.FaceDetection.Seconds()
		if !st.LastCaptured.IsZero() {
			m.AnalysisLag = now.Sub(st.LastCaptured).Seconds()
		}
		m.MotionEvents, m.FaceEvents, m.FaceDetections = st.MotionEvents, st.FaceEvents, st.Faces
	}
	s.Analyzer = &metrics.Analyzer{Invalid: a.an.Invalid(), CameraLimitDropped: a.an.OverLimit()}
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
