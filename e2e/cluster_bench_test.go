//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// BenchmarkCluster is `streamd bench` for a cluster: one producer (a
// 1280x720 30 fps test pattern), two web nodes with one viewer each, on one
// broker, on three brokers (topic at replication factor 3), and on three
// brokers with a leader move or a coordinator move every 5 s. It prints a
// report per web node: fps, frames delivered, the longest gap between two
// frames, capture→viewer latency p50/p99/max. One iteration is one run:
//
//	cd e2e && flock /tmp/streamd-timing.lock go test -tags e2e -run '^$' -bench Cluster -benchtime 1x -timeout 20m .
//
// CLUSTER_BENCH_DURATION sets each run's measurement (default 30s).
func BenchmarkCluster(b *testing.B) {
	d := 30 * time.Second
	if v := os.Getenv("CLUSTER_BENCH_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			b.Fatal(err)
		}
	}
	for _, run := range []struct {
		name    string
		brokers int
		moves   bool
	}{
		{"brokers=1", 1, false},
		{"brokers=3", 3, false},
		{"brokers=3/moves", 3, true},
	} {
		b.Run(run.name, func(b *testing.B) {
			for range b.N {
				benchCluster(b, run.brokers, run.moves, d)
			}
		})
	}
}

func benchCluster(b *testing.B, brokers int, moves bool, d time.Duration) {
	kc := startKafkaCluster(b, brokers)
	common := clusterYAML(kc, brokers, "")
	prod := startStreamd(b, "producer", "role: producer\n"+common+"cameras:\n  - id: pattern\n    source: testpattern\n    width: 1280\n    height: 720\n    fps: 30\n")
	webs := []*proc{
		startStreamd(b, "web-a", "role: consumer\n"+common+"cameras:\n  - id: pattern\n"),
		startStreamd(b, "web-b", "role: consumer\n"+common+"cameras:\n  - id: pattern\n"),
	}
	for _, n := range append([]*proc{prod}, webs...) {
		if err := n.waitReadyErr(30 * time.Second); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streams := make([]*stream, len(webs))
	for i, w := range webs {
		streams[i] = watchStream(ctx, w, "pattern")
	}
	time.Sleep(5 * time.Second) // warm-up
	nodes := append([]*proc{prod}, webs...)
	cpu0 := make([]float64, len(nodes))
	for i, n := range nodes {
		var err error
		if cpu0[i], err = n.metricSum("process_cpu_seconds_total"); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	from := time.Now()
	nmoves := 0
	if moves {
		tick := time.NewTicker(5 * time.Second)
		for end := from.Add(d); time.Now().Before(end); {
			select {
			case <-tick.C:
				if nmoves%2 == 0 {
					kc.ShuffleLeaders()
				} else {
					kc.MoveCoordinators()
				}
				nmoves++
			case <-time.After(time.Until(end)):
			}
		}
		tick.Stop()
	} else {
		time.Sleep(d)
	}
	to := time.Now()
	b.StopTimer()
	cores := make([]float64, len(nodes))
	for i, n := range nodes {
		c, err := n.metricSum("process_cpu_seconds_total")
		if err != nil {
			b.Fatal(err)
		}
		cores[i] = (c - cpu0[i]) / to.Sub(from).Seconds()
	}
	cancel()
	errs, err := prod.metricSum("streamd_kafka_produce_errors_total")
	if err != nil {
		b.Fatal(err)
	}
	var report strings.Builder
	fmt.Fprintf(&report, "cluster bench: %d broker(s), RF %d, 1 producer 1280x720 30 fps, 2 web nodes × 1 viewer, %v, moves %d (leaders and coordinators alternately every 5 s)\n",
		brokers, brokers, d, nmoves)
	fmt.Fprintf(&report, "  producer CPU %.2f cores, errors %.0f\n", cores[0], errs)
	var worstP99, worstGap time.Duration
	minFPS := 1e9
	for i, s := range streams {
		st := statsOf(s.between(from, to), from, to)
		fps := float64(st.frames) / to.Sub(from).Seconds()
		delivered := 0.0
		if st.expected > 0 {
			delivered = 100 * float64(st.frames) / float64(st.expected)
		}
		p50, p99, pmax := percentile(st.latencies, 0.5), percentile(st.latencies, 0.99), percentile(st.latencies, 1)
		fmt.Fprintf(&report, "  %-6s fps %5.1f  delivered %6.2f %%  max gap %4d ms  latency p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  reconnects %d  CPU %.2f cores\n",
			webs[i].name, fps, delivered, st.maxGap.Milliseconds(), ms(p50), ms(p99), ms(pmax), s.reconnects(), cores[i+1])
		worstP99, worstGap, minFPS = max(worstP99, p99), max(worstGap, st.maxGap), min(minFPS, fps)
	}
	fmt.Print(report.String())
	b.ReportMetric(ms(worstP99), "p99-ms")
	b.ReportMetric(float64(worstGap.Milliseconds()), "maxgap-ms")
	b.ReportMetric(minFPS, "min-fps")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
