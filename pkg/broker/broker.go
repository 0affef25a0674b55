// Package broker runs the embedded Kafka-protocol broker (franz-go's kfake)
// that makes the all-in-one role work with no setup. It is a single-node,
// unreplicated broker meant for one machine; production deployments point
// streamd at a real Kafka cluster instead.
package broker

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
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
	SegmentBytes    int           // log.segment.bytes; default 16 MiB
	RetentionCheck  time.Duration // how often retention is enforced (log.cleaner.backoff.ms); default 30s
	MaxMessageBytes int           // message.max.bytes; default 4 MiB
	Logger          *slog.Logger  // default: discard
}

// Broker is a running embedded broker.
type Broker struct {
	cluster   *kfake.Cluster
	addr      string
	log       *slog.Logger
	closeOnce sync.Once
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
	// kfake listens on 127.0.0.1 only; bind our own listener so the
	// configured host is honoured and a busy port is reported clearly.
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker: listen on %s: %w", o.Listen, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	handed := false
	listenFn := func(network, _ string) (net.Listener, error) {
		if handed {
			return nil, fmt.Errorf("embedded broker: listener already used")
		}
		handed = true
		return ln, nil
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
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
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		return nil, fmt.Errorf("start embedded broker: expected one listener, got %v", addrs)
	}
	b := &Broker{cluster: c, addr: addrs[0], log: o.Logger}
	b.log.Info("embedded broker started", "addr", b.addr, "data_dir", o.DataDir)
	return b, nil
}

// Addr returns the host:port clients connect to.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker, flushing persisted state. It is idempotent.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		b.cluster.Close()
		b.log.Info("embedded broker stopped")
	})
}
