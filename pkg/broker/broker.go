// Package broker runs the embedded Kafka-protocol broker (franz-go's kfake)
// that makes the all-in-one role work with no setup. It is a single-node,
// unreplicated broker meant for one machine; production deployments point
// streamd at a real Kafka cluster instead.
//
// With Options.Brokers above 1 it plays a cluster for tests: several
// brokers in one process sharing one log, whose partition leaders and group
// coordinators can be moved and whose brokers can be lost (see
// ShuffleLeaders, MoveCoordinators, RemoveNode), as in a rolling restart or
// a machine failure. kfake does not replicate: every broker serves the same
// data, so a replication factor is accepted and reported but costs nothing.
package broker

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Defaults of Options, used for zero fields.
const (
	// DefaultSegmentBytes is small enough that retention, which deletes
	// whole segments, keeps the disk near its bound (kfake's is 100 MiB).
	DefaultSegmentBytes = 16 << 20
	// DefaultRetentionCheck is how often retention runs (kfake's is 1 h).
	DefaultRetentionCheck  = 30 * time.Second
	DefaultMaxMessageBytes = 4 << 20
)

// Options configures the embedded broker. Zero fields take the documented
// defaults.
type Options struct {
	Listen          string        // host:port; default 127.0.0.1:0 (any free port)
	DataDir         string        // persist segments, offsets and groups here; empty: memory only
	SyncWrites      bool          // with DataDir: fsync each write before acknowledging it
	SegmentBytes    int           // log.segment.bytes; default 16 MiB
	RetentionCheck  time.Duration // how often retention is enforced (log.cleaner.backoff.ms); default 30s
	MaxMessageBytes int           // message.max.bytes; default 4 MiB
	Logger          *slog.Logger  // default: discard
	// Brokers is how many brokers to run (default 1). The first listens
	// on Listen, the others on free ports of the same host.
	Brokers int
}

// Broker is a running embedded broker.
type Broker struct {
	cluster   *kfake.Cluster
	addr      string
	log       *slog.Logger
	closeOnce sync.Once

	mu        sync.Mutex
	listeners []*trackingListener // by node id: kfake numbers its brokers 0, 1, … in the order it listens
	removed   []int32
}

// Start starts the broker and returns once it accepts connections.
func Start(o Options) (*Broker, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.RetentionCheck == 0 {
		o.RetentionCheck = DefaultRetentionCheck
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Brokers <= 0 {
		o.Brokers = 1
	}
	// kfake listens on 127.0.0.1 only; bind our own listener so the
	// configured host is honoured and a busy port is reported clearly.
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker: listen on %s: %w", o.Listen, err)
	}
	host, _, _ := net.SplitHostPort(o.Listen)
	port := ln.Addr().(*net.TCPAddr).Port
	b := &Broker{log: o.Logger}
	first := ln
	listenFn := func(network, _ string) (net.Listener, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		l := first
		first = nil
		if l == nil {
			var err error
			if l, err = net.Listen(network, net.JoinHostPort(host, "0")); err != nil {
				return nil, fmt.Errorf("embedded broker: listen: %w", err)
			}
		}
		tl := &trackingListener{Listener: l, conns: map[net.Conn]struct{}{}}
		b.listeners = append(b.listeners, tl)
		return tl, nil
	}
	ports := make([]int, o.Brokers)
	ports[0] = port
	opts := []kfake.Opt{
		kfake.NumBrokers(o.Brokers),
		kfake.Ports(ports...),
		kfake.ListenFn(listenFn),
		kfake.ClusterID("streamd-embedded"),
		// Viewer nodes join with short sessions so a dead node's
		// partitions move quickly.
		kfake.GroupMinSessionTimeout(time.Second),
		kfake.BrokerConfigs(map[string]string{
			"log.segment.bytes":      strconv.Itoa(o.SegmentBytes),
			"log.cleaner.backoff.ms": strconv.FormatInt(o.RetentionCheck.Milliseconds(), 10),
			"message.max.bytes":      strconv.Itoa(o.MaxMessageBytes + 64<<10),
		}),
	}
	if o.DataDir != "" {
		if err := os.MkdirAll(o.DataDir, 0o750); err != nil {
			ln.Close()
			return nil, fmt.Errorf("start embedded broker: create data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(o.DataDir))
		if o.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) != o.Brokers || len(b.listeners) != o.Brokers {
		c.Close()
		return nil, fmt.Errorf("start embedded broker: expected %d listeners, got %v", o.Brokers, addrs)
	}
	b.cluster, b.addr = c, addrs[0]
	b.log.Info("embedded broker started", "addr", b.addr, "brokers", o.Brokers, "data_dir", o.DataDir)
	return b, nil
}

// Addr returns the host:port clients connect to: the first broker's.
func (b *Broker) Addr() string { return b.addr }

// Addrs returns the host:port of every broker not removed, in node order.
func (b *Broker) Addrs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for id, l := range b.listeners {
		if !slices.Contains(b.removed, int32(id)) {
			out = append(out, l.Addr().String())
		}
	}
	return out
}

// Nodes returns the node ids of the brokers not removed.
func (b *Broker) Nodes() []int32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []int32
	for id := range b.listeners {
		if !slices.Contains(b.removed, int32(id)) {
			out = append(out, int32(id))
		}
	}
	return out
}

// ShuffleLeaders elects a new leader, at random, for every partition, as a
// rolling restart or a preferred-leader election does: clients sending to
// or fetching from the old leader are told it no longer leads.
func (b *Broker) ShuffleLeaders() { b.cluster.ShufflePartitionLeaders() }

// MoveCoordinators moves every consumer group to another coordinator (kfake
// rehashes them): heartbeats and offset commits to the old one are told it
// no longer coordinates.
func (b *Broker) MoveCoordinators() { b.cluster.RehashCoordinators() }

// ApplyRetention enforces every topic's retention.ms and retention.bytes
// now, as the periodic retention check does.
func (b *Broker) ApplyRetention() { b.cluster.ApplyRetention() }

// LeaderFor returns the node leading a partition, or -1.
func (b *Broker) LeaderFor(topic string, partition int32) int32 {
	return b.cluster.LeaderFor(topic, partition)
}

// HasGroup reports whether a consumer group exists.
func (b *Broker) HasGroup(group string) bool { return b.cluster.GroupInfo(group) != nil }

// CoordinatorFor returns the node coordinating a consumer group.
func (b *Broker) CoordinatorFor(group string) int32 { return b.cluster.CoordinatorFor(group) }

// RefuseWrites makes every broker answer writes to topic with
// NOT_ENOUGH_REPLICAS, as a cluster left with fewer in-sync replicas than
// min.insync.replicas answers acks=all, until restore is called.
func (b *Broker) RefuseWrites(topic string) (restore func()) {
	h := b.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.NotEnoughReplicas, Count: -1})
	return h.Remove
}

// RemoveNode takes a broker away for good, as a machine that died: it stops
// listening, every connection to it is cut, and its partitions get new
// leaders among the others.
func (b *Broker) RemoveNode(id int32) error {
	b.mu.Lock()
	if id < 0 || int(id) >= len(b.listeners) || slices.Contains(b.removed, id) {
		b.mu.Unlock()
		return fmt.Errorf("remove broker %d: no such broker", id)
	}
	l := b.listeners[id]
	b.mu.Unlock()
	if err := b.cluster.RemoveNode(id); err != nil {
		return fmt.Errorf("remove broker %d: %w", id, err)
	}
	b.mu.Lock()
	b.removed = append(b.removed, id)
	b.mu.Unlock()
	l.cut()
	b.log.Info("embedded broker removed", "node", id, "addr", l.Addr().String())
	return nil
}

// Close stops the broker, flushing persisted state. It is idempotent.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		b.cluster.Close()
		b.log.Info("embedded broker stopped")
	})
}

// trackingListener remembers the connections it accepted, so that a
// removed broker can cut them (kfake only closes the listener).
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	dead  bool
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead {
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, l: l}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// cut closes the listener and every connection it accepted.
func (l *trackingListener) cut() {
	l.mu.Lock()
	l.dead = true
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	l.Listener.Close()
	for _, c := range conns {
		c.Close()
	}
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
