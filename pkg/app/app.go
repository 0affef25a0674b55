// Package app wires streamd's components together for a role and owns their
// start-up and ordered, idempotent shutdown.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/auth"
	"github.com/streamd/streamd/pkg/broker"
	"github.com/streamd/streamd/pkg/capture"
	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/hub"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
	"github.com/streamd/streamd/pkg/sdnotify"
	"github.com/streamd/streamd/pkg/web"
	"github.com/streamd/streamd/static"
)

// ShutdownTimeout bounds how long Run waits for a clean shutdown.
const ShutdownTimeout = 15 * time.Second

// NewLogger returns the process logger the config asks for.
func NewLogger(c config.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// App is one streamd process.
type App struct {
	cfg     *config.Config
	log     *slog.Logger
	version string
	metrics *metrics.Metrics

	broker *broker.Broker
	hub    *hub.Hub
	web    *web.Server
	run    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup // the Kafka start-up goroutine, cameras, consumer

	notify *sdnotify.Notifier

	mu       sync.Mutex // guards what the Kafka start-up goroutine and Reload set
	clients  []sarama.Client
	producer *kafka.Producer
	consumer *kafka.Consumer
	cameras  []*runningCamera // in config order
	kafkaErr error

	shutdownOnce sync.Once
	shutdownErr  error
}

// runningCamera is a capture goroutine and how to stop it.
type runningCamera struct {
	cfg    config.CameraConfig
	cam    *capture.Camera
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns an App for cfg; version labels its metrics. Nothing is
// started until Start. Under systemd it sends READY=1, STATUS=, WATCHDOG=1
// and STOPPING=1 notifications.
func New(cfg *config.Config, log *slog.Logger, version string) *App {
	a := &App{cfg: cfg, log: log, version: version, notify: sdnotify.FromEnv()}
	a.metrics = metrics.New(version, a.snapshot)
	return a
}

// snapshot gathers every component's counters for a metrics scrape.
func (a *App) snapshot() metrics.Snapshot {
	var s metrics.Snapshot
	byID := map[string]*metrics.Camera{}
	cam := func(id string) *metrics.Camera {
		if byID[id] == nil {
			byID[id] = &metrics.Camera{ID: id}
		}
		return byID[id]
	}
	a.mu.Lock()
	producer, consumer, cameras := a.producer, a.consumer, a.cameras
	a.mu.Unlock()
	if a.cfg.NeedsProducer() {
		for _, rc := range cameras {
			st := rc.cam.Stats()
			m := cam(st.ID)
			m.Captured, m.Published, m.PublishDropped = st.Captured, st.Published, st.Dropped
			m.EncodeSeconds = st.EncodeMS * float64(st.Captured) / 1000
		}
		s.Producer = &metrics.Producer{}
		if producer != nil {
			ps := producer.Stats()
			*s.Producer = metrics.Producer{Sent: ps.Sent, Failed: ps.Failed, TooLarge: ps.TooLarge, Backlog: ps.Backlog}
		}
	}
	if a.hub != nil {
		for _, st := range a.hub.Cameras() {
			m := cam(st.ID)
			m.Consumed, m.ConsumedBytes, m.SlowViewerDropped, m.Viewers = st.Frames, st.Bytes, st.Dropped, st.Viewers
		}
		s.Consumer = &metrics.Consumer{CameraLimitDropped: a.hub.Rejected()}
		if consumer != nil {
			cs := consumer.Stats()
			s.Consumer.Consumed, s.Consumer.Invalid, s.Consumer.Errors = cs.Consumed, cs.Invalid, cs.Errors
		}
	}
	for _, m := range byID {
		s.Cameras = append(s.Cameras, *m)
	}
	return s
}

// Start starts the embedded broker (if enabled) and the HTTP server, then
// connects to Kafka in the background, retrying until it can: /healthz
// answers at once, /readyz once Kafka is reachable and frames flow. An error
// means something could not start at all (a port in use, say); whatever was
// started is stopped again.
func (a *App) Start() error {
	a.run, a.stop = context.WithCancel(context.Background())
	cfg := a.cfg
	// Keep OpenCV's own chatter off stderr; our logs say what failed.
	setDefaultEnv("OPENCV_LOG_LEVEL", "ERROR")
	setDefaultEnv("OPENCV_VIDEOIO_PRIORITY_GSTREAMER", "0")

	brokers := cfg.Kafka.Brokers
	if cfg.Embedded.Enabled {
		b, err := broker.Start(broker.Options{
			Listen:          cfg.Embedded.Listen,
			DataDir:         cfg.Embedded.DataDir,
			SegmentBytes:    cfg.Embedded.SegmentBytes,
			RetentionCheck:  cfg.Embedded.RetentionCheck,
			MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
			Logger:          a.log.With("component", "broker"),
		})
		if err != nil {
			_ = a.Shutdown(context.Background())
			return err
		}
		a.broker = b
		brokers = []string{b.Addr()}
	}

	checks := []web.Check{{Name: "kafka", Fn: a.kafkaReady}}
	if cfg.NeedsConsumer() {
		a.hub = hub.New(
			hub.WithRingSize(cfg.Hub.RingSize),
			hub.WithMaxDelay(cfg.Hub.MaxDelay),
			hub.WithEncoder(web.EncodePart),
			hub.WithLogger(a.log.With("component", "hub")),
		)
		for _, c := range cfg.Cameras {
			a.hub.Register(c.ID)
		}
		checks = append(checks, web.Check{Name: "consumer", Fn: a.consumerReady})
	}
	if cfg.NeedsProducer() {
		checks = append(checks, web.Check{Name: "producer", Fn: a.producerReady})
	}
	authn, err := newAuthenticator(cfg.Auth)
	if err != nil {
		_ = a.Shutdown(context.Background())
		return err
	}
	w, err := web.Start(web.Options{
		Auth:              authn,
		Addr:              cfg.HTTP.Listen,
		Hub:               a.hub,
		Static:            static.FS,
		Checks:            checks,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		UnsentLimit:       cfg.HTTP.UnsentLimit,
		Pprof:             cfg.HTTP.Pprof,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxViewers:        cfg.HTTP.MaxViewers,
		MaxViewersPerIP:   cfg.HTTP.MaxViewersPerIP,
		TrustedProxies:    parseCIDRs(cfg.HTTP.TrustedProxies),
		Logger:            a.log.With("component", "http"),
		Metrics:           a.metrics.Handler(),
		Latency:           a.metrics.LatencyObserver,
	})
	if err != nil {
		_ = a.Shutdown(context.Background())
		return err
	}
	a.web = w
	if !authn.Enabled() && !isLoopback(w.Addr()) {
		a.log.Warn("HTTP IS OPEN TO THE NETWORK WITHOUT AUTHENTICATION: anyone who can reach "+w.Addr()+" can watch every camera; configure auth.tokens or auth.users, or listen on 127.0.0.1",
			"http.listen", cfg.HTTP.Listen)
	}
	a.log.Info("streamd started", "role", cfg.Role, "http", w.Addr(), "brokers", brokers, "topic", cfg.Kafka.Topic)
	if a.hub != nil {
		fmt.Fprintf(os.Stdout, "\n  streamd is running: open %s in a browser\n\n", BrowserURL(w.Addr()))
	}
	// Serving: systemd may consider the service started. Kafka may still
	// be unreachable; STATUS and /readyz say so.
	if err := a.notify.Ready(); err != nil {
		a.log.Warn("cannot notify systemd", "err", err)
	}
	_ = a.notify.Status("connecting to kafka")
	if iv := sdnotify.WatchdogInterval(); iv > 0 {
		a.log.Info("systemd watchdog enabled", "interval", iv)
		go a.notify.Watchdog(a.run, iv, a.alive)
	}

	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.startKafka(brokers); err != nil && a.run.Err() == nil {
			a.log.Error("kafka start-up failed", "err", err)
		}
	}()
	return nil
}

// alive reports whether the HTTP server still answers, for the watchdog.
func (a *App) alive() bool {
	host, port, err := net.SplitHostPort(a.web.Addr())
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		a.log.Warn("watchdog: http server does not answer", "err", err)
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func setDefaultEnv(k, v string) {
	if _, ok := os.LookupEnv(k); !ok {
		_ = os.Setenv(k, v)
	}
}

// startKafka connects, makes sure the topic exists, then starts the
// producer with its cameras and the consumer, as the role needs.
//
// The producer and the consumer get a client (and so a connection) each:
// Kafka answers the requests of one connection in order, so on a shared
// one every produce request would wait behind a parked fetch (up to
// kafka.fetch_max_wait), adding tens of milliseconds to every frame.
func (a *App) startKafka(brokers []string) error {
	cfg := a.cfg
	log := a.log.With("component", "kafka")
	var tlsCfg *tls.Config
	if t := cfg.Kafka.TLS; t.Enabled {
		var err error
		if tlsCfg, err = kafka.TLSConfig(t.CAFile, t.CertFile, t.KeyFile, t.ServerName, t.InsecureSkipVerify); err != nil {
			return err
		}
	}
	dial := func(instanceID string) (sarama.Client, error) {
		client, err := kafka.Dial(a.run, kafka.Options{
			TLS:             tlsCfg,
			SASL:            kafka.SASL{Mechanism: cfg.Kafka.SASL.Mechanism, Username: cfg.Kafka.SASL.Username, Password: cfg.Kafka.SASL.Password},
			Brokers:         brokers,
			ClientID:        cfg.Kafka.ClientID,
			Version:         cfg.Kafka.Version,
			MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
			FetchMaxWait:    cfg.Kafka.FetchMaxWait,
			Compression:     cfg.Kafka.Compression,
			DialTimeout:     cfg.Kafka.DialTimeout,
			InstanceID:      instanceID,
		}, log, a.setKafkaErr)
		if err != nil {
			return nil, err
		}
		a.mu.Lock()
		a.clients = append(a.clients, client)
		a.mu.Unlock()
		return client, nil
	}
	var producerClient, consumerClient sarama.Client
	var err error
	if cfg.NeedsProducer() {
		if producerClient, err = dial(""); err != nil {
			return err
		}
	}
	if cfg.NeedsConsumer() {
		// A viewer node is a static member of its group, with an id stable
		// across restarts: a restarted node takes its old place at once.
		if consumerClient, err = dial(DefaultGroup(a.web.Addr()) + "-member"); err != nil {
			return err
		}
	}
	client := producerClient
	if client == nil {
		client = consumerClient
	}
	// Retry topic creation too: a broker that just came up may not be
	// ready to create topics.
	for backoff := 250 * time.Millisecond; ; backoff = min(backoff*2, 10*time.Second) {
		err = kafka.EnsureTopic(client, cfg.Kafka.Topic, kafka.TopicOptions{
			Partitions:        cfg.Kafka.Partitions,
			ReplicationFactor: cfg.Kafka.ReplicationFactor,
			Retention:         cfg.Kafka.Retention,
			RetentionBytes:    cfg.Kafka.RetentionBytes,
			MaxMessageBytes:   cfg.Kafka.MaxMessageBytes,
		}, log)
		if err == nil {
			break
		}
		a.setKafkaErr(err)
		log.Warn("cannot ensure topic, retrying", "err", err, "retry_in", backoff)
		select {
		case <-a.run.Done():
			return a.run.Err()
		case <-time.After(backoff):
		}
	}
	a.setKafkaErr(nil)

	if cfg.NeedsConsumer() {
		group := cfg.Kafka.Group
		if group == "" {
			group = DefaultGroup(a.web.Addr())
		}
		c, err := kafka.NewConsumer(consumerClient, group, cfg.Kafka.Topic, cfg.Kafka.MaxMessageBytes, a.hub.Publish, log.With("role", "consumer"))
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.consumer = c
		a.mu.Unlock()
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			_ = c.Run(a.run)
		}()
	}
	if cfg.NeedsProducer() {
		p, err := kafka.NewProducer(producerClient, cfg.Kafka.Topic, cfg.Kafka.MaxMessageBytes, 0, log.With("role", "producer"))
		if err != nil {
			return err
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		a.producer = p
		if a.run.Err() != nil {
			return a.run.Err()
		}
		for _, cc := range a.cfg.Cameras {
			a.startCameraLocked(cc)
		}
	}
	_ = a.notify.Status("serving: role " + cfg.Role)
	return nil
}

// startCameraLocked starts capturing one camera; a.mu must be held and the
// producer running.
func (a *App) startCameraLocked(cc config.CameraConfig) {
	ctx, cancel := context.WithCancel(a.run)
	rc := &runningCamera{cfg: cc, cancel: cancel, done: make(chan struct{}),
		cam: capture.NewCamera(cc, a.producer, a.log.With("component", "capture"))}
	a.cameras = append(a.cameras, rc)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer close(rc.done)
		rc.cam.Run(ctx)
	}()
}

// Reload applies a new configuration's cameras (SIGHUP): new cameras start,
// removed ones stop, changed ones restart; a consumer makes new ids known.
// Every other key needs a restart, and a change of one is reported in the
// returned list (the running values stay).
func (a *App) Reload(next *config.Config) (needRestart []string) {
	_ = a.notify.Reloading()
	defer func() { _ = a.notify.Ready() }()
	needRestart = changedSections(a.cfg, next)
	a.mu.Lock()
	defer a.mu.Unlock()
	want := map[string]config.CameraConfig{}
	for _, cc := range next.Cameras {
		want[cc.ID] = cc
	}
	var kept []*runningCamera
	var stopped []*runningCamera
	for _, rc := range a.cameras {
		if cc, ok := want[rc.cfg.ID]; ok && cc == rc.cfg {
			kept = append(kept, rc)
			continue
		}
		rc.cancel()
		stopped = append(stopped, rc)
	}
	for _, rc := range stopped {
		<-rc.done
		a.log.Info("camera stopped by reload", "camera", rc.cfg.ID)
	}
	a.cameras = kept
	running := map[string]bool{}
	for _, rc := range kept {
		running[rc.cfg.ID] = true
	}
	a.cfg.Cameras = next.Cameras
	if a.hub != nil {
		for _, cc := range next.Cameras {
			a.hub.Register(cc.ID)
		}
	}
	if a.cfg.NeedsProducer() && a.producer != nil {
		for _, cc := range next.Cameras {
			if !running[cc.ID] {
				a.startCameraLocked(cc)
				a.log.Info("camera started by reload", "camera", cc.ID)
			}
		}
	}
	return needRestart
}

// changedSections lists the config keys, other than cameras, whose values
// differ between a and b.
func changedSections(a, b *config.Config) []string {
	var out []string
	if a.Role != b.Role {
		out = append(out, "role")
	}
	if a.Log != b.Log {
		out = append(out, "log")
	}
	if !reflect.DeepEqual(a.Kafka, b.Kafka) {
		out = append(out, "kafka")
	}
	if a.Embedded != b.Embedded {
		out = append(out, "embedded")
	}
	if !reflect.DeepEqual(a.HTTP, b.HTTP) {
		out = append(out, "http")
	}
	if a.Hub != b.Hub {
		out = append(out, "hub")
	}
	return out
}

// BrowserURL is the URL to open for a server listening on addr: a wildcard
// host becomes localhost.
func BrowserURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
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

func (a *App) setKafkaErr(err error) {
	a.mu.Lock()
	a.kafkaErr = err
	a.mu.Unlock()
	if err != nil {
		_ = a.notify.Status("waiting for kafka: " + err.Error())
	}
}

func (a *App) kafkaReady() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.kafkaErr != nil {
		return a.kafkaErr
	}
	if len(a.clients) == 0 {
		return errors.New("connecting to kafka")
	}
	for _, c := range a.clients {
		if c.Closed() {
			return errors.New("kafka client closed")
		}
	}
	return nil
}

func (a *App) consumerReady() error {
	a.mu.Lock()
	c := a.consumer
	a.mu.Unlock()
	if c == nil {
		return errors.New("consumer not started")
	}
	return c.Ready()
}

func (a *App) producerReady() error {
	a.mu.Lock()
	p := a.producer
	a.mu.Unlock()
	if p == nil {
		return errors.New("producer not started")
	}
	return p.Ready()
}

// HTTPAddr returns the address the HTTP server listens on.
func (a *App) HTTPAddr() string { return a.web.Addr() }

// BrokerAddr returns the embedded broker's address, or "" without one.
func (a *App) BrokerAddr() string {
	if a.broker == nil {
		return ""
	}
	return a.broker.Addr()
}

// Hub returns the fan-out hub, nil in the producer role.
func (a *App) Hub() *hub.Hub { return a.hub }

// CameraStats returns the producer's camera counters.
func (a *App) CameraStats() []capture.Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]capture.Stats, 0, len(a.cameras))
	for _, rc := range a.cameras {
		out = append(out, rc.cam.Stats())
	}
	return out
}

// Shutdown stops everything in order: the HTTP server (viewers' streams end),
// the cameras, the producer (flushing every accepted frame), the consumer
// (committing offsets), the Kafka client, and the embedded broker last. It is
// idempotent; later calls return the first call's result. Components that
// fail to close cleanly (a broker already gone, say) are logged; only a
// shutdown that does not finish within ctx is an error.
func (a *App) Shutdown(ctx context.Context) error {
	a.shutdownOnce.Do(func() {
		_ = a.notify.Stopping()
		var errs []error
		if a.web != nil {
			a.warnClose("http server", a.web.Shutdown(ctx))
		}
		if a.stop != nil {
			a.stop()
		}
		waited := make(chan struct{})
		go func() { a.wg.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("shutdown: cameras and consumer did not stop: %w", ctx.Err()))
		}
		a.mu.Lock()
		producer, consumer, clients := a.producer, a.consumer, a.clients
		a.mu.Unlock()
		if producer != nil {
			a.warnClose("producer", producer.Close())
			st := producer.Stats()
			level := slog.LevelInfo
			if st.Failed > 0 {
				level = slog.LevelError // frames were lost
			}
			a.log.Log(context.Background(), level, "producer flushed", "sent", st.Sent, "failed", st.Failed, "dropped_backlog", st.Backlog, "dropped_too_large", st.TooLarge)
		}
		if consumer != nil {
			a.warnClose("consumer (offsets may not be committed)", consumer.Close())
		}
		for _, client := range clients {
			if err := client.Close(); !errors.Is(err, sarama.ErrClosedClient) {
				a.warnClose("kafka client", err)
			}
		}
		if a.broker != nil {
			a.broker.Close()
		}
		a.shutdownErr = errors.Join(errs...)
		a.log.Info("streamd stopped")
	})
	return a.shutdownErr
}

// newAuthenticator builds the authenticator from the (validated) config.
func newAuthenticator(c config.AuthConfig) (*auth.Authenticator, error) {
	tokens := make([]auth.Token, 0, len(c.Tokens))
	for _, t := range c.Tokens {
		tokens = append(tokens, auth.Token{Name: t.Name, Secret: t.Token, Cameras: t.Cameras})
	}
	users := make([]auth.User, 0, len(c.Users))
	for _, u := range c.Users {
		users = append(users, auth.User{Name: u.Name, PasswordBcrypt: u.PasswordBcrypt, Cameras: u.Cameras})
	}
	return auth.New(tokens, users)
}

// isLoopback reports whether addr listens on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() || host == "localhost"
}

// parseCIDRs parses ranges that config validation already checked.
func parseCIDRs(cidrs []string) []*net.IPNet {
	var out []*net.IPNet
	for _, c := range cidrs {
		if _, n, err := net.ParseCIDR(c); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func (a *App) warnClose(what string, err error) {
	if err != nil {
		a.log.Warn("shutdown: "+what+" did not close cleanly", "err", err)
	}
}

// Run starts the app and runs until ctx ends, then shuts down within
// ShutdownTimeout. Each value received on reload (SIGHUP) makes it call
// load for a fresh configuration and apply its cameras (see Reload); a
// configuration that does not load is logged and the running one kept.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger, version string, reload <-chan os.Signal, load func() (*config.Config, error)) error {
	a := New(cfg, log, version)
	if err := a.Start(); err != nil {
		return err
	}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-reload:
			next, err := load()
			if err != nil {
				log.Error("reload failed, keeping the running configuration", "err", err)
				continue
			}
			if keys := a.Reload(next); len(keys) > 0 {
				log.Warn("reload applies cameras only; restart to apply the other changes", "changed", keys)
			}
			log.Info("configuration reloaded", "cameras", len(next.Cameras))
		}
	}
	log.Info("shutting down", "reason", context.Cause(ctx))
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	return a.Shutdown(sctx)
}
