package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/broker"
	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
)

const (
	evTopic   = "test.events"
	snapTopic = "test.snapshots"
)

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// kafkaEnv is an embedded broker with the events and snapshots topics and
// a writer to them.
type kafkaEnv struct {
	addr string
	w    *kafka.Writer
}

func startKafka(t *testing.T) *kafkaEnv {
	t.Helper()
	b, err := broker.Start(broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	k := conns(t, b.Addr())
	rctx, rcancel := context.WithCancel(context.Background())
	rdone := make(chan struct{})
	go func() { defer close(rdone); _ = k.Run(rctx) }()
	t.Cleanup(func() { rcancel(); <-rdone; _ = k.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, err := k.Await(ctx, "writer")
	if err != nil {
		t.Fatal(err)
	}
	w, err := kafka.NewWriter(client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return &kafkaEnv{addr: b.Addr(), w: w}
}

// conns returns running connections to addr that made the topics, with a
// client "writer".
func conns(t *testing.T, addr string, wants ...string) *kafka.Conns {
	t.Helper()
	k := kafka.NewConns(kafka.ConnsOptions{Client: kafka.Options{Brokers: []string{addr}, FetchMaxWait: 20 * time.Millisecond, SessionTimeout: 6 * time.Second}, Logger: testLogger(t)})
	k.Want("writer", nil)
	for _, w := range wants {
		k.Want(w, nil)
	}
	for _, topic := range []string{evTopic, snapTopic} {
		k.Ensure(topic, kafka.TopicOptions{Partitions: 8, ReplicationFactor: 1, MaxMessageBytes: 1 << 20})
	}
	return k
}

// publish writes events to the events topic, keyed by camera, as the
// analyzer does.
func (k *kafkaEnv) publish(t *testing.T, evs ...events.Event) {
	t.Helper()
	for _, e := range evs {
		data, err := events.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := k.w.Write(evTopic, e.Camera, data, e.Updated, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// publishSnapshot writes an event's snapshot as the analyzer does.
func (k *kafkaEnv) publishSnapshot(t *testing.T, e events.Event, jpeg []byte) {
	t.Helper()
	if _, _, err := k.w.Write(snapTopic, e.ID, jpeg, e.Frame.CapturedAt,
		[]frame.Header{{Key: frame.HeaderContentType, Value: []byte(frame.TypeJPEG)}}); err != nil {
		t.Fatal(err)
	}
}

// lifecycle returns the start, an update and the end of one event.
func lifecycle(id, camera string, typ events.Type, label string, at time.Time) []events.Event {
	score := 0.8
	e := events.Event{ID: id, Camera: camera, Type: typ, Phase: events.PhaseStart, Start: at, Updated: at,
		Boxes: []events.Box{{X: 0.1, Y: 0.2, W: 0.3, H: 0.4}}, Area: 0.12, Frame: events.FrameRef{CapturedAt: at}}
	if typ == events.TypeObject {
		e.Label, e.Score, e.Severity = label, &score, events.SeverityAlert
	}
	if typ == events.TypeFace {
		e.Faces = 1
	}
	up := e
	up.Phase, up.Updated = events.PhaseUpdate, at.Add(time.Second)
	end := up
	endAt := at.Add(2 * time.Second)
	end.Phase, end.End, end.Updated = events.PhaseEnd, &endAt, at.Add(3*time.Second)
	return []events.Event{e, up, end}
}

// startNotifier runs a notifier on its own connections to addr until the
// test ends (or stop is called).
type running struct {
	n      *Notifier
	k      *kafka.Conns
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	stopFn func()
}

func startNotifier(t *testing.T, addr string, o Options) *running {
	t.Helper()
	o.EventsTopic, o.SnapshotsTopic = evTopic, snapTopic
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	k := conns(t, addr)
	n, err := New(o, k)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{n: n, k: k, cancel: cancel, done: make(chan struct{})}
	kdone := make(chan struct{})
	go func() { defer close(kdone); _ = k.Run(ctx) }()
	go func() { defer close(r.done); _ = n.Run(ctx) }()
	r.stopFn = func() {
		cancel()
		<-r.done
		_ = n.Close()
		<-kdone
		_ = k.Close()
	}
	t.Cleanup(r.stop)
	waitFor(t, 30*time.Second, "notifier ready", func() bool { return n.Ready() == nil })
	return r
}

func (r *running) stop() { r.once.Do(r.stopFn) }

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metric returns one target's counters.
func (r *running) metric(t *testing.T, target string) metrics.NotifyTarget {
	t.Helper()
	var s metrics.Snapshot
	r.n.Collect(&s)
	for _, m := range s.Notify {
		if m.Target == target {
			return m
		}
	}
	t.Fatalf("no metrics for target %q in %+v", target, s.Notify)
	return metrics.NotifyTarget{}
}

// receiver is a webhook receiver on 127.0.0.1 that checks every request's
// signature, as a user's would, and keeps what it accepted.
type receiver struct {
	t      *testing.T
	secret string
	addr   string
	srv    *http.Server
	// delay, if set, holds every answer this long.
	delay time.Duration

	mu       sync.Mutex
	got      []received
	bad      []string
	arrivals chan struct{}
}

type received struct {
	body    WebhookBody
	raw     []byte
	headers http.Header
}

func newReceiver(t *testing.T, secret string) *receiver {
	t.Helper()
	r := &receiver{t: t, secret: secret, arrivals: make(chan struct{}, 10000)}
	r.start("127.0.0.1:0")
	t.Cleanup(r.stop)
	return r
}

func (r *receiver) url() string { return "http://" + r.addr + "/hook" }

func (r *receiver) start(addr string) {
	r.t.Helper()
	var ln net.Listener
	var err error
	for try := 0; try < 50; try++ { // the old socket may linger a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
}

func (r *receiver) stop() {
	if r.srv != nil {
		_ = r.srv.Close()
		r.srv = nil
	}
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	raw, _ := io.ReadAll(req.Body)
	sig := req.Header.Get(HeaderSignature)
	fail := func(why string) {
		r.mu.Lock()
		r.bad = append(r.bad, why)
		r.mu.Unlock()
		http.Error(w, why, http.StatusUnauthorized)
	}
	if r.secret != "" && !hmac.Equal([]byte(sig), []byte(Sign([]byte(r.secret), raw))) {
		fail("bad signature " + sig)
		return
	}
	var b WebhookBody
	if err := json.Unmarshal(raw, &b); err != nil {
		fail("bad json: " + err.Error())
		return
	}
	ts, err := strconv.ParseInt(req.Header.Get(HeaderTimestamp), 10, 64)
	if err != nil || ts != b.Timestamp || time.Since(time.Unix(ts, 0)) > 5*time.Minute {
		fail("bad timestamp " + req.Header.Get(HeaderTimestamp))
		return
	}
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	r.mu.Lock()
	r.got = append(r.got, received{body: b, raw: raw, headers: req.Header.Clone()})
	r.mu.Unlock()
	r.arrivals <- struct{}{}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// keys returns the idempotency keys received, in order, and how many times
// each came.
func (r *receiver) keys() ([]string, map[string]int) {
	var order []string
	count := map[string]int{}
	for _, g := range r.received() {
		if count[g.body.IdempotencyKey] == 0 {
			order = append(order, g.body.IdempotencyKey)
		}
		count[g.body.IdempotencyKey]++
	}
	return order, count
}

func (r *receiver) waitKeys(t *testing.T, d time.Duration, n int) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		k, _ := r.keys()
		if len(k) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %d distinct deliveries; got %d: %v", d, n, len(k), k)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
