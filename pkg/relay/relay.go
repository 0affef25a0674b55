package relay

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/hub"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
	"github.com/streamd/streamd/pkg/web"
)

// viewClient names the view part's Kafka client.
const viewClient = "consumer"

// view is the viewer side: a consumer group that feeds the in-memory hub,
// from which the HTTP server streams to browsers.
//
// Every web node must see every camera, so each uses a group of its own
// (DefaultGroup) and is a static member of it, with an id stable across
// restarts: a restarted node takes its old place at once.
type view struct {
	cfg      *config.Config
	log      *slog.Logger
	kafka    *kafka.Conns
	httpAddr func() string
	hub      *hub.Hub

	mu       sync.Mutex
	consumer *kafka.Consumer
}

func newView(cfg *config.Config, log *slog.Logger, k *kafka.Conns, httpAddr func() string) *view {
	v := &view{cfg: cfg, log: log, kafka: k, httpAddr: httpAddr}
	v.hub = hub.New(
		hub.WithRingSize(cfg.Hub.RingSize),
		hub.WithMaxDelay(cfg.Hub.MaxDelay),
		hub.WithEncoder(web.EncodePart),
		hub.WithLogger(log.With("component", "hub")),
	)
	for _, c := range cfg.Cameras {
		v.hub.Register(c.ID)
	}
	k.Want(viewClient, func(o *kafka.Options) { o.InstanceID = v.group() + "-member" })
	return v
}

func (v *view) Name() string { return "consumer" }
func (v *view) Start() error { return nil }

// group is the consumer group: kafka.group, or one per host and HTTP port.
func (v *view) group() string {
	if v.cfg.Kafka.Group != "" {
		return v.cfg.Kafka.Group
	}
	return DefaultGroup(v.httpAddr())
}

func (v *view) Run(ctx context.Context) error {
	client, err := v.kafka.Await(ctx, viewClient)
	if err != nil {
		return nil // ctx ended first
	}
	c, err := kafka.NewConsumer(client, v.group(), v.cfg.Kafka.Topic, v.cfg.Kafka.MaxMessageBytes, v.publish,
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
func (v *view) publish(f *frame.Frame) {
	if f.Rendition != "" {
		f.Camera += "~" + f.Rendition
	}
	v.hub.Publish(f)
}

func (v *view) Ready() error {
	v.mu.Lock()
	c := v.consumer
	v.mu.Unlock()
	if c == nil {
		return errors.New("consumer not started")
	}
	return c.Ready()
}

// Close commits the consumer's offsets and leaves the group.
func (v *view) Close() error {
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

// Reload makes new camera ids known before their first frame.
func (v *view) Reload(next *config.Config) {
	for _, cc := range next.Cameras {
		v.hub.Register(cc.ID)
	}
}

func (v *view) Collect(s *metrics.Snapshot) {
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
