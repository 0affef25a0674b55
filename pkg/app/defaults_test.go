package app

import (
	"testing"

	"github.com/streamd/streamd/pkg/broker"
	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/web"
)

// Package config writes the Kafka client's, embedded broker's and web
// server's defaults itself (so that it does not build those packages);
// the packages keep the same values as fallbacks for zero options. Both
// must say the same, or a key left out of the file would mean one thing
// and an option left zero another.
func TestComponentDefaultsMatchConfigDefault(t *testing.T) {
	d := config.Default()
	for _, c := range []struct {
		key                 string
		inConfig, component any
	}{
		{"kafka.topic", d.Kafka.Topic, kafka.DefaultTopic},
		{"kafka.client_id", d.Kafka.ClientID, kafka.DefaultClientID},
		{"kafka.version", d.Kafka.Version, kafka.DefaultVersion},
		{"kafka.partitions", d.Kafka.Partitions, kafka.DefaultPartitions},
		{"kafka.replication_factor", d.Kafka.ReplicationFactor, kafka.DefaultReplicationFactor},
		{"kafka.retention", d.Kafka.Retention, kafka.DefaultRetention},
		{"kafka.retention_bytes", d.Kafka.RetentionBytes, int64(kafka.DefaultRetentionBytes)},
		{"kafka.max_message_bytes", d.Kafka.MaxMessageBytes, kafka.DefaultMaxMessageBytes},
		{"kafka.fetch_max_wait", d.Kafka.FetchMaxWait, kafka.DefaultFetchMaxWait},
		{"kafka.compression", d.Kafka.Compression, kafka.DefaultCompression},
		{"kafka.acks", d.Kafka.Acks, kafka.DefaultAcks},
		{"kafka.dial_timeout", d.Kafka.DialTimeout, kafka.DefaultDialTimeout},
		{"recording.partitions", d.Record.Partitions, kafka.DefaultPartitions},
		{"embedded.segment_bytes", d.Embedded.SegmentBytes, broker.DefaultSegmentBytes},
		{"embedded.retention_check", d.Embedded.RetentionCheck, broker.DefaultRetentionCheck},
		{"kafka.max_message_bytes (broker)", d.Kafka.MaxMessageBytes, broker.DefaultMaxMessageBytes},
		{"http.write_timeout", d.HTTP.WriteTimeout, web.DefaultWriteTimeout},
		{"http.unsent_limit", d.HTTP.UnsentLimit, web.DefaultUnsentLimit},
		{"http.read_header_timeout", d.HTTP.ReadHeaderTimeout, web.DefaultReadHeaderTimeout},
		{"http.idle_timeout", d.HTTP.IdleTimeout, web.DefaultIdleTimeout},
		{"http.max_viewers", d.HTTP.MaxViewers, web.DefaultMaxViewers},
		{"http.max_viewers_per_ip", d.HTTP.MaxViewersPerIP, web.DefaultMaxViewersPerIP},
		{"http.max_replays", d.HTTP.MaxReplays, web.DefaultMaxReplays},
		{"http.max_replays_per_ip", d.HTTP.MaxReplaysPerIP, web.DefaultMaxReplaysPerIP},
	} {
		if c.inConfig != c.component {
			t.Errorf("%s: config.Default() has %v (%T), the component's default is %v (%T)", c.key, c.inConfig, c.inConfig, c.component, c.component)
		}
	}
}
