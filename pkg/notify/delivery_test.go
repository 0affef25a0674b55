package notify

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/events"
)

// expectedKeys are the keys of new and end of every event of evs.
func expectedKeys(evs []events.Event) []string {
	var keys []string
	for _, e := range evs {
		switch e.Phase {
		case events.PhaseStart:
			keys = append(keys, e.ID+":new")
		case events.PhaseEnd:
			keys = append(keys, e.ID+":end")
		}
	}
	return keys
}

// checkPerCameraOrder fails unless each event's new came before its end
// and each camera's events came in the order published.
func checkPerCameraOrder(t *testing.T, order []string, published []string) {
	t.Helper()
	pos := map[string]int{}
	for i, k := range order {
		pos[k] = i
	}
	last := map[string]int{} // camera -> position of its last key
	for _, k := range published {
		cam := strings.SplitN(k, "_", 2)[0]
		if p, ok := last[cam]; ok && pos[k] < p {
			t.Errorf("%s arrived before an earlier change of its camera", k)
		}
		last[cam] = pos[k]
	}
}

// The receiver is down for 20 s while events happen: every message arrives
// once it is back, none lost, in order per camera; /readyz's degraded
// reason names the webhook meanwhile.
func TestWebhookReceiverDownThenBack(t *testing.T) {
	t.Parallel()
	k := startKafka(t)
	rcv := newReceiver(t, "another-secret")
	addr := rcv.addr
	o := webhookOptions(rcv, "door")
	o.Retry = Retry{Attempts: 0, Backoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second}
	n := startNotifier(t, k.addr, Options{Webhooks: []WebhookOptions{o}})
	rcv.stop()
	var published []events.Event
	at := time.Now().UTC()
	for i := range 6 {
		evs := lifecycle(fmt.Sprintf("cam%d_ev%d", i%3, i), fmt.Sprintf("cam%d", i%3), events.TypeMotion, "", at.Add(time.Duration(i)*time.Second))
		k.publish(t, evs...)
		published = append(published, evs...)
	}
	waitFor(t, 10*time.Second, "the failure to show", func() bool { return strings.Contains(n.n.Degraded(), "webhook.door: failing since") })
	if d := n.n.Degraded(); !strings.Contains(d, "connection refused") {
		t.Errorf("degraded: %q", d)
	}
	if n.metric(t, "webhook.door").Up != 0 {
		t.Error("streamd_notify_up is 1 while the receiver is down")
	}
	time.Sleep(20 * time.Second)
	if n.n.Ready() != nil {
		t.Errorf("a receiver down made the notifier unready: %v", n.n.Ready())
	}
	rcv.start(addr)
	want := expectedKeys(published)
	rcv.waitKeys(t, 30*time.Second, len(want))
	order, count := rcv.keys()
	if !sameSet(order, want) {
		t.Fatalf("received %v, want %v", order, want)
	}
	for k, c := range count {
		if c != 1 {
			t.Errorf("%s received %d times", k, c)
		}
	}
	checkPerCameraOrder(t, order, want)
	m := n.metric(t, "webhook.door")
	if m.Retried == 0 || m.Failed != 0 || m.Delivered != uint64(len(want)) || m.Up != 1 {
		t.Errorf("metrics after the outage: %+v", m)
	}
	if d := n.n.Degraded(); d != "" {
		t.Errorf("still degraded after delivering: %q", d)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// A notifier stopped while it delivers, and events written while it is
// down: a new notifier in the same group delivers all of them; what comes
// twice comes with the same key and the same event.
func TestNotifierRestartLosesNothing(t *testing.T) {
	k := startKafka(t)
	rcv := newReceiver(t, "restart-secret")
	rcv.delay = 150 * time.Millisecond
	o := Options{Webhooks: []WebhookOptions{webhookOptions(rcv, "r")}}
	first := startNotifier(t, k.addr, o)
	var published []events.Event
	at := time.Now().UTC()
	for i := range 8 {
		evs := lifecycle(fmt.Sprintf("c%d_a%d", i%4, i), fmt.Sprintf("c%d", i%4), events.TypeFace, "", at.Add(time.Duration(i)*time.Second))
		published = append(published, evs...)
	}
	k.publish(t, published...)
	rcv.waitKeys(t, 20*time.Second, 3)
	first.stop() // deliveries under way are abandoned, not committed
	var later []events.Event
	for i := range 4 {
		later = append(later, lifecycle(fmt.Sprintf("c%d_b%d", i, i), fmt.Sprintf("c%d", i), events.TypeFace, "", at.Add(time.Minute+time.Duration(i)*time.Second))...)
	}
	k.publish(t, later...)
	published = append(published, later...)
	startNotifier(t, k.addr, o)
	want := expectedKeys(published)
	rcv.waitKeys(t, 60*time.Second, len(want))
	order, _ := rcv.keys()
	if !sameSet(order, want) {
		t.Fatalf("received %v, want %v", order, want)
	}
	byKey := map[string]string{}
	for _, g := range rcv.received() {
		if prev, ok := byKey[g.body.IdempotencyKey]; ok && prev != string(g.body.Event) {
			t.Errorf("%s came again with another event:\n%s\n%s", g.body.IdempotencyKey, prev, g.body.Event)
		}
		byKey[g.body.IdempotencyKey] = string(g.body.Event)
	}
	checkPerCameraOrder(t, order, want)
}

// Two notifiers in one group split the cameras: each message arrives
// once, and both deliver some.
func TestTwoNotifiersDeliverEachEventOnce(t *testing.T) {
	t.Parallel()
	k := startKafka(t)
	rcv := newReceiver(t, "two-secret")
	o := Options{Webhooks: []WebhookOptions{webhookOptions(rcv, "both")}}
	a := startNotifier(t, k.addr, o)
	b := startNotifier(t, k.addr, o)
	// The second member's join rebalances the group: wait until both are
	// in the new session, and stay there.
	stable := 0
	waitFor(t, 60*time.Second, "both notifiers in one stable session", func() bool {
		if a.n.Ready() == nil && b.n.Ready() == nil {
			stable++
		} else {
			stable = 0
		}
		return stable >= 40 // 2 s
	})
	var published []events.Event
	at := time.Now().UTC()
	for i := range 16 {
		published = append(published, lifecycle(fmt.Sprintf("cam%02d_x", i), fmt.Sprintf("cam%02d", i), events.TypeMotion, "", at.Add(time.Duration(i)*time.Millisecond))...)
	}
	k.publish(t, published...)
	want := expectedKeys(published)
	rcv.waitKeys(t, 30*time.Second, len(want))
	time.Sleep(2 * time.Second) // a repeat would come now
	order, count := rcv.keys()
	if !sameSet(order, want) {
		t.Fatalf("received %v, want %v", order, want)
	}
	for k, c := range count {
		if c != 1 {
			t.Errorf("%s delivered %d times", k, c)
		}
	}
	da, db := a.metric(t, "webhook.both").Delivered, b.metric(t, "webhook.both").Delivered
	if da == 0 || db == 0 || da+db != uint64(len(want)) {
		t.Errorf("delivered %d by one and %d by the other, want a split of %d", da, db, len(want))
	}
}

// A stop first delivers what the events topic held when it began: in the
// all-in-one the analysis stops first and ends its events, and the
// targets are told they are over (not left "on"). Here the ends are
// published just before the stop, many cameras' at once, to a receiver
// that takes 300 ms to answer each.
func TestStopDeliversWhatTheTopicHeld(t *testing.T) {
	k := startKafka(t)
	rcv := newReceiver(t, "stop-secret")
	rcv.delay = 300 * time.Millisecond
	n := startNotifier(t, k.addr, Options{Webhooks: []WebhookOptions{webhookOptions(rcv, "door")}})
	at := time.Now().UTC()
	var starts, ends []events.Event
	for i := range 8 {
		evs := lifecycle(fmt.Sprintf("cam%d_ev", i), fmt.Sprintf("cam%d", i), events.TypeMotion, "", at.Add(time.Duration(i)*time.Millisecond))
		starts, ends = append(starts, evs[0]), append(ends, evs[2])
	}
	k.publish(t, starts...)
	rcv.waitKeys(t, 30*time.Second, len(starts))
	k.publish(t, ends...)
	n.stop() // at once: the ends have not been read yet
	order, _ := rcv.keys()
	for _, e := range ends {
		if !slices.Contains(order, e.ID+":end") {
			t.Errorf("%s:end not delivered by the stop; received %v", e.ID, order)
		}
	}
}
