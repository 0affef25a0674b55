//go:build !nocv

package capture

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/streamd/streamd/pkg/capture"
	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
)

// captureClient names the capture part's Kafka client.
const captureClient = "producer"

// cameras is the producer side: a goroutine per camera reads, paces and
// encodes frames and hands them to one Kafka producer. It supervises the
// cameras: SIGHUP (Reload) starts new ones, stops removed ones and
// restarts changed ones.
type cameras struct {
	cfg   *config.Config
	log   *slog.Logger
	kafka *kafkaConns

	mu       sync.Mutex // guards what Run and Reload set
	run      context.Context
	producer *kafka.Producer
	running  []*runningCamera // in config order
	want     []config.CameraConfig
	wg       sync.WaitGroup
}

// runningCamera is a capture goroutine and how to stop it.
type runningCamera struct {
	cfg    config.CameraConfig
	cam    *capture.Camera
	cancel context.CancelFunc
	done   chan struct{}
}

func newCapture(cfg *config.Config, log *slog.Logger, k *kafkaConns) (Component, error) {
	capture.QuietOpenCV()
	k.want(captureClient, nil)
	return &cameras{cfg: cfg, log: log, kafka: k, want: cfg.Cameras}, nil
}

func (c *cameras) Name() string { return "producer" }
func (c *cameras) Start() error { return nil }

// Run waits for Kafka, starts the producer and the cameras, and stops the
// cameras when ctx ends.
func (c *cameras) Run(ctx context.Context) error {
	client, err := c.kafka.await(ctx, captureClient)
	if err != nil {
		return nil // ctx ended first
	}
	p, err := kafka.NewProducer(client, c.cfg.Kafka.Topic, c.cfg.Kafka.MaxMessageBytes, 0, c.log.With("component", "kafka", "role", "producer"))
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.producer, c.run = p, ctx
	for _, cc := range c.want {
		c.startLocked(cc)
	}
	c.mu.Unlock()
	<-ctx.Done()
	c.wg.Wait()
	return nil
}

// startLocked starts capturing one camera; c.mu must be held and the
// producer running.
func (c *cameras) startLocked(cc config.CameraConfig) {
	ctx, cancel := context.WithCancel(c.run)
	rc := &runningCamera{cfg: cc, cancel: cancel, done: make(chan struct{}),
		cam: capture.NewCamera(captureOptions(cc), c.producer, c.log.With("component", "capture"))}
	c.running = append(c.running, rc)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(rc.done)
		rc.cam.Run(ctx)
	}()
}

func captureOptions(cc config.CameraConfig) capture.Options {
	return capture.Options{ID: cc.ID, Source: cc.Source, Loop: cc.Loop, FPS: cc.FPS, Width: cc.Width, Height: cc.Height, Quality: cc.Quality,
		Substream: capture.Substream{Width: cc.Substream.Width, Quality: cc.Substream.Quality, FPS: cc.Substream.FPS}}
}

// Reload applies a new configuration's cameras: new cameras start, removed
// ones stop, changed ones restart.
func (c *cameras) Reload(next *config.Config) {
	c.mu.Lock()
	c.want = next.Cameras
	if c.producer == nil || c.run.Err() != nil {
		c.mu.Unlock()
		return // Run starts c.want once Kafka is there, or is stopping
	}
	want := map[string]config.CameraConfig{}
	for _, cc := range next.Cameras {
		want[cc.ID] = cc
	}
	var kept, stopped []*runningCamera
	for _, rc := range c.running {
		if cc, ok := want[rc.cfg.ID]; ok && captureOptions(cc) == captureOptions(rc.cfg) {
			kept = append(kept, rc)
			continue
		}
		rc.cancel()
		stopped = append(stopped, rc)
	}
	c.running = kept
	c.mu.Unlock()
	// Wait outside the lock: a camera blocked opening a dead network
	// source may take long to stop, and /readyz, /metrics and
	// /api/status read the cameras meanwhile.
	for _, rc := range stopped {
		<-rc.done
		c.log.Info("camera stopped by reload", "camera", rc.cfg.ID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run.Err() != nil {
		return
	}
	running := map[string]bool{}
	for _, rc := range c.running {
		running[rc.cfg.ID] = true
	}
	for _, cc := range next.Cameras {
		if !running[cc.ID] {
			c.startLocked(cc)
			c.log.Info("camera started by reload", "camera", cc.ID)
		}
	}
}

func (c *cameras) Ready() error {
	c.mu.Lock()
	p := c.producer
	c.mu.Unlock()
	if p == nil {
		return errors.New("producer not started")
	}
	return p.Ready()
}

// Close flushes every frame the producer accepted; Run has stopped the
// cameras already.
func (c *cameras) Close() error {
	c.mu.Lock()
	p := c.producer
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	err := p.Close()
	st := p.Stats()
	level := slog.LevelInfo
	if st.Failed > 0 {
		level = slog.LevelError // frames were lost
	}
	c.log.Log(context.Background(), level, "producer flushed", "sent", st.Sent, "failed", st.Failed, "dropped_backlog", st.Backlog, "dropped_too_large", st.TooLarge)
	return err
}

// Stats returns the cameras' counters, in config order.
func (c *cameras) Stats() []capture.Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]capture.Stats, 0, len(c.running))
	for _, rc := range c.running {
		out = append(out, rc.cam.Stats())
	}
	return out
}

// Status lists the cameras for /api/status.
func (c *cameras) Status() any { return c.Stats() }

func (c *cameras) Collect(s *metrics.Snapshot) {
	for _, st := range c.Stats() {
		m := s.Camera(st.ID)
		m.Captured, m.Published, m.PublishDropped = st.Captured, st.Published, st.Dropped
		m.EncodeSeconds = st.EncodeMS * float64(st.Captured) / 1000
	}
	s.Producer = &metrics.Producer{}
	c.mu.Lock()
	p := c.producer
	c.mu.Unlock()
	if p != nil {
		ps := p.Stats()
		*s.Producer = metrics.Producer{Sent: ps.Sent, Failed: ps.Failed, TooLarge: ps.TooLarge, Backlog: ps.Backlog}
	}
}
