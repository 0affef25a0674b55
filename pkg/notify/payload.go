package notify

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/streamd/streamd/pkg/events"
)

// Links makes the absolute URLs a notification carries, from the address
// people open streamd's page at.
type Links struct {
	// Base is that address, such as "https://cameras.example.org" or
	// "http://127.0.0.1:8080"; a path is kept (behind a proxy at /nvr/).
	Base string
	// BaseFunc, used when Base is "", gives it each time a link is made:
	// the address this process's HTTP server listens on is known only
	// once it has started (http.listen may name port 0).
	BaseFunc func() string
	// Clips says whether event clips exist (recording is on).
	Clips bool
}

// URLs are the links of one event.
type URLs struct {
	Event    string `json:"event"`              // the event as JSON
	Snapshot string `json:"snapshot,omitempty"` // its snapshot JPEG, if it has one
	Clip     string `json:"clip,omitempty"`     // its MP4 clip, if recording is on
	Camera   string `json:"camera"`             // the camera's page, at the event
}

// base is the address links start with, without a trailing slash.
func (l Links) base() string {
	b := l.Base
	if b == "" && l.BaseFunc != nil {
		b = l.BaseFunc()
	}
	return strings.TrimRight(b, "/")
}

// For returns e's links.
func (l Links) For(e events.Event) URLs {
	base := l.base()
	id := url.PathEscape(e.ID)
	u := URLs{
		Event: base + "/api/events/" + id,
		// The page's own link to an event: its camera 5 s before.
		Camera: fmt.Sprintf("%s/cameras/%s?at=%.3f", base, url.PathEscape(e.Camera), float64(e.Start.Add(-5*time.Second).UnixMilli())/1000),
	}
	if e.Snapshot {
		u.Snapshot = base + "/api/events/" + id + "/snapshot.jpg"
	}
	if l.Clips {
		u.Clip = base + "/api/events/" + id + "/clip.mp4"
	}
	return u
}

// WebhookBody is the JSON a webhook receives.
type WebhookBody struct {
	// Type is new, update or end.
	Type string `json:"type"`
	// IdempotencyKey is the same for every delivery of this message
	// (also the Idempotency-Key header): drop a repeat you have seen.
	IdempotencyKey string `json:"idempotency_key"`
	// Timestamp is when this delivery was made, Unix seconds (also the
	// X-Streamd-Timestamp header): refuse old ones against replay.
	Timestamp int64 `json:"timestamp"`
	// Target is the webhook's name.
	Target string `json:"target"`
	// Event is the event as of this change (the events topic's JSON).
	Event json.RawMessage `json:"event"`
	// URLs link the event, its snapshot, clip and camera page.
	URLs URLs `json:"urls"`
}

// MQTTEvent is the message on <prefix>/events, shaped as Frigate's:
// what changed (type), the event before the change and after it.
type MQTTEvent struct {
	Type   string      `json:"type"`
	Before MQTTDetails `json:"before"`
	After  MQTTDetails `json:"after"`
}

// MQTTDetails is an event in an MQTT event message: Frigate's field names
// where Frigate has the concept (times in Unix seconds), streamd's for the
// rest.
type MQTTDetails struct {
	ID            string       `json:"id"`
	Camera        string       `json:"camera"`
	Label         string       `json:"label"` // the object's label, "face" or "motion"
	SubLabel      *string      `json:"sub_label"`
	Kind          events.Type  `json:"kind"`  // streamd's event type: motion, face, object
	Phase         events.Phase `json:"phase"` // streamd's phase of this change
	Score         float64      `json:"score"`
	TopScore      float64      `json:"top_score"`
	StartTime     float64      `json:"start_time"`
	EndTime       *float64     `json:"end_time"`
	FrameTime     float64      `json:"frame_time"`
	Active        bool         `json:"active"`
	Stationary    bool         `json:"stationary"`
	FalsePositive bool         `json:"false_positive"`
	CurrentZones  []string     `json:"current_zones"`
	EnteredZones  []string     `json:"entered_zones"`
	Severity      string       `json:"severity,omitempty"`
	Area          float64      `json:"area"`
	Faces         int          `json:"faces"`
	Boxes         []events.Box `json:"boxes"`
	HasSnapshot   bool         `json:"has_snapshot"`
	HasClip       bool         `json:"has_clip"`
	URLs          URLs         `json:"urls"`
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }

// details is e as an MQTT event message shows it.
func details(e events.Event, l Links) MQTTDetails {
	d := MQTTDetails{
		ID: e.ID, Camera: e.Camera, Label: Label(e), Kind: e.Type, Phase: e.Phase,
		StartTime: unixSeconds(e.Start), FrameTime: unixSeconds(e.Frame.CapturedAt),
		Active: e.End == nil && !e.Stationary, Stationary: e.Stationary,
		CurrentZones: []string{}, EnteredZones: []string{}, Severity: string(e.Severity),
		Area: e.Area, Faces: e.Faces, Boxes: e.Boxes, HasSnapshot: e.Snapshot, HasClip: l.Clips, URLs: l.For(e),
	}
	if d.Boxes == nil {
		d.Boxes = []events.Box{}
	}
	if e.Score != nil {
		d.Score, d.TopScore = *e.Score, *e.Score
	}
	if e.End != nil {
		end := unixSeconds(*e.End)
		d.EndTime = &end
	} else {
		// streamd keeps the zones entered; while the event lasts the
		// object is taken to be in them.
		d.CurrentZones = append(d.CurrentZones, e.Zones...)
	}
	d.EnteredZones = append(d.EnteredZones, e.Zones...)
	return d
}
