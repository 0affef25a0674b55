package events

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// t0 is the base of all test times: capture times are injected, never read
// from the clock.
var t0 = time.Date(2026, 11, 6, 10, 30, 21, 123456789, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ptr[T any](v T) *T { return &v }

// event returns a valid event; mutate the copy to break it.
func event(id, camera string, typ Type, phase Phase, start, updated time.Duration) Event {
	e := Event{
		ID:      id,
		Camera:  camera,
		Type:    typ,
		Phase:   phase,
		Start:   at(start),
		Updated: at(updated),
		Boxes:   []Box{{X: 0.1, Y: 0.2, W: 0.3, H: 0.4}},
		Frame:   FrameRef{Partition: 1, Offset: 42, CapturedAt: at(updated), Seq: 7},
	}
	if typ == TypeMotion {
		e.Area = 0.12
	} else {
		e.Faces = 1
	}
	if phase == PhaseEnd {
		e.End = ptr(at(updated))
	}
	return e
}

func TestMarshalShape(t *testing.T) {
	e := event("1762425021.123456-abc123", "lobby", TypeMotion, PhaseStart, 0, 0)
	e.Boxes = nil
	b, err := Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"1762425021.123456-abc123","camera":"lobby","type":"motion","phase":"start",` +
		`"start":"2026-11-06T10:30:21.123456789Z","end":null,"updated":"2026-11-06T10:30:21.123456789Z",` +
		`"boxes":[],"area":0.12,"faces":0,` +
		`"frame":{"partition":1,"offset":42,"captured_at":"2026-11-06T10:30:21.123456789Z","seq":7},"snapshot":false}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, e := range []Event{
		event("a", "lobby", TypeMotion, PhaseUpdate, 0, time.Second),
		func() Event {
			e := event("1762425021.123456-abc123", "door_2", TypeFace, PhaseEnd, 0, 5*time.Second)
			e.Score, e.Snapshot, e.Faces = ptr(0.87), true, 3
			return e
		}(),
		func() Event {
			e := event("1762425021.123456-abc124", "door_2", TypeObject, PhaseStart, 0, time.Second)
			e.Label, e.Score, e.Zones, e.Severity = "person", ptr(0.64), []string{"porch", "drive"}, SeverityAlert
			return e
		}(),
	} {
		b, err := Marshal(e)
		if err != nil {
			t.Fatalf("marshal %s: %v", e.ID, err)
		}
		got, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, e)
		}
	}
}

func TestUnmarshalRejects(t *testing.T) {
	valid, err := Marshal(event("x1", "lobby", TypeMotion, PhaseStart, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) string {
		t.Helper()
		if !bytes.Contains(valid, []byte(old)) {
			t.Fatalf("%q not in %s", old, valid)
		}
		return strings.Replace(string(valid), old, new, 1)
	}
	tests := []struct {
		name, json, want string
	}{
		{"not JSON", `{"id":`, "unexpected end of JSON"},
		{"not an object", `[1,2]`, "cannot unmarshal array"},
		{"trailing data", string(valid) + `{}`, "invalid character"},
		{"too large", string(valid) + strings.Repeat(" ", MaxEventBytes), "bytes, at most"},
		{"missing id", edit(`"id":"x1",`, ``), "missing id"},
		{"empty id", edit(`"id":"x1"`, `"id":""`), "missing id"},
		{"id with a slash", edit(`"id":"x1"`, `"id":"../x"`), `character '/' not allowed`},
		{"continues a bad id", edit(`"id":"x1"`, `"id":"x1","continues":"../x"`), `continues: invalid event: id "../x": character '/' not allowed`},
		{"bad camera", edit(`"camera":"lobby"`, `"camera":"lob by"`), "camera: invalid camera id"},
		{"missing camera", edit(`"camera":"lobby",`, ``), "camera: invalid camera id: empty"},
		{"bad type", edit(`"type":"motion"`, `"type":"person"`), `type "person", want "motion", "face" or "object"`},
		{"object without label", edit(`"type":"motion"`, `"type":"object"`), `object label "": 1 to 64 characters`},
		{"label on motion", edit(`"type":"motion"`, `"type":"motion","label":"person"`), `label "person" on a motion event`},
		{"severity on motion", edit(`"type":"motion"`, `"type":"motion","severity":"alert"`), `severity or zones on a motion event`},
		{"zones on motion", edit(`"type":"motion"`, `"type":"motion","zones":["porch"]`), `severity or zones on a motion event`},
		{"bad severity", edit(`"type":"motion"`, `"type":"object","label":"person","severity":"urgent"`), `severity "urgent", want "alert" or "detection"`},
		{"empty zone", edit(`"type":"motion"`, `"type":"object","label":"person","zones":[""]`), `zones[0] "": 1 to 64 characters`},
		{"too many zones", edit(`"type":"motion"`, `"type":"object","label":"person","zones":["a"`+strings.Repeat(`,"a"`, MaxZones)+`]`), `17 zones, at most 16`},
		{"missing type", edit(`"type":"motion",`, ``), `type "", want`},
		{"bad phase", edit(`"phase":"start"`, `"phase":"new"`), `phase "new", want "start", "update" or "end"`},
		{"missing start", edit(`"start":"2026-11-06T10:30:21.123456789Z",`, ``), "missing start"},
		{"bad time", edit(`"start":"2026-11-06T10:30:21.123456789Z"`, `"start":"yesterday"`), "cannot parse"},
		{"updated before start", edit(`"updated":"2026-11-06T10:30:21.123456789Z"`, `"updated":"2026-11-06T10:30:20Z"`), "before start"},
		{"end while starting", edit(`"end":null`, `"end":"2026-11-06T10:30:21.123456789Z"`), "phase start with an end time"},
		{"end phase without end", edit(`"phase":"start"`, `"phase":"end"`), "phase end without an end time"},
		{"box outside", edit(`"x":0.1`, `"x":0.8`), "boxes[0]"},
		{"negative box", edit(`"w":0.3`, `"w":-0.3`), "boxes[0]"},
		{"area over 1", edit(`"area":0.12`, `"area":1.5`), "area 1.5"},
		{"score over 1", edit(`"area":0.12`, `"area":0.12,"score":2`), "score 2"},
		{"negative faces", edit(`"faces":0`, `"faces":-1`), "faces -1"},
		{"too many boxes", edit(`"boxes":[`, `"boxes":[`+strings.Repeat(`{"x":0,"y":0,"w":0.1,"h":0.1},`, MaxBoxes)), "33 boxes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unmarshal([]byte(tc.json))
			if err == nil {
				t.Fatalf("accepted %s", tc.json)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want one wrapping ErrInvalid and containing %q", err, tc.want)
			}
		})
	}
}

func TestUnmarshalIgnoresUnknownFields(t *testing.T) {
	b, err := Marshal(event("x1", "lobby", TypeFace, PhaseStart, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte(`{`), []byte(`{"zone":"porch",`), 1)
	if _, err := Unmarshal(b); err != nil {
		t.Fatalf("a field from a newer producer: %v", err)
	}
}

func TestMarshalValidates(t *testing.T) {
	e := event("x1", "lobby", TypeMotion, PhaseStart, 0, 0)
	e.Area = math.NaN()
	if _, err := Marshal(e); !errors.Is(err, ErrInvalid) {
		t.Fatalf("NaN area: %v, want ErrInvalid", err)
	}
}

var idPattern = regexp.MustCompile(`^[0-9]+\.[0-9]{6}-[a-z0-9]{6}$`)

func TestNewID(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := NewID(t0)
		if !idPattern.MatchString(id) || !strings.HasPrefix(id, "1793961021.123456-") {
			t.Fatalf("id %q, want 1793961021.123456-[a-z0-9]{6}", id)
		}
		if seen[id] {
			t.Fatalf("id %q repeated", id)
		}
		seen[id] = true
	}
	if id := NewID(time.Unix(5, 7000)); !strings.HasPrefix(id, "5.000007-") {
		t.Fatalf("id %q, want the fraction zero-padded", id)
	}
}

// FuzzUnmarshal checks that untrusted records never crash Unmarshal and that
// whatever it accepts survives Marshal and Unmarshal again unchanged.
func FuzzUnmarshal(f *testing.F) {
	for _, e := range []Event{
		event("a", "lobby", TypeMotion, PhaseStart, 0, 0),
		event("b", "door", TypeFace, PhaseEnd, 0, time.Second),
	} {
		b, err := Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":"x","boxes":null,"end":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Unmarshal(b)
		if err != nil {
			return
		}
		again, err := Marshal(e)
		if err != nil {
			t.Fatalf("accepted %s but cannot marshal it: %v", b, err)
		}
		if _, err := Unmarshal(again); err != nil {
			t.Fatalf("cannot read back %s: %v", again, err)
		}
	})
}
