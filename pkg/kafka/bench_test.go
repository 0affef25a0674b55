package kafka

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/broker"
	"github.com/streamd/streamd/pkg/frame"
)

// BenchmarkDeliveryLatency measures capture → consumer latency through the
// embedded broker at 80 frames/s of 76 kB, with the producer and the consumer
// on one shared client or on a client each (as streamd runs them). It
// reports p50/p99/max in milliseconds; b.N is the number of frames.
func BenchmarkDeliveryLatency(b *testing.B) {
	for _, mode := range []struct {
		name    string
		shared  bool
		dataDir bool
	}{{"shared-client", true, false}, {"separate-clients", false, false}, {"separate-clients-datadir", false, true}} {
		b.Run(mode.name, func(b *testing.B) {
			o := broker.Options{}
			if mode.dataDir {
				o.DataDir = b.TempDir()
			}
			br, err := broker.Start(o)
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			log := slog.New(slog.DiscardHandler)
			dialB := func() sarama.Client {
				c, err := Dial(context.Background(), Options{Brokers: []string{br.Addr()}}, log, nil)
				if err != nil {
					b.Fatal(err)
				}
				return c
			}
			pc := dialB()
			defer pc.Close()
			cc := pc
			if !mode.shared {
				cc = dialB()
				defer cc.Close()
			}
			if err := EnsureTopic(pc, "t", TopicOptions{Partitions: 8, ReplicationFactor: 1, MaxMessageBytes: 4 << 20}, log); err != nil {
				b.Fatal(err)
			}
			var mu sync.Mutex
			var lats []float64
			got := make(chan struct{}, 1<<16)
			cons, err := NewConsumer(cc, "g", "t", 4<<20, func(f *frame.Frame) {
				mu.Lock()
				lats = append(lats, float64(f.ReceivedAt.Sub(f.CapturedAt).Microseconds())/1000)
				mu.Unlock()
				got <- struct{}{}
			}, log)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan struct{})
			go func() { defer close(ran); _ = cons.Run(ctx) }()
			defer func() { cancel(); <-ran; _ = cons.Close() }()
			for deadline := time.Now().Add(20 * time.Second); cons.Ready() != nil; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					b.Fatalf("consumer never ready: %v", cons.Ready())
				}
			}
			prod, err := NewProducer(pc, "t", 4<<20, 0, log)
			if err != nil {
				b.Fatal(err)
			}
			// A whole JPEG, zero-padded to a typical frame's size: the
			// consumer drops records that are not a complete image.
			data := jpegBytes(b, 8, 8)
			data = append(data, make([]byte, 76000-len(data))...)
			tick := time.NewTicker(time.Second / 80)
			defer tick.Stop()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				<-tick.C
				_ = prod.Publish(&frame.Frame{Camera: "cam", Seq: uint64(i), CapturedAt: time.Now(), ContentType: frame.TypeJPEG, Data: data})
			}
			for range b.N {
				select {
				case <-got:
				case <-time.After(10 * time.Second):
					b.Fatal("frames lost")
				}
			}
			b.StopTimer()
			_ = prod.Close()
			mu.Lock()
			slices.Sort(lats)
			q := func(p float64) float64 { return lats[int(p*float64(len(lats)-1))] }
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(q(1), "max-ms")
			mu.Unlock()
		})
	}
}
