package web

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/auth"
	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/hub"
)

// storeEvents is Events over a real store, with snapshots from a map.
type storeEvents struct {
	*events.Store
	snaps map[string][]byte
}

func (s storeEvents) Snapshot(_ context.Context, id string) ([]byte, error) {
	if b, ok := s.snaps[id]; ok {
		return b, nil
	}
	return nil, ErrNoSnapshot
}

func testEvent(id, camera string, typ events.Type, phase events.Phase, start time.Time, updated time.Duration) events.Event {
	e := events.Event{ID: id, Camera: camera, Type: typ, Phase: phase, Start: start, Updated: start.Add(updated),
		Boxes: []events.Box{{X: 0.1, Y: 0.1, W: 0.2, H: 0.2}}, Area: 0.04}
	if phase == events.PhaseEnd {
		end := start.Add(updated)
		e.End = &end
	}
	return e
}

func startEvents(t *testing.T, ev Events, a *auth.Authenticator) string {
	t.Helper()
	h := hub.New()
	h.Register("lobby")
	h.Register("yard")
	s, err := Start(Options{Live: HubLive(h), Events: ev, Auth: a, WriteTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return "http://" + s.Addr()
}

func TestEventRoutes(t *testing.T) {
	st := events.NewStore(events.StoreOptions{})
	now := time.Now()
	st.Apply(testEvent("e1", "lobby", events.TypeMotion, events.PhaseEnd, now.Add(-10*time.Minute), 20*time.Second))
	st.Apply(testEvent("e2", "yard", events.TypeFace, events.PhaseStart, now.Add(-time.Minute), 0))
	st.Apply(testEvent("e3", "lobby", events.TypeMotion, events.PhaseStart, now.Add(-30*time.Second), 0))
	for _, o := range []struct {
		id, label string
		score     float64
		zones     []string
		severity  events.Severity
	}{
		{"o1", "person", 0.62, []string{"porch"}, events.SeverityAlert},
		{"o2", "car", 0.71, []string{"drive", "porch"}, events.SeverityAlert},
		{"o3", "person", 0.55, nil, events.SeverityDetection},
	} {
		e := testEvent(o.id, "yard", events.TypeObject, events.PhaseEnd, now.Add(-20*time.Minute), 10*time.Second)
		e.Label, e.Score, e.Zones, e.Severity = o.label, &o.score, o.zones, o.severity
		if !st.Apply(e) {
			t.Fatalf("object event %s refused", o.id)
		}
	}
	jpeg := []byte{0xff, 0xd8, 0xff, 0xd9}
	base := startEvents(t, storeEvents{st, map[string][]byte{"e1": jpeg}}, nil)
	ids := func(body string) string {
		var evs []events.Event
		if err := json.Unmarshal([]byte(body), &evs); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		var out []string
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		path string
		code int
		want string // ids for lists, else a body substring
	}{
		{"/api/events?since=-15m", 200, "e3,e2,e1"},
		{"/api/events?type=object", 200, "o3,o2,o1"},
		{"/api/events?type=object&label=person", 200, "o3,o1"},
		{"/api/events?label=person&min_score=0.6", 200, "o1"},
		{"/api/events?min_score=0.7", 200, "o2"},
		{"/api/events?zone=porch", 200, "o2,o1"},
		{"/api/events?zone=drive", 200, "o2"},
		{"/api/events?zone=porch&label=person", 200, "o1"},
		{"/api/events?severity=alert", 200, "o2,o1"},
		{"/api/events?severity=detection", 200, "o3"},
		{"/api/events?camera=lobby", 200, "e3,e1"},
		{"/api/events?type=face", 200, "e2"},
		{"/api/events?limit=1", 200, "e3"},
		{"/api/events?since=-5m", 200, "e3,e2"},
		{"/api/events?since=-15m&until=-5m", 200, "e1"},
		{"/api/events?since=" + now.Add(-2*time.Minute).UTC().Format(time.RFC3339), 200, "e3,e2"},
	} {
		code, body, _ := get(t, base+tc.path)
		if code != tc.code || ids(body) != tc.want {
			t.Errorf("GET %s: %d %s; want %d with %s", tc.path, code, body, tc.code, tc.want)
		}
	}
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/api/events?type=car", 400, `parameter \"type\": \"car\" is not motion, face or object`},
		{"/api/events?min_score=2", 400, `parameter \"min_score\": \"2\" is not a score from 0 to 1`},
		{"/api/events?min_score=NaN", 400, `parameter \"min_score\"`},
		{"/api/events?severity=urgent", 400, `parameter \"severity\": \"urgent\" is not alert or detection`},
		{"/api/events?zone=" + strings.Repeat("z", 65), 400, `parameter \"zone\": longer than 64 characters`},
		{"/api/events?since=yesterday", 400, `parameter \"since\"`},
		{"/api/events?limit=0", 400, `parameter \"limit\"`},
		{"/api/events?since=-1m&until=-5m", 400, `parameter \"until\" is before \"since\"`},
		{"/api/events/e2", 200, `"camera":"yard"`},
		{"/api/events/nope", 404, `unknown event \"nope\"`},
		{"/api/events/e1/snapshot.jpg", 200, string(jpeg)},
		{"/api/events/e3/snapshot.jpg", 404, `has no snapshot`},
		{"/api/events/live?type=bus", 400, `parameter \"type\"`},
	} {
		code, body, _ := get(t, base+tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d %s; want %d containing %s", tc.path, code, body, tc.code, tc.want)
		}
	}
}

// A principal limited to some cameras sees only their events, and other
// cameras' events are 404, as if they did not exist.
func TestEventsObeyCameraAllowList(t *testing.T) {
	st := events.NewStore(events.StoreOptions{})
	now := time.Now()
	st.Apply(testEvent("e1", "lobby", events.TypeMotion, events.PhaseStart, now, 0))
	st.Apply(testEvent("e2", "yard", events.TypeMotion, events.PhaseStart, now, 0))
	a, err := auth.New([]auth.Token{{Name: "lobby-screen", Secret: "lobby-token-0123456789", Cameras: []string{"lobby"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := startEvents(t, storeEvents{st, nil}, a)
	if code, _, _ := get(t, base+"/api/events"); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	code, body, _ := get(t, base+"/api/events?token=lobby-token-0123456789")
	if code != 200 || !strings.Contains(body, `"e1"`) || strings.Contains(body, `"e2"`) {
		t.Fatalf("limited list: %d %s", code, body)
	}
	if code, _, _ := get(t, base+"/api/events/e2?token=lobby-token-0123456789"); code != 404 {
		t.Fatalf("another camera's event: %d", code)
	}
}

// sseReader reads server-sent events.
type sseReader struct {
	resp *http.Response
	r    *bufio.Reader
}

func openSSE(t *testing.T, url, lastID string) *sseReader {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" || resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("live events: %d %v", resp.StatusCode, resp.Header)
	}
	return &sseReader{resp, bufio.NewReader(resp.Body)}
}

// next returns the next message's fields (comments and retry skipped).
func (s *sseReader) next(t *testing.T) map[string]string {
	t.Helper()
	msg := map[string]string{}
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading events: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		if line == "" {
			if msg["data"] != "" {
				return msg
			}
			msg = map[string]string{}
			continue
		}
		if k, v, ok := strings.Cut(line, ": "); ok && k != "" {
			msg[k] = v
		}
	}
}

func TestLiveEventsAndResume(t *testing.T) {
	st := events.NewStore(events.StoreOptions{})
	base := startEvents(t, storeEvents{st, nil}, nil)
	live := openSSE(t, base+"/api/events/live?camera=lobby", "")
	now := time.Now()
	time.Sleep(100 * time.Millisecond)                                              // subscribed
	st.Apply(testEvent("y1", "yard", events.TypeMotion, events.PhaseStart, now, 0)) // filtered out
	st.Apply(testEvent("l1", "lobby", events.TypeMotion, events.PhaseStart, now, 0))
	st.Apply(testEvent("l1", "lobby", events.TypeMotion, events.PhaseEnd, now, 12*time.Second))
	first := live.next(t)
	if first["event"] != "start" || !strings.Contains(first["data"], `"id":"l1"`) {
		t.Fatalf("first message %v", first)
	}
	second := live.next(t)
	if second["event"] != "end" || !strings.Contains(second["data"], `"end":`) {
		t.Fatalf("second message %v", second)
	}
	// A client that comes back with the first message's id gets the end
	// it may have missed, and no reset.
	again := openSSE(t, base+"/api/events/live?camera=lobby", first["id"])
	if m := again.next(t); m["id"] != second["id"] || m["event"] != "end" {
		t.Fatalf("resumed with %v, want %v", m, second)
	}
	// An id this node never issued (another node, a restart) gets a reset.
	stale := openSSE(t, base+"/api/events/live", "1")
	if m := stale.next(t); m["event"] != "reset" {
		t.Fatalf("stale id: %v", m)
	}
}
