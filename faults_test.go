package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/broker"
)

// metric reads one unlabelled value from /metrics.
func (p *proc) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(p.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

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

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestBrokerOutageMidStream(t *testing.T) {
	addr, dir := freeAddr(t), t.TempDir()
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
	p.stop(t) // before the broker's cleanup: a clean shutdown commits offsets
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

func TestLostSourceShowsNoSignalUntilItReturns(t *testing.T) {
	addr := freeAddr(t)
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
	p := startStreamd(t, "all", fmt.Sprintf("embedded:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\ncameras:\n  - id: cam\n    source: http://%s/vtest.avi\n    loop: true\n    fps: 100\n", addr))
	p.waitReady(t)
	v := watch(t, p.url("/stream/cam"))
	v.take(t, 20, 15*time.Second)

	// The server goes away: the video ends at the next loop at the latest,
	// then opening fails and no-signal frames follow.
	_ = srv.Close()
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
			t.Fatalf("no no-signal frame after the source went away:\n%s", p.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The viewer is still connected and receives them.
	since := time.Now()
	v.nextLive(t, since, 5*time.Second)
	if n := strings.Count(p.logs.String(), `msg="camera source failed, retrying"`); n < 1 || n > 3 {
		t.Fatalf("the loss should be logged once per change of error, got %d lines:\n%s", n, p.logs)
	}

	srv = serve()
	t.Cleanup(func() { _ = srv.Close() })
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
			t.Fatalf("source came back but frames did not:\n%s", p.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	v.take(t, 20, 10*time.Second)
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
	httpA := freeAddr(t)
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
