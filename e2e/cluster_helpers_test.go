//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/bench"
	"github.com/streamd/streamd/pkg/broker"
	"github.com/streamd/streamd/pkg/mjpeg"
	"github.com/streamd/streamd/pkg/testutil"
)

// The cluster tests and the cluster benchmark run streamd processes against
// the embedded broker's code started in the test process as a cluster of
// brokers (pkg/broker with Brokers > 1), whose leaders and coordinators the
// test moves and whose brokers it removes.

// startKafkaCluster starts n brokers in this process, in memory.
func startKafkaCluster(tb testing.TB, n int) *broker.Broker {
	tb.Helper()
	b, err := broker.Start(broker.Options{Brokers: n})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	if got := len(b.Addrs()); got != n {
		tb.Fatalf("cluster of %d brokers lists %d addresses", n, got)
	}
	return b
}

// clusterYAML is the part of a node's configuration that points it at the
// cluster: every broker, the topic at replication factor rf.
func clusterYAML(b *broker.Broker, rf int, extra string) string {
	return fmt.Sprintf("log:\n  level: info\nembedded:\n  enabled: false\nkafka:\n  brokers: [%s]\n  replication_factor: %d\n%shttp:\n  listen: 127.0.0.1:0\n  max_viewers_per_ip: 0\n",
		strings.Join(b.Addrs(), ", "), rf, extra)
}

// node is a streamd process of a cluster test, restartable with the same
// configuration (and so the same consumer group and HTTP port).
type node struct {
	tb        testing.TB
	name      string
	config    string
	readyFile string
	logs      *testutil.Buffer // shown when the test fails; never asserted on

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	http string
	role string
}

// startNode writes yaml to a config file and starts streamd with it.
func startNode(tb testing.TB, name, yaml string) *node {
	tb.Helper()
	dir := tb.TempDir()
	n := &node{tb: tb, name: name, config: filepath.Join(dir, name+".yaml"), readyFile: filepath.Join(dir, name+".ready.json"), logs: &testutil.Buffer{}}
	if err := os.WriteFile(n.config, []byte(yaml), 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		n.stop()
		if tb.Failed() {
			tb.Logf("%s logs (last 6000 bytes):\n%s", name, tail(n.logs.String(), 6000))
		}
	})
	n.start()
	return n
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// start runs the process and waits for its ready file.
func (n *node) start() {
	tb := n.tb
	tb.Helper()
	_ = os.Remove(n.readyFile)
	cmd := exec.Command(binary, "--config", n.config, "--ready-file", n.readyFile)
	fmt.Fprintf(n.logs, "---- start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd.Stdout, cmd.Stderr = n.logs, n.logs
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(n.readyFile)
		if err == nil {
			var r readyInfo
			if err := json.Unmarshal(b, &r); err != nil {
				tb.Fatalf("%s: ready file: %v", n.name, err)
			}
			if r.PID != cmd.Process.Pid {
				tb.Fatalf("%s: ready file names pid %d, the process is %d", n.name, r.PID, cmd.Process.Pid)
			}
			n.mu.Lock()
			n.http, n.role = r.HTTP, r.Role
			n.mu.Unlock()
			// The next start keeps the port: viewers reconnect to the
			// same address, and the default group name stays the same.
			n.pinPort(r.HTTP)
			return
		}
		if !errors.Is(err, fs.ErrNotExist) {
			tb.Fatal(err)
		}
		select {
		case <-done:
			tb.Fatalf("%s exited before it was ready: %v", n.name, cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s wrote no ready file within 30s", n.name)
		}
	}
}

// pinPort rewrites the config's http.listen to addr.
func (n *node) pinPort(addr string) {
	b, err := os.ReadFile(n.config)
	if err != nil {
		n.tb.Fatal(err)
	}
	s := strings.Replace(string(b), "listen: 127.0.0.1:0\n", "listen: "+addr+"\n", 1)
	if err := os.WriteFile(n.config, []byte(s), 0o644); err != nil {
		n.tb.Fatal(err)
	}
}

// stop sends SIGINT and requires a clean exit within the shutdown bound.
func (n *node) stop() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			n.tb.Errorf("%s exited with %d after SIGINT", n.name, code)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		n.tb.Errorf("%s did not stop within 20s of SIGINT", n.name)
	}
}

// kill ends the process with SIGKILL, as a crash.
func (n *node) kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// alive reports whether the process runs; a process that exited on its
// own (not stopped by the test) is a crash.
func (n *node) alive() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

func (n *node) url(path string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return "http://" + n.http + path
}

// waitReady polls /readyz until it answers 200.
func (n *node) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	c := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		resp, err := c.Get(n.url("/readyz"))
		if err == nil {
			var body [512]byte
			k, _ := resp.Body.Read(body[:])
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = string(body[:k])
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %s", n.name, timeout, last)
}

// metric sums the samples of a Prometheus metric name (any labels) in the
// node's /metrics.
func (n *node) metric(name string) (float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(n.url("/metrics"))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sum := 0.0
	found := false
	err = bench.EachSample(resp.Body, func(key string, v float64) {
		if key == name || strings.HasPrefix(key, name+"{") {
			sum += v
			found = true
		}
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %s: %w", n.name, name, err)
	}
	if !found {
		return 0, fmt.Errorf("%s: no %s in /metrics", n.name, name)
	}
	return sum, nil
}

// metricByCamera reads a per-camera metric of the node's /metrics.
func (n *node) metricByCamera(name string) (map[string]float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(n.url("/metrics"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	prefix := name + `{camera="`
	err = bench.EachSample(resp.Body, func(key string, v float64) {
		if rest, ok := strings.CutPrefix(key, prefix); ok {
			if cam, _, ok := strings.Cut(rest, `"`); ok {
				out[cam] = v
			}
		}
	})
	return out, err
}

// analysisCounts reads /api/status's analysis list: analyzed frames by
// camera.
func (n *node) analysisCounts() (map[string]uint64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(n.url("/api/status"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var s struct {
		Analysis []struct {
			Camera   string `json:"camera"`
			Analyzed uint64 `json:"analyzed"`
		} `json:"analysis"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("%s /api/status: %w", n.name, err)
	}
	out := map[string]uint64{}
	for _, a := range s.Analysis {
		out[a.Camera] = a.Analyzed
	}
	return out, nil
}

// arrival is one part a stream delivered.
type arrival struct {
	seq      uint64
	at       time.Time
	captured time.Time
}

// stream is a viewer of one camera on one web node that reconnects (as
// the page does) when its stream ends, and records every part it gets.
type stream struct {
	node   *node
	camera string

	mu       sync.Mutex
	parts    []arrival
	connects int
	lastErr  error
}

// watchStream starts a viewer; it stops at ctx's end.
func watchStream(ctx context.Context, n *node, camera string) *stream {
	s := &stream{node: n, camera: camera}
	go s.run(ctx)
	return s
}

func (s *stream) run(ctx context.Context) {
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for ctx.Err() == nil {
		err := s.once(ctx, client)
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *stream) once(ctx context.Context, client *http.Client) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.node.url("/stream/"+s.camera), nil)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("stream answered %s", resp.Status)
	}
	s.mu.Lock()
	s.connects++
	s.mu.Unlock()
	r := mjpeg.NewReader(resp.Body, mjpeg.Boundary)
	r.SkipData = true
	for {
		p, err := r.Next()
		if err != nil {
			return err
		}
		a := arrival{seq: p.Seq, at: time.Now(), captured: p.Timestamp}
		s.mu.Lock()
		s.parts = append(s.parts, a)
		s.mu.Unlock()
	}
}

// between returns the parts that arrived in [from, to).
func (s *stream) between(from, to time.Time) []arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []arrival
	for _, a := range s.parts {
		if !a.at.Before(from) && a.at.Before(to) {
			out = append(out, a)
		}
	}
	return out
}

// reconnects returns how often the stream was opened again.
func (s *stream) reconnects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connects - 1
}

// last returns the newest part and whether there is one.
func (s *stream) last() (arrival, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.parts) == 0 {
		return arrival{}, false
	}
	return s.parts[len(s.parts)-1], true
}

// streamStats is what a viewer got over a window.
type streamStats struct {
	frames    int
	expected  int // the seq range seen: last - first + 1
	missing   []uint64
	repeated  int
	maxGap    time.Duration // longest time between two parts (and from the window's edges)
	gapAt     time.Time
	latencies []time.Duration
}

func statsOf(parts []arrival, from, to time.Time) streamStats {
	var st streamStats
	if len(parts) == 0 {
		st.maxGap = to.Sub(from)
		st.gapAt = from
		return st
	}
	prev := from
	seen := map[uint64]bool{}
	lo, hi := parts[0].seq, parts[0].seq
	for _, a := range parts {
		if g := a.at.Sub(prev); g > st.maxGap {
			st.maxGap, st.gapAt = g, prev
		}
		prev = a.at
		if seen[a.seq] {
			st.repeated++
			continue
		}
		seen[a.seq] = true
		st.frames++
		lo, hi = min(lo, a.seq), max(hi, a.seq)
		if !a.captured.IsZero() {
			st.latencies = append(st.latencies, a.at.Sub(a.captured))
		}
	}
	if g := to.Sub(prev); g > st.maxGap {
		st.maxGap, st.gapAt = g, prev
	}
	st.expected = int(hi-lo) + 1
	for q := lo; q <= hi; q++ {
		if !seen[q] {
			st.missing = append(st.missing, q)
		}
	}
	return st
}

// percentile of sorted-in-place durations; p in [0, 1].
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[int(math.Round(p*float64(len(ds)-1)))]
}

// frameSeqs reads every record of the frames topic from the cluster and
// returns the seq headers by camera (key), keeping only keys and headers.
func frameSeqs(tb testing.TB, brokers []string, topic string) map[string][]int64 {
	tb.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Consumer.Fetch.Default = 8 << 20
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		tb.Fatalf("kafka client: %v", err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		tb.Fatalf("partitions of %s: %v", topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		tb.Fatal(err)
	}
	defer consumer.Close()
	out := map[string][]int64{}
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
				for _, h := range m.Headers {
					if string(h.Key) == "seq" {
						if v, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
							out[string(m.Key)] = append(out[string(m.Key)], v)
						}
					}
				}
				if m.Offset >= newest-1 {
					break read
				}
			case err := <-pc.Errors():
				pc.Close()
				tb.Fatalf("consume %s/%d: %v", topic, part, err)
			case <-deadline:
				pc.Close()
				tb.Fatalf("reading %s/%d: not all read within 60s", topic, part)
			}
		}
		pc.Close()
	}
	return out
}
