package notify

import (
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/events"
)

// Links start with Base, or without it with what BaseFunc says when the
// link is made (the address the HTTP server got, known once it started).
func TestLinksBase(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC)
	e := events.Event{ID: "1772366410.000000-abc", Camera: "front door", Start: at, Snapshot: true}
	addr := "http://127.0.0.1:0"
	l := Links{BaseFunc: func() string { return addr }, Clips: true}
	addr = "http://127.0.0.1:41234/" // the port the server got
	got := l.For(e)
	want := URLs{
		Event:    "http://127.0.0.1:41234/api/events/1772366410.000000-abc",
		Snapshot: "http://127.0.0.1:41234/api/events/1772366410.000000-abc/snapshot.jpg",
		Clip:     "http://127.0.0.1:41234/api/events/1772366410.000000-abc/clip.mp4",
		Camera:   "http://127.0.0.1:41234/cameras/front%20door?at=1772366405.000",
	}
	if got != want {
		t.Fatalf("links from BaseFunc:\n got  %+v\n want %+v", got, want)
	}
	l.Base = "https://nvr.example.org/cams/"
	if got := l.For(e).Event; got != "https://nvr.example.org/cams/api/events/1772366410.000000-abc" {
		t.Fatalf("Base set: event link %q", got)
	}
	m := &mqttTarget{links: Links{BaseFunc: func() string { return addr }}}
	if got := m.cameraURL("front door"); got != "http://127.0.0.1:41234/cameras/front%20door" {
		t.Fatalf("device configuration_url %q", got)
	}
}
