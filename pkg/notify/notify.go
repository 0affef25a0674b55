// Package notify tells people about the analyzer's events: it POSTs signed
// JSON to webhooks and publishes to an MQTT broker (Frigate-shaped event
// messages, per-camera states, snapshots and Home Assistant discovery).
//
// Each target (every webhook, and MQTT) reads the events topic in a
// consumer group of its own, "<group>.<target>", shared by every notifier
// process: the topic's partitions, and so the cameras, are split between
// the processes, and each change of an event reaches each target from one
// process. A target commits a record only once it has delivered what the
// record makes it send, or given up on it after its retries (a receiver
// that refuses it for good, or the retry cap): a restart or a rebalance
// goes on from there, so delivery is at least once, and a message sent
// again carries the same idempotency key. Records of one camera are on one
// partition and are handled one after the other, so each target keeps the
// camera's order.
//
// Why a group per target rather than one group feeding every target: the
// events topic itself is then each target's queue. A target that is down
// holds back only its own offsets, for as long as it is down, while the
// others go on; one group would have to hold every undelivered change of a
// down target in memory (unbounded) or drop it (lost). The queue between
// Kafka and a target is the partition consumer's buffer (bounded), and a
// target that falls behind says so in streamd_notify_behind_seconds.
//
// The package may not read the configuration (it takes Options) or serve
// HTTP; the events topic is created by whoever owns the Kafka connections.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/lograte"
	"github.com/streamd/streamd/pkg/metrics"
	"github.com/streamd/streamd/pkg/redact"
)

// Defaults of Options, used for zero fields.
const (
	DefaultGroup          = "streamd-notifier"
	DefaultAttempts       = 10
	DefaultBackoff        = time.Second
	DefaultMaxBackoff     = time.Minute
	DefaultTimeout        = 10 * time.Second
	DefaultTopicPrefix    = "streamd"
	DefaultDiscoveryTopic = "homeassistant"
)

// SnapshotsClient names the Kafka client that reads snapshots (MQTT).
const SnapshotsClient = "notify-snapshots"

// StopBudget is the notifier's stop budget: each target first delivers
// what the events topic held when the stop began (drainBudget at most:
// in the all-in-one, the events the analysis ended as it stopped), then
// deliveries under way are abandoned (their records are not committed,
// so they are sent again after a restart), the groups commit what was
// delivered, and MQTT says offline.
const StopBudget = 3 * time.Second

// drainBudget bounds a target's drain at a stop. A target that is failing
// does not drain: its deliveries wait for the next start anyway.
const drainBudget = 2 * time.Second

// Options configures a Notifier. EventsTopic must be set.
type Options struct {
	// EventsTopic is the analyzer's events; SnapshotsTopic its snapshots
	// (MQTT publishes them).
	EventsTopic, SnapshotsTopic string
	// Group prefixes each target's consumer group; "": DefaultGroup.
	Group string
	// Links makes the URLs of an event's snapshot, clip and camera page.
	Links Links
	// Webhooks and MQTT are the targets; MQTT nil: none.
	Webhooks []WebhookOptions
	MQTT     *MQTTOptions
	// Version names this streamd (User-Agent, Home Assistant's device).
	Version string
	// Logger logs the notifier's troubles; nil: slog.Default().
	Logger *slog.Logger
}

// Retry is how a target retries a message: Attempts tries in all (0:
// until it is delivered), waiting Backoff after the first failure, twice
// as long after each next one, at most MaxBackoff (or what a receiver's
// Retry-After asks, within MaxBackoff).
type Retry struct {
	Attempts            int
	Backoff, MaxBackoff time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Attempts < 0 {
		r.Attempts = DefaultAttempts
	}
	if r.Backoff <= 0 {
		r.Backoff = DefaultBackoff
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = DefaultMaxBackoff
	}
	r.MaxBackoff = max(r.MaxBackoff, r.Backoff)
	return r
}

// wait is the pause before try n+1 after n failed tries (n from 1), with
// a tenth of jitter so that processes retrying together spread out.
func (r Retry) wait(n int) time.Duration {
	d := r.Backoff
	for i := 1; i < n && d < r.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.MaxBackoff)
	return d - time.Duration(rand.Int64N(int64(d)/10+1))
}

// permanentError is a failure that no retry mends: the receiver refused
// the message (a 4xx other than 408, 425 and 429).
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// retryAfterError is a failure whose receiver said when to try again.
type retryAfterError struct {
	error
	after time.Duration
}

func (e retryAfterError) Unwrap() error { return e.error }

// Notifier runs every target. It is a component: Start does nothing, Run
// consumes until cancelled, Ready says whether every target reads the
// events topic, Degraded which targets fail to deliver.
type Notifier struct {
	o       Options
	log     *slog.Logger
	kafka   *kafka.Conns
	runners []*runner
	mqtt    *mqttTarget // nil without MQTT
}

// New returns a notifier for o's targets; it asks k for one client per
// target (and one for snapshots with MQTT) and reads nothing until Run. An
// error means a target cannot be made (a CA file that does not load).
func New(o Options, k *kafka.Conns) (*Notifier, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	if o.SnapshotsTopic == "" {
		o.SnapshotsTopic = events.DefaultSnapshotsTopic
	}
	n := &Notifier{o: o, log: o.Logger.With("component", "notifier"), kafka: k}
	for _, w := range o.Webhooks {
		t, err := newWebhook(w, o.Links, o.Version)
		if err != nil {
			return nil, err
		}
		n.runners = append(n.runners, newRunner(n, "webhook."+w.Name, t, w.Rules, w.Retry))
	}
	if o.MQTT != nil {
		t, err := newMQTT(*o.MQTT, o.Links, o.Version, n.log, n.snapshot)
		if err != nil {
			return nil, err
		}
		n.mqtt = t
		n.runners = append(n.runners, newRunner(n, "mqtt", t, o.MQTT.Rules, o.MQTT.Retry))
		k.Want(SnapshotsClient, nil)
	}
	for _, r := range n.runners {
		k.Want(r.client(), nil)
	}
	return n, nil
}

// Name names the notifier among a process's components.
func (n *Notifier) Name() string { return "notifier" }

// Start does nothing: targets are reached in Run, and one that is down
// must not stop the process from starting.
func (n *Notifier) Start() error { return nil }

// StopBudget is how long Run may take to return once cancelled.
func (n *Notifier) StopBudget() time.Duration { return StopBudget }

// Run runs every target until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if n.mqtt != nil {
		wg.Add(1)
		go func() { defer wg.Done(); n.mqtt.run(ctx) }()
	}
	errs := make(chan error, len(n.runners))
	for _, r := range n.runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.run(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs // nil when none failed
}

// Ready says whether every target is in its group session, reading the
// events topic.
func (n *Notifier) Ready() error {
	var errs []string
	for _, r := range n.runners {
		if err := r.ready(); err != nil {
			errs = append(errs, r.name+": "+err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New("notifier: " + strings.Join(errs, "; "))
	}
	return nil
}

// Degraded names the targets that cannot deliver now and why ("" when
// every one can): a receiver that is down does not make the process
// unready, it waits, and /readyz says so.
func (n *Notifier) Degraded() string {
	var out []string
	for _, r := range n.runners {
		if s := r.trouble(); s != "" {
			out = append(out, r.name+": "+s)
		}
	}
	return strings.Join(out, "; ")
}

// Close leaves the groups (committing what was delivered) and, with MQTT,
// publishes offline and disconnects. Run has returned.
func (n *Notifier) Close() error {
	var errs []error
	for _, r := range n.runners {
		if err := r.close(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.mqtt != nil {
		n.mqtt.close()
	}
	return errors.Join(errs...)
}

// Collect adds each target's counters to a metrics scrape.
func (n *Notifier) Collect(s *metrics.Snapshot) {
	for _, r := range n.runners {
		t := metrics.NotifyTarget{Target: r.name, Delivered: r.delivered.Load(), Retried: r.retried.Load(),
			Failed: r.failed.Load(), Invalid: r.invalid.Load(), Dropped: map[string]uint64{}}
		for _, reason := range []string{DropRule, DropPhase, DropCooldown, DropQuietHours} {
			t.Dropped[reason] = r.dropped[reason].Load()
		}
		if r.healthy() {
			t.Up = 1
		}
		if at := r.oldest.Load(); at != 0 {
			t.Behind = time.Since(time.Unix(0, at)).Seconds()
		}
		if r.target == targetOf(n.mqtt) {
			t.SnapshotsMissing = n.mqtt.snapshotsMissing.Load()
		}
		s.Notify = append(s.Notify, t)
	}
}

// targetOf is the mqtt target as a target, nil-safe.
func targetOf(m *mqttTarget) target {
	if m == nil {
		return nil
	}
	return m
}

// snapshot reads an event's snapshot JPEG from the snapshots topic.
func (n *Notifier) snapshot(ctx context.Context, e events.Event) ([]byte, error) {
	client, err := n.kafka.Await(ctx, SnapshotsClient)
	if err != nil {
		return nil, err
	}
	return findSnapshot(ctx, client, n.o.SnapshotsTopic, e)
}

// target is where a runner delivers: a webhook or the MQTT broker.
type target interface {
	// messages turns one change into what the target sends for it, in
	// order: the notifications (nil if the rules made none), and for
	// MQTT the states they change.
	messages(ctx context.Context, e events.Event, notes []Notification) []message
	// deliver sends one message once: nil when it was delivered, a
	// permanentError when retrying cannot help.
	deliver(ctx context.Context, m message) error
	// describe names the target in logs and errors, without credentials.
	describe() string
	// trouble says why the target cannot deliver now, or "".
	trouble() string
}

// message is one thing a target sends: a webhook POST, an MQTT publish.
type message struct {
	kind  string // notification, state, snapshot, discovery
	note  *Notification
	topic string // MQTT
	body  []byte
	qos   byte
	keep  bool // MQTT retained
}

// runner reads the events topic in the target's group and hands it each
// change; it counts what happens and commits what is done.
type runner struct {
	n       *Notifier
	name    string // "webhook.<name>" or "mqtt": the group suffix and metric label
	target  target
	dec     *decider
	retry   Retry
	log     *slog.Logger
	failLog *lograte.Limiter

	mu      sync.Mutex
	durable *kafka.Durable
	next    map[int32]int64 // per partition of this session: the next offset to handle

	delivered, retried, failed, invalid atomic.Uint64
	dropped                             map[string]*atomic.Uint64
	oldest                              atomic.Int64 // unix nanos of the change being delivered, 0 when idle
	failing                             atomic.Pointer[failure]
}

// failure is a target's ongoing trouble: since when, and the last error.
type failure struct {
	since time.Time
	tries int
	err   string
}

func newRunner(n *Notifier, name string, t target, rules Rules, retry Retry) *runner {
	r := &runner{n: n, name: name, target: t, dec: newDecider(rules), retry: retry.withDefaults(),
		log: n.log.With("target", name), failLog: lograte.New(10 * time.Second), dropped: map[string]*atomic.Uint64{}}
	for _, reason := range []string{DropRule, DropPhase, DropCooldown, DropQuietHours} {
		r.dropped[reason] = new(atomic.Uint64)
	}
	return r
}

// client names the runner's Kafka client: a connection of its own, so a
// target's parked fetches and commits never wait behind another's.
func (r *runner) client() string { return "notify-" + r.name }

// group is the runner's consumer group.
func (r *runner) group() string { return r.n.o.Group + "." + r.name }

func (r *runner) run(ctx context.Context) error {
	client, err := r.n.kafka.Await(ctx, r.client())
	if err != nil {
		return nil
	}
	d, err := kafka.NewDurable(client, r.group(), r.n.o.EventsTopic, r, r.log)
	if err != nil {
		return fmt.Errorf("notifier %s: %w", r.name, err)
	}
	r.mu.Lock()
	r.durable = d
	r.mu.Unlock()
	r.log.Info("notifying", "to", r.target.describe(), "group", r.group())
	// The group session outlives ctx by the drain: what the topic held
	// when the stop began is delivered first.
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	done := make(chan error, 1)
	go func() { done <- d.Run(sctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	r.drain(client, done)
	stop()
	return <-done
}

// drain waits, at most drainBudget, until the target has handled every
// record its partitions held when the stop began. The shutdown stops the
// analysis first, so the events it ended as it stopped are among them: a
// Home Assistant sensor is told the motion is over, not left "on". It
// returns at once for a target that is failing (nothing would be
// delivered) and when the session ends.
func (r *runner) drain(client sarama.Client, done <-chan error) {
	if !r.healthy() {
		return
	}
	r.mu.Lock()
	want := make(map[int32]int64, len(r.next))
	for p := range r.next {
		want[p] = -1
	}
	r.mu.Unlock()
	for p := range want {
		newest, err := client.GetOffset(r.n.o.EventsTopic, p, sarama.OffsetNewest)
		if err != nil {
			return
		}
		want[p] = newest
	}
	deadline := time.NewTimer(drainBudget)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		behind := 0
		r.mu.Lock()
		for p, newest := range want {
			if next, ok := r.next[p]; ok && next < newest {
				behind++
			}
		}
		r.mu.Unlock()
		if behind == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-done:
			return
		case <-deadline.C:
			r.log.Warn("stopping with events not yet delivered; they are delivered after the next start", "to", r.target.describe(), "partitions_behind", behind)
			return
		}
	}
}

func (r *runner) ready() error {
	r.mu.Lock()
	d := r.durable
	r.mu.Unlock()
	if d == nil {
		return errors.New("not started (waiting for kafka)")
	}
	return d.Ready()
}

// healthy reports whether the target delivered its last message.
func (r *runner) healthy() bool { return r.failing.Load() == nil && r.target.trouble() == "" }

// trouble says why the target does not deliver now, or "".
func (r *runner) trouble() string {
	var parts []string
	if s := r.target.trouble(); s != "" {
		parts = append(parts, s)
	}
	if f := r.failing.Load(); f != nil {
		parts = append(parts, fmt.Sprintf("failing since %s (%d tries): %s", f.since.UTC().Format(time.RFC3339), f.tries, f.err))
	}
	return strings.Join(parts, "; ")
}

func (r *runner) close() error {
	r.mu.Lock()
	d := r.durable
	r.mu.Unlock()
	if d == nil {
		return nil
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("notifier %s: %w", r.name, err)
	}
	return nil
}

// Assigned (kafka.DurableSink) starts a group session: each partition's
// decisions are taken from its commit's metadata.
func (r *runner) Assigned(metadata map[int32]string) {
	for p, m := range metadata {
		r.dec.restore(p, m)
	}
}

// Starts (kafka.DurableStartSink) learns where the session's partitions
// start: what the drain at a stop measures against.
func (r *runner) Starts(offsets map[int32]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next = make(map[int32]int64, len(offsets))
	for p, o := range offsets {
		r.next[p] = o
	}
}

// Skipped (kafka.DurableSink) learns that retention removed records
// before they were read (the Durable consumer logs them).
func (r *runner) Skipped(int32, int64, int64) {}

// Record (kafka.DurableSink) is not called: RecordContext is.
func (r *runner) Record(rec kafka.Record) { r.RecordContext(context.Background(), rec) }

// RecordContext (kafka.DurableContextSink) handles one change: decides,
// delivers with retries, and commits it once every message is delivered
// or given up. When ctx ends first (a rebalance, a stop) the record is
// not committed, and is read again.
func (r *runner) RecordContext(ctx context.Context, rec kafka.Record) {
	if ctx.Err() != nil {
		// The session is over, and a record before this one may have
		// been abandoned: committing this one would skip that one.
		return
	}
	e, err := events.Unmarshal(rec.Value)
	if err != nil {
		if r.invalid.Add(1) == 1 {
			r.log.Warn("skipping a record that is not an event", "partition", rec.Partition, "offset", rec.Offset, "err", err)
		}
		r.commit(ctx, rec)
		return
	}
	if !r.dec.cameraAllowed(e.Camera) {
		r.dropped[DropRule].Add(1)
		r.commit(ctx, rec)
		return
	}
	notes, reason := r.dec.decide(rec.Partition, e)
	if reason != "" {
		r.dropped[reason].Add(1)
	}
	msgs := r.target.messages(ctx, e, notes)
	if len(msgs) > 0 {
		r.oldest.Store(e.Updated.UnixNano())
		defer r.oldest.Store(0)
	}
	for _, m := range msgs {
		if !r.send(ctx, m) {
			return // cancelled: not committed
		}
	}
	r.commit(ctx, rec)
	if len(msgs) > 0 {
		r.flush()
	}
}

// send delivers m with retries; false only if ctx ended first.
func (r *runner) send(ctx context.Context, m message) bool {
	for try := 1; ; try++ {
		err := r.target.deliver(ctx, m)
		if err == nil {
			r.delivered.Add(1)
			if f := r.failing.Swap(nil); f != nil {
				r.log.Info("delivering again", "to", r.target.describe(), "failed_for", time.Since(f.since).Round(time.Millisecond))
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		err = redact.Error(err)
		prev := r.failing.Load()
		f := &failure{since: time.Now(), tries: try, err: err.Error()}
		if prev != nil {
			f.since, f.tries = prev.since, prev.tries+1
		}
		r.failing.Store(f)
		var perm permanentError
		if errors.As(err, &perm) || (r.retry.Attempts > 0 && try >= r.retry.Attempts) {
			r.failed.Add(1)
			why := "refused for good"
			if !errors.As(err, &perm) {
				why = fmt.Sprintf("gave up after %d tries", try)
			}
			r.log.Warn("message not delivered: "+why, "to", r.target.describe(), "kind", m.kind, "key", keyOfMessage(m), "err", err)
			return true
		}
		wait := r.retry.wait(try)
		var ra retryAfterError
		if errors.As(err, &ra) && ra.after > 0 {
			wait = min(ra.after, r.retry.MaxBackoff)
		}
		r.retried.Add(1)
		if ok, n := r.failLog.Allow(); ok {
			r.log.Warn("delivery failed, retrying", "to", r.target.describe(), "kind", m.kind, "try", try, "retry_in", wait, "err", err, "similar_suppressed", n)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

func keyOfMessage(m message) string {
	if m.note != nil {
		return m.note.Key
	}
	return m.topic
}

// commit marks rec as done (unless the session ended meanwhile: see
// RecordContext).
func (r *runner) commit(ctx context.Context, rec kafka.Record) {
	if ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	d := r.durable
	if next, ok := r.next[rec.Partition]; !ok || next < rec.Offset+1 {
		if r.next == nil {
			r.next = map[int32]int64{}
		}
		r.next[rec.Partition] = rec.Offset + 1
	}
	r.mu.Unlock()
	if d != nil {
		d.Commit(rec.Partition, rec.Offset+1, r.dec.metadata(rec.Partition))
	}
}

// flush commits now what was marked: a message delivered is not sent
// again after a crash a second later.
func (r *runner) flush() {
	r.mu.Lock()
	d := r.durable
	r.mu.Unlock()
	if d != nil {
		d.Flush()
	}
}
