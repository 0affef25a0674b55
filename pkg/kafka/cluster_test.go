package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/broker"
	"github.com/streamd/streamd/pkg/frame"
)

func TestRetryBackoff(t *testing.T) {
	for retries, want := range map[int]time.Duration{
		0: 10 * time.Millisecond, 1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 3: 40 * time.Millisecond,
		7: 640 * time.Millisecond, 8: time.Second, 50: time.Second, 1 << 30: time.Second,
	} {
		if got := RetryBackoff(retries); got != want {
			t.Errorf("RetryBackoff(%d) = %v, want %v", retries, got, want)
		}
	}
}

func TestAcks(t *testing.T) {
	for acks, want := range map[string]sarama.RequiredAcks{"": sarama.WaitForAll, "all": sarama.WaitForAll, "leader": sarama.WaitForLocal, "none": sarama.NoResponse} {
		c, err := Options{Brokers: []string{"x:1"}, Acks: acks}.saramaConfig()
		if err != nil {
			t.Fatalf("acks %q: %v", acks, err)
		}
		if c.Producer.RequiredAcks != want {
			t.Errorf("acks %q: RequiredAcks %d, want %d", acks, c.Producer.RequiredAcks, want)
		}
		// Moves are retried quickly, not after sarama's 2 s.
		if c.Consumer.Retry.BackoffFunc == nil || c.Consumer.Retry.BackoffFunc(1) != RetryBackoffMin || c.Producer.Retry.Max != ProducerRetries {
			t.Errorf("acks %q: retry settings not applied", acks)
		}
	}
	if _, err := (Options{Brokers: []string{"x:1"}, Acks: "most"}).saramaConfig(); err == nil {
		t.Error("acks \"most\": no error")
	}
}

// Frames go through a 3-broker cluster while every partition's leader
// moves every 300 ms: every frame is acknowledged and consumed, in order
// per camera, with no producer failure.
func TestFramesThroughLeaderMoves(t *testing.T) {
	b, err := broker.Start(broker.Options{Brokers: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	dialAll := func() sarama.Client {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := Dial(ctx, Options{Brokers: b.Addrs(), FetchMaxWait: 20 * time.Millisecond}, testLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	pc, cc := dialAll(), dialAll()
	if err := EnsureTopic(pc, "frames", TopicOptions{Partitions: 4, ReplicationFactor: 3, MaxMessageBytes: 1 << 20}, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	startConsumer(t, cc, "moves", "frames", col.sink)
	prod, err := NewProducer(pc, "frames", 1<<20, 0, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	img := jpegBytes(t, 32, 24)
	cams := []string{"a", "b", "c", "d"}
	const n = 100 // per camera, 100 a second: 1 s of frames between moves
	stop := make(chan struct{})
	moved := make(chan int)
	go func() {
		moves := 0
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				moved <- moves
				return
			case <-tick.C:
				b.ShuffleLeaders()
				moves++
			}
		}
	}()
	for i := range uint64(n) {
		for _, cam := range cams {
			f := &frame.Frame{Camera: cam, Seq: i, CapturedAt: time.Now(), Width: 32, Height: 24, ContentType: frame.TypeJPEG, Data: img}
			if err := prod.Publish(f); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := col.wait(t, n*len(cams))
	close(stop)
	moves := <-moved
	if err := prod.Close(); err != nil {
		t.Fatal(err)
	}
	if st := prod.Stats(); st.Sent != uint64(n*len(cams)) || st.Failed != 0 || st.Backlog != 0 {
		t.Fatalf("producer stats %+v after %d leader moves", st, moves)
	}
	next := map[string]uint64{}
	for _, f := range got {
		if f.Seq != next[f.Camera] {
			t.Fatalf("camera %s: seq %d, want %d", f.Camera, f.Seq, next[f.Camera])
		}
		next[f.Camera]++
	}
	if moves < 3 {
		t.Fatalf("only %d leader moves happened", moves)
	}
	t.Logf("%d frames through %d leader moves", len(got), moves)
}
