package broker

import (
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// A cluster of three: every broker answers, leaders and coordinators move
// on demand, and a removed broker is gone for good, connections and all.
func TestClusterMovesAndRemoveNode(t *testing.T) {
	b, err := Start(Options{Brokers: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	addrs := b.Addrs()
	if len(addrs) != 3 || addrs[0] != b.Addr() || !slices.Equal(b.Nodes(), []int32{0, 1, 2}) {
		t.Fatalf("addrs %v (first %s), nodes %v", addrs, b.Addr(), b.Nodes())
	}
	c := client(t, addrs[0])
	defer c.Close()
	if n := len(c.Brokers()); n != 3 {
		t.Fatalf("metadata lists %d brokers, want 3", n)
	}
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic("t", &sarama.TopicDetail{NumPartitions: 8, ReplicationFactor: 3}, false); err != nil {
		t.Fatal(err)
	}
	leaders := func() []int32 {
		var out []int32
		for p := range int32(8) {
			out = append(out, b.LeaderFor("t", p))
		}
		return out
	}
	before := leaders()
	moved := false
	for range 5 {
		b.ShuffleLeaders()
		if !slices.Equal(leaders(), before) {
			moved = true
			break
		}
	}
	if !moved {
		t.Fatalf("5 shuffles left every leader where it was: %v", before)
	}
	g := b.CoordinatorFor("some-group")
	for range 20 {
		b.MoveCoordinators()
		if b.CoordinatorFor("some-group") != g {
			break
		}
	}
	if b.CoordinatorFor("some-group") == g {
		t.Errorf("20 coordinator moves left the group on broker %d", g)
	}

	// A connection open to broker 1 is cut when it is removed, and
	// nothing listens on its address any more.
	conn, err := net.Dial("tcp", addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The broker accepts asynchronously: make sure it holds the connection.
	time.Sleep(100 * time.Millisecond)
	if err := b.RemoveNode(1); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	// Closed by the broker: EOF or a reset, not the read deadline.
	var ne net.Error
	if _, err := conn.Read(make([]byte, 1)); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read on a connection to the removed broker: %v, want EOF or reset", err)
	}
	if c2, err := net.DialTimeout("tcp", addrs[1], time.Second); err == nil {
		c2.Close()
		t.Fatalf("the removed broker's address %s still accepts", addrs[1])
	}
	if got := b.Addrs(); !slices.Equal(got, []string{addrs[0], addrs[2]}) || !slices.Equal(b.Nodes(), []int32{0, 2}) {
		t.Fatalf("after removing 1: addrs %v, nodes %v", got, b.Nodes())
	}
	for p, l := range leaders() {
		if l == 1 {
			t.Errorf("partition %d still led by the removed broker", p)
		}
	}
	if err := b.RemoveNode(1); err == nil {
		t.Fatal("removing broker 1 twice: no error")
	}
	// The survivors serve the topic.
	if err := c.RefreshMetadata("t"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetOffset("t", 0, sarama.OffsetNewest); err != nil {
		t.Fatalf("offset from the survivors: %v", err)
	}
}
