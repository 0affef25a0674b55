package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// ConnsOptions configures Conns.
type ConnsOptions struct {
	// Client is the options every client dials with; its Brokers are
	// replaced by Brokers() and each client's tune function adjusts it.
	Client Options
	// Brokers returns the brokers to dial when Run starts (the embedded
	// broker's address is known only once it started). Nil: Client.Brokers.
	Brokers func() []string
	// TLS, if set, loads the clients' TLS configuration when Run starts;
	// an error is fatal (Run returns it).
	TLS func() (*tls.Config, error)
	// Status, if set, is told what the connections are doing (systemd
	// STATUS=): "waiting for kafka: …", then Serving.
	Status func(string)
	// Serving is the status reported once every client is connected and
	// every topic exists.
	Serving string
	// Logger logs the connections' troubles; nil: slog.Default().
	Logger *slog.Logger
}

// Conns connects to Kafka in the background, retrying until it can,
// and makes sure the topics asked for exist. Components that need a client
// wait for it (Await). A broker that is down is not an error: Ready says
// so until it is reachable. A configuration the brokers can never accept
// (a TLS key that does not load) is fatal.
//
// Each user gets a client, and so a connection, of its own: Kafka answers
// the requests of one connection in order, so on a shared one every
// produce request would wait behind a parked fetch (up to
// kafka.fetch_max_wait), adding tens of milliseconds to every frame.
//
// Want and Ensure are called before Run; Await, Ready and Close from any
// goroutine.
type Conns struct {
	o   ConnsOptions
	log *slog.Logger

	// wants lists the clients to dial, by name; the value tunes the
	// client's options (a static group member id, a session timeout).
	wants map[string]func(*Options)
	// topics are created if missing, in this order.
	topics []topicSpec

	ready chan struct{} // closed once every client is connected and the topics exist

	mu      sync.Mutex
	clients map[string]sarama.Client
	lastErr error
}

// topicSpec is a topic to create if missing.
type topicSpec struct {
	name string
	opts TopicOptions
}

// NewConns returns connections that dial nothing until Run.
func NewConns(o ConnsOptions) *Conns {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Status == nil {
		o.Status = func(string) {}
	}
	if o.Brokers == nil {
		b := o.Client.Brokers
		o.Brokers = func() []string { return b }
	}
	return &Conns{o: o, log: o.Logger.With("component", "kafka"),
		wants: map[string]func(*Options){}, ready: make(chan struct{}), clients: map[string]sarama.Client{}}
}

// Ensure asks for topic to be created (once) if it does not exist.
func (k *Conns) Ensure(topic string, o TopicOptions) {
	for _, t := range k.topics {
		if t.name == topic {
			return
		}
	}
	k.topics = append(k.topics, topicSpec{topic, o})
}

// Want asks for a client named name; tune, if not nil, adjusts its options
// when it dials.
func (k *Conns) Want(name string, tune func(*Options)) {
	if tune == nil {
		tune = func(*Options) {}
	}
	k.wants[name] = tune
}

// Brokers returns the brokers the clients dial.
func (k *Conns) Brokers() []string { return k.o.Brokers() }

// Name names the connections among a process's components.
func (k *Conns) Name() string { return "kafka" }

// Start does nothing: the connections are made in Run.
func (k *Conns) Start() error { return nil }

// Run dials every wanted client, then ensures the topics, retrying with
// back-off; then it waits for ctx.
func (k *Conns) Run(ctx context.Context) error {
	var tlsCfg *tls.Config
	if k.o.TLS != nil {
		var err error
		if tlsCfg, err = k.o.TLS(); err != nil {
			return fmt.Errorf("kafka tls: %w", err)
		}
	}
	brokers := k.o.Brokers()
	var first sarama.Client
	names := make([]string, 0, len(k.wants))
	for name := range k.wants {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		o := k.o.Client
		o.TLS, o.Brokers = tlsCfg, brokers
		k.wants[name](&o)
		client, err := Dial(ctx, o, k.log, k.setErr)
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
		k.o.Status(k.o.Serving)
		<-ctx.Done()
		return nil
	}
	// Retry topic creation too: a broker that just came up may not be
	// ready to create topics.
	for _, t := range k.topics {
		for backoff := 250 * time.Millisecond; ; backoff = min(backoff*2, 10*time.Second) {
			err := EnsureTopic(first, t.name, t.opts, k.log)
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
	k.o.Status(k.o.Serving)
	<-ctx.Done()
	return nil
}

// Await blocks until Kafka is connected and the topic exists, and returns
// the client named name; an error only when ctx ends first.
func (k *Conns) Await(ctx context.Context, name string) (sarama.Client, error) {
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

func (k *Conns) setErr(err error) {
	k.mu.Lock()
	k.lastErr = err
	k.mu.Unlock()
	if err != nil {
		k.o.Status("waiting for kafka: " + err.Error())
	}
}

// Ready says whether every client is connected and usable.
func (k *Conns) Ready() error {
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

// Close closes the clients; it runs after the producers and consumers
// that use them are closed.
func (k *Conns) Close() error {
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
