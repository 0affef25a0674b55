package app

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/eventfeed"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/notify"
	"github.com/streamd/streamd/pkg/playback"
	"github.com/streamd/streamd/pkg/recindex"
	"github.com/streamd/streamd/pkg/record"
	"github.com/streamd/streamd/pkg/recorder"
	"github.com/streamd/streamd/pkg/review"
)

// This file maps the configuration to the components' options.

// newKafkaConns returns the Kafka connections, with the frames topic
// asked for. An error means the SASL password file cannot be read.
func newKafkaConns(cfg *config.Config, log *slog.Logger, brokers func() []string, status func(string)) (*kafka.Conns, error) {
	kc := cfg.Kafka
	var password string
	if kc.SASL.Mechanism != "" {
		var err error
		if password, err = kc.SASL.PasswordValue(); err != nil {
			return nil, fmt.Errorf("kafka.sasl.password_file: %w", err)
		}
	}
	o := kafka.ConnsOptions{
		Client: kafka.Options{
			SASL:     kafka.SASL{Mechanism: kc.SASL.Mechanism, Username: kc.SASL.Username, Password: password},
			ClientID: kc.ClientID, Version: kc.Version, MaxMessageBytes: kc.MaxMessageBytes, FetchMaxWait: kc.FetchMaxWait,
			Compression: kc.Compression, Acks: kc.Acks, DialTimeout: kc.DialTimeout,
		},
		Brokers: brokers, Status: status, Serving: "serving: role " + cfg.Role, Logger: log,
	}
	if t := kc.TLS; t.Enabled {
		o.TLS = func() (*tls.Config, error) {
			return kafka.TLSConfig(t.CAFile, t.CertFile, t.KeyFile, t.ServerName, t.InsecureSkipVerify)
		}
	}
	k := kafka.NewConns(o)
	k.Ensure(kc.Topic, kafka.TopicOptions{Partitions: kc.Partitions, ReplicationFactor: kc.ReplicationFactor,
		Retention: kc.Retention, RetentionBytes: kc.RetentionBytes, MaxMessageBytes: kc.MaxMessageBytes})
	return k, nil
}

// eventTopics asks for the events and snapshots topics. Both are small:
// events are JSON of a few hundred bytes, snapshots one JPEG per event.
func eventTopics(cfg *config.Config, k *kafka.Conns) {
	a := cfg.Analyzer
	k.Ensure(a.EventsTopic, kafka.TopicOptions{
		Partitions: cfg.Kafka.Partitions, ReplicationFactor: cfg.Kafka.ReplicationFactor,
		Retention: a.EventsRetention, RetentionBytes: 64 << 20, MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
	})
	k.Ensure(a.SnapshotsTopic, kafka.TopicOptions{
		Partitions: cfg.Kafka.Partitions, ReplicationFactor: cfg.Kafka.ReplicationFactor,
		Retention: a.EventsRetention, RetentionBytes: 256 << 20, MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
	})
	// A record a camera a minute, about 150 bytes: 1.5 MB a camera a week.
	k.Ensure(a.ActivityTopic, kafka.TopicOptions{
		Partitions: cfg.Kafka.Partitions, ReplicationFactor: cfg.Kafka.ReplicationFactor,
		Retention: a.EventsRetention, RetentionBytes: 64 << 20, MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
	})
}

// recordTopics asks for the recording topics, with retention from
// recording.retain and recording.max_bytes (docs/recording.md).
func recordTopics(cfg *config.Config, k *kafka.Conns) {
	rc := cfg.Record
	perPart := func(share float64) int64 {
		if rc.MaxBytes <= 0 {
			return -1 // time alone
		}
		return int64(float64(rc.MaxBytes) * share / float64(rc.Partitions))
	}
	base := kafka.TopicOptions{Partitions: rc.Partitions, ReplicationFactor: cfg.Kafka.ReplicationFactor,
		Retention: rc.Retain, MaxMessageBytes: cfg.Kafka.MaxMessageBytes}
	full, reduced, index := base, base, base
	full.RetentionBytes = perPart(rc.FullShare)
	reduced.RetentionBytes = perPart(1 - rc.FullShare)
	index.RetentionBytes = -1
	k.Ensure(rc.FullTopic, full)
	k.Ensure(rc.ReducedTopic, reduced)
	k.Ensure(rc.IndexTopic, index)
}

// newRecorders builds the record part: a recorder for the reduced tier
// (group recording.group + "-reduced") and one for the full tier
// (recording.group), so that the reduced tier never waits for the full
// tier's encoders.
func newRecorders(cfg *config.Config, log *slog.Logger, k *kafka.Conns) (reduced, full *recorder.Recorder, err error) {
	rc := cfg.Record
	o := recorder.Options{
		FramesTopic: cfg.Kafka.Topic, Group: rc.Group,
		FullTopic: rc.FullTopic, ReducedTopic: rc.ReducedTopic, IndexTopic: rc.IndexTopic,
		EventsTopic: cfg.Analyzer.EventsTopic, EventsLookback: cfg.Kafka.Retention,
		Record: record.Options{Interval: rc.Interval, PreRoll: orNone(rc.PreRoll), PostRoll: orNone(rc.PostRoll), Chunk: rc.Chunk},
		Codec:  rc.Codec, Preset: rc.Preset, CRF: rc.CRF, FullOn: recorder.FullOn(rc.FullOn), Logger: log,
		Tiers: recorder.FullTier,
	}
	if full, err = recorder.New(o, k); err != nil {
		return nil, nil, fmt.Errorf("role %q: %w", cfg.Role, err)
	}
	o.Tiers, o.Group = recorder.ReducedTier, rc.Group+recorder.ReducedSuffix
	if reduced, err = recorder.New(o, k); err != nil {
		return nil, nil, fmt.Errorf("role %q: %w", cfg.Role, err)
	}
	recordTopics(cfg, k)
	eventTopics(cfg, k)
	return reduced, full, nil
}

// orNone maps a configured zero (none, no limit) to the "none" of the
// packages that take a negative duration for it (record, events).
func orNone(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

func newEventsFeed(cfg *config.Config, log *slog.Logger, k *kafka.Conns) *eventfeed.Feed {
	f := eventfeed.New(eventfeed.Options{EventsTopic: cfg.Analyzer.EventsTopic, SnapshotsTopic: cfg.Analyzer.SnapshotsTopic,
		History: cfg.Events.History, MaxEvents: cfg.Events.MaxEvents,
		// The day timeline's activity, as far back as the recording and
		// the topic go.
		ActivityTopic: cfg.Analyzer.ActivityTopic, ActivityKeep: min(cfg.Analyzer.EventsRetention, cfg.Record.Retain),
		Logger: log}, k)
	eventTopics(cfg, k)
	return f
}

// newReviews returns the review page's marks, in a compacted topic that
// keeps a mark as long as the events themselves are kept.
func newReviews(cfg *config.Config, log *slog.Logger, k *kafka.Conns) *review.Marks {
	m := review.New(review.Options{Topic: cfg.Events.ReviewsTopic, Logger: log}, k)
	k.Ensure(cfg.Events.ReviewsTopic, kafka.TopicOptions{
		Partitions: cfg.Kafka.Partitions, ReplicationFactor: cfg.Kafka.ReplicationFactor,
		Retention: cfg.Analyzer.EventsRetention, MaxMessageBytes: cfg.Kafka.MaxMessageBytes, Compact: true,
	})
	return m
}

func newRecordings(cfg *config.Config, log *slog.Logger, k *kafka.Conns) *recindex.Index {
	rc := cfg.Record
	return recindex.New(recindex.Options{IndexTopic: rc.IndexTopic, FullTopic: rc.FullTopic, ReducedTopic: rc.ReducedTopic,
		MaxBytes: rc.MaxBytes, Retain: rc.Retain, Chunk: rc.Chunk, Interval: rc.Interval, Logger: log}, k)
}

// newPlayback returns the replays and recordings of a viewer node; with
// local, the recorder of this process (nil: none), its storage report says how far
// behind the recorder is.
func newPlayback(cfg *config.Config, k *kafka.Conns, v *view, rec *recindex.Index, local *recorder.Recorder) *playback.Replays {
	o := playback.Options{FramesTopic: cfg.Kafka.Topic, MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
		MaxFPS: cfg.Replay.MaxFPS, FullTopic: cfg.Record.FullTopic, ReducedTopic: cfg.Record.ReducedTopic,
		Preset: cfg.Record.Preset, CRF: cfg.Record.CRF}
	if local != nil {
		o.Recorder = func() map[string]playback.RecorderProgress {
			m := map[string]playback.RecorderProgress{}
			for _, p := range local.Progress() {
				m[p.Camera] = playback.RecorderProgress{RecordedUntil: p.Recorded, Lost: p.Lost}
			}
			return m
		}
	}
	return playback.New(o, k, v.hub, rec)
}

// newNotifier returns the notifier of cfg's notify targets; httpAddr is
// the address the HTTP server listens on once it started (the links'
// start without http.public_url).
func newNotifier(cfg *config.Config, log *slog.Logger, k *kafka.Conns, version string, httpAddr func() string) (*notify.Notifier, error) {
	nc := cfg.Notify
	loc, err := time.LoadLocation(nc.Timezone)
	if err != nil {
		return nil, fmt.Errorf("notify.timezone: %w", err)
	}
	retry := notify.Retry{Attempts: nc.Attempts, Backoff: nc.Backoff, MaxBackoff: nc.MaxBackoff}
	rules := func(r config.Rules) notify.Rules {
		out := notify.Rules{Cameras: r.Cameras, Types: r.Types, Labels: r.Labels, Zones: r.Zones, Severity: r.Severity,
			Phases: r.Phases, Cooldown: r.Cooldown, Location: loc}
		if len(out.Phases) == 0 {
			out.Phases = nc.Phases
		}
		if out.Cooldown == 0 {
			out.Cooldown = nc.Cooldown
		}
		for _, q := range r.QuietHours {
			qh, err := notify.ParseQuietHours(q)
			if err == nil { // validated
				out.QuietHours = append(out.QuietHours, qh)
			}
		}
		return out
	}
	o := notify.Options{EventsTopic: cfg.Analyzer.EventsTopic, SnapshotsTopic: cfg.Analyzer.SnapshotsTopic, Group: nc.Group,
		Links:   notify.Links{Base: cfg.HTTP.PublicURL, BaseFunc: func() string { return listenURL(cfg, httpAddr()) }, Clips: cfg.Record.Enabled},
		Version: version, Logger: log}
	for _, w := range nc.Webhooks {
		secret, err := w.SecretValue()
		if err != nil {
			return nil, fmt.Errorf("notify.webhooks %s: secret: %w", w.Name, err)
		}
		o.Webhooks = append(o.Webhooks, notify.WebhookOptions{Name: w.Name, URL: w.URL, Headers: w.Headers, Secret: secret,
			Timeout: nc.Timeout, CAFile: w.CAFile, InsecureSkipVerify: w.InsecureSkipVerify, Rules: rules(w.Rules), Retry: retry})
	}
	if m := nc.MQTT; m.URL != "" {
		password, err := m.PasswordValue()
		if err != nil {
			return nil, fmt.Errorf("notify.mqtt.password_file: %w", err)
		}
		labels := m.Discovery.Labels
		if len(labels) == 0 {
			if cfg.Analyzer.Objects.Enabled {
				labels = append(labels, cfg.Analyzer.Objects.Track...)
			}
			if cfg.Analyzer.Faces.Enabled {
				labels = append(labels, "face")
			}
		}
		o.MQTT = &notify.MQTTOptions{URL: m.URL, Username: m.Username, Password: password, ClientID: m.ClientID,
			TopicPrefix: m.TopicPrefix, CAFile: m.CAFile, CertFile: m.CertFile, KeyFile: m.KeyFile, InsecureSkipVerify: m.InsecureSkipVerify,
			Discovery: m.Discovery.Enabled, DiscoveryPrefix: m.Discovery.Prefix, Cameras: cameraIDs(cfg.Cameras), Labels: labels,
			// The analysis of this process begins afresh: what a crash
			// left retained is stale.
			FreshStates: cfg.Runs(config.PartAnalyze),
			Rules:       rules(m.Rules), Retry: retry}
	}
	n, err := notify.New(o, k)
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	eventTopics(cfg, k)
	return n, nil
}

// listenURL is where people open the page when http.public_url is unset:
// the address the server listens on (addr, the port it got when
// http.listen names port 0), a wildcard host replaced by this machine's
// name. Only a process that serves the page uses it: the notifier role
// needs http.public_url (config validation).
func listenURL(cfg *config.Config, addr string) string {
	scheme := "http"
	if cfg.HTTP.TLS.CertFile != "" {
		scheme = "https"
	}
	if addr == "" { // not started (never so while the notifier runs)
		addr = cfg.HTTP.Listen
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + "://" + addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		} else {
			host = "localhost"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
