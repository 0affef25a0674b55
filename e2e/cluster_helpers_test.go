//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/broker"
	"github.com/streamd/streamd/pkg/mjpeg"
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

// analysisCounts reads /api/status's analysis list: analyzed frames by
// camera.
func (p *proc) analysisCounts() (map[string]uint64, error) {
	a, err := p.analysisErr()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.name, err)
	}
	out := map[string]uint64{}
	for cam, st := range a {
		out[cam] = st.Analyzed
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
	proc   *proc
	camera string

	mu       sync.Mutex
	parts    []arrival
	connects int
	lastErr  error
}

// watchStream starts a viewer; it stops at ctx's end.
func watchStream(ctx context.Context, p *proc, camera string) *stream {
	s := &stream{proc: p, camera: camera}
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
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.proc.url("/stream/"+s.camera), nil)
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
