//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/broker"
	"github.com/streamd/streamd/pkg/relay"
)

// topology is the scale-out deployment of the cluster tests, on three
// brokers in this process with the frames topic at replication factor 3:
// two producers with four 320x240 30 fps test-pattern cameras each, two web
// nodes that serve every camera, two analyzers that split the cameras, and
// a viewer per web node and camera.
type topology struct {
	t         *testing.T
	kc        *broker.Broker
	ids       []string
	producers []*proc
	webs      []*proc
	analyzers []*proc
	streams   [][]*stream // [web][camera]
}

func startTopology(t *testing.T, ctx context.Context) *topology {
	t.Helper()
	tp := &topology{t: t, kc: startKafkaCluster(t, 3)}
	tp.ids = distinctPartitionIDs(t, 8, 8) // one camera per partition: the analyzers get four each
	common := clusterYAML(tp.kc, 3, "")
	var cams [2]strings.Builder
	var all strings.Builder
	for i, id := range tp.ids {
		fmt.Fprintf(&cams[i%2], "  - id: %s\n    source: testpattern\n    width: 320\n    height: 240\n    fps: 30\n", id)
		fmt.Fprintf(&all, "  - id: %s\n", id)
	}
	for i, name := range []string{"producer-a", "producer-b"} {
		tp.producers = append(tp.producers, startStreamd(t, name, "role: producer\n"+common+"cameras:\n"+cams[i].String()))
	}
	for _, name := range []string{"web-a", "web-b"} {
		tp.webs = append(tp.webs, startStreamd(t, name, "role: consumer\n"+common+"cameras:\n"+all.String()))
	}
	// The analyzers split the cameras through the moves; motion is what
	// they analyze here: object detection (0.25 of a core each, on test
	// patterns with nothing to find) would only load the machine the
	// delivery bounds are measured on.
	anYAML := "role: analyzer\n" + common + "analyzer:\n  fps: 5\n  faces:\n    enabled: false\n  objects:\n    enabled: false\ncameras:\n" + all.String()
	for _, name := range []string{"analyzer-a", "analyzer-b"} {
		tp.analyzers = append(tp.analyzers, startStreamd(t, name, anYAML))
	}
	for _, n := range tp.all() {
		if err := n.waitReadyErr(60 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range tp.webs {
		var row []*stream
		for _, id := range tp.ids {
			row = append(row, watchStream(ctx, w, id))
		}
		tp.streams = append(tp.streams, row)
	}
	tp.waitLive(30*time.Second, tp.webs...)
	tp.waitSplit(60 * time.Second)
	return tp
}

func (tp *topology) all() []*proc {
	return slices.Concat(tp.producers, tp.webs, tp.analyzers)
}

// waitLive waits until every stream of the web nodes got a frame captured
// less than a second before it arrived, after now.
func (tp *topology) waitLive(timeout time.Duration, webs ...*proc) {
	tp.t.Helper()
	since := time.Now()
	deadline := since.Add(timeout)
	for {
		var missing []string
		for wi, w := range tp.webs {
			if !slices.Contains(webs, w) {
				continue
			}
			for ci, s := range tp.streams[wi] {
				a, ok := s.last()
				if !ok || a.at.Before(since) || a.at.Sub(a.captured) > time.Second {
					missing = append(missing, w.name+"/"+tp.ids[ci])
				}
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tp.t.Fatalf("no live frames within %v on %v", timeout, missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// analyzed reads every analyzer's analyzed-frame counters.
func (tp *topology) analyzed() ([]map[string]uint64, error) {
	out := make([]map[string]uint64, len(tp.analyzers))
	for i, a := range tp.analyzers {
		m, err := a.analysisCounts()
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}

// splitOver says which analyzers analyzed each camera between two reads
// of the counters, and "" when every camera grew in exactly one.
func (tp *topology) splitOver(before, after []map[string]uint64) string {
	var bad []string
	for _, id := range tp.ids {
		var by []string
		for i := range tp.analyzers {
			if after[i][id] > before[i][id] {
				by = append(by, tp.analyzers[i].name)
			}
		}
		if len(by) != 1 {
			bad = append(bad, fmt.Sprintf("%s by %v", id, by))
		}
	}
	return strings.Join(bad, ", ")
}

// waitSplit waits until, over a 3 s window, every camera is analyzed by
// exactly one analyzer and both analyzers have cameras.
func (tp *topology) waitSplit(timeout time.Duration) {
	tp.t.Helper()
	deadline := time.Now().Add(timeout)
	msg := ""
	for time.Now().Before(deadline) {
		before, err := tp.analyzed()
		if err == nil {
			time.Sleep(3 * time.Second)
			var after []map[string]uint64
			if after, err = tp.analyzed(); err == nil {
				if msg = tp.splitOver(before, after); msg == "" {
					return
				}
			}
		}
		if err != nil {
			msg = err.Error()
			time.Sleep(500 * time.Millisecond)
		}
	}
	tp.t.Fatalf("the analyzers did not split the cameras within %v: %s", timeout, msg)
}

// checkAlive fails for every process that exited by itself.
func (tp *topology) checkAlive() {
	tp.t.Helper()
	for _, n := range tp.all() {
		if !n.alive() {
			tp.t.Errorf("%s exited (crashed?)", n.name)
		}
	}
}

// producerCounter sums a metric over the producers.
func (tp *topology) producerCounter(name string) float64 {
	tp.t.Helper()
	sum := 0.0
	for _, p := range tp.producers {
		v, err := p.metricSum(name)
		if err != nil {
			tp.t.Fatal(err)
		}
		sum += v
	}
	return sum
}

// TestClusterLeaderAndCoordinatorMoves: for a minute, every 2.5 s every
// partition leader moves (a rolling restart's leader elections) or every
// group coordinator moves, alternately: 24 moves, as many as a rolling
// restart of a 12-broker cluster. Each viewer of each web node loses
// at most 300 ms of video at a time and gets ≥ 99 % of the frames; the
// analyzers keep each camera on exactly one of them throughout.
func TestClusterLeaderAndCoordinatorMoves(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tp := startTopology(t, ctx)

	before, err := tp.analyzed()
	if err != nil {
		t.Fatal(err)
	}
	from := time.Now()
	tick := time.NewTicker(2500 * time.Millisecond)
	moves := 0
	for end := from.Add(time.Minute); time.Now().Before(end); {
		<-tick.C
		if moves%2 == 0 {
			tp.kc.ShuffleLeaders()
		} else {
			tp.kc.MoveCoordinators()
		}
		moves++
	}
	tick.Stop()
	time.Sleep(time.Second) // the last move's effect is inside the window
	to := time.Now()
	after, err := tp.analyzed()
	if err != nil {
		t.Fatal(err)
	}
	tp.checkAlive()

	worstGap, worstDelivered := time.Duration(0), 100.0
	for wi, w := range tp.webs {
		for ci, s := range tp.streams[wi] {
			st := statsOf(s.between(from, to), from, to)
			delivered := 0.0
			if st.expected > 0 {
				delivered = 100 * float64(st.frames) / float64(st.expected)
			}
			worstGap, worstDelivered = max(worstGap, st.maxGap), min(worstDelivered, delivered)
			name := w.name + "/" + tp.ids[ci]
			if st.maxGap > 300*time.Millisecond {
				t.Errorf("%s: a gap of %v between frames (at %s, %.1f s into the run); the bound is 300 ms", name, st.maxGap.Round(time.Millisecond),
					st.gapAt.Format("15:04:05.000"), st.gapAt.Sub(from).Seconds())
			}
			if delivered < 99 {
				t.Errorf("%s: %d of %d frames (%.2f %%), want ≥ 99 %%; missing seqs %v", name, st.frames, st.expected, delivered, head(st.missing, 30))
			}
			if s.reconnects() != 0 {
				t.Errorf("%s: the stream was reconnected %d times", name, s.reconnects())
			}
		}
	}
	if msg := tp.splitOver(before, after); msg != "" {
		t.Errorf("over the run, cameras not analyzed by exactly one analyzer: %s", msg)
	}
	t.Logf("%d moves over %v: worst gap %v, worst delivery %.2f %% over %d streams; producer errors %.0f",
		moves, to.Sub(from).Round(time.Second), worstGap.Round(time.Millisecond), worstDelivered, len(tp.webs)*len(tp.ids),
		tp.producerCounter("streamd_kafka_produce_errors_total"))
}

func head[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// TestClusterBrokerLost: the worst broker to lose is removed for good
// (listener and connections gone): frames resume within 2 s on every
// viewer, who miss at most 1 % of what Kafka holds, and nothing crashes.
// Then writes are refused for longer than the producers retry: they count
// what they could not deliver, every frame they acknowledged is in Kafka,
// and a viewer's X-Sequence jumps over the frames that were not produced.
func TestClusterBrokerLost(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tp := startTopology(t, ctx)
	const topic = "streamd.frames"

	time.Sleep(5 * time.Second)
	// The victim is the worst broker to lose: the coordinator of a web
	// node's group and of the analyzers' group (coordinators are moved
	// until one broker has both), and the leader of partitions.
	groups := []string{"streamd-analyzer"}
	for _, w := range tp.webs {
		groups = append(groups, webGroup(w))
	}
	for _, g := range groups {
		if !tp.kc.HasGroup(g) {
			t.Fatalf("no consumer group %q on the brokers", g)
		}
	}
	for range 50 {
		if tp.kc.CoordinatorFor(groups[0]) == tp.kc.CoordinatorFor(groups[1]) {
			break
		}
		tp.kc.MoveCoordinators()
	}
	time.Sleep(2 * time.Second) // the clients found their new coordinators
	weight := map[int32]int{}
	for _, g := range groups {
		weight[tp.kc.CoordinatorFor(g)] += 100
	}
	for p := range int32(8) {
		weight[tp.kc.LeaderFor(topic, p)]++
	}
	victim := tp.kc.Nodes()[0]
	for n, c := range weight {
		if c > weight[victim] {
			victim = n
		}
	}
	leads := map[int32]int{victim: weight[victim] % 100}
	from := time.Now()
	if err := tp.kc.RemoveNode(victim); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	t.Logf("removed broker %d (coordinator of %d of %d groups, leader of %d of 8 partitions)", victim, weight[victim]/100, len(groups), leads[victim])
	time.Sleep(15 * time.Second)
	to := time.Now()
	tp.checkAlive()

	// Frames resume within 2 s: no viewer waits longer than that.
	worstGap := time.Duration(0)
	for wi, w := range tp.webs {
		for ci, s := range tp.streams[wi] {
			st := statsOf(s.between(from.Add(-time.Second), to), from.Add(-time.Second), to)
			worstGap = max(worstGap, st.maxGap)
			if st.maxGap > 2*time.Second {
				t.Errorf("%s/%s: no frame for %v (from %.1f s after the removal)", w.name, tp.ids[ci], st.maxGap.Round(time.Millisecond), st.gapAt.Sub(removed).Seconds())
			}
		}
	}
	t.Logf("longest gap of any viewer around the removal: %v", worstGap.Round(time.Millisecond))
	tp.waitLive(5*time.Second, tp.webs...)

	// Then the brokers refuse writes for 7 s, longer than a producer
	// retries a frame (≈ 5 s), as a cluster left with fewer in-sync
	// replicas than min.insync.replicas answers acks=all: those frames
	// are not produced, and viewers see it in X-Sequence.
	restore := tp.kc.RefuseWrites(topic)
	refused := time.Now()
	time.Sleep(7 * time.Second)
	restore()
	restored := time.Now()
	tp.waitLive(10*time.Second, tp.webs...)
	resumed := time.Duration(0)
	for wi := range tp.webs {
		for _, s := range tp.streams[wi] {
			for _, a := range s.between(restored, time.Now()) {
				if a.captured.After(restored) {
					resumed = max(resumed, a.at.Sub(restored))
					break
				}
			}
		}
	}
	// (The producers first deliver what waited through the refusal, so
	// this is longer than after the lost broker; it is a measurement.)
	t.Logf("writes refused for %v; live frames on every viewer %v after they were accepted again", restored.Sub(refused).Round(time.Millisecond), resumed.Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	tp.checkAlive()

	// What the producers acknowledged is in Kafka; what they did not
	// deliver is counted.
	acked := tp.producerCounter("streamd_kafka_produced_total")
	failed := tp.producerCounter("streamd_kafka_produce_errors_total")
	dropped := tp.producerCounter("streamd_kafka_produce_dropped_total")
	end := time.Now()
	seqs := seqsByKey(readTopic(t, topic, false, tp.kc.Addrs()...))
	distinct := 0
	notProduced := map[string]map[uint64]bool{}
	for _, id := range tp.ids {
		have := map[int64]bool{}
		hi := int64(-1)
		for _, q := range seqs[id] {
			have[q] = true
			hi = max(hi, q)
		}
		distinct += len(have)
		notProduced[id] = map[uint64]bool{}
		for q := int64(0); q < hi; q++ {
			if !have[q] {
				notProduced[id][uint64(q)] = true
			}
		}
	}
	gaps := 0
	for _, m := range notProduced {
		gaps += len(m)
	}
	t.Logf("producers: %.0f acknowledged, %.0f failed, %.0f dropped (backlog); Kafka holds %d distinct frames, %d seqs missing", acked, failed, dropped, distinct, gaps)
	if float64(distinct) < acked {
		t.Errorf("Kafka holds %d distinct frames, the producers acknowledged %.0f before it was read: acknowledged frames were lost", distinct, acked)
	}
	if float64(gaps) > failed+dropped {
		t.Errorf("%d frames missing from Kafka, but the producers counted only %.0f failed and %.0f dropped", gaps, failed, dropped)
	}
	if gaps == 0 || failed+dropped == 0 {
		t.Errorf("writes refused for 7 s, yet %d frames are missing from Kafka and the producers counted %.0f failed, %.0f dropped", gaps, failed, dropped)
	}
	for wi, w := range tp.webs {
		for ci, s := range tp.streams[wi] {
			id := tp.ids[ci]
			// A viewer's X-Sequence is the producer's capture number:
			// every number it got is a frame Kafka holds, so the
			// frames not produced are the gaps it shows.
			have := map[uint64]bool{}
			for _, q := range seqs[id] {
				have[uint64(q)] = true
			}
			all := statsOf(s.between(from.Add(-time.Second), end), from.Add(-time.Second), end)
			for _, a := range s.between(from.Add(-time.Second), end) {
				if !have[a.seq] {
					t.Errorf("%s/%s: X-Sequence %d is not a frame in Kafka", w.name, id, a.seq)
					break
				}
			}
			shown := 0
			for _, q := range all.missing {
				if notProduced[id][q] {
					shown++
				}
			}
			if len(notProduced[id]) > 0 && shown == 0 {
				t.Errorf("%s/%s: none of the %d frames not produced shows as a gap in X-Sequence", w.name, id, len(notProduced[id]))
			}
			// Around the lost broker, a viewer got every frame
			// Kafka holds but at most 1 %.
			st := statsOf(s.between(from.Add(-time.Second), to), from.Add(-time.Second), to)
			lost := 0
			for _, q := range st.missing {
				if !notProduced[id][q] {
					lost++
				}
			}
			if inKafka := st.expected - (len(st.missing) - lost); float64(lost) > 0.01*float64(inKafka) {
				t.Errorf("%s/%s: %d frames in Kafka were not delivered, of %d", w.name, id, lost, inKafka)
			}
		}
	}
}

// TestClusterRestartsInAnyOrder: web nodes and analyzers stop (cleanly or
// killed) and start again in several orders, while the producers go on. No
// offset is ever reset by hand: each restarted web node shows live frames
// of every camera, and the analyzers end up with every camera on exactly
// one of them, analyzing live frames.
func TestClusterRestartsInAnyOrder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tp := startTopology(t, ctx)
	webA, webB := tp.webs[0], tp.webs[1]
	anA, anB := tp.analyzers[0], tp.analyzers[1]
	steps := []struct {
		name string
		do   func()
	}{
		{"web-a stopped and started", func() { webA.stop(); webA.start() }},
		{"analyzer-a killed, then started", func() { anA.kill(); time.Sleep(time.Second); anA.start() }},
		{"web-b killed, analyzer-b stopped, web-b started, analyzer-b started", func() {
			webB.kill()
			anB.stop()
			webB.start()
			anB.start()
		}},
		{"everything but the producers stopped, then started in reverse order", func() {
			for _, n := range []*proc{webA, anA, webB, anB} {
				n.stop()
			}
			time.Sleep(2 * time.Second)
			for _, n := range []*proc{anB, webB, anA, webA} {
				n.start()
			}
		}},
	}
	for _, step := range steps {
		start := time.Now()
		step.do()
		tp.waitLive(20*time.Second, tp.webs...)
		tp.waitSplit(45 * time.Second)
		// The analyzers analyze live frames, not a backlog: the one
		// analyzing a camera is at most 2 s behind (the other may list it
		// from before the rebalance, ever further behind).
		lag := map[string]time.Duration{}
		for _, a := range tp.analyzers {
			if err := a.waitReadyErr(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			st, err := a.analysisLag()
			if err != nil {
				t.Fatal(err)
			}
			for cam, d := range st {
				if l, ok := lag[cam]; !ok || d < l {
					lag[cam] = d
				}
			}
		}
		worst := time.Duration(0)
		for _, id := range tp.ids {
			l, ok := lag[id]
			if !ok || l > 2*time.Second {
				t.Errorf("after %q: camera %s analyzed %v behind (listed: %v)", step.name, id, l.Round(time.Millisecond), ok)
			}
			worst = max(worst, l)
		}
		tp.checkAlive()
		t.Logf("%s: live again and split after %v (analysis lag at most %v)", step.name, time.Since(start).Round(100*time.Millisecond), worst.Round(time.Millisecond))
	}
}

// analysisLag is, per camera an analyzer analyzes, how long ago the last
// analyzed frame was captured.
func (n *proc) analysisLag() (map[string]time.Duration, error) {
	raw, err := n.analysisCounts()
	if err != nil {
		return nil, err
	}
	v, err := n.metricByCamera("streamd_camera_analysis_lag_seconds")
	if err != nil {
		return nil, err
	}
	out := map[string]time.Duration{}
	for cam := range raw {
		if lag, ok := v[cam]; ok {
			out[cam] = time.Duration(lag * float64(time.Second))
		}
	}
	return out, nil
}

// TestClusterComposeFileValidates: docker-compose.cluster.yml is a valid
// compose file with three KRaft brokers, replication 3, min.insync.replicas
// 2, and the roles scaled with deploy.replicas.
func TestClusterComposeFileValidates(t *testing.T) {
	compose := requireTool(t, "docker-compose")
	out, err := exec.Command(compose, "-f", inRepo("docker-compose.cluster.yml"), "config").CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"kafka-1:", "kafka-2:", "kafka-3:", "apache/kafka", "KAFKA_PROCESS_ROLES: broker,controller",
		"KAFKA_CONTROLLER_QUORUM_VOTERS: 1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093", "KAFKA_MIN_INSYNC_REPLICAS: 2",
		"KAFKA_DEFAULT_REPLICATION_FACTOR: 3", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: 3", "STREAMD_KAFKA_REPLICATION_FACTOR: 3", "STREAMD_KAFKA_ACKS: all",
		"STREAMD_KAFKA_BROKERS: kafka-1:9092,kafka-2:9092,kafka-3:9092", "condition: service_healthy", "/readyz"} {
		if !strings.Contains(text, want) {
			t.Errorf("compose config lacks %q", want)
		}
	}
	// Each role is a service with deploy.replicas: web nodes and
	// analyzers 2, the producer (which owns its cameras) 1.
	for svc, n := range map[string]int{"producer": 1, "web": 2, "analyzer": 2} {
		body, ok := composeService(text, svc)
		if !ok {
			t.Errorf("compose config has no service %s", svc)
			continue
		}
		if !strings.Contains(body, fmt.Sprintf("deploy:\n      replicas: %d\n", n)) {
			t.Errorf("compose service %s lacks deploy.replicas %d:\n%s", svc, n, body)
		}
	}
	for _, f := range []string{"Dockerfile", "config/producer.yaml", "config/consumer.yaml", "config/analyzer.yaml", "nginx/streamd.conf"} {
		if _, err := os.Stat(inRepo(f)); err != nil {
			t.Errorf("compose needs %s: %v", f, err)
		}
	}
}

// composeService returns the lines of a service in `docker-compose config`
// output: from "  name:" to the next line indented by two spaces only.
func composeService(text, name string) (string, bool) {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if l != "  "+name+":" {
			continue
		}
		end := i + 1
		for end < len(lines) && strings.HasPrefix(lines[end], "    ") {
			end++
		}
		return strings.Join(lines[i+1:end], "\n") + "\n", true
	}
	return "", false
}

// webGroup is a web node's consumer group: streamd's default, named after
// the host and the HTTP port.
func webGroup(n *proc) string {
	return relay.DefaultGroup(strings.TrimPrefix(n.url(""), "http://"))
}
