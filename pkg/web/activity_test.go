package web

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/auth"
	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/hub"
)

// logActivity is Activity over a real log.
type logActivity struct{ *events.ActivityLog }

func (l logActivity) Activity(camera string, from, to time.Time) []events.Activity {
	return l.Minutes(camera, from, to)
}

func TestActivityRoute(t *testing.T) {
	now := time.Now().Truncate(time.Minute)
	log := events.NewActivityLog(0, 0, nil)
	for i := range 5 {
		log.Apply(events.Activity{Camera: "yard", Minute: now.Add(-time.Duration(i) * time.Minute), Frames: 600, Moving: 150 * i, Area: 0.01 * float64(i), Peak: 0.1})
	}
	log.Apply(events.Activity{Camera: "door", Minute: now, Frames: 10, Moving: 10, Area: 0.5, Peak: 0.5})
	h := hub.New()
	h.Register("yard")
	h.Register("door")
	a, err := auth.New([]auth.Token{{Name: "yard-screen", Secret: "yard-token-0123456789", Cameras: []string{"yard"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(Options{Live: HubLive(h), Activity: logActivity{log}, Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	base := "http://" + s.Addr()
	const tok = "?token=yard-token-0123456789"
	code, body, _ := get(t, base+"/api/cameras/yard/activity"+tok)
	var r struct {
		Camera  string `json:"camera"`
		Minutes []struct {
			T      time.Time `json:"t"`
			Area   float64   `json:"area"`
			Moving float64   `json:"moving"`
			Peak   float64   `json:"peak"`
			Frames int       `json:"frames"`
		} `json:"minutes"`
	}
	if err := json.Unmarshal([]byte(body), &r); code != 200 || err != nil {
		t.Fatalf("activity: %d %s", code, body)
	}
	// The last 24 hours, oldest first.
	if len(r.Minutes) != 5 || !r.Minutes[0].T.Equal(now.Add(-4*time.Minute)) || r.Minutes[0].Area != 0.04 || r.Minutes[0].Moving != 1 || r.Minutes[3].Moving != 0.25 || r.Minutes[4].Area != 0 {
		t.Fatalf("minutes %+v", r.Minutes)
	}
	from, to := now.Add(-2*time.Minute).Unix(), now.Add(time.Minute).Unix()
	_, body, _ = get(t, base+fmt.Sprintf("/api/cameras/yard/activity%s&from=%d&to=%d", tok, from, to))
	if err := json.Unmarshal([]byte(body), &r); err != nil || len(r.Minutes) != 3 || r.Minutes[2].Frames != 600 {
		t.Fatalf("from -2 min to +1 min: %s", body)
	}
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/api/cameras/door/activity" + tok, 403, "may not watch"},
		{"/api/cameras/nope/activity?token=x", 401, ""},
		{"/api/cameras/yard/activity" + tok + "&from=-216h", 400, "at most 8 days"},
		{"/api/cameras/yard/activity" + tok + "&from=soon", 400, `parameter \"from\"`},
	} {
		if code, body, _ := get(t, base+tc.path); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.path, code, body, tc.code, tc.want)
		}
	}
}
