//go:build e2e

package e2e

// Helpers of the analyzer's end-to-end tests (analyzer_test.go): the event
// JSON as documented (decoded here on its own, not with package events, so
// that a change of the wire format fails the tests), Kafka records with
// their values, /api/status's analysis list, a Server-Sent Events client,
// and video clips with known ground truth written as MJPG .avi files.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/vision/visiontest"
)

// normBox is a rectangle normalized to the frame, as events carry them.
type normBox struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	W float64 `json:"w"`
	H float64 `json:"h"`
}

func (b normBox) String() string { return fmt.Sprintf("{%.3f %.3f %.3f %.3f}", b.X, b.Y, b.W, b.H) }

// iou is the intersection over union of two boxes.
func iou(a, b normBox) float64 {
	iw := math.Min(a.X+a.W, b.X+b.W) - math.Max(a.X, b.X)
	ih := math.Min(a.Y+a.H, b.Y+b.H) - math.Max(a.Y, b.Y)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	return inter / (a.W*a.H + b.W*b.H - inter)
}

// unionBox is the smallest box holding every box (zero for none): what a
// user sees as "where the event is" when several boxes are drawn.
func unionBox(bs []normBox) normBox {
	if len(bs) == 0 {
		return normBox{}
	}
	x0, y0, x1, y1 := bs[0].X, bs[0].Y, bs[0].X+bs[0].W, bs[0].Y+bs[0].H
	for _, b := range bs[1:] {
		x0, y0 = math.Min(x0, b.X), math.Min(y0, b.Y)
		x1, y1 = math.Max(x1, b.X+b.W), math.Max(y1, b.Y+b.H)
	}
	return normBox{x0, y0, x1 - x0, y1 - y0}
}

// frameRef is an event's "frame" object.
type frameRef struct {
	Partition  int32     `json:"partition"`
	Offset     int64     `json:"offset"`
	CapturedAt time.Time `json:"captured_at"`
	Seq        uint64    `json:"seq"`
}

// event is one event change as the README documents it: a Kafka record
// value of the events topic, an element of /api/events, an SSE data line.
type event struct {
	ID       string     `json:"id"`
	Camera   string     `json:"camera"`
	Type     string     `json:"type"`  // motion | face
	Phase    string     `json:"phase"` // start | update | end
	Start    time.Time  `json:"start"`
	End      *time.Time `json:"end"` // null while active
	Updated  time.Time  `json:"updated"`
	Boxes    []normBox  `json:"boxes"`
	Area     float64    `json:"area"`
	Faces    int        `json:"faces"`
	Frame    frameRef   `json:"frame"`
	Snapshot bool       `json:"snapshot"`
}

func (e event) String() string {
	end := "null"
	if e.End != nil {
		end = e.End.Format("15:04:05.000")
	}
	return fmt.Sprintf("%s %s/%s %s start=%s end=%s updated=%s seq=%d boxes=%v area=%.4f faces=%d snapshot=%v",
		e.ID, e.Camera, e.Type, e.Phase, e.Start.Format("15:04:05.000"), end, e.Updated.Format("15:04:05.000"),
		e.Frame.Seq, e.Boxes, e.Area, e.Faces, e.Snapshot)
}

// parseEvent decodes one event and checks it against the documented
// schema: every key present, type and phase known, end null exactly until
// the end phase, times in order, boxes inside the frame.
func parseEvent(b []byte) (event, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return event{}, fmt.Errorf("not a JSON object: %v: %s", err, b)
	}
	for _, k := range []string{"id", "camera", "type", "phase", "start", "end", "updated", "boxes", "area", "faces", "frame", "snapshot"} {
		if _, ok := keys[k]; !ok {
			return event{}, fmt.Errorf("event lacks %q: %s", k, b)
		}
	}
	var fr map[string]json.RawMessage
	if err := json.Unmarshal(keys["frame"], &fr); err != nil {
		return event{}, fmt.Errorf("frame is not an object: %s", b)
	}
	for _, k := range []string{"partition", "offset", "captured_at", "seq"} {
		if _, ok := fr[k]; !ok {
			return event{}, fmt.Errorf("event frame lacks %q: %s", k, b)
		}
	}
	if string(keys["boxes"]) == "null" {
		return event{}, fmt.Errorf("boxes is null, not an array: %s", b)
	}
	var e event
	if err := json.Unmarshal(b, &e); err != nil {
		return event{}, fmt.Errorf("event: %v: %s", err, b)
	}
	switch {
	case e.ID == "" || e.Camera == "":
		return e, fmt.Errorf("empty id or camera: %s", b)
	case e.Type != "motion" && e.Type != "face":
		return e, fmt.Errorf("type %q: %s", e.Type, b)
	case e.Phase != "start" && e.Phase != "update" && e.Phase != "end":
		return e, fmt.Errorf("phase %q: %s", e.Phase, b)
	case (e.Phase == "end") != (e.End != nil):
		return e, fmt.Errorf("phase %s with end %v (end is null until the end phase): %s", e.Phase, e.End, b)
	case e.Start.IsZero() || e.Updated.Before(e.Start):
		return e, fmt.Errorf("start %v, updated %v: %s", e.Start, e.Updated, b)
	case e.End != nil && (e.End.Before(e.Start) || e.End.After(e.Updated)):
		return e, fmt.Errorf("end %v outside start %v .. updated %v: %s", e.End, e.Start, e.Updated, b)
	case e.Frame.CapturedAt.IsZero():
		return e, fmt.Errorf("frame without captured_at: %s", b)
	}
	for _, bx := range e.Boxes {
		if bx.X < 0 || bx.Y < 0 || bx.W <= 0 || bx.H <= 0 || bx.X+bx.W > 1.0001 || bx.Y+bx.H > 1.0001 {
			return e, fmt.Errorf("box %v not inside the frame: %s", bx, b)
		}
	}
	return e, nil
}

// kafkaEvent is a record of the events topic with its decoded value.
type kafkaEvent struct {
	rec record
	ev  event
}

// readEvents reads the events topic; every record must be a valid event
// keyed by its camera.
func readEvents(t *testing.T, broker, topic string) []kafkaEvent {
	t.Helper()
	var out []kafkaEvent
	for _, r := range readTopic(t, topic, true, broker) {
		e, err := parseEvent(r.Value)
		if err != nil {
			t.Fatalf("%s/%d@%d: %v", topic, r.Partition, r.Offset, err)
		}
		if r.Key != e.Camera {
			t.Fatalf("%s/%d@%d: key %q, but the event is of camera %q", topic, r.Partition, r.Offset, r.Key, e.Camera)
		}
		out = append(out, kafkaEvent{r, e})
	}
	// One camera's records are on one partition, in order; across
	// cameras, order by the time of the change.
	slices.SortStableFunc(out, func(a, b kafkaEvent) int { return a.ev.Updated.Compare(b.ev.Updated) })
	return out
}

// eventsOf selects a camera's changes (and a type's, unless typ is "").
func eventsOf(all []kafkaEvent, camera, typ string) []event {
	var out []event
	for _, k := range all {
		if k.ev.Camera == camera && (typ == "" || k.ev.Type == typ) {
			out = append(out, k.ev)
		}
	}
	return out
}

// byEvent groups changes by event id, in the order the ids first appear.
func byEvent(changes []event) (ids []string, by map[string][]event) {
	by = map[string][]event{}
	for _, e := range changes {
		if _, ok := by[e.ID]; !ok {
			ids = append(ids, e.ID)
		}
		by[e.ID] = append(by[e.ID], e)
	}
	return ids, by
}

// checkLifecycle requires one start first, at most one end, last, and only
// updates between.
func checkLifecycle(t *testing.T, id string, changes []event, wantEnd bool) {
	t.Helper()
	for i, e := range changes {
		want := "update"
		switch {
		case i == 0:
			want = "start"
		case i == len(changes)-1 && wantEnd:
			want = "end"
		}
		if e.Phase != want {
			t.Fatalf("event %s: change %d of %d is %q, want %q; changes:\n%s", id, i, len(changes), e.Phase, want, listEvents(changes))
		}
		if i > 0 && e.Updated.Before(changes[i-1].Updated) {
			t.Fatalf("event %s: change %d updated %v before the previous %v", id, i, e.Updated, changes[i-1].Updated)
		}
		if !e.Start.Equal(changes[0].Start) || e.Type != changes[0].Type || e.Camera != changes[0].Camera {
			t.Fatalf("event %s: change %d contradicts the start:\n%s", id, i, listEvents(changes))
		}
	}
}

func listEvents(es []event) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}

// produceRecords writes values with key to topic (sarama's hash
// partitioner, as streamd's producer: the camera's partition).
func produceRecords(t *testing.T, broker, topic, key string, values ...[]byte) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	p, err := sarama.NewSyncProducer([]string{broker}, cfg)
	if err != nil {
		t.Fatalf("producer to %s: %v", broker, err)
	}
	defer p.Close()
	for _, v := range values {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(v), Timestamp: time.Now()}); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

// analysisStat is one camera of /api/status's analysis list.
type analysisStat struct {
	Camera       string    `json:"camera"`
	Analyzed     uint64    `json:"analyzed"`
	Skipped      uint64    `json:"skipped"`
	MotionEvents uint64    `json:"motion_events"`
	FaceEvents   uint64    `json:"face_events"`
	Faces        uint64    `json:"faces"`
	LastCaptured time.Time `json:"last_captured"`
}

// analysisErr reads the analysis list of /api/status by camera.
func (p *proc) analysisErr() (map[string]analysisStat, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(p.url("/api/status"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/api/status: %s", resp.Status)
	}
	var s struct {
		Analysis []analysisStat `json:"analysis"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("/api/status: %v", err)
	}
	out := map[string]analysisStat{}
	for _, a := range s.Analysis {
		if _, dup := out[a.Camera]; dup {
			return nil, fmt.Errorf("/api/status lists camera %q twice in analysis", a.Camera)
		}
		out[a.Camera] = a
	}
	return out, nil
}

func (p *proc) analysis(t *testing.T) map[string]analysisStat {
	t.Helper()
	a, err := p.analysisErr()
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	return a
}

// apiEvents fetches /api/events with the query; every element must be a
// valid event.
func (p *proc) apiEvents(t *testing.T, query url.Values) []event {
	t.Helper()
	var raw []json.RawMessage
	if code := p.getJSON(t, "/api/events?"+query.Encode(), &raw); code != http.StatusOK {
		t.Fatalf("/api/events?%s: %d", query.Encode(), code)
	}
	out := make([]event, 0, len(raw))
	for _, r := range raw {
		e, err := parseEvent(r)
		if err != nil {
			t.Fatalf("/api/events?%s: %v", query.Encode(), err)
		}
		out = append(out, e)
	}
	return out
}

// waitFor polls cond every 100 ms until it returns "" (done), failing with
// its last answer after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, timeout, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sseMsg is one server-sent event.
type sseMsg struct {
	ID, Event, Data string
	At              time.Time // when its blank line arrived
}

// sseClient reads a text/event-stream.
type sseClient struct {
	msgs   chan sseMsg
	err    chan error
	cancel context.CancelFunc
}

// openSSE connects to url (with Last-Event-ID when lastID is not empty)
// and checks the response's headers.
func openSSE(t *testing.T, u, lastID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("SSE %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		t.Fatalf("SSE %s: %s %q: %s", u, resp.Status, resp.Header.Get("Content-Type"), b)
	}
	c := &sseClient{msgs: make(chan sseMsg, 1024), err: make(chan error, 1), cancel: cancel}
	go func() {
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		var m sseMsg
		var data []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				c.err <- err
				return
			}
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			if line == "" {
				if len(data) > 0 {
					m.Data = strings.Join(data, "\n")
					m.At = time.Now()
					c.msgs <- m
				}
				m, data = sseMsg{}, nil
				continue
			}
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				m.ID = value
			case "event":
				m.Event = value
			case "data":
				data = append(data, value)
			}
		}
	}()
	return c
}

// next returns the next message with data, or an error after timeout.
func (c *sseClient) next(timeout time.Duration) (sseMsg, error) {
	select {
	case m := <-c.msgs:
		return m, nil
	case err := <-c.err:
		return sseMsg{}, fmt.Errorf("stream ended: %w", err)
	case <-time.After(timeout):
		return sseMsg{}, fmt.Errorf("no message within %v", timeout)
	}
}

// clip is a video with ground truth, written as an MJPG .avi file.
type clip struct {
	name   string
	path   string
	fps    float64
	frames []visiontest.Frame
}

// truth returns the ground truth box of frame seq, or false when nothing
// should be found in it.
func (c clip) truth(seq uint64) (normBox, bool) {
	if seq >= uint64(len(c.frames)) || len(c.frames[seq].Truth) == 0 {
		return normBox{}, false
	}
	b := c.frames[seq].Truth[0]
	return normBox{b.X, b.Y, b.W, b.H}, true
}

// motionRange returns the first and last frames with ground truth.
func (c clip) motionRange() (first, last int) {
	first, last = -1, -1
	for i, f := range c.frames {
		if len(f.Truth) > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	return first, last
}

// writeClip writes frames to dir/name.avi (OpenCV's VideoWriter, MJPG).
func writeClip(t *testing.T, dir, name string, fps float64, frames []visiontest.Frame) clip {
	t.Helper()
	path := filepath.Join(dir, name+".avi")
	if err := visiontest.WriteVideo(path, frames, fps); err != nil {
		t.Fatal(err)
	}
	return clip{name: name, path: path, fps: fps, frames: frames}
}

// stillTail appends n frames of the still scene (same size and noise
// level), so that what moved leaves and the scene is still again.
func stillTail(t *testing.T, frames []visiontest.Frame, o visiontest.Options, n int) []visiontest.Frame {
	t.Helper()
	o.Frames = n
	tail, err := visiontest.Still(o)
	if err != nil {
		t.Fatal(err)
	}
	return append(frames, tail...)
}

// gatedClip serves a clip over HTTP, held until the gate opens, so that
// the analyzer is in its group before the first frame is captured.
func gatedClip(t *testing.T, c clip) (*gatedFile, string) {
	g := serveGated(t, c.path)
	return g, g.srv.URL + "/" + filepath.Base(c.path)
}
