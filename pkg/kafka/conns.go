package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/kafka"
)

// kafkaConns connects to Kafka in the background, retrying until it can,
// and makes sure the frames topic exists. Components that need a client
// wait for it (await). A broker that is down is not an error: /readyz says
// so until it is reachable. A configuration the brokers can never accept
// (a TLS key that does not load) is fatal.
//
// Each user gets a client, and so a connection, of its own: Kafka answers
// the requests of one connection in order, so on a shared one every
// produce request would wait behind a parked fetch (up to
// kafka.fetch_max_wait), adding tens of milliseconds to every frame.
type kafkaConns struct {
	cfg     *config.Config
	log     *slog.Logger
	brokers func() []string // the embedded broker's address is known only once it started
	status  func(string)    // systemd STATUS=

	// wants lists the clients to dial, by name; the value tunes the
	// client's options (a static group member id, a session timeout).
	wants map[string]func(*kafka.Options)
	// topics are created if missing, in this order.
	topics []topicSpec

	ready chan struct{} // closed once every client is connected and the topic exists

	mu      sync.Mutex
	clients map[string]sarama.Client
	lastErr error
}

// topicSpec is a topic to create if missing.
type topicSpec struct {
	name string
	opts kafka.TopicOptions
}

func newKafkaConns(cfg *config.Config, log *slog.Logger, brokers func() []string, status func(string)) *kafkaConns {
	k := &kafkaConns{cfg: cfg, log: log.With("component", "kafka"), brokers: brokers, status: status,
		wants: map[string]func(*kafka.Options){}, ready: make(chan struct{}), clients: map[string]sarama.Client{}}
	k.ensure(cfg.Kafka.Topic, kafka.TopicOptions{
		Partitions:        cfg.Kafka.Partitions,
		ReplicationFactor: cfg.Kafka.ReplicationFactor,
		Retention:         cfg.Kafka.Retention,
		RetentionBytes:    cfg.Kafka.RetentionBytes,
		MaxMessageBytes:   cfg.Kafka.MaxMessageBytes,
	})
	return k
}

// ensure asks for topic to be created (once) if it does not exist.
func (k *kafkaConns) ensure(topic string, o kafka.TopicOptions) {
	for _, t := range k.topics {
		if t.name == topic {
			return
		}
	}
	k.topics = append(k.topics, topicSpec{topic, o})
}

// want asks for a client named name; tune, if not nil, adjusts its options
// when it dials.
func (k *kafkaConns) want(name string, tune func(*kafka.Options)) {
	if tune == nil {
		tune = func(*kafka.Options) {}
	}
	k.wants[name] = tune
}

func (k *kafkaConns) Name() string { return "kafka" }
func (k *kafkaConns) Start() error { return nil }

// Run dials every wanted client, then ensures the topic, retrying with
// back-off; then it waits for ctx.
func (k *kafkaConns) Run(ctx context.Context) error {
	cfg := k.cfg
	var tlsCfg *tls.Config
	if t := cfg.Kafka.TLS; t.Enabled {
		var err error
		if tlsCfg, err = kafka.TLSConfig(t.CAFile, t.CertFile, t.KeyFile, t.ServerName, t.InsecureSkipVerify); err != nil {
			return fmt.Errorf("kafka tls: %w", err)
		}
	}
	brokers := k.brokers()
	var first sarama.Client
	for _, name := range sortedKeys(k.wants) {
		o := kafka.Options{
			TLS:             tlsCfg,
			SASL:            kafka.SASL{Mechanism: cfg.Kafka.SASL.Mechanism, Username: cfg.Kafka.SASL.Username, Password: cfg.Kafka.SASL.Password},
			Brokers:         brokers,
			ClientID:        cfg.Kafka.ClientID,
			Version:         cfg.Kafka.Version,
			MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
			FetchMaxWait:    cfg.Kafka.FetchMaxWait,
			Compression:     cfg.Kafka.Compression,
			Acks:            cfg.Kafka.Acks,
			DialTimeout:     cfg.Kafka.DialTimeout,
		}
		k.wants[name](&o)
		client, err := kafka.Dial(ctx, o, k.log, k.setErr)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		k.mu.Lock()
		k.clients[name] = client
		k.mu.Unlock()
		if first == nil {
			first = client
		}
	}
	if first == nil {
		close(k.ready)
		k.status("serving: role " + cfg.Role)
		<-ctx.Done()
		return nil
	}
	// Retry topic creation too: a broker that just came up may not be
	// ready to create topics.
	for _, t := range k.topics {
		for backoff := 250 * time.Millisecond; ; backoff = min(backoff*2, 10*time.Second) {
			err := kafka.EnsureTopic(first, t.name, t.opts, k.log)
			if err == nil {
				break
			}
			k.setErr(err)
			k.log.Warn("cannot ensure topic, retrying", "topic", t.name, "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
		}
	}
	k.setErr(nil)
	close(k.ready)
	k.status("serving: role " + cfg.Role)
	<-ctx.Done()
	return nil
}

// await blocks until Kafka is connected and the topic exists, and returns
// the client named name; an error only when ctx ends first.
func (k *kafkaConns) await(ctx context.Context, name string) (sarama.Client, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-k.ready:
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	c, ok := k.clients[name]
	if !ok {
		return nil, fmt.Errorf("kafka: no client %q was asked for", name)
	}
	return c, nil
}

func (k *kafkaConns) setErr(err error) {
	k.mu.Lock()
	k.lastErr = err
	k.mu.Unlock()
	if err != nil {
		k.status("waiting for kafka: " + err.Error())
	}
}

func (k *kafkaConns) Ready() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lastErr != nil {
		return k.lastErr
	}
	if len(k.clients) < len(k.wants) {
		return errors.New("connecting to kafka")
	}
	for _, c := range k.clients {
		if c.Closed() {
			return errors.New("kafka client closed")
		}
	}
	return nil
}

// Close closes the clients, after the producer and consumer that use them.
func (k *kafkaConns) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var errs []error
	for name, c := range k.clients {
		if err := c.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
			errs = append(errs, fmt.Errorf("close kafka client %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
