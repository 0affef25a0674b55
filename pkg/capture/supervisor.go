package capture

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
)

// ProducerClient names the supervisor's Kafka client.
const ProducerClient = "producer"

// SupervisorOptions configures a Supervisor.
type SupervisorOptions struct {
	// Topic is the frames topic; it must be set.
	Topic string
	// MaxMessageBytes bounds a frame; zero: kafka.DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Cameras are the cameras to capture, in order.
	Cameras []Options
	// Logger logs the cameras and the producer; nil: slog.Default().
	Logger *slog.Logger
}

// Supervisor is the producer side: a goroutine per camera reads, paces and
// encodes frames and hands them to one Kafka producer. It supervises the
// cameras: Reload (SIGHUP) starts new ones, stops removed ones and
// restarts changed ones.
type Supervisor struct {
	o     SupervisorOptions
	log   *slog.Logger
	kafka *kafka.Conns

	mu       sync.Mutex // guards what Run and Reload set
	run      context.Context
	producer *kafka.Producer
	running  []*runningCamera // in config order
	want     []Options
	wg       sync.WaitGroup
}

// runningCamera is a capture goroutine and how to stop it.
type runningCamera struct {
	opts   Options
	cam    *Camera
	cancel context.CancelFunc
	done   chan struct{}
}

// NewSupervisor returns a supervisor that asks k for its client
// (ProducerClient); nothing is captured until Run.
func NewSupervisor(o SupervisorOptions, k *kafka.Conns) *Supervisor {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = kafka.DefaultMaxMessageBytes
	}
	QuietOpenCV()
	k.Want(ProducerClient, nil)
	return &Supervisor{o: o, log: o.Logger, kafka: k, want: o.Cameras}
}

// Name names the supervisor among a process's components.
func (c *Supervisor) Name() string { return "producer" }

// Start does nothing: the cameras start in Run, once Kafka is there.
func (c *Supervisor) Start() error { return nil }

// Run waits for Kafka, starts the producer and the cameras, and stops the
// cameras when ctx ends.
func (c *Supervisor) Run(ctx context.Context) error {
	client, err := c.kafka.Await(ctx, ProducerClient)
	if err != nil {
		return nil // ctx ended first
	}
	p, err := kafka.NewProducer(client, c.o.Topic, c.o.MaxMessageBytes, 0, c.log.With("component", "kafka", "role", "producer"))
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.producer, c.run = p, ctx
	for _, o := range c.want {
		c.startLocked(o)
	}
	c.mu.Unlock()
	<-ctx.Done()
	c.wg.Wait()
	return nil
}

// startLocked starts capturing one camera; c.mu must be held and the
// producer running.
func (c *Supervisor) startLocked(o Options) {
	ctx, cancel := context.WithCancel(c.run)
	rc := &runningCamera{opts: o, cancel: cancel, done: make(chan struct{}),
		cam: NewCamera(o, c.producer, c.log.With("component", "capture"))}
	c.running = append(c.running, rc)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(rc.done)
		rc.cam.Run(ctx)
	}()
}

// reloadDiff decides a reload: of the running cameras (by their options),
// those wanted with the same options are kept (by index into running), the
// others stopped; the wanted cameras not kept are started, in want's order.
func reloadDiff(running, want []Options) (keep, stop []int, start []Options) {
	byID := map[string]Options{}
	for _, o := range want {
		byID[o.ID] = o
	}
	kept := map[string]bool{}
	for i, o := range running {
		if w, ok := byID[o.ID]; ok && w == o {
			keep = append(keep, i)
			kept[o.ID] = true
			continue
		}
		stop = append(stop, i)
	}
	for _, o := range want {
		if !kept[o.ID] {
			start = append(start, o)
		}
	}
	return keep, stop, start
}

// Reload applies a new list of cameras: new cameras start, removed ones
// stop, changed ones restart.
func (c *Supervisor) Reload(cams []Options) {
	c.mu.Lock()
	c.want = cams
	if c.producer == nil || c.run.Err() != nil {
		c.mu.Unlock()
		return // Run starts c.want once Kafka is there, or is stopping
	}
	opts := make([]Options, len(c.running))
	for i, rc := range c.running {
		opts[i] = rc.opts
	}
	keep, stop, _ := reloadDiff(opts, cams)
	kept := make([]*runningCamera, 0, len(keep))
	for _, i := range keep {
		kept = append(kept, c.running[i])
	}
	stopped := make([]*runningCamera, 0, len(stop))
	for _, i := range stop {
		c.running[i].cancel()
		stopped = append(stopped, c.running[i])
	}
	c.running = kept
	c.mu.Unlock()
	// Wait outside the lock: a camera blocked opening a dead network
	// source may take long to stop, and /readyz, /metrics and
	// /api/status read the cameras meanwhile.
	for _, rc := range stopped {
		<-rc.done
		c.log.Info("camera stopped by reload", "camera", rc.opts.ID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run.Err() != nil {
		return
	}
	running := map[string]bool{}
	for _, rc := range c.running {
		running[rc.opts.ID] = true
	}
	for _, o := range cams {
		if !running[o.ID] {
			c.startLocked(o)
			c.log.Info("camera started by reload", "camera", o.ID)
		}
	}
}

// Ready says whether the producer runs and reaches Kafka.
func (c *Supervisor) Ready() error {
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
func (c *Supervisor) Close() error {
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
func (c *Supervisor) Stats() []Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Stats, 0, len(c.running))
	for _, rc := range c.running {
		out = append(out, rc.cam.Stats())
	}
	return out
}

// Status lists the cameras for /api/status.
func (c *Supervisor) Status() any { return c.Stats() }

// Collect adds the cameras' and the producer's counters to a metrics scrape.
func (c *Supervisor) Collect(s *metrics.Snapshot) {
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
