package app

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/eventfeed"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/playback"
	"github.com/streamd/streamd/pkg/recindex"
	"github.com/streamd/streamd/pkg/record"
	"github.com/streamd/streamd/pkg/recorder"
	"github.com/streamd/streamd/pkg/review"
)

// This file maps the configuration to the components' options.

// newKafkaConns returns the Kafka connections, with the frames topic asked for.
func newKafkaConns(cfg *config.Config, log *slog.Logger, brokers func() []string, status func(string)) *kafka.Conns {
	kc := cfg.Kafka
	o := kafka.ConnsOptions{
		Client: kafka.Options{
			SASL:     kafka.SASL{Mechanism: kc.SASL.Mechanism, Username: kc.SASL.Username, Password: kc.SASL.Password},
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
	return k
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

func newRecorder(cfg *config.Config, log *slog.Logger, k *kafka.Conns) (*recorder.Recorder, error) {
	rc := cfg.Record
	r, err := recorder.New(recorder.Options{
		FramesTopic: cfg.Kafka.Topic, Group: rc.Group,
		FullTopic: rc.FullTopic, ReducedTopic: rc.ReducedTopic, IndexTopic: rc.IndexTopic,
		EventsTopic: cfg.Analyzer.EventsTopic, EventsLookback: cfg.Kafka.Retention,
		Record: record.Options{Interval: rc.Interval, PreRoll: orNone(rc.PreRoll), PostRoll: orNone(rc.PostRoll), Chunk: rc.Chunk},
		Codec:  rc.Codec, Preset: rc.Preset, CRF: rc.CRF, Logger: log,
	}, k)
	if err != nil {
		return nil, fmt.Errorf("role %q: %w", cfg.Role, err)
	}
	recordTopics(cfg, k)
	eventTopics(cfg, k)
	return r, nil
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

// reviewMotion says whether a camera's motion and face events are review
// items: when the configuration runs no object detection on it (objects
// off, the camera opted out, or the default model not installed, which
// turns detection off). The web node also sees it from the events: a
// camera with object events is reviewed by them.
func reviewMotion(cfg *config.Config) func(camera string) bool {
	oc := cfg.Analyzer.Objects
	on := oc.Enabled
	if on && oc.Model == config.DefaultObjectModel {
		if _, err := os.Stat(oc.Model); err != nil {
			on = false
		}
	}
	optedOut := map[string]bool{}
	for _, c := range cfg.Cameras {
		optedOut[c.ID] = c.Objects != nil && !*c.Objects || !c.Analyzed()
	}
	return func(camera string) bool { return !on || optedOut[camera] }
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
