//go:build e2e

package e2e

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
)

// record is a Kafka record as a consumer of the frames topic sees it (its
// value's size only: the tests read thousands of frames).
type record struct {
	Partition int32
	Offset    int64
	Key       string
	Headers   map[string]string
	Size      int
	Value     []byte
	Timestamp time.Time
}

// seq returns the record's seq header, or -1.
func (r record) seq() int64 {
	n, err := strconv.ParseInt(r.Headers["seq"], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// readTopic reads every record of topic from the brokers, from the oldest
// offset to the newest, partition by partition: the one Kafka reader of
// these tests. With values false, records keep their key, headers and
// value size but not the value (the frames topic of a long test is
// large). A topic that does not exist yet reads as empty.
func readTopic(tb testing.TB, topic string, values bool, brokers ...string) []record {
	tb.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Consumer.Fetch.Default = 8 << 20
	cfg.Consumer.Fetch.Max = 8 << 20
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		tb.Fatalf("kafka client for %v: %v", brokers, err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return nil
	}
	if err != nil {
		tb.Fatalf("partitions of %s: %v", topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		tb.Fatal(err)
	}
	defer consumer.Close()
	var out []record
	for _, part := range parts {
		newest, err := client.GetOffset(topic, part, sarama.OffsetNewest)
		if err != nil {
			tb.Fatalf("newest offset of %s/%d: %v", topic, part, err)
		}
		oldest, err := client.GetOffset(topic, part, sarama.OffsetOldest)
		if err != nil {
			tb.Fatalf("oldest offset of %s/%d: %v", topic, part, err)
		}
		if newest <= oldest {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, part, oldest)
		if err != nil {
			tb.Fatalf("consume %s/%d: %v", topic, part, err)
		}
		deadline := time.After(60 * time.Second)
	read:
		for {
			select {
			case m := <-pc.Messages():
				r := record{Partition: part, Offset: m.Offset, Key: string(m.Key), Headers: map[string]string{}, Size: len(m.Value), Timestamp: m.Timestamp}
				if values {
					r.Value = bytes.Clone(m.Value)
				}
				for _, h := range m.Headers {
					r.Headers[string(h.Key)] = string(h.Value)
				}
				out = append(out, r)
				if m.Offset >= newest-1 {
					break read
				}
			case err := <-pc.Errors():
				pc.Close()
				tb.Fatalf("consume %s/%d: %v", topic, part, err)
			case <-deadline:
				pc.Close()
				tb.Fatalf("reading %s/%d: offsets %d to %d not all read within 60s (%d records)", topic, part, oldest, newest, len(out))
			}
		}
		pc.Close()
	}
	return out
}

// seqsByKey returns the seq headers of recs by key (camera), in the order
// of recs; records without a seq header are left out.
func seqsByKey(recs []record) map[string][]int64 {
	out := map[string][]int64{}
	for _, r := range recs {
		if _, ok := r.Headers["seq"]; !ok {
			continue
		}
		if q := r.seq(); q >= 0 {
			out[r.Key] = append(out[r.Key], q)
		}
	}
	return out
}

// checkContiguous requires the records of camera to carry seq 0, 1, 2, ...
// in the order they are in the topic, none missing and none repeated, and
// returns how many there are.
func checkContiguous(t *testing.T, recs []record, camera string) int64 {
	t.Helper()
	next := int64(0)
	for _, r := range recs {
		if r.Key != camera {
			continue
		}
		if s := r.seq(); s != next {
			t.Fatalf("camera %s: record at %d/%d has seq %q, want %d: frames missing or repeated", camera, r.Partition, r.Offset, r.Headers["seq"], next)
		}
		next++
	}
	return next
}

// pausableBroker is a Kafka-protocol broker (kfake, as the embedded one)
// that can be paused: while paused it reads no requests, as a broker that
// hangs, so a producer's frames wait in the producer.
type pausableBroker struct {
	addr string
	mu   sync.Mutex
	open chan struct{} // closed while the broker runs
}

func startPausableBroker(t *testing.T) *pausableBroker {
	t.Helper()
	b := &pausableBroker{open: make(chan struct{})}
	close(b.open)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	handed := false
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(ln.Addr().(*net.TCPAddr).Port),
		kfake.ListenFn(func(string, string) (net.Listener, error) {
			if handed {
				return nil, net.ErrClosed
			}
			handed = true
			return &pausableListener{Listener: ln, b: b}, nil
		}),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(5 << 20)}),
	)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { b.resume(); c.Close() })
	b.addr = c.ListenAddrs()[0]
	return b
}

// pause stops the broker reading requests until resume.
func (b *pausableBroker) pause() {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.open:
		b.open = make(chan struct{})
	default:
	}
}

func (b *pausableBroker) resume() {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.open:
	default:
		close(b.open)
	}
}

func (b *pausableBroker) gate() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

type pausableListener struct {
	net.Listener
	b *pausableBroker
}

func (l *pausableListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &pausableConn{Conn: c, b: l.b, closed: make(chan struct{})}, nil
}

// pausableConn is the broker's side of a connection: its reads wait while
// the broker is paused.
type pausableConn struct {
	net.Conn
	b         *pausableBroker
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *pausableConn) Read(p []byte) (int, error) {
	select {
	case <-c.b.gate():
	case <-c.closed:
		return 0, net.ErrClosed
	}
	return c.Conn.Read(p)
}

func (c *pausableConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
