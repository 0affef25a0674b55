// Package relay is the viewer side's intake: a consumer group on the frames
// topic that feeds the in-memory hub, from which the HTTP server streams to
// browsers. Substream frames go to a hub camera of their own ("<id>~sub").
//
// It may not read the configuration (it takes Options), serve HTTP, or
// write to Kafka; the hub is made and owned by its caller.
package relay

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/hub"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
)

// Options configures a Relay.
type Options struct {
	// Topic is the frames topic; it must be set.
	Topic string
	// Group is the consumer group, read when Kafka is dialled (the HTTP
	// port is known by then); it must be set (see DefaultGroup).
	Group func() string
	// MaxMessageBytes bounds a frame; zero: kafka.DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Cameras are camera ids made known before their first frame.
	Cameras []string
	// Logger logs the consumer; nil: slog.Default().
	Logger *slog.Logger
}

// Client names the relay's Kafka client.
const Client = "consumer"

// Relay is the viewer side: a consumer group that feeds the in-memory hub,
// from which the HTTP server streams to browsers.
//
// Every web node must see every camera, so each uses a group of its own
// (DefaultGroup) and is a static member of it, with an id stable across
// restarts: a restarted node takes its old place at once.
type Relay struct {
	o     Options
	log   *slog.Logger
	kafka *kafka.Conns
	hub   *hub.Hub

	mu       sync.Mutex
	consumer *kafka.Consumer
}

// New returns a relay into h that asks k for its client (Client); it reads
// nothing until Run.
func New(o Options, k *kafka.Conns, h *hub.Hub) *Relay {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = kafka.DefaultMaxMessageBytes
	}
	v := &Relay{o: o, log: o.Logger, kafka: k, hub: h}
	v.Register(o.Cameras)
	k.Want(Client, func(ko *kafka.Options) { ko.InstanceID = o.Group() + "-member" })
	return v
}

// Name names the relay among a process's components.
func (v *Relay) Name() string { return "consumer" }

// Start does nothing: the relay starts in Run, once Kafka is there.
func (v *Relay) Start() error { return nil }

// Run consumes the frames topic into the hub until ctx ends.
func (v *Relay) Run(ctx context.Context) error {
	client, err := v.kafka.Await(ctx, Client)
	if err != nil {
		return nil // ctx ended first
	}
	c, err := kafka.NewConsumer(client, v.o.Group(), v.o.Topic, v.o.MaxMessageBytes, v.publish,
		v.log.With("component", "kafka", "role", "consumer"))
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.consumer = c
	v.mu.Unlock()
	return c.Run(ctx)
}

// publish hands a frame to the hub; a substream frame goes to its own hub
// camera, "<id>~sub" ("~" is never in a camera id), which /api/live serves.
func (v *Relay) publish(f *frame.Frame) {
	if f.Rendition != "" {
		f.Camera += "~" + f.Rendition
	}
	v.hub.Publish(f)
}

// Ready says whether the consumer is a member of its group.
func (v *Relay) Ready() error {
	v.mu.Lock()
	c := v.consumer
	v.mu.Unlock()
	if c == nil {
		return errors.New("consumer not started")
	}
	return c.Ready()
}

// Close commits the consumer's offsets and leaves the group.
func (v *Relay) Close() error {
	v.mu.Lock()
	c := v.consumer
	v.mu.Unlock()
	if c == nil {
		return nil
	}
	if err := c.Close(); err != nil {
		return errors.New("consumer (offsets may not be committed): " + err.Error())
	}
	return nil
}

// Register makes camera ids known before their first frame.
func (v *Relay) Register(ids []string) {
	for _, id := range ids {
		v.hub.Register(id)
	}
}

// Collect adds the hub's and the consumer's counters to a metrics scrape.
func (v *Relay) Collect(s *metrics.Snapshot) {
	for _, st := range v.hub.Cameras() {
		m := s.Camera(st.ID)
		m.Consumed, m.ConsumedBytes, m.SlowViewerDropped, m.Viewers = st.Frames, st.Bytes, st.Dropped, st.Viewers
	}
	s.Consumer = &metrics.Consumer{CameraLimitDropped: v.hub.Rejected()}
	v.mu.Lock()
	c := v.consumer
	v.mu.Unlock()
	if c != nil {
		cs := c.Stats()
		s.Consumer.Consumed, s.Consumer.Invalid, s.Consumer.Errors = cs.Consumed, cs.Invalid, cs.Errors
	}
}

// DefaultGroup is the consumer group of a viewer node that names none:
// unique per host and HTTP port, because every viewer node must receive
// every camera.
func DefaultGroup(httpAddr string) string {
	host, _ := os.Hostname()
	_, port, _ := net.SplitHostPort(httpAddr)
	return "streamd-viewer-" + sanitize(host) + "-" + port
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
