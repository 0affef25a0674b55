package kafka

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/broker"
	"github.com/streamd/streamd/pkg/frame"
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

func jpegBytes(t *testing.T, w, h int) []byte {
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

	// The record timestamp is the capture time, so offsets can be found by time.
	off, err := client.GetOffset("frames", 0, captured.Add(5*time.Millisecond).UnixMilli())
	if err != nil || off < 0 {
		t.Fatalf("offset by time: %d %v", off, err)
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
