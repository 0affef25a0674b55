package events

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The meter sums a camera's frames into minutes: the mean area, the
// moving share and the peak of each, a minute ending when a frame of a
// later one comes, when frames stop (Tick), or at shutdown (Flush).
func TestActivityMeter(t *testing.T) {
	m := NewActivityMeter("yard")
	base := time.Date(2026, 12, 3, 2, 14, 0, 0, time.UTC)
	var done []Activity
	// 10 frames a second for 2.5 minutes: in the first minute every
	// other frame has 0.2 of the frame moving; in the second none; the
	// third half a minute of 0.5.
	for i := range 1500 {
		at := base.Add(time.Duration(i) * 100 * time.Millisecond)
		area, moving := 0.0, false
		switch {
		case at.Before(base.Add(time.Minute)):
			if i%2 == 0 {
				area, moving = 0.2, true
			}
		case !at.Before(base.Add(2 * time.Minute)):
			area, moving = 0.5, true
		}
		if a := m.Observe(at, area, moving); a != nil {
			done = append(done, *a)
		}
	}
	if len(done) != 2 {
		t.Fatalf("%d minutes done, want 2: %+v", len(done), done)
	}
	want := []Activity{
		{Camera: "yard", Minute: base, Frames: 600, Moving: 300, Area: 0.1, Peak: 0.2},
		{Camera: "yard", Minute: base.Add(time.Minute), Frames: 600, Moving: 0, Area: 0, Peak: 0},
	}
	for i := range want {
		if done[i] != want[i] {
			t.Errorf("minute %d: %+v, want %+v", i, done[i], want[i])
		}
		if err := done[i].Validate(); err != nil {
			t.Errorf("minute %d: %v", i, err)
		}
	}
	if a := m.Tick(base.Add(3*time.Minute+5*time.Second), 10*time.Second); a != nil {
		t.Fatalf("ticked 5 s after the minute's end, with 10 s of grace: %+v", a)
	}
	a := m.Tick(base.Add(3*time.Minute+10*time.Second), 10*time.Second)
	if a == nil || a.Frames != 300 || a.Moving != 300 || a.Area != 0.5 || a.Peak != 0.5 {
		t.Fatalf("the third minute, ended by Tick: %+v", a)
	}
	if m.Flush() != nil || m.Tick(base.Add(time.Hour), 0) != nil {
		t.Fatal("a record with no frames")
	}
	// A frame with a capture time back in an earlier minute counts in
	// the open one.
	m.Observe(base.Add(10*time.Minute), 0.3, true)
	m.Observe(base.Add(9*time.Minute), 0.1, true)
	if a := m.Flush(); a == nil || a.Minute != base.Add(10*time.Minute) || a.Frames != 2 || a.Area != 0.2 || a.Peak != 0.3 {
		t.Fatalf("flushed %+v", a)
	}
}

func TestActivityRecords(t *testing.T) {
	minute := time.Date(2026, 12, 3, 2, 14, 0, 0, time.UTC)
	a := Activity{Camera: "yard", Minute: minute, Frames: 600, Moving: 300, Area: 0.1, Peak: 0.2}
	b, err := MarshalActivity(a)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := UnmarshalActivity(b); err != nil || got != a {
		t.Fatalf("round trip %+v %v", got, err)
	}
	for _, bad := range []struct{ edit, want string }{
		{`"camera":"a b"`, "camera"},
		{`"minute":"2026-12-03T02:14:30Z"`, "start of a minute"},
		{`"frames":0`, "frames 0"},
		{`"moving":700`, "moving 700 of 600"},
		{`"area":0.5`, "mean at most the peak"},
		{`"peak":1.5`, "fractions"},
	} {
		key := bad.edit[:strings.Index(bad.edit, ":")]
		s := string(b)
		i := strings.Index(s, key)
		j := i + strings.IndexAny(s[i:], ",}")
		_, err := UnmarshalActivity([]byte(s[:i] + bad.edit + s[j:]))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want an error with %q", bad.edit, err, bad.want)
		}
	}
	if _, err := UnmarshalActivity([]byte("{")); !errors.Is(err, ErrInvalid) {
		t.Errorf("not JSON: %v", err)
	}
	// Merging keeps the means: two halves of a minute, and a record
	// delivered twice.
	half := Activity{Camera: "yard", Minute: minute, Frames: 300, Moving: 300, Area: 0.3, Peak: 0.4}
	if m := a.Merge(half); m.Frames != 900 || m.Moving != 600 || m.Area != 0.1667 || m.Peak != 0.4 {
		t.Errorf("merged %+v", m)
	}
	if m := a.Merge(a); m.Area != a.Area || m.Peak != a.Peak || m.MovingShare() != a.MovingShare() {
		t.Errorf("a record merged with itself %+v, want the same means as %+v", m, a)
	}
}

func TestActivityLog(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	l := NewActivityLog(24*time.Hour, 2, func() time.Time { return now })
	rec := func(cam string, ago time.Duration, area float64) Activity {
		return Activity{Camera: cam, Minute: now.Add(-ago).Truncate(time.Minute), Frames: 100, Moving: 50, Area: area, Peak: 0.9}
	}
	for _, a := range []Activity{rec("yard", 3*time.Minute, 0.1), rec("yard", time.Minute, 0.3), rec("yard", 2*time.Minute, 0.2), rec("yard", 2*time.Minute, 0.4)} {
		if !l.Apply(a) {
			t.Fatalf("%+v not kept", a)
		}
	}
	if l.Apply(rec("yard", 25*time.Hour, 0.1)) {
		t.Error("a record older than keep was kept")
	}
	l.Apply(rec("door", time.Minute, 0.5))
	if l.Apply(rec("gate", time.Minute, 0.5)) {
		t.Error("a third camera was kept past the bound of 2")
	}
	got := l.Minutes("yard", now.Add(-3*time.Minute), now)
	var areas []float64
	for _, a := range got {
		areas = append(areas, a.Area)
	}
	if len(got) != 3 || got[0].Minute != now.Add(-3*time.Minute) || areas[0] != 0.1 || areas[1] != 0.3 || areas[2] != 0.3 || got[1].Frames != 200 {
		t.Fatalf("minutes %+v", got)
	}
	if got := l.Minutes("yard", now.Add(-150*time.Second), now.Add(-time.Minute)); len(got) != 1 || got[0].Minute != now.Add(-2*time.Minute) {
		t.Errorf("minutes starting in [-150 s, -60 s): %+v", got)
	}
	if st := l.Stats(); st.Cameras != 2 || st.Minutes != 4 || st.Dropped != 2 {
		t.Errorf("stats %+v", st)
	}
}

// The objects flag survives the record, merges as "either", and is kept
// by the log.
func TestActivityObjectsFlag(t *testing.T) {
	m := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	a := Activity{Camera: "door", Minute: m, Frames: 10, Moving: 5, Area: 0.1, Peak: 0.2, Objects: true}
	b, err := MarshalActivity(a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalActivity(b)
	if err != nil || !got.Objects {
		t.Fatalf("round trip %+v, %v: want objects", got, err)
	}
	if merged := (Activity{Camera: "door", Minute: m, Frames: 5}).Merge(a); !merged.Objects {
		t.Error("merged without objects")
	}
	l := NewActivityLog(0, 0, func() time.Time { return m })
	l.Apply(Activity{Camera: "door", Minute: m, Frames: 5})
	l.Apply(a)
	if ms := l.Minutes("door", m, m.Add(time.Minute)); len(ms) != 1 || !ms[0].Objects {
		t.Fatalf("log minutes %+v, want the flag kept", ms)
	}
}
