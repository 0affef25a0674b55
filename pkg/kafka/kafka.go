// Package kafka moves frames through Apache Kafka with sarama: it creates the
// frames topic, publishes frames (key = camera id, value = the image bytes,
// headers = metadata, timestamp = capture time) and consumes them with a
// consumer group that starts at the newest frames.
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// Defaults of Options and TopicOptions, used for zero fields.
const (
	DefaultTopic             = "streamd.frames"
	DefaultClientID          = "streamd"
	DefaultVersion           = "2.8.0"
	DefaultPartitions        = 8
	DefaultReplicationFactor = 1
	DefaultRetention         = time.Hour
	DefaultRetentionBytes    = 256 << 20 // per partition
	DefaultMaxMessageBytes   = 4 << 20
	// DefaultFetchMaxWait is low because sarama's 500 ms adds up to
	// ~200 ms p99 latency at 30 frames a second.
	DefaultFetchMaxWait = 50 * time.Millisecond
	// DefaultCompression is none: JPEG does not compress further.
	DefaultCompression = "none"
	DefaultDialTimeout = 5 * time.Second
	// DefaultSessionTimeout is Kafka's group session timeout: a member
	// silent this long loses its partitions.
	DefaultSessionTimeout = 10 * time.Second
	// DefaultAcks is "all": a frame is acknowledged once every in-sync
	// replica has it, so losing a broker loses no acknowledged frame (with
	// the topic's min.insync.replicas at 2 or more). It costs a follower's
	// fetch round trip per produce on a replicated topic, nothing on one
	// broker.
	DefaultAcks = "all"
)

// Retry timing, for leader and coordinator moves and lost brokers. A moved
// leader answers "not leader" at once; the clients then refresh metadata
// and go to the new one, so the wait before that retry is what a move
// costs viewers. sarama's defaults (consumer 2 s, producer 100 ms,
// metadata 250 ms) made every leader move a 2.2 s gap.
const (
	// RetryBackoffMin is the first wait before a retry; each further
	// retry doubles it up to RetryBackoffMax.
	RetryBackoffMin = 10 * time.Millisecond
	// RetryBackoffMax bounds the wait between retries.
	RetryBackoffMax = time.Second
	// ProducerRetries is how often a frame is retried before it counts
	// as failed: with the back-off above, about 5 s of trying.
	ProducerRetries = 10
	// MetadataRetries is how often a metadata or coordinator request is
	// retried (a lost broker is tried again, then the next one).
	MetadataRetries = 5
)

// RetryBackoff is the wait before the retries-th retry (from 1):
// RetryBackoffMin doubled per retry, at most RetryBackoffMax.
func RetryBackoff(retries int) time.Duration {
	d := RetryBackoffMin
	for i := 1; i < retries && d < RetryBackoffMax; i++ {
		d *= 2
	}
	return min(d, RetryBackoffMax)
}

// Options is how to reach Kafka and how large frames may be. Zero fields
// take the documented defaults.
type Options struct {
	Brokers         []string      // host:port, at least one
	ClientID        string        // default "streamd"
	Version         string        // Kafka protocol version, default "2.8.0"
	MaxMessageBytes int           // largest record; default 4 MiB
	FetchMaxWait    time.Duration // consumer fetch wait; default 50ms
	Compression     string        // none (default), gzip, snappy, lz4, zstd
	DialTimeout     time.Duration // default 5s
	// Acks is what a produce waits for: "none" (nothing: fastest, frames
	// may be lost silently), "leader" (the partition leader wrote it: an
	// acknowledged frame is lost if the leader dies before a follower
	// copied it) or "all" (every in-sync replica; the default).
	Acks string
	// TLS, if set, encrypts the connections (see TLSConfig).
	TLS *tls.Config
	// SASL, if Mechanism is set, authenticates to the brokers.
	SASL SASL
	// InstanceID, if set, makes the consumer a static group member
	// (group.instance.id): a restarted process with the same id takes its
	// old place at once instead of waiting out the session timeout.
	InstanceID string
	// SessionTimeout is how long a consumer group member may be silent
	// before the group moves its partitions to the others (default 10s);
	// heartbeats go every third of it, at most 3s.
	SessionTimeout time.Duration
	// Buffered, if set, is how many records each partition consumer may
	// buffer (default 64), and FetchDefault how many bytes a fetch asks
	// for at first (default: MaxMessageBytes plus overhead); replay
	// readers set both low to bound their memory.
	Buffered, FetchDefault int
}

// SASL is SASL authentication: Mechanism PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512.
type SASL struct {
	Mechanism, Username, Password string
}

// TLSConfig builds a TLS configuration from PEM files: caFile (empty: the
// system's roots), a client certificate and key (both empty: none).
func TLSConfig(caFile, certFile, keyFile, serverName string, insecure bool) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, InsecureSkipVerify: insecure} //nolint:gosec // opt-in, for testing
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls: read CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka tls: %s holds no PEM certificate", caFile)
		}
		c.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls: client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// scramClient adapts xdg-go/scram to sarama's SCRAM interface.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (s *scramClient) Begin(user, pass, authzID string) error {
	c, err := s.hash.NewClient(user, pass, authzID)
	if err != nil {
		return err
	}
	s.conv = c.NewConversation()
	return nil
}

func (s *scramClient) Step(challenge string) (string, error) { return s.conv.Step(challenge) }
func (s *scramClient) Done() bool                            { return s.conv.Done() }

// recordOverhead is the room a record batch needs beyond its largest record.
const recordOverhead = 64 << 10

func (o *Options) withDefaults() {
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.FetchMaxWait <= 0 {
		o.FetchMaxWait = DefaultFetchMaxWait
	}
	if o.Compression == "" {
		o.Compression = DefaultCompression
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.Acks == "" {
		o.Acks = DefaultAcks
	}
}

// ParseAcks turns an acks setting (none, leader, all) into sarama's.
func ParseAcks(s string) (sarama.RequiredAcks, error) {
	switch s {
	case "none":
		return sarama.NoResponse, nil
	case "leader":
		return sarama.WaitForLocal, nil
	case "all":
		return sarama.WaitForAll, nil
	}
	return 0, fmt.Errorf("kafka acks %q: not one of none, leader, all", s)
}

// saramaConfig builds the one sarama configuration used by the producer, the
// consumer and the admin client. Producer, topic and fetch sizes all follow
// MaxMessageBytes.
func (o Options) saramaConfig() (*sarama.Config, error) {
	o.withDefaults()
	c := sarama.NewConfig()
	c.ClientID = o.ClientID
	v, err := sarama.ParseKafkaVersion(o.Version)
	if err != nil {
		return nil, fmt.Errorf("kafka version %q: %w", o.Version, err)
	}
	c.Version = v
	c.Net.DialTimeout = o.DialTimeout
	c.Net.ReadTimeout = 30 * time.Second
	c.Net.WriteTimeout = 30 * time.Second
	backoff := func(retries, _ int) time.Duration { return RetryBackoff(retries) }
	c.Metadata.Retry.Max = MetadataRetries
	// The consumer group's heartbeat uses the plain Backoff when its
	// coordinator moved.
	c.Metadata.Retry.Backoff = 50 * time.Millisecond
	c.Metadata.Retry.BackoffFunc = backoff

	acks, err := ParseAcks(o.Acks)
	if err != nil {
		return nil, err
	}
	c.Producer.RequiredAcks = acks
	c.Producer.MaxMessageBytes = o.MaxMessageBytes
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Retry.Max = ProducerRetries
	c.Producer.Retry.BackoffFunc = backoff
	c.Producer.Timeout = 10 * time.Second
	c.ChannelBufferSize = 64
	if o.Buffered > 0 {
		c.ChannelBufferSize = o.Buffered
	}
	switch o.Compression {
	case "none":
		c.Producer.Compression = sarama.CompressionNone
	case "gzip":
		c.Producer.Compression = sarama.CompressionGZIP
	case "snappy":
		c.Producer.Compression = sarama.CompressionSnappy
	case "lz4":
		c.Producer.Compression = sarama.CompressionLZ4
	case "zstd":
		c.Producer.Compression = sarama.CompressionZSTD
	default:
		return nil, fmt.Errorf("kafka compression %q: not one of none, gzip, snappy, lz4, zstd", o.Compression)
	}

	c.Consumer.Fetch.Min = 1
	c.Consumer.Fetch.Default = int32(o.MaxMessageBytes + recordOverhead)
	if o.FetchDefault > 0 {
		// Larger records still come through: sarama grows the fetch up
		// to Fetch.Max for them.
		c.Consumer.Fetch.Default = int32(o.FetchDefault)
		c.Consumer.Fetch.Max = int32(o.MaxMessageBytes + recordOverhead)
	}
	c.Consumer.MaxWaitTime = o.FetchMaxWait
	c.Consumer.Retry.BackoffFunc = RetryBackoff
	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.Initial = sarama.OffsetNewest
	c.Consumer.Offsets.AutoCommit.Enable = true
	c.Consumer.Offsets.AutoCommit.Interval = time.Second
	c.Consumer.Group.Session.Timeout = o.SessionTimeout
	c.Consumer.Group.Heartbeat.Interval = min(o.SessionTimeout/3, 3*time.Second)
	c.Consumer.Group.Rebalance.Retry.Max = 10
	c.Consumer.Group.InstanceId = o.InstanceID
	if o.TLS != nil {
		c.Net.TLS.Enable = true
		c.Net.TLS.Config = o.TLS
	}
	switch o.SASL.Mechanism {
	case "":
	case "PLAIN":
		c.Net.SASL.Enable, c.Net.SASL.Mechanism = true, sarama.SASLTypePlaintext
	case "SCRAM-SHA-256":
		c.Net.SASL.Enable, c.Net.SASL.Mechanism = true, sarama.SASLTypeSCRAMSHA256
		c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA256} }
	case "SCRAM-SHA-512":
		c.Net.SASL.Enable, c.Net.SASL.Mechanism = true, sarama.SASLTypeSCRAMSHA512
		c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA512} }
	default:
		return nil, fmt.Errorf("kafka sasl mechanism %q: not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", o.SASL.Mechanism)
	}
	if c.Net.SASL.Enable {
		c.Net.SASL.User, c.Net.SASL.Password = o.SASL.Username, o.SASL.Password
		c.Net.SASL.Handshake = true
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("kafka client config: %w", err)
	}
	return c, nil
}

// Dial connects a sarama client, retrying with exponential back-off (250 ms
// up to 10 s) until it succeeds or ctx ends. onError, if not nil, is told
// every failed attempt (for readiness reporting); the first failure and every
// change of error are logged.
func Dial(ctx context.Context, o Options, log *slog.Logger, onError func(error)) (sarama.Client, error) {
	if len(o.Brokers) == 0 {
		return nil, errors.New("kafka dial: no brokers")
	}
	cfg, err := o.saramaConfig()
	if err != nil {
		return nil, err
	}
	backoff := 250 * time.Millisecond
	lastMsg := ""
	for attempt := 1; ; attempt++ {
		client, err := sarama.NewClient(o.Brokers, cfg)
		if err == nil {
			if attempt > 1 {
				log.Info("kafka reachable", "brokers", o.Brokers, "attempts", attempt)
			}
			return client, nil
		}
		err = fmt.Errorf("kafka dial %v: %w", o.Brokers, err)
		if onError != nil {
			onError(err)
		}
		if msg := err.Error(); msg != lastMsg {
			log.Warn("kafka not reachable, retrying", "err", err, "retry_in", backoff)
			lastMsg = msg
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("kafka dial: %w (last error: %w)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// TopicOptions are the settings of the frames topic when streamd creates it.
type TopicOptions struct {
	Partitions        int
	ReplicationFactor int
	Retention         time.Duration // 0: broker default
	RetentionBytes    int64         // per partition; -1 unlimited, 0: broker default
	MaxMessageBytes   int           // the same value as Options.MaxMessageBytes
	// Compact keeps the newest record of each key (cleanup.policy
	// compact; with Retention too, "compact,delete": a key whose newest
	// record is older than Retention goes as well). A record with a nil
	// value (a tombstone) removes its key.
	Compact bool
}

// EnsureTopic creates the topic if it does not exist. An existing topic is
// left as it is, but a max.message.bytes smaller than frames need is logged
// as a warning, since such frames would be rejected.
func EnsureTopic(client sarama.Client, topic string, o TopicOptions, log *slog.Logger) error {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("ensure topic %q: %w", topic, err)
	}
	// Not closing admin: that would close the shared client.
	entries := map[string]*string{
		"max.message.bytes": ptr(strconv.Itoa(o.MaxMessageBytes + recordOverhead)),
	}
	if o.Retention > 0 {
		entries["retention.ms"] = ptr(strconv.FormatInt(o.Retention.Milliseconds(), 10))
		// Retention deletes whole segments: roll them often enough.
		entries["segment.ms"] = ptr(strconv.FormatInt(max(o.Retention.Milliseconds()/4, 1000), 10))
	}
	if o.Compact {
		policy := "compact"
		if o.Retention > 0 {
			policy = "compact,delete"
		}
		entries["cleanup.policy"] = ptr(policy)
	}
	if o.RetentionBytes != 0 {
		entries["retention.bytes"] = ptr(strconv.FormatInt(o.RetentionBytes, 10))
		if o.RetentionBytes > 0 {
			seg := min(max(o.RetentionBytes/4, 1<<20), 256<<20)
			entries["segment.bytes"] = ptr(strconv.FormatInt(seg, 10))
		}
	}
	err = admin.CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions:     int32(o.Partitions),
		ReplicationFactor: int16(o.ReplicationFactor),
		ConfigEntries:     entries,
	}, false)
	switch {
	case err == nil:
		log.Info("topic created", "topic", topic, "partitions", o.Partitions, "retention", o.Retention, "retention_bytes", o.RetentionBytes)
	case errors.Is(err, sarama.ErrTopicAlreadyExists):
		checkTopicLimit(admin, topic, o.MaxMessageBytes, log)
	default:
		return fmt.Errorf("ensure topic %q: create: %w", topic, err)
	}
	// Make sure the client's metadata knows the topic before producing.
	for i := 0; i < 20; i++ {
		if err = client.RefreshMetadata(topic); err == nil {
			if parts, perr := client.Partitions(topic); perr == nil && len(parts) > 0 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("ensure topic %q: metadata: %w", topic, err)
}

func checkTopicLimit(admin sarama.ClusterAdmin, topic string, want int, log *slog.Logger) {
	results, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"max.message.bytes"}}}, sarama.DescribeConfigsOptions{})
	if err != nil {
		log.Warn("cannot read topic config", "topic", topic, "err", err)
		return
	}
	var entries []sarama.ConfigEntry
	for _, r := range results {
		if r.Name != topic {
			continue
		}
		if r.ErrorCode != sarama.ErrNoError {
			log.Warn("cannot read topic config", "topic", topic, "err", r.ErrorCode, "detail", r.ErrorMsg)
			return
		}
		entries = append(entries, r.Configs...)
	}
	for _, e := range entries {
		if e.Name != "max.message.bytes" {
			continue
		}
		if have, err := strconv.Atoi(e.Value); err == nil && have < want {
			log.Warn("the topic's max.message.bytes is smaller than the largest frame: larger frames will be rejected",
				"topic", topic, "topic_max_message_bytes", have, "max_message_bytes", want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
