package notify

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/events"
)

func webhookOptions(r *receiver, name string) WebhookOptions {
	return WebhookOptions{Name: name, URL: r.url(), Secret: r.secret, Headers: []string{"X-Tenant: home"},
		Rules: Rules{Cooldown: 0}, Retry: Retry{Attempts: 0, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}}
}

// A webhook gets a new and an end per event (the default phases), signed,
// stamped, with absolute links and the idempotency key in body and header.
func TestWebhookDeliversSignedEvents(t *testing.T) {
	k := startKafka(t)
	rcv := newReceiver(t, "s3cret-for-hmac")
	n := startNotifier(t, k.addr, Options{Links: Links{Base: "https://nvr.example.org/cams/", Clips: true}, Version: "1.2.3",
		Webhooks: []WebhookOptions{webhookOptions(rcv, "alerts")}})
	at := time.Now().UTC().Truncate(time.Millisecond)
	evs := lifecycle("1762423821.123456-k3x9q2", "yard", events.TypeObject, "person", at)
	evs[0].Snapshot, evs[1].Snapshot, evs[2].Snapshot = true, true, true
	k.publish(t, evs...)
	rcv.waitKeys(t, 20*time.Second, 2)
	got := rcv.received()
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want 2 (new, end): %+v", len(got), got)
	}
	for i, want := range []struct{ typ, key string }{{"new", evs[0].ID + ":new"}, {"end", evs[0].ID + ":end"}} {
		b, h := got[i].body, got[i].headers
		if b.Type != want.typ || b.IdempotencyKey != want.key || h.Get(HeaderIdempotencyKey) != want.key || h.Get(HeaderEvent) != want.typ {
			t.Errorf("delivery %d: type %q key %q (headers %q %q), want %q %q", i, b.Type, b.IdempotencyKey, h.Get(HeaderEvent), h.Get(HeaderIdempotencyKey), want.typ, want.key)
		}
		if h.Get("Content-Type") != "application/json" || h.Get("User-Agent") != "streamd/1.2.3" || h.Get("X-Tenant") != "home" {
			t.Errorf("delivery %d headers: %v", i, h)
		}
		if !strings.HasPrefix(h.Get(HeaderSignature), "sha256=") || len(h.Get(HeaderSignature)) != 7+64 {
			t.Errorf("delivery %d signature %q", i, h.Get(HeaderSignature))
		}
		e, err := events.Unmarshal(b.Event)
		if err != nil {
			t.Fatalf("delivery %d: event: %v", i, err)
		}
		if e.ID != evs[0].ID || e.Camera != "yard" || e.Label != "person" || e.Severity != events.SeverityAlert {
			t.Errorf("delivery %d event: %+v", i, e)
		}
		if b.Target != "alerts" {
			t.Errorf("delivery %d target %q", i, b.Target)
		}
		wantURLs := URLs{
			Event:    "https://nvr.example.org/cams/api/events/" + evs[0].ID,
			Snapshot: "https://nvr.example.org/cams/api/events/" + evs[0].ID + "/snapshot.jpg",
			Clip:     "https://nvr.example.org/cams/api/events/" + evs[0].ID + "/clip.mp4",
			Camera:   fmt.Sprintf("https://nvr.example.org/cams/cameras/yard?at=%.3f", float64(at.Add(-5*time.Second).UnixMilli())/1000),
		}
		if b.URLs != wantURLs {
			t.Errorf("delivery %d urls:\n got  %+v\n want %+v", i, b.URLs, wantURLs)
		}
	}
	if e, _ := events.Unmarshal(got[1].body.Event); e.Phase != events.PhaseEnd || e.End == nil {
		t.Errorf("the end delivery carries %+v", e)
	}
	m := n.metric(t, "webhook.alerts")
	if m.Delivered != 2 || m.Failed != 0 || m.Dropped[DropPhase] != 1 || m.Up != 1 {
		t.Errorf("metrics: %+v", m)
	}
	if len(rcv.bad) > 0 {
		t.Errorf("the receiver refused: %v", rcv.bad)
	}
}

// A receiver that answers 400 refuses for good: no retry, counted failed,
// and the next event goes on; a 503 with Retry-After is retried.
func TestWebhookRefusalAndRetryAfter(t *testing.T) {
	k := startKafka(t)
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b WebhookBody
		_ = json.NewDecoder(r.Body).Decode(&b)
		calls = append(calls, b.IdempotencyKey)
		switch {
		case strings.HasPrefix(b.IdempotencyKey, "bad"):
			http.Error(w, "no", http.StatusBadRequest)
		case strings.HasPrefix(b.IdempotencyKey, "busy") && len(calls) < 4:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "later", http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	n := startNotifier(t, k.addr, Options{Webhooks: []WebhookOptions{{Name: "h", URL: srv.URL, Rules: Rules{Phases: []string{TypeNew}},
		Retry: Retry{Attempts: 5, Backoff: 50 * time.Millisecond, MaxBackoff: 5 * time.Second}}}})
	at := time.Now()
	k.publish(t, lifecycle("bad", "c1", events.TypeMotion, "", at)[0])
	k.publish(t, lifecycle("busy", "c1", events.TypeMotion, "", at)[0])
	waitFor(t, 20*time.Second, "busy delivered", func() bool { return n.metric(t, "webhook.h").Delivered == 1 })
	m := n.metric(t, "webhook.h")
	if m.Failed != 1 || m.Retried != 2 {
		t.Errorf("metrics %+v, want 1 failed (the 400, not retried) and 2 retries of the 503", m)
	}
	if !slices.Equal(calls, []string{"bad:new", "busy:new", "busy:new", "busy:new"}) {
		t.Errorf("calls %v", calls)
	}
}
