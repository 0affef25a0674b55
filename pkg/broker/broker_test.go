package broker

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func client(t *testing.T, addr string) sarama.Client {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	c, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The all-in-one mode keeps its video across restarts when data_dir is set.
func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := Start(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	c := client(t, addr)
	admin, _ := sarama.NewClusterAdminFromClient(c)
	if err := admin.CreateTopic("t", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	p, err := sarama.NewSyncProducerFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "t", Key: sarama.StringEncoder("cam"), Value: sarama.ByteEncoder{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	c.Close()
	b.Close()
	b.Close() // idempotent

	b2, err := Start(Options{Listen: addr, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	c2 := client(t, b2.Addr())
	defer c2.Close()
	newest, err := c2.GetOffset("t", 0, sarama.OffsetNewest)
	if err != nil || newest != 5 {
		t.Fatalf("after restart: newest offset %d (%v), want 5", newest, err)
	}
	cons, err := sarama.NewConsumerFromClient(c2)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition("t", 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for i := range 5 {
		select {
		case m := <-pc.Messages():
			if string(m.Key) != "cam" || m.Value[0] != byte(i) {
				t.Fatalf("record %d: %q %v", i, m.Key, m.Value)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("record %d not read back", i)
		}
	}
}

func TestBusyPortIsAClearError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(Options{Listen: ln.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "start embedded broker: listen on "+ln.Addr().String()) {
		t.Fatalf("got %v", err)
	}
}

// Retention is enforced by the embedded broker on its own schedule, so disk
// and memory stay bounded.
func TestRetentionIsEnforced(t *testing.T) {
	b, err := Start(Options{DataDir: t.TempDir(), SegmentBytes: 1 << 20, RetentionCheck: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := client(t, b.Addr())
	defer c.Close()
	admin, _ := sarama.NewClusterAdminFromClient(c)
	retention, segment := "1048576", "1048576"
	if err := admin.CreateTopic("t", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.bytes": &retention, "segment.bytes": &segment}}, false); err != nil {
		t.Fatal(err)
	}
	p, err := sarama.NewSyncProducerFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	value := make([]byte, 100<<10)
	for range 60 { // 6 MiB into a topic that keeps 1 MiB
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "t", Value: sarama.ByteEncoder(value)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		oldest, err := c.GetOffset("t", 0, sarama.OffsetOldest)
		if err == nil && oldest >= 40 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention not applied: oldest offset %d (%v), want at least 40 of 60 gone", oldest, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
