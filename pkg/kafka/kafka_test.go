package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/broker"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/testutil"
)

func startBroker(t *testing.T) string {
	t.Helper()
	b, err := broker.Start(broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Addr()
}

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func dial(t *testing.T, addr string) sarama.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, Options{Brokers: []string{addr}, FetchMaxWait: 20 * time.Millisecond}, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func jpegBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, w, h)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// collector is a frame sink for the consumer.
type collector struct {
	mu     sync.Mutex
	frames []*frame.Frame
	more   chan struct{}
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1000)} }

func (c *collector) sink(f *frame.Frame) {
	c.mu.Lock()
	c.frames = append(c.frames, f)
	c.mu.Unlock()
	c.more <- struct{}{}
}

func (c *collector) wait(t *testing.T, n int) []*frame.Frame {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		if len(c.frames) >= n {
			out := append([]*frame.Frame(nil), c.frames...)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		select {
		case <-c.more:
		case <-deadline:
			t.Fatalf("timed out waiting for %d frames", n)
		}
	}
}

func startConsumer(t *testing.T, client sarama.Client, group, topic string, sink func(*frame.Frame)) *Consumer {
	t.Helper()
	c, err := NewConsumer(client, group, topic, 1<<20, sink, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; _ = c.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for c.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("consumer never ready: %v", c.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

func ensure(t *testing.T, client sarama.Client, topic string) {
	t.Helper()
	if err := EnsureTopic(client, topic, TopicOptions{Partitions: 4, ReplicationFactor: 1, Retention: time.Hour, RetentionBytes: 64 << 20, MaxMessageBytes: 1 << 20}, testLogger(t)); err != nil {
		t.Fatal(err)
	}
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	addr := startBroker(t)
	client := dial(t, addr)
	ensure(t, client, "frames")
	ensure(t, client, "frames") // existing topic: fine

	col := newCollector()
	cons := startConsumer(t, client, "g1", "frames", col.sink)
	prod, err := NewProducer(client, "frames", 1<<20, 0, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	img := jpegBytes(t, 32, 24)
	captured := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	for i := range uint64(10) {
		for _, cam := range []string{"north", "south"} {
			f := &frame.Frame{Camera: cam, Seq: i, CapturedAt: captured.Add(time.Duration(i) * time.Millisecond), Width: 32, Height: 24, ContentType: frame.TypeJPEG, Data: img}
			if err := prod.Publish(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := col.wait(t, 20)
	next := map[string]uint64{}
	for _, f := range got {
		if f.Seq != next[f.Camera] {
			t.Fatalf("camera %s: seq %d, want %d (per-camera order must hold)", f.Camera, f.Seq, next[f.Camera])
		}
		next[f.Camera]++
		if !bytes.Equal(f.Data, img) || f.Width != 32 || f.Height != 24 || f.ContentType != frame.TypeJPEG {
			t.Fatalf("frame content: %+v", f)
		}
		if want := captured.Add(time.Duration(f.Seq) * time.Millisecond); !f.CapturedAt.Equal(want) {
			t.Fatalf("captured-at %v, want %v", f.CapturedAt, want)
		}
		if f.ReceivedAt.IsZero() {
			t.Fatal("received-at not set")
		}
	}
	if err := prod.Close(); err != nil {
		t.Fatal(err)
	}
	if st := prod.Stats(); st.Sent != 20 || st.Failed != 0 {
		t.Fatalf("producer stats %+v", st)
	}
	if prod.Close() != nil || !errors.Is(prod.Publish(got[0]), ErrClosed) {
		t.Fatal("publish after close must fail with ErrClosed")
	}
	if st := cons.Stats(); st.Consumed != 20 || st.Invalid != 0 {
		t.Fatalf("consumer stats %+v", st)
	}
}

// The producer stamps each record with the frame's capture time, so a
// moment of video can be found by time: the broker answers the offset of the
// first record captured at or after it.
func TestOffsetByCaptureTime(t *testing.T) {
	addr := startBroker(t)
	client := dial(t, addr)
	// One partition: every record of the camera is in it, in publish order.
	if err := EnsureTopic(client, "bytime", TopicOptions{Partitions: 1, ReplicationFactor: 1, MaxMessageBytes: 1 << 20}, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	prod, err := NewProducer(client, "bytime", 1<<20, 0, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	img := jpegBytes(t, 8, 8)
	// Frame i is captured at base + 10i ms and, alone in the partition,
	// lands at offset i.
	const n = 10
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * 10 * time.Millisecond) }
	for i := range n {
		if err := prod.Publish(&frame.Frame{Camera: "cam", Seq: uint64(i), CapturedAt: at(i), ContentType: frame.TypeJPEG, Data: img}); err != nil {
			t.Fatal(err)
		}
	}
	if err := prod.Close(); err != nil {
		t.Fatal(err)
	}
	if st := prod.Stats(); st.Sent != n {
		t.Fatalf("producer stats %+v, want %d sent", st, n)
	}
	newest, err := client.GetOffset("bytime", 0, sarama.OffsetNewest)
	if err != nil || newest != n {
		t.Fatalf("newest offset %d (%v), want %d", newest, err, n)
	}
	for _, tc := range []struct {
		name  string
		at    time.Time
		kafka int64 // what the broker answers
		want  int64 // what OffsetAt returns
	}{
		{"exactly the first frame", at(0), 0, 0},
		{"before the first frame", base.Add(-time.Hour), 0, 0},
		{"between frames 3 and 4", at(3).Add(5 * time.Millisecond), 4, 4},
		{"one millisecond after frame 3", at(3).Add(time.Millisecond), 4, 4},
		{"exactly frame 7", at(7), 7, 7},
		{"exactly the last frame", at(n - 1), n - 1, n - 1},
		// Nothing at or after it: Kafka answers -1, and OffsetAt the
		// next offset to be written, where a reader waits for new frames.
		{"after the last frame", at(n - 1).Add(time.Millisecond), -1, n},
	} {
		off, err := client.GetOffset("bytime", 0, tc.at.UnixMilli())
		if err != nil || off != tc.kafka {
			t.Errorf("%s: broker answers offset %d (%v), want %d", tc.name, off, err, tc.kafka)
		}
		off, err = OffsetAt(client, "bytime", 0, tc.at)
		if err != nil || off != tc.want {
			t.Errorf("%s: OffsetAt %d (%v), want %d", tc.name, off, err, tc.want)
		}
	}
}

func TestConsumerStartsAtNewest(t *testing.T) {
	addr := startBroker(t)
	client := dial(t, addr)
	ensure(t, client, "frames")
	prod, err := NewProducer(client, "frames", 1<<20, 0, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	img := jpegBytes(t, 8, 8)
	for i := range uint64(50) {
		if err := prod.Publish(&frame.Frame{Camera: "cam", Seq: i, CapturedAt: time.Now(), ContentType: frame.TypeJPEG, Data: img}); err != nil {
			t.Fatal(err)
		}
	}
	if err := prod.Close(); err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	startConsumer(t, client, "late", "frames", col.sink)
	got := col.wait(t, 1)
	if got[0].Seq != 49 {
		t.Fatalf("a new viewer node must start at the newest frame: got seq %d, want 49", got[0].Seq)
	}
}

func TestOversizedFrameIsRefusedAndNextGoesOn(t *testing.T) {
	addr := startBroker(t)
	client := dial(t, addr)
	ensure(t, client, "frames")
	col := newCollector()
	startConsumer(t, client, "g", "frames", col.sink)
	prod, err := NewProducer(client, "frames", 64<<10, 0, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	big := append(jpegBytes(t, 8, 8), make([]byte, 100<<10)...)
	err = prod.Publish(&frame.Frame{Camera: "cam", Seq: 0, CapturedAt: time.Now(), ContentType: frame.TypeJPEG, Data: big})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized frame: %v, want ErrTooLarge", err)
	}
	if err := prod.Publish(&frame.Frame{Camera: "cam", Seq: 1, CapturedAt: time.Now(), ContentType: frame.TypeJPEG, Data: jpegBytes(t, 8, 8)}); err != nil {
		t.Fatal(err)
	}
	if got := col.wait(t, 1); got[0].Seq != 1 {
		t.Fatalf("got seq %d", got[0].Seq)
	}
	if st := prod.Stats(); st.TooLarge != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestForeignAndInvalidRecords(t *testing.T) {
	addr := startBroker(t)
	client := dial(t, addr)
	ensure(t, client, "frames")
	col := newCollector()
	cons := startConsumer(t, client, "g", "frames", col.sink)
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	img := jpegBytes(t, 16, 16)
	for _, m := range []*sarama.ProducerMessage{
		{Topic: "frames", Key: sarama.StringEncoder("cam"), Value: sarama.StringEncoder("not an image at all")},
		{Topic: "frames", Key: sarama.StringEncoder("bad/key"), Value: sarama.ByteEncoder(img)},
		{Topic: "frames", Key: sarama.StringEncoder("cam"), Value: sarama.ByteEncoder(img[:40])},                                                 // truncated JPEG
		{Topic: "frames", Key: sarama.StringEncoder("cam"), Value: sarama.ByteEncoder(append(append([]byte{}, img...), make([]byte, 1<<20)...))}, // over the consumer's limit
		{Topic: "frames", Key: sarama.StringEncoder("cam"), Value: sarama.ByteEncoder(img)},
		{Topic: "frames", Value: sarama.ByteEncoder(img)}, // no key, no headers
	} {
		if _, _, err := sp.SendMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	got := col.wait(t, 2)
	cams := map[string]bool{}
	for _, f := range got {
		cams[f.Camera] = true
	}
	if !cams["cam"] || !cams[frame.UnkeyedCamera] {
		t.Fatalf("cameras seen: %v", cams)
	}
	deadline := time.Now().Add(5 * time.Second)
	for cons.Stats().Invalid != 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := cons.Stats(); st.Invalid != 4 {
		t.Fatalf("invalid records counted: %+v", st)
	}
}

// A producer or viewer node may start before Kafka: Dial keeps trying,
// reports each failed attempt, and hands back a working client once the
// broker is up.
func TestDialRetriedUntilBrokerStarts(t *testing.T) {
	// A free port with nothing listening on it yet.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var failures atomic.Int32
	firstFailure := make(chan error, 1)
	onError := func(err error) { // called on Dial's goroutine
		if failures.Add(1) == 1 {
			firstFailure <- err
		}
	}
	type dialed struct {
		client sarama.Client
		err    error
	}
	result := make(chan dialed, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		c, err := Dial(ctx, Options{Brokers: []string{addr}, DialTimeout: 500 * time.Millisecond, FetchMaxWait: 20 * time.Millisecond}, testLogger(t), onError)
		result <- dialed{c, err}
	}()
	// However the test ends, Dial (which logs to t) has returned by then.
	defer func() { cancel(); <-exited }()

	select {
	case err := <-firstFailure:
		if !strings.Contains(err.Error(), addr) {
			t.Errorf("failed attempt reported as %q: does not name the broker %s", err, addr)
		}
	case r := <-result:
		t.Fatalf("Dial returned with no broker running: client %v, err %v", r.client, r.err)
	case <-time.After(15 * time.Second):
		t.Fatal("no failed attempt reported while the broker was down")
	}
	b, err := broker.Start(broker.Options{Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)

	var client sarama.Client
	select {
	case r := <-result:
		if r.err != nil {
			t.Fatalf("Dial after the broker started: %v (%d failed attempts reported)", r.err, failures.Load())
		}
		client = r.client
		t.Cleanup(func() { _ = client.Close() })
	case <-time.After(20 * time.Second):
		t.Fatalf("Dial did not connect to the broker started late (%d failed attempts reported)", failures.Load())
	}
	if n := failures.Load(); n < 1 {
		t.Fatalf("%d failed attempts reported, want at least 1", n)
	}

	// The client from the retried dial works.
	ensure(t, client, "late")
	prod, err := NewProducer(client, "late", 1<<20, 0, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := prod.Publish(&frame.Frame{Camera: "cam", Seq: 0, CapturedAt: time.Now(), ContentType: frame.TypeJPEG, Data: jpegBytes(t, 8, 8)}); err != nil {
		t.Fatal(err)
	}
	if err := prod.Close(); err != nil {
		t.Fatal(err)
	}
	if st := prod.Stats(); st.Sent != 1 || st.Failed != 0 {
		t.Fatalf("producing through the retried client: %+v", st)
	}
}

// An existing topic whose max.message.bytes is smaller than the frames
// streamd is configured for is left alone, with a warning: such frames
// would be rejected.
func TestExistingTopicTooSmallIsWarnedAbout(t *testing.T) {
	client := dial(t, startBroker(t))
	small := TopicOptions{Partitions: 1, ReplicationFactor: 1, MaxMessageBytes: 100 << 10}
	if err := EnsureTopic(client, "small", small, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	const warning = "max.message.bytes is smaller than the largest frame"
	for _, tc := range []struct {
		maxBytes int
		warn     bool
	}{
		{100 << 10, false}, // as created
		{1 << 20, true},    // larger frames than the topic takes
	} {
		logs := &testutil.Buffer{}
		o := small
		o.MaxMessageBytes = tc.maxBytes
		if err := EnsureTopic(client, "small", o, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(logs.String(), warning); got != tc.warn {
			t.Errorf("existing topic, max_message_bytes %d: warned %v, want %v; logs:\n%s", tc.maxBytes, got, tc.warn, logs)
		}
		if strings.Contains(logs.String(), "cannot read topic config") {
			t.Errorf("topic config not read:\n%s", logs)
		}
	}
}

func TestDialGivesUpWithContextAndReports(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	var reported []error
	_, err := Dial(ctx, Options{Brokers: []string{"127.0.0.1:1"}, DialTimeout: 200 * time.Millisecond}, testLogger(t), func(err error) { reported = append(reported, err) })
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial to a closed port: %v", err)
	}
	if len(reported) == 0 {
		t.Fatal("failed attempts were not reported")
	}
}

// A compacted topic is created with its cleanup policy, and a nil value is
// written as a tombstone (a null value), which Follow delivers as nil,
// unlike an empty value.
func TestCompactedTopicAndTombstones(t *testing.T) {
	client := dial(t, startBroker(t))
	if err := EnsureTopic(client, "marks", TopicOptions{Partitions: 2, ReplicationFactor: 1, Retention: time.Hour, MaxMessageBytes: 1 << 20, Compact: true}, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	res, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: "marks", ConfigNames: []string{"cleanup.policy"}}}, sarama.DescribeConfigsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, r := range res {
		for _, c := range r.Configs {
			if c.Name == "cleanup.policy" {
				policy = c.Value
			}
		}
	}
	if policy != "compact,delete" {
		t.Fatalf("cleanup.policy %q, want compact,delete", policy)
	}
	w, err := NewWriter(client)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	now := time.Now()
	for _, v := range [][]byte{[]byte(`{"x":1}`), nil, {}} {
		if _, _, err := w.Write("marks", "k", v, now, nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan Record, 3)
	go func() { _ = Follow(ctx, client, "marks", time.Unix(0, 0), func(r Record) { got <- r }, testLogger(t)) }()
	var values []string
	for range 3 {
		select {
		case r := <-got:
			switch {
			case r.Value == nil:
				values = append(values, "null")
			default:
				values = append(values, fmt.Sprintf("%q", r.Value))
			}
		case <-ctx.Done():
			t.Fatalf("read %v, want 3 records", values)
		}
	}
	if want := []string{`"{\"x\":1}"`, "null", `""`}; !slices.Equal(values, want) {
		t.Fatalf("values %v, want %v", values, want)
	}
}
