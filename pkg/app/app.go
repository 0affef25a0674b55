// Package app turns a configuration into the components of a role, runs
// them, and owns start-up and the ordered, idempotent shutdown. It is the
// only package besides main that knows the configuration: every component
// takes plain options.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/eventfeed"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
	"github.com/streamd/streamd/pkg/recindex"
	"github.com/streamd/streamd/pkg/recorder"
	"github.com/streamd/streamd/pkg/redact"
	"github.com/streamd/streamd/pkg/review"
	"github.com/streamd/streamd/pkg/sdnotify"
	"github.com/streamd/streamd/pkg/web"
	"github.com/streamd/streamd/static"
)

// ErrConfig is wrapped by the errors of New and Run that are the
// configuration's fault though it validated (a face cascade or an object
// model that does not load): main exits with 2 for them, as for a
// configuration that does not validate.
var ErrConfig = errors.New("config")

// NewLogger returns the process logger the config asks for. Every string
// and error it writes goes through redact.Text, as a second line of
// defence: the packages that hold URLs with credentials (camera sources,
// webhook and MQTT URLs) log them redacted already.
func NewLogger(c config.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: redactAttr}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// redactAttr removes credentials from URLs in a log attribute's value.
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	switch v := a.Value; v.Kind() {
	case slog.KindString:
		if s := v.String(); strings.Contains(s, "://") {
			a.Value = slog.StringValue(redact.Text(s))
		}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			if s := x.Error(); strings.Contains(s, "://") {
				a.Value = slog.StringValue(redact.Text(s))
			}
		case []string:
			out := make([]string, len(x))
			for i, s := range x {
				out[i] = redact.Text(s)
			}
			a.Value = slog.AnyValue(out)
		}
	}
	return a
}

// Option tunes an App.
type Option func(*App)

// WithReadyFile makes the app write path, once it serves, with a JSON
// object naming its pid, role and addresses ({"pid", "role", "http",
// "url", "broker"}; url is http:// or https://), and remove it at shutdown: a machine-readable way for
// scripts and tests to find a process started on port 0.
func WithReadyFile(path string) Option { return func(a *App) { a.readyFile = path } }

// WithNotifier sends systemd notifications to n instead of the socket
// named by NOTIFY_SOCKET.
func WithNotifier(n *sdnotify.Notifier) Option { return func(a *App) { a.notify = n } }

// App is one streamd process: the components of its role.
type App struct {
	cfg       *config.Config
	log       *slog.Logger
	version   string
	metrics   *metrics.Metrics
	notify    *sdnotify.Notifier
	readyFile string
	// clock is the analyzer's clock; nil is time.Now. The recording
	// tests set it to the capture time they play.
	clock func() time.Time

	// components in start order; closed in reverse.
	components []Component
	broker     *embeddedBroker // nil without the embedded broker
	kafka      *kafka.Conns
	view       *view           // nil unless the role views
	events     *eventfeed.Feed // with view
	reviews    *review.Marks   // with view
	recs       *recindex.Index // with view
	http       *httpServer

	runs  []runState
	fatal chan error // the first component failure

	mu     sync.Mutex
	reload reloadStatus

	shutdownOnce sync.Once
	shutdownErr  error
}

// runState is a running component's cancel and completion.
type runState struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// reloadStatus is what /api/status reports about SIGHUP reloads.
type reloadStatus struct {
	Count         int      `json:"count"`
	LastError     string   `json:"last_error"`
	RestartNeeded []string `json:"restart_needed"`
}

// New builds the components of cfg's role; version labels metrics and
// status. Nothing is started until Start. An error means the configuration
// cannot be run by this binary.
func New(cfg *config.Config, log *slog.Logger, version string, opts ...Option) (*App, error) {
	a := &App{cfg: cfg, log: log, version: version, notify: sdnotify.FromEnv(), fatal: make(chan error, 1),
		reload: reloadStatus{RestartNeeded: []string{}}}
	for _, o := range opts {
		o(a)
	}
	a.metrics = metrics.New(version, a.snapshot)

	// The order is the start order; shutdown runs it backwards: the HTTP
	// server (viewers' streams end), the cameras and the producer
	// (flushing every accepted frame), the consumer (committing
	// offsets), the Kafka clients, the embedded broker last.
	brokers := func() []string { return cfg.Kafka.Brokers }
	if cfg.Embedded.Enabled {
		a.broker = newEmbeddedBroker(cfg, log)
		a.components = append(a.components, a.broker)
		brokers = func() []string { return []string{a.broker.addr()} }
	}
	k, err := newKafkaConns(cfg, log, brokers, func(s string) { _ = a.notify.Status(s) })
	if err != nil {
		return nil, err
	}
	a.kafka = k
	a.components = append(a.components, a.kafka)
	httpAddr := func() string { return a.http.addr() }
	for _, part := range cfg.Parts() {
		switch part {
		case config.PartView:
			a.view = newView(cfg, log, a.kafka, httpAddr)
			a.events = newEventsFeed(cfg, log, a.kafka)
			a.reviews = newReviews(cfg, log, a.kafka)
			a.recs = newRecordings(cfg, log, a.kafka)
			a.components = append(a.components, a.view, a.events, a.reviews, a.recs)
		case config.PartAnalyze:
			an, err := newAnalyze(cfg, log, a.kafka, a.clock)
			if err != nil {
				return nil, err
			}
			if !an.Objects() && cfg.Runs(config.PartRecord) && cfg.Record.FullOn != "motion" {
				log.Warn("object detection is off, so the full tier records only face events here; set recording.full_on: motion to record motion at full rate",
					"recording.full_on", cfg.Record.FullOn)
			}
			a.components = append(a.components, an)
		case config.PartRecord:
			reduced, full, err := newRecorders(cfg, log, a.kafka)
			if err != nil {
				return nil, err
			}
			a.components = append(a.components, reduced, full)
		case config.PartNotify:
			n, err := newNotifier(cfg, log, a.kafka, version, httpAddr)
			if err != nil {
				return nil, err
			}
			a.components = append(a.components, n)
		case config.PartCapture:
			c, err := newCapture(cfg, log, a.kafka)
			if err != nil {
				return nil, err
			}
			a.components = append(a.components, c)
		default:
			return nil, fmt.Errorf("app: no components for part %q", part)
		}
	}
	wo := web.Options{Static: static.FS, Metrics: a.metrics.Handler(), Latency: a.metrics.LatencyObserver, Status: a.status}
	if a.view != nil {
		wo.Live = web.HubLive(a.view.hub)
		wo.Events, wo.Activity = a.events, a.events
		wo.Reviews = a.reviews
		var rec *recorder.Recorder
		for _, c := range a.components {
			if r, ok := c.(*recorder.Recorder); ok && r.Tiers() != recorder.ReducedTier {
				rec = r // the full tier's: the one that can fall behind
			}
		}
		rp := newPlayback(cfg, a.kafka, a.view, a.recs, rec)
		wo.Replays, wo.Recordings = rp, rp
		wo.MaxExport, wo.MaxExports = cfg.Record.MaxExport, cfg.Record.MaxExports
		wo.ClipPreRoll, wo.ClipPostRoll = cfg.Record.PreRoll, cfg.Record.PostRoll
	}
	for _, c := range a.components {
		ck := web.Check{Name: c.Name(), Fn: readyOf(c)}
		if d, ok := c.(degrader); ok {
			ck.Degraded = func() string { return redact.Text(d.Degraded()) }
		}
		wo.Checks = append(wo.Checks, ck)
	}
	h, err := newHTTPServer(cfg, log, wo)
	if err != nil {
		return nil, err
	}
	a.http = h
	a.components = append(a.components, h)
	return a, nil
}

// Start starts every component in order, then runs each in the
// background: the HTTP server answers at once, /readyz once Kafka is
// reachable and frames flow. An error means something could not start at
// all (a port in use, say); whatever was started is closed again.
func (a *App) Start() error {
	for i, c := range a.components {
		if err := c.Start(); err != nil {
			for j := i - 1; j >= 0; j-- {
				a.warnClose(a.components[j].Name(), a.components[j].Close())
			}
			a.components = nil
			return err
		}
	}
	for _, c := range a.components {
		ctx, cancel := context.WithCancel(context.Background())
		rs := runState{cancel: cancel, done: make(chan struct{})}
		a.runs = append(a.runs, rs)
		go func() {
			defer close(rs.done)
			if err := c.Run(ctx); err != nil && ctx.Err() == nil {
				select {
				case a.fatal <- fmt.Errorf("%s: %w", c.Name(), err):
				default:
				}
			}
		}()
	}
	cfg := a.cfg
	a.log.Info("streamd started", "role", cfg.Role, "http", a.http.addr(), "brokers", a.kafka.Brokers(), "topic", cfg.Kafka.Topic)
	if a.view != nil {
		fmt.Fprintf(os.Stdout, "\n  streamd is running: open %s in a browser\n\n", a.http.url())
	}
	if err := a.writeReadyFile(); err != nil {
		a.log.Warn("cannot write the ready file", "path", a.readyFile, "err", err)
	}
	// Serving: systemd may consider the service started. Kafka may still
	// be unreachable; STATUS and /readyz say so.
	if err := a.notify.Ready(); err != nil {
		a.log.Warn("cannot notify systemd", "err", err)
	}
	_ = a.notify.Status("connecting to kafka")
	if iv := sdnotify.WatchdogInterval(); iv > 0 {
		a.log.Info("systemd watchdog enabled", "interval", iv)
		ctx, cancel := context.WithCancel(context.Background())
		a.runs = append(a.runs, runState{cancel: cancel, done: make(chan struct{})})
		go a.notify.Watchdog(ctx, iv, a.alive)
	}
	return nil
}

// alive is the watchdog's probe: the HTTP server answers and no component
// has failed.
func (a *App) alive() bool {
	if err := a.http.alive(); err != nil {
		a.log.Warn("watchdog: http server does not answer", "err", err)
		return false
	}
	return len(a.fatal) == 0
}

// writeReadyFile writes the ready file atomically (a temporary file renamed
// into place), so a reader never sees half of it.
func (a *App) writeReadyFile() error {
	if a.readyFile == "" {
		return nil
	}
	body, err := json.Marshal(map[string]any{"pid": os.Getpid(), "role": a.cfg.Role, "http": a.http.addr(), "url": a.http.url(), "broker": a.BrokerAddr()})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(a.readyFile), ".streamd-ready-*")
	if err != nil {
		return fmt.Errorf("write ready file: %w", err)
	}
	if _, err := tmp.Write(append(body, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write ready file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write ready file: %w", err)
	}
	if err := os.Rename(tmp.Name(), a.readyFile); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write ready file: %w", err)
	}
	return nil
}

// Reload applies a new configuration's cameras (SIGHUP): new cameras start,
// removed ones stop, changed ones restart; a viewer node makes new ids
// known. Every other key needs a restart, and a change of one is reported in
// the returned list (the running values stay).
func (a *App) Reload(next *config.Config) (needRestart []string) {
	_ = a.notify.Reloading()
	defer func() { _ = a.notify.Ready() }()
	needRestart = changedSections(a.cfg, next)
	for _, c := range a.components {
		if r, ok := c.(reloader); ok {
			r.Reload(next)
		}
	}
	a.cfg.Cameras = next.Cameras
	a.mu.Lock()
	a.reload = reloadStatus{Count: a.reload.Count + 1, RestartNeeded: append([]string{}, needRestart...)}
	a.mu.Unlock()
	return needRestart
}

// reloadFailed records a reload whose configuration did not load.
func (a *App) reloadFailed(err error) {
	a.mu.Lock()
	a.reload.LastError = err.Error()
	a.mu.Unlock()
}

// changedSections lists the config keys, other than cameras, whose values
// differ between a and b.
func changedSections(a, b *config.Config) []string {
	var out []string
	va, vb := reflect.ValueOf(*a), reflect.ValueOf(*b)
	for i := range va.NumField() {
		f := va.Type().Field(i)
		if f.Name == "Cameras" {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, f.Tag.Get("koanf"))
		}
	}
	return out
}

// status is the body of /api/status.
func (a *App) status() any {
	type comp struct {
		Name  string `json:"name"`
		Ready string `json:"ready"`
	}
	out := struct {
		Role       string       `json:"role"`
		Version    string       `json:"version"`
		Ready      bool         `json:"ready"`
		Components []comp       `json:"components"`
		Cameras    any          `json:"cameras"`
		Analysis   any          `json:"analysis,omitempty"`
		Reload     reloadStatus `json:"reload"`
		Warnings   []string     `json:"warnings"`
	}{Role: a.cfg.Role, Version: a.version, Ready: true, Cameras: []any{}, Warnings: []string{}}
	if w := a.http.openWarning(); w != "" {
		out.Warnings = append(out.Warnings, w)
	}
	for _, c := range a.components {
		st := "ok"
		if err := readyOf(c)(); err != nil {
			st, out.Ready = err.Error(), false
		} else if d, ok := c.(degrader); ok {
			if why := d.Degraded(); why != "" {
				st = "degraded: " + redact.Text(why)
			}
		}
		out.Components = append(out.Components, comp{c.Name(), st})
		if s, ok := c.(interface{ Status() any }); ok {
			out.Cameras = s.Status()
		}
		if s, ok := c.(interface{ AnalysisStatus() any }); ok {
			out.Analysis = s.AnalysisStatus()
		}
	}
	a.mu.Lock()
	out.Reload = a.reload
	a.mu.Unlock()
	return out
}

// readyOf is a component's readiness as /readyz and /api/status show it:
// without credentials in any URL the reason quotes.
func readyOf(c Component) func() error {
	return func() error { return redact.Error(c.Ready()) }
}

// snapshot gathers every component's counters for a metrics scrape.
func (a *App) snapshot() metrics.Snapshot {
	var s metrics.Snapshot
	for _, c := range a.components {
		if m, ok := c.(collector); ok {
			m.Collect(&s)
		}
	}
	slices.SortFunc(s.Cameras, func(x, y metrics.Camera) int { return strings.Compare(x.ID, y.ID) })
	return s
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

// HTTPAddr returns the address the HTTP server listens on.
func (a *App) HTTPAddr() string { return a.http.addr() }

// BrokerAddr returns the embedded broker's address, or "" without one.
func (a *App) BrokerAddr() string {
	if a.broker == nil {
		return ""
	}
	return a.broker.addr()
}

// Run builds and starts the app for cfg, then serves (see Serve).
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger, version string, reload <-chan os.Signal, load func() (*config.Config, error), opts ...Option) error {
	a, err := New(cfg, log, version, opts...)
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		return err
	}
	return a.Serve(ctx, reload, load)
}

// Serve runs the started app until ctx ends or a component fails, then
// shuts down within ShutdownTimeout. A component's failure is returned (the
// process should exit non-zero). Each value received on reload (SIGHUP)
// makes it call load for a fresh configuration and apply its cameras (see
// Reload); a configuration that does not load is logged, reported in
// /api/status, and the running one kept.
func (a *App) Serve(ctx context.Context, reload <-chan os.Signal, load func() (*config.Config, error)) error {
	log := a.log
	var failed error
	for done := false; !done; {
		select {
		case <-ctx.Done():
			log.Info("shutting down", "reason", context.Cause(ctx))
			done = true
		case failed = <-a.fatal:
			log.Error("a component failed, shutting down", "err", failed)
			done = true
		case <-reload:
			next, err := load()
			if err != nil {
				a.reloadFailed(err)
				log.Error("reload failed, keeping the running configuration", "err", err)
				continue
			}
			if keys := a.Reload(next); len(keys) > 0 {
				log.Warn("reload applies cameras only; restart to apply the other changes", "changed", keys)
			}
			log.Info("configuration reloaded", "cameras", len(next.Cameras))
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	return errors.Join(failed, a.Shutdown(sctx))
}
