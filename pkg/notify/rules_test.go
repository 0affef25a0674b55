package notify

import (
	"github.com/streamd/streamd/pkg/testutil"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/events"
)

func types(ns []Notification) string {
	var s []string
	for _, n := range ns {
		s = append(s, n.Type)
	}
	return strings.Join(s, ",")
}

func TestRulesFilterAndDecideOncePerEvent(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	person := lifecycle("p1", "yard", events.TypeObject, "person", at)
	d := newDecider(Rules{Cameras: []string{"yard"}, Labels: []string{"person"}, Zones: []string{"porch"}, Severity: []string{"alert"}})
	// Not in the zone yet: held until it enters it, then new (from an
	// update), then end.
	if n, why := d.decide(0, person[0]); n != nil || why != DropRule {
		t.Fatalf("start outside the zone: %v %q", types(n), why)
	}
	up := person[1]
	up.Zones = []string{"porch"}
	if n, _ := d.decide(0, up); types(n) != "new" || n[0].Key != "p1:new" || n[0].Before.Phase != events.PhaseStart {
		t.Fatalf("entering the zone: %v", n)
	}
	end := person[2]
	end.Zones = []string{"porch"}
	if n, _ := d.decide(0, end); types(n) != "end" || n[0].Key != "p1:end" {
		t.Fatalf("end: %v", types(n))
	}
	for _, e := range []events.Event{
		lifecycle("o1", "gate", events.TypeObject, "person", at)[0],
		lifecycle("o2", "yard", events.TypeObject, "car", at)[0],
		lifecycle("o3", "yard", events.TypeMotion, "", at)[0],
	} {
		if n, why := d.decide(0, e); n != nil || why != DropRule {
			t.Errorf("%s: %v %q, want dropped by rule", e.ID, types(n), why)
		}
	}
}

func TestRulesPhasesCooldownAndQuietHours(t *testing.T) {
	at := time.Date(2026, 12, 1, 23, 30, 0, 0, time.UTC)
	quiet, err := ParseQuietHours("23:00-06:00")
	if err != nil {
		t.Fatal(err)
	}
	d := newDecider(Rules{Phases: []string{"new", "update", "end"}, Cooldown: 30 * time.Second, QuietHours: []QuietHours{quiet}, Location: time.UTC})
	night := lifecycle("n1", "yard", events.TypeFace, "", at)
	for _, e := range night {
		if n, why := d.decide(0, e); n != nil || why != DropQuietHours {
			t.Errorf("%s in quiet hours: %v %q", e.Phase, types(n), why)
		}
	}
	day := at.Add(7 * time.Hour) // 06:30
	first := lifecycle("d1", "yard", events.TypeFace, "", day)
	if n, _ := d.decide(0, first[0]); types(n) != "new" {
		t.Fatalf("first: %v", types(n))
	}
	if n, _ := d.decide(0, first[1]); types(n) != "update" || !strings.HasPrefix(n[0].Key, "d1:update:") {
		t.Fatalf("update: %v", n)
	}
	second := lifecycle("d2", "yard", events.TypeFace, "", day.Add(10*time.Second))
	for _, e := range second[:2] { // its end comes after the move below
		if n, why := d.decide(0, e); n != nil || why != DropCooldown {
			t.Errorf("%s within the cooldown: %v %q", e.Phase, types(n), why)
		}
	}
	other := lifecycle("d3", "gate", events.TypeFace, "", day.Add(10*time.Second))[0]
	if n, _ := d.decide(0, other); types(n) != "new" {
		t.Errorf("another camera is not in the cooldown: %v", types(n))
	}
	third := lifecycle("d4", "yard", events.TypeFace, "", day.Add(31*time.Second))[0]
	if n, _ := d.decide(0, third); types(n) != "new" {
		t.Errorf("after the cooldown: %v", types(n))
	}
	// The decisions travel with the partition's commit.
	md := d.metadata(0)
	d2 := newDecider(d.r)
	d2.restore(0, md)
	if n, _ := d2.decide(0, first[2]); types(n) != "end" {
		t.Errorf("after a move, the notified event's end: %v (metadata %s)", types(n), md)
	}
	if n, why := d2.decide(0, second[2]); n != nil || why != DropCooldown {
		t.Errorf("after a move, the held event's end: %v %q", types(n), why)
	}
	if n, why := d2.decide(0, lifecycle("d5", "yard", events.TypeFace, "", day.Add(40*time.Second))[0]); n != nil || why != DropCooldown {
		t.Errorf("after a move, the cooldown still runs: %v %q", types(n), why)
	}
}

func TestParseQuietHours(t *testing.T) {
	for _, bad := range []string{"", "23:00", "25:00-01:00", "23:00-23:00", "7:00-8:00", "a-b"} {
		if _, err := ParseQuietHours(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	q, err := ParseQuietHours("22:30-06:00")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		hm string
		in bool
	}{{"22:29", false}, {"22:30", true}, {"03:00", true}, {"05:59", true}, {"06:00", false}, {"12:00", false}} {
		tm, _ := time.Parse("15:04", c.hm)
		if q.contains(tm, time.UTC) != c.in {
			t.Errorf("%s in 22:30-06:00: %v, want %v", c.hm, !c.in, c.in)
		}
	}
}

// Credentials in webhook and MQTT URLs appear nowhere: not in logs, not in
// the degraded reason, not in errors.
func TestCredentialsOfTargetsAreRedacted(t *testing.T) {
	k := startKafka(t)
	var mu testutil.Buffer
	n := startNotifier(t, k.addr, Options{Logger: slog.New(slog.NewTextHandler(&mu, nil)),
		Webhooks: []WebhookOptions{{Name: "secretive", URL: "http://hookuser:hunter2@127.0.0.1:1/hook?token=tok-s3cr3t", Secret: "hmac-s3cr3t",
			Retry: Retry{Backoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}}},
		MQTT: &MQTTOptions{URL: "mqtt://mqttuser:pa55word@127.0.0.1:1", Retry: Retry{Backoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}}})
	k.publish(t, lifecycle("r1", "yard", events.TypeMotion, "", time.Now())...)
	waitFor(t, 20*time.Second, "both failing", func() bool {
		d := n.n.Degraded()
		return strings.Contains(d, "webhook.secretive: failing") && strings.Contains(d, "mqtt: not connected")
	})
	time.Sleep(time.Second)
	n.stop()
	out := mu.String() + n.n.Degraded()
	for _, secret := range []string{"hunter2", "hookuser", "tok-s3cr3t", "hmac-s3cr3t", "mqttuser", "pa55word"} {
		if strings.Contains(out, secret) {
			t.Errorf("%q appears in the logs or state:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "http://***@127.0.0.1:1/hook?token=***") || !strings.Contains(out, "mqtt://127.0.0.1:1") {
		t.Errorf("the targets are not named (redacted):\n%s", out)
	}
}
