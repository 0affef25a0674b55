//go:build e2e

package e2e

import (
	"fmt"
	"github.com/streamd/streamd/pkg/testutil"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/broker"
)

// nextLive waits for a part captured after since, returning when it came.
func (v *viewer) nextLive(t *testing.T, since time.Time, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case r := <-v.parts:
			if r.part.Timestamp.After(since) {
				return r.at
			}
		case err := <-v.err:
			t.Fatalf("viewer disconnected: %v", err)
		case <-deadline:
			t.Fatalf("no live frame within %v", timeout)
		}
	}
}

func TestBrokerOutageMidStream(t *testing.T) {
	addr, dir := testutil.FreeAddr(t), t.TempDir()
	b, err := broker.Start(broker.Options{Listen: addr, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p := startStreamd(t, "all", fmt.Sprintf("embedded:\n  enabled: false\nkafka:\n  brokers: [%s]\nhttp:\n  listen: 127.0.0.1:0\ncameras:\n  - id: cam\n    source: testpattern\n    width: 320\n    height: 240\n    fps: 30\n", addr))
	p.waitReady(t)
	v := watch(t, p.url("/stream/cam"))
	v.take(t, 30, 10*time.Second)
	goroutines := p.metric(t, "go_goroutines")
	rss := p.metric(t, "process_resident_memory_bytes")

	b.Close()
	outage := time.Now()
	time.Sleep(10 * time.Second)
	// Still alive, honest about readiness, viewer still connected.
	code, body := getStatus(t, p.url("/readyz"))
	if code != 503 {
		t.Fatalf("readyz during the outage: %d %s", code, body)
	}
	select {
	case err := <-v.err:
		t.Fatalf("viewer lost its connection during the outage: %v", err)
	default:
	}

	b2, err := broker.Start(broker.Options{Listen: addr, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b2.Close)
	back := time.Now()
	got := v.nextLive(t, back, 15*time.Second)
	t.Logf("outage of %v; live frames again %v after the broker returned", back.Sub(outage).Round(time.Millisecond), got.Sub(back).Round(time.Millisecond))
	if d := got.Sub(back); d > 3*time.Second {
		t.Fatalf("viewers got live frames %v after the broker returned, want within 3s", d)
	}
	p.waitReady(t)
	v.take(t, 30, 10*time.Second)
	// No leak: goroutines back near where they were.
	time.Sleep(time.Second)
	if after := p.metric(t, "go_goroutines"); after > goroutines+20 {
		t.Fatalf("goroutines %v before the outage, %v after", goroutines, after)
	}
	if after := p.metric(t, "process_resident_memory_bytes"); after > rss*1.5+50<<20 {
		t.Fatalf("RSS %.0f MB before the outage, %.0f MB after", rss/(1<<20), after/(1<<20))
	}
	if p.metric(t, "streamd_kafka_produce_errors_total")+p.metric(t, `streamd_kafka_produce_dropped_total{reason="backlog"}`) == 0 {
		t.Fatal("frames captured during the outage were neither counted as failed nor as dropped")
	}
	p.stop() // before the broker's cleanup: a clean shutdown commits offsets
}

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := make([]byte, 4096)
	n, _ := resp.Body.Read(b)
	return resp.StatusCode, string(b[:n])
}

// takeUntil receives parts until one satisfies stop, returning all of them,
// that one included.
func (v *viewer) takeUntil(t *testing.T, timeout time.Duration, what string, stop func(received) bool) []received {
	t.Helper()
	var out []received
	deadline := time.After(timeout)
	for {
		select {
		case r := <-v.parts:
			out = append(out, r)
			if stop(r) {
				return out
			}
		case err := <-v.err:
			t.Fatalf("viewer disconnected after %d parts while waiting for %s: %v", len(out), what, err)
		case <-deadline:
			t.Fatalf("%s: not within %v (%d parts received)", what, timeout, len(out))
		}
	}
}

func TestLostSourceShowsNoSignalUntilItReturns(t *testing.T) {
	addr := testutil.FreeAddr(t)
	serve := func() *http.Server {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, vtestPath) })}
		go func() { _ = srv.Serve(ln) }()
		return srv
	}
	srv := serve()
	p := startStreamd(t, "all", fmt.Sprintf("embedded:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\ncameras:\n  - id: cam\n    source: http://%s/vtest.avi\n    loop: true\n    fps: 100\n    width: 384\n    height: 288\n", addr))
	p.waitReady(t)
	stateIs := func(pred func(string) bool) func(status) bool {
		return func(s status) bool {
			c, ok := s.camera("cam")
			return ok && pred(c.State)
		}
	}
	streaming := stateIs(func(s string) bool { return s == "streaming" })
	retrying := stateIs(func(s string) bool { return strings.HasPrefix(s, "retrying: ") })
	p.waitStatus(t, "camera streaming", 20*time.Second, streaming)
	v := watch(t, p.url("/stream/cam"))
	got := v.take(t, 20, 15*time.Second)

	// The server goes away: the video ends at the next loop at the latest,
	// then opening fails and no-signal frames follow.
	_ = srv.Close()
	st := p.waitStatus(t, "camera retrying after its source went away", 30*time.Second, retrying)
	if c, _ := st.camera("cam"); !strings.Contains(c.State, addr) {
		t.Fatalf("state %q does not name the lost source", c.State)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var cams []struct {
			ID       string `json:"id"`
			NoSignal bool   `json:"no_signal"`
		}
		p.getJSON(t, "/api/cameras", &cams)
		if len(cams) == 1 && cams[0].NoSignal {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no no-signal frame after the source went away: %+v", cams)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The viewer is still connected and receives them (one a second).
	since := time.Now()
	got = append(got, v.takeUntil(t, 5*time.Second, "a frame while the source is lost", func(r received) bool { return r.part.Timestamp.After(since) })...)
	since = time.Now()
	got = append(got, v.takeUntil(t, 5*time.Second, "a second frame while the source is lost", func(r received) bool { return r.part.Timestamp.After(since) })...)
	// Still retrying, not given up.
	p.waitStatus(t, "camera still retrying", time.Second, retrying)

	srv = serve()
	t.Cleanup(func() { _ = srv.Close() })
	p.waitStatus(t, "camera streaming again once its source returned", 40*time.Second, streaming)
	deadline = time.Now().Add(40 * time.Second)
	for {
		var cams []struct {
			NoSignal bool `json:"no_signal"`
			FPS      float64
		}
		p.getJSON(t, "/api/cameras", &cams)
		if len(cams) == 1 && !cams[0].NoSignal {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("source came back but frames did not: %+v", cams)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got = append(got, v.take(t, 20, 10*time.Second)...)

	// What the viewer saw, told apart by the records' signal header: video,
	// then no-signal frames, then video again, nothing else.
	lost := map[uint64]bool{}
	for _, r := range readTopic(t, "streamd.frames", false, p.broker) {
		if s := r.seq(); r.Key == "cam" && s >= 0 {
			lost[uint64(s)] = r.Headers["signal"] == "lost"
		}
	}
	var runs []string
	var lengths []int
	for _, r := range got {
		kind, ok := "video", true
		if l, known := lost[r.part.Seq]; !known {
			ok = false
		} else if l {
			kind = "no signal"
		}
		if !ok {
			t.Fatalf("the viewer got X-Sequence %d, which is not in Kafka", r.part.Seq)
		}
		if len(runs) == 0 || runs[len(runs)-1] != kind {
			runs, lengths = append(runs, kind), append(lengths, 0)
		}
		lengths[len(lengths)-1]++
	}
	// (The last no-signal frame may still be on its way when the camera
	// reports streaming: the final 20 parts start with a few at most.)
	if !slices.Equal(runs, []string{"video", "no signal", "video"}) || lengths[1] < 2 || lengths[2] < 10 {
		t.Fatalf("the viewer saw %v with %v parts each; want video, at least 2 no-signal frames, then at least 10 video frames", runs, lengths)
	}
	t.Logf("viewer: %d video frames, %d no-signal frames, %d video frames again", lengths[0], lengths[1], lengths[2])
}

func TestKilledConsumerRestartsLiveOthersUnaffected(t *testing.T) {
	b, err := broker.Start(broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	common := fmt.Sprintf("embedded:\n  enabled: false\nkafka:\n  brokers: [%s]\n", b.Addr())
	producer := startStreamd(t, "producer", "role: producer\n"+common+"http:\n  listen: 127.0.0.1:0\ncameras:\n  - id: cam\n    source: testpattern\n    width: 320\n    height: 240\n    fps: 30\n")
	producer.waitReady(t)
	httpA := testutil.FreeAddr(t)
	consumerCfg := func(listen string) string {
		return "role: consumer\n" + common + "http:\n  listen: " + listen + "\ncameras:\n  - id: cam\n"
	}
	a := startStreamd(t, "consumer-a", consumerCfg(httpA))
	other := startStreamd(t, "consumer-b", consumerCfg("127.0.0.1:0"))
	a.waitReady(t)
	other.waitReady(t)
	vOther := watch(t, other.url("/stream/cam"))
	vOther.take(t, 10, 10*time.Second)

	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	killed := time.Now()
	// The other consumer does not notice.
	parts := vOther.take(t, 30, 5*time.Second)
	for i := 1; i < len(parts); i++ {
		if gap := parts[i].at.Sub(parts[i-1].at); gap > 500*time.Millisecond {
			t.Fatalf("the other consumer's viewer stalled %v when a consumer was killed", gap)
		}
	}

	// Restarted on the same address: same group, same static member id.
	restarted := startStreamd(t, "consumer-a2", consumerCfg(httpA))
	start := time.Now()
	v := watch(t, restarted.url("/stream/cam"))
	got := v.nextLive(t, start, 20*time.Second)
	t.Logf("killed consumer restarted %v after the kill; live frames %v after its restart", start.Sub(killed).Round(time.Millisecond), got.Sub(start).Round(time.Millisecond))
	if d := got.Sub(start); d > 5*time.Second {
		t.Fatalf("restarted consumer served live frames only after %v", d)
	}
}
