package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/streamd/streamd/pkg/auth"
	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/hub"
	"github.com/streamd/streamd/pkg/mjpeg"
)

// memReviews is Reviews in memory; fail makes every write fail.
type memReviews struct {
	mu    sync.Mutex
	marks map[string]Mark
	fail  error
}

func (m *memReviews) Marked(id string) (Mark, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mk, ok := m.marks[id]
	return mk, ok
}

func (m *memReviews) Mark(_ context.Context, marks []Mark) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	for _, mk := range marks {
		m.marks[mk.ID] = mk
	}
	return nil
}

func (m *memReviews) Unmark(_ context.Context, id, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	delete(m.marks, id)
	return nil
}

// reviewFixture is a server with a day of events on three cameras: "door"
// with object detection (a person alert in the porch zone, a car
// detection, and motion that is not a review item there), "yard" and
// "lobby" without (motion, and a face in the lobby).
type reviewFixture struct {
	base string
	now  time.Time
	rev  *memReviews
	rec  *fakeRecordings
}

func objectEvent(id, camera, label string, sev events.Severity, zones []string, start time.Time, d time.Duration) events.Event {
	e := testEvent(id, camera, events.TypeObject, events.PhaseEnd, start, d)
	e.Label, e.Severity, e.Zones, e.Area = label, sev, zones, 0
	return e
}

// startReview serves the review over a store of events; the cameras of
// detecting run object detection, as their analyzer's activity of the
// last hours says (whatever this node's configuration says).
func startReview(t *testing.T, a *auth.Authenticator, detecting ...string) *reviewFixture {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	st := events.NewStore(events.StoreOptions{History: 48 * time.Hour})
	st.Apply(objectEvent("p1", "door", "person", events.SeverityAlert, []string{"porch"}, now.Add(-3*time.Hour), 40*time.Second))
	st.Apply(objectEvent("c1", "door", "car", events.SeverityDetection, nil, now.Add(-2*time.Hour), 20*time.Second))
	st.Apply(testEvent("m0", "door", events.TypeMotion, events.PhaseEnd, now.Add(-2*time.Hour), 30*time.Second))
	st.Apply(testEvent("m1", "yard", events.TypeMotion, events.PhaseEnd, now.Add(-90*time.Minute), 30*time.Second))
	st.Apply(testEvent("m2", "yard", events.TypeMotion, events.PhaseStart, now.Add(-10*time.Second), 0))
	st.Apply(testEvent("f1", "lobby", events.TypeFace, events.PhaseEnd, now.Add(-time.Hour), 8*time.Second))
	st.Apply(testEvent("old", "yard", events.TypeMotion, events.PhaseEnd, now.Add(-30*time.Hour), 30*time.Second))
	h := hub.New()
	for _, id := range []string{"door", "yard", "lobby"} {
		h.Register(id)
	}
	rev := &memReviews{marks: map[string]Mark{}}
	rec := &fakeRecordings{}
	// The reduced tier: a frame a second of the yard's motion m1.
	for i := range 40 {
		rec.reduced = append(rec.reduced, &frame.Frame{Camera: "yard", Seq: uint64(i), CapturedAt: now.Add(-90*time.Minute + time.Duration(i)*time.Second),
			ContentType: frame.TypeJPEG, Data: append([]byte{0xff, 0xd8, 0xff, byte(i)}, make([]byte, 100)...)})
	}
	o := Options{Live: HubLive(h), Events: storeEvents{st, nil}, Reviews: rev, Recordings: rec, Auth: a, WriteTimeout: time.Second,
		Static: fstest.MapFS{"review.html": {Data: []byte(`<h1>review</h1><script src="/static/review.js{{.Query}}"></script>`)}}}
	if len(detecting) > 0 {
		log := events.NewActivityLog(0, 0, nil)
		for _, c := range detecting {
			log.Apply(events.Activity{Camera: c, Minute: now.Add(-2 * time.Hour).Truncate(time.Minute), Frames: 600, Objects: true})
		}
		o.Activity = logActivity{log}
	}
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return &reviewFixture{base: "http://" + s.Addr(), now: now, rev: rev, rec: rec}
}

type reviewAnswer struct {
	Items []struct {
		ID       string   `json:"id"`
		Camera   string   `json:"camera"`
		Kind     string   `json:"kind"`
		What     string   `json:"what"`
		Zones    []string `json:"zones"`
		Reviewed *Mark    `json:"reviewed"`
	} `json:"items"`
	Counts    ReviewCounts `json:"counts"`
	Cameras   []string     `json:"cameras"`
	Labels    []string     `json:"labels"`
	Zones     []string     `json:"zones"`
	Truncated bool         `json:"truncated"`
}

func (a reviewAnswer) ids() string {
	var out []string
	for _, it := range a.Items {
		out = append(out, it.ID+":"+it.Kind+":"+it.What)
	}
	return strings.Join(out, " ")
}

func getReview(t *testing.T, url string) reviewAnswer {
	t.Helper()
	code, body, _ := get(t, url)
	if code != 200 {
		t.Fatalf("%s: %d %s", url, code, body)
	}
	var a reviewAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return a
}

func TestReviewListsAndFilters(t *testing.T) {
	f := startReview(t, nil)
	// The last 24 hours, newest first; the door's motion is not an item
	// (the door has object events), the day-old motion is out of the window.
	all := getReview(t, f.base+"/api/review")
	if got, want := all.ids(), "m2:motion:motion f1:alert:face m1:motion:motion c1:detection:car p1:alert:person"; got != want {
		t.Fatalf("items %q, want %q", got, want)
	}
	if all.Counts != (ReviewCounts{Alert: 2, Detection: 1, Motion: 2, Unreviewed: 5}) {
		t.Errorf("counts %+v", all.Counts)
	}
	if !slices.Equal(all.Cameras, []string{"door", "lobby", "yard"}) || !slices.Equal(all.Labels, []string{"car", "face", "motion", "person"}) || !slices.Equal(all.Zones, []string{"porch"}) {
		t.Errorf("filters offered: cameras %v labels %v zones %v", all.Cameras, all.Labels, all.Zones)
	}
	for _, tc := range []struct{ query, want string }{
		{"camera=door", "c1:detection:car p1:alert:person"},
		{"kind=alert", "f1:alert:face p1:alert:person"},
		{"kind=alert,detection", "f1:alert:face c1:detection:car p1:alert:person"},
		{"what=car", "c1:detection:car"},
		{"zone=porch", "p1:alert:person"},
		{"camera=yard&kind=motion&limit=1", "m2:motion:motion"},
		{"since=-100m&until=-30m", "f1:alert:face m1:motion:motion"},
		{"since=-31h", "m2:motion:motion f1:alert:face m1:motion:motion c1:detection:car p1:alert:person old:motion:motion"},
	} {
		if got := getReview(t, f.base+"/api/review?"+tc.query).ids(); got != tc.want {
			t.Errorf("?%s: %q, want %q", tc.query, got, tc.want)
		}
	}
	if a := getReview(t, f.base+"/api/review?camera=yard&limit=1"); !a.Truncated || a.Counts.Motion != 2 {
		t.Errorf("limit 1 of 2: truncated %v, counts %+v", a.Truncated, a.Counts)
	}
	// The yard's analyzer runs object detection (its activity says so):
	// only the lobby's face and the door's objects.
	g := startReview(t, nil, "yard")
	if got, want := getReview(t, g.base+"/api/review").ids(), "f1:alert:face c1:detection:car p1:alert:person"; got != want {
		t.Errorf("yard with object detection configured: %q, want %q", got, want)
	}
	for _, q := range []string{"kind=person", "reviewed=maybe", "since=yesterday", "limit=0", "since=-1h&until=-2h", "zone=" + strings.Repeat("z", 65)} {
		if code, body, _ := get(t, f.base+"/api/review?"+q); code != 400 || !strings.Contains(body, `"error"`) {
			t.Errorf("?%s: %d %s, want 400", q, code, body)
		}
	}
	if code, body, _ := get(t, f.base+"/review"); code != 200 || !strings.Contains(body, "<h1>review</h1>") {
		t.Errorf("/review: %d %s", code, body)
	}
}

// post sends a JSON body (content type ct).
func post(t *testing.T, url, ct, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, b := doReq(t, req)
	return resp.StatusCode, b
}

func doReq(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, sb.String()
}

func TestReviewMarks(t *testing.T) {
	f := startReview(t, nil)
	marks := f.base + "/api/review/marks"
	for _, tc := range []struct {
		name, ct, body string
		code           int
		want           string
	}{
		{"a form", "application/x-www-form-urlencoded", "ids=p1", 415, "application/json"},
		{"no content type", "", `{"ids":["p1"]}`, 415, "application/json"},
		{"not JSON", "application/json", `{"ids":`, 400, "body:"},
		{"unknown field", "application/json", `{"ids":["p1"],"all":true}`, 400, "unknown field"},
		{"no ids", "application/json", `{"ids":[]}`, 400, "1 to 100"},
		{"too many ids", "application/json", `{"ids":["` + strings.Repeat(`a","`, 100) + `a"]}`, 400, "1 to 100"},
		{"unknown event", "application/json", `{"ids":["p1","nope"]}`, 404, `unknown event \"nope\"`},
		{"too large", "application/json", `{"ids":["` + strings.Repeat("x", 5000) + `"]}`, 413, "too large"},
	} {
		code, body := post(t, marks, tc.ct, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, body, tc.code, tc.want)
		}
	}
	if len(f.rev.marks) != 0 {
		t.Fatalf("refused requests marked %v", f.rev.marks)
	}
	code, body := post(t, marks, "application/json; charset=utf-8", `{"ids":["p1","f1","p1"]}`)
	if code != 200 || !strings.Contains(body, `"by":"anonymous"`) {
		t.Fatalf("mark: %d %s", code, body)
	}
	a := getReview(t, f.base+"/api/review?reviewed=true")
	if a.ids() != "f1:alert:face p1:alert:person" || a.Items[0].Reviewed == nil || a.Items[0].Reviewed.By != "anonymous" || a.Counts.Unreviewed != 3 {
		t.Fatalf("reviewed items %q %+v counts %+v", a.ids(), a.Items, a.Counts)
	}
	if got := getReview(t, f.base+"/api/review?reviewed=false").ids(); got != "m2:motion:motion m1:motion:motion c1:detection:car" {
		t.Errorf("unreviewed items %q", got)
	}
	code, body, _ = get(t, f.base+"/api/review/summary")
	if code != 200 || !strings.Contains(body, `"unreviewed":3`) || !strings.Contains(body, `"alert":2`) {
		t.Errorf("summary: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodDelete, marks+"/f1", nil)
	if resp, body := doReq(t, req); resp.StatusCode != 200 || !strings.Contains(body, `"unmarked":"f1"`) {
		t.Fatalf("unmark: %d %s", resp.StatusCode, body)
	}
	if _, ok := f.rev.Marked("f1"); ok {
		t.Error("f1 still marked")
	}
	req, _ = http.NewRequest(http.MethodDelete, marks+"/nope", nil)
	if resp, _ := doReq(t, req); resp.StatusCode != 404 {
		t.Errorf("unmark an unknown event: %d", resp.StatusCode)
	}
	// The store failing is a 503 with a retry.
	f.rev.fail = errors.New("kafka: broker down")
	if code, body := post(t, marks, "application/json", `{"ids":["m1"]}`); code != 503 || !strings.Contains(body, "broker down") {
		t.Errorf("mark with the store down: %d %s", code, body)
	}
}

func TestReviewObeysCameraAllowList(t *testing.T) {
	const tok = "lobby-token-0123456789"
	a, err := auth.New([]auth.Token{{Name: "lobby-screen", Secret: tok, Cameras: []string{"lobby"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := startReview(t, a)
	if code, _ := post(t, f.base+"/api/review/marks", "application/json", `{"ids":["f1"]}`); code != 401 {
		t.Fatalf("mark without a token: %d", code)
	}
	if got := getReview(t, f.base+"/api/review?token="+tok).ids(); got != "f1:alert:face" {
		t.Errorf("the lobby screen's review: %q", got)
	}
	if code, body := post(t, f.base+"/api/review/marks?token="+tok, "application/json", `{"ids":["p1"]}`); code != 404 {
		t.Errorf("marking another camera's event: %d %s", code, body)
	}
	if code, body := post(t, f.base+"/api/review/marks?token="+tok, "application/json", `{"ids":["f1"]}`); code != 200 || !strings.Contains(body, `"by":"lobby-screen"`) {
		t.Errorf("marking its own camera's event: %d %s", code, body)
	}
	code, body, _ := get(t, f.base+"/api/review/summary?token="+tok)
	if code != 200 || !strings.Contains(body, `"unreviewed":0`) || !strings.Contains(body, `"alert":1,`) {
		t.Errorf("the lobby screen's summary: %d %s", code, body)
	}
	if code, _, _ := get(t, f.base+"/api/events/m1/preview?token="+tok); code != 404 {
		t.Errorf("another camera's preview: %d", code)
	}
}

func TestEventPreview(t *testing.T) {
	f := startReview(t, nil)
	resp, err := http.Get(f.base + "/api/events/m1/preview?n=5")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != mjpeg.ContentType || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age") {
		t.Fatalf("preview: %d %v", resp.StatusCode, resp.Header)
	}
	r := mjpeg.NewReader(resp.Body, mjpeg.Boundary)
	start := f.now.Add(-90 * time.Minute)
	var got []string
	for {
		p, err := r.Next()
		if err != nil {
			break
		}
		got = append(got, fmt.Sprintf("%s+%d", p.Timestamp.Sub(start).Truncate(time.Second), p.Data[3]))
	}
	// The event lasts 30 s (and the preview a second more): 5 frames, the
	// first at or after each 6.2 s step from its start.
	if want := []string{"0s+0", "7s+7", "13s+13", "19s+19", "25s+25"}; !slices.Equal(got, want) {
		t.Fatalf("preview frames %v, want %v", got, want)
	}
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/api/events/p1/preview", 404}, // the door has no reduced tier here
		{"/api/events/nope/preview", 404},
		{"/api/events/m1/preview?n=0", 400},
		{"/api/events/m1/preview?n=31", 400},
	} {
		if code, body, _ := get(t, f.base+tc.path); code != tc.code || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s, want %d", tc.path, code, body, tc.code)
		}
	}
}
