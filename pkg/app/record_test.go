//go:build !nocv

package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/mjpeg"
	"github.com/streamd/streamd/pkg/record"
	"github.com/streamd/streamd/pkg/testutil/mp4check"
	"github.com/streamd/streamd/pkg/vision/visiontest"
)

// recordingConfig is an all-in-one with the analyzer (motion only) and the
// recorder (full rate on motion), a frames topic that keeps 30 s, and
// retention applied every second.
func recordingConfig(t *testing.T, dataDir string, extra map[string]string) *config.Config {
	t.Helper()
	o := map[string]string{
		"http.listen": "127.0.0.1:0", "embedded.listen": "127.0.0.1:0",
		"embedded.retention_check": "1s", "embedded.segment_bytes": "1048576",
		"kafka.retention": "30s", "kafka.partitions": "2",
		"analyzer.enabled": "true", "analyzer.gap": "1s", "analyzer.fps": "15", "analyzer.faces.enabled": "false",
		"recording.enabled": "true", "recording.partitions": "1", "replay.max_fps": "120", "recording.pre_roll": "2s", "recording.post_roll": "1s",
		// The scripted clip's shape is no object: these scenarios record
		// the windows of its motion events at full rate.
		"analyzer.objects.enabled": "false", "recording.full_on": "motion",
	}
	if dataDir != "" {
		o["embedded.data_dir"] = dataDir
	}
	for k, v := range extra {
		o[k] = v
	}
	cfg, err := config.Load(config.Sources{Overrides: o})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cameras = []config.CameraConfig{{ID: "p", Source: scriptedMotion(t, 320, 180), Loop: true, FPS: 30, Quality: 70}}
	return cfg
}

// scriptedMotion writes the scripted clip (visiontest.ScriptedMotion, 10 s
// at 30 fps, looped by the camera: an event every 10 s) at w x h.
func scriptedMotion(t *testing.T, w, h int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scripted.avi")
	if err := visiontest.WriteScriptedMotion(path, w, h); err != nil {
		t.Fatal(err)
	}
	return path
}

func startRecording(t *testing.T, cfg *config.Config) (*App, string) {
	t.Helper()
	a := newApp(t, cfg)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(t.Context()) })
	return a, "http://" + a.HTTPAddr()
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	body := waitStatus(t, url, 200)
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("%s: %v: %s", url, err, body)
	}
}

// replayParts reads a replay from at until a frame captured after until.
func replayParts(t *testing.T, base string, at, until time.Time) []mjpeg.Part {
	t.Helper()
	resp, err := http.Get(base + "/stream/p?speed=4&at=" + unixParam(at))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("replay at %s: %d %s", at, resp.StatusCode, b)
	}
	r := mjpeg.NewReader(resp.Body, "streamdframe")
	var parts []mjpeg.Part
	for {
		p, err := r.Next()
		if err != nil {
			t.Fatalf("replay at %s: after %d frames: %v", at, len(parts), err)
		}
		if p.Timestamp.After(until) {
			return parts
		}
		p.Data = nil
		parts = append(parts, p)
	}
}

type eventJSON struct {
	ID    string     `json:"id"`
	Start time.Time  `json:"start"`
	End   *time.Time `json:"end"`
}

// A moment older than the frames topic plays from the recording: every
// frame around an event (with its pre-roll), one a second elsewhere, and
// the replay crosses into the frames topic with no gap and no frame
// twice. Snapshots anywhere in the recording are within the reduced
// tier's interval; an export has the length asked for.
func TestRecordingTiers(t *testing.T) {
	t.Parallel() // the recording scenarios run side by side
	// Three minutes of capture time up to now, played as fast as the
	// analyzer and the recorder take them. The frames topic retains a
	// minute: by record timestamp (capture time) against the wall clock,
	// so at the end it holds the last minute less the play's own time.
	cfg := recordingConfig(t, "", map[string]string{"embedded.retention_check": "1h", "kafka.retention": "60s"})
	// On the millisecond: a replay's or snapshot's moment is in ms.
	started := time.Now().Add(-3 * time.Minute).Truncate(time.Millisecond)
	end := started.Add(3 * time.Minute)
	cam, base := startSynthetic(t, cfg, started)
	cam.play(end)
	want := time.Minute - time.Since(end) // retention was applied as play ended
	if held := end.Sub(cam.oldestFrame()); held < want-2*time.Second || held > want+time.Second {
		t.Fatalf("the frames topic holds %s of capture time, want %s (its retention of a minute, less %s since the last frame)", held, want, time.Since(end))
	}
	if want < 25*time.Second {
		t.Fatalf("playing 3 minutes took until %s after the last frame's capture time: too slow for the frames topic to hold the crossing", time.Since(end))
	}
	waitStatus(t, base+"/snapshot/p", 200)

	var rg struct{ Oldest, Newest time.Time }
	getJSON(t, base+"/api/cameras/p/range", &rg)
	if rg.Oldest.After(started.Add(5 * time.Second)) {
		t.Fatalf("range starts %s after the start: the recording is not in it", rg.Oldest.Sub(started))
	}
	// The frames topic holds less than the last minute: the first two
	// minutes are in the recording only.
	var evs []eventJSON
	getJSON(t, base+"/api/events?camera=p&limit=100", &evs)
	var ev *eventJSON
	for i := range evs {
		e := evs[i]
		if e.End != nil && e.Start.After(started.Add(5*time.Second)) && e.End.Before(started.Add(2*time.Minute)) {
			ev = &e
		}
	}
	if ev == nil {
		t.Fatalf("no event ended in the first two minutes: %+v", evs)
	}
	from := ev.Start.Add(-5 * time.Second)
	until := ev.End.Add(3 * time.Second)
	parts := replayParts(t, base, from, until)
	if len(parts) == 0 {
		t.Fatal("the replay gave no frame")
	}
	full := [2]time.Time{ev.Start.Add(-cfg.Record.PreRoll + 100*time.Millisecond), ev.End.Add(cfg.Record.PostRoll - 100*time.Millisecond)}
	inFull, elsewhere := 0, 0
	for i := 1; i < len(parts); i++ {
		prev, cur := parts[i-1].Timestamp, parts[i].Timestamp
		if !cur.After(prev) {
			t.Fatalf("frame %d captured %s, not after %s", i, cur, prev)
		}
		gap := cur.Sub(prev)
		switch {
		case !prev.Before(full[0]) && !cur.After(full[1]):
			inFull++
			if gap > 150*time.Millisecond {
				t.Errorf("a gap of %s at %s, inside the event's window (full rate expected)", gap, prev.Sub(ev.Start))
			}
		default:
			elsewhere++
			if gap > 1100*time.Millisecond {
				t.Errorf("a gap of %s at %s, outside the event (1 fps expected)", gap, prev.Sub(ev.Start))
			}
		}
	}
	if want := int(full[1].Sub(full[0]).Seconds() * 30 * 0.8); inFull < want {
		t.Errorf("%d frames in the event's window of %s, want at least %d", inFull, full[1].Sub(full[0]), want)
	}
	if elsewhere == 0 {
		t.Error("no reduced-rate frame around the event")
	}

	// Snapshots in the recorded time: the first frame at or after the
	// moment, within the reduced tier's interval.
	for _, off := range []time.Duration{7 * time.Second, 13*time.Second + 300*time.Millisecond, 29 * time.Second, 97*time.Second + 600*time.Millisecond} {
		at := started.Add(off)
		resp, err := http.Get(base + "/snapshot/p?at=" + unixParam(at))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ts, _ := mjpeg.ParseTimestamp([]byte(resp.Header.Get("X-Timestamp")))
		if resp.StatusCode != 200 || ts.Before(at) || ts.Sub(at) > cfg.Record.Interval+100*time.Millisecond {
			t.Errorf("snapshot at %s: %d, frame captured %s after", off, resp.StatusCode, ts.Sub(at))
		}
	}

	// Crossing into the frames topic: from 50 s ago (recorded only before
	// the topic's start) to live, strictly increasing, no gap over 1.1 s.
	cross := replayParts(t, base, end.Add(-50*time.Second), end.Add(-2*time.Second))
	for i := 1; i < len(cross); i++ {
		if gap := cross[i].Timestamp.Sub(cross[i-1].Timestamp); gap <= 0 || gap > 1100*time.Millisecond {
			t.Fatalf("crossing: frame %d comes %s after the one before", i, gap)
		}
	}
	if n := len(cross); n < 30*20 {
		t.Errorf("crossing: %d frames over 48 s; the frames topic's part (30 s and more) should be at full rate", n)
	}

	// Export: the event's window as MP4, its duration exact within a frame.
	exFrom, exTo := ev.Start.Add(-3*time.Second), ev.Start.Add(5*time.Second)
	resp, err := http.Get(fmt.Sprintf("%s/api/cameras/p/export?from=%s&to=%s", base, unixParam(exFrom), unixParam(exTo)))
	if err != nil {
		t.Fatal(err)
	}
	mp4, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/mp4" {
		t.Fatalf("export: %d %s %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), mp4)
	}
	d, err := mp4check.Duration(mp4)
	if err != nil {
		t.Fatal(err)
	}
	if diff := d - exTo.Sub(exFrom); diff < -time.Second/30 || diff > time.Second/30 {
		t.Errorf("export lasts %s, asked %s", d, exTo.Sub(exFrom))
	}
	resp, err = http.Get(base + "/api/events/" + ev.ID + "/clip.mp4")
	if err != nil {
		t.Fatal(err)
	}
	clip, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if d, err := mp4check.Duration(clip); resp.StatusCode != 200 || err != nil || d < ev.End.Sub(ev.Start)+cfg.Record.PreRoll {
		t.Errorf("event clip: %d, %s, %v", resp.StatusCode, d, err)
	}
	for q, want := range map[string]int{
		"from=" + unixParam(exTo) + "&to=" + unixParam(exFrom): 400,
		"from=-1h&to=now": 400, // longer than recording.max_export
		"from=" + unixParam(started.Add(-time.Hour)) + "&to=" + unixParam(started.Add(-50*time.Minute)): 404,
	} {
		if code, body := status(t, base+"/api/cameras/p/export?"+q); code != want {
			t.Errorf("export?%s: %d %s, want %d", q, code, body, want)
		}
	}

	// Storage: both tiers, how far back, bytes and rates.
	var st struct {
		Cameras []struct {
			Camera      string
			HeldSeconds float64 `json:"held_seconds"`
			Held        string
			RecorderLag *float64 `json:"recorder_lag_seconds"`
			Tiers       []struct {
				Tier         string
				Bytes        int64
				BytesPerHour float64 `json:"bytes_per_hour"`
			}
		}
	}
	getJSON(t, base+"/api/storage", &st)
	if len(st.Cameras) != 1 || len(st.Cameras[0].Tiers) != 2 || st.Cameras[0].HeldSeconds < 170 {
		t.Fatalf("storage: %+v", st)
	}
	for _, tier := range st.Cameras[0].Tiers {
		if tier.Bytes <= 0 || tier.BytesPerHour <= 0 {
			t.Errorf("storage of tier %s: %+v", tier.Tier, tier)
		}
	}
	// The recorder in this process recorded up to the last frame played.
	wantLag := time.Since(end).Seconds()
	if lag := st.Cameras[0].RecorderLag; lag == nil {
		t.Error("storage: no recorder_lag_seconds, with the recorder in this process")
	} else if *lag < wantLag-2 || *lag > wantLag+2 {
		t.Errorf("storage: recorder_lag_seconds %.1f, want %.1f (now minus the last frame played)", *lag, wantLag)
	}
}

// An all-in-one stopped and started again (with its data directory)
// records no frame twice, and misses only its downtime.
func TestRecordingSurvivesRestart(t *testing.T) {
	t.Parallel() // minutes of mostly waiting: the recording scenarios run side by side
	dir := t.TempDir()
	cfg := recordingConfig(t, dir, nil)
	a, base := startRecording(t, cfg)
	waitStatus(t, base+"/snapshot/p", 200)
	time.Sleep(12 * time.Second)
	if err := a.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	time.Sleep(3 * time.Second)
	a2, base2 := startRecording(t, recordingConfig(t, dir, nil))
	up := time.Now()
	waitStatus(t, base2+"/snapshot/p", 200)
	time.Sleep(12 * time.Second)
	if err := a2.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Read the tiers back with a plain Kafka client.
	cfg3 := recordingConfig(t, dir, map[string]string{"recording.enabled": "false", "analyzer.enabled": "false"})
	cfg3.Cameras = nil
	a3 := newApp(t, cfg3)
	if err := a3.Start(); err != nil {
		t.Fatal(err)
	}
	defer a3.Shutdown(t.Context())
	checkRecording(t, a3.BrokerAddr(), cfg.Record, &[2]time.Time{down, up})
}

// A recorder process stopped while the camera goes on, and started again,
// records every second of its downtime too (the frames topic held the
// frames), and no frame twice.
func TestRecorderRestartLeavesNoGap(t *testing.T) {
	t.Parallel() // minutes of mostly waiting: the recording scenarios run side by side
	cfg := recordingConfig(t, "", map[string]string{"recording.enabled": "false"})
	a, base := startRecording(t, cfg)
	waitStatus(t, base+"/snapshot/p", 200)
	recorder := func() *App {
		rc, err := config.Load(config.Sources{Overrides: map[string]string{
			"role": "recorder", "http.listen": "127.0.0.1:0", "embedded.enabled": "false", "recording.full_on": "motion",
			"kafka.brokers": a.BrokerAddr(), "kafka.partitions": "2", "recording.partitions": "1",
			"recording.pre_roll": "2s", "recording.post_roll": "1s",
		}})
		if err != nil {
			t.Fatal(err)
		}
		r := newApp(t, rc)
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, "http://"+r.HTTPAddr()+"/readyz", 200)
		return r
	}
	r1 := recorder()
	time.Sleep(12 * time.Second)
	if err := r1.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	r2 := recorder()
	time.Sleep(12 * time.Second)
	if err := r2.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkRecording(t, a.BrokerAddr(), cfg.Record, nil)
}

// checkRecording reads the recording tiers: no reduced frame twice, no
// gap over the interval except across downtime (if not nil), no
// full-tier chunks that overlap.
func checkRecording(t *testing.T, brokerAddr string, rc config.RecordConfig, downtime *[2]time.Time) {
	t.Helper()
	client, err := sarama.NewClient([]string{brokerAddr}, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var times []time.Time
	readAll(t, client, rc.ReducedTopic, func(m *sarama.ConsumerMessage) {
		for _, h := range m.Headers {
			if string(h.Key) == record.HeaderSpanStart {
				n, _ := strconv.ParseInt(string(h.Value), 10, 64)
				times = append(times, time.Unix(0, n))
			}
		}
	})
	if len(times) < 20 {
		t.Fatalf("%d reduced frames", len(times))
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	gaps := 0
	for i := 1; i < len(times); i++ {
		gap := times[i].Sub(times[i-1])
		if gap == 0 {
			t.Fatalf("frame captured %s recorded twice", times[i])
		}
		if gap > 1100*time.Millisecond {
			if downtime == nil {
				t.Errorf("a gap of %s from %s: the recorder's downtime should have been caught up", gap, times[i-1])
			} else if down, up := downtime[0], downtime[1]; times[i-1].Before(down.Add(-2*time.Second)) || times[i].After(up.Add(5*time.Second)) {
				t.Errorf("a gap of %s from %s, outside the downtime %s..%s", gap, times[i-1], down, up)
			}
			gaps++
		}
	}
	if gaps > 1 {
		t.Errorf("%d gaps, want the downtime's only", gaps)
	}
	var spans [][2]int64
	readAll(t, client, rc.FullTopic, func(m *sarama.ConsumerMessage) {
		var s [2]int64
		for _, h := range m.Headers {
			switch string(h.Key) {
			case record.HeaderSpanStart:
				s[0], _ = strconv.ParseInt(string(h.Value), 10, 64)
			case record.HeaderSpanEnd:
				s[1], _ = strconv.ParseInt(string(h.Value), 10, 64)
			}
		}
		spans = append(spans, s)
	})
	sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
	for i := 1; i < len(spans); i++ {
		if spans[i][0] <= spans[i-1][1] {
			t.Errorf("full-tier chunks overlap: %v and %v", spans[i-1], spans[i])
		}
	}
}

// readAll reads every record of topic.
func readAll(t *testing.T, client sarama.Client, topic string, fn func(*sarama.ConsumerMessage)) {
	t.Helper()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range parts {
		hwm, _ := client.GetOffset(topic, p, sarama.OffsetNewest)
		old, _ := client.GetOffset(topic, p, sarama.OffsetOldest)
		if hwm <= old {
			continue
		}
		pc, err := c.ConsumePartition(topic, p, old)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			fn(m)
			if m.Offset+1 >= hwm {
				break
			}
		}
		pc.Close()
	}
}

// unixParam writes t as a replay time parameter: unix seconds.
func unixParam(t time.Time) string { return fmt.Sprintf("%.3f", float64(t.UnixMilli())/1000) }

// With a tiny recording.max_bytes, the brokers hold no more than the
// budget plus a segment per tier, the oldest recording moves forward, and
// the storage report says the budget cuts the camera short.
func TestRecordingBudget(t *testing.T) {
	t.Parallel() // the recording scenarios run side by side
	const budget = 4 << 20
	cfg := recordingConfig(t, "", map[string]string{
		"recording.max_bytes": strconv.Itoa(budget), "recording.full_share": "0.25",
		"kafka.retention": "1m", "embedded.retention_check": "1h",
	})
	cfg.Cameras[0].Source = scriptedMotion(t, 640, 360)
	cfg.Cameras[0].Quality = 95
	// Up to 150 s of capture time, played as fast as the analyzer and the
	// recorder take them.
	cam, base := startSynthetic(t, cfg, time.Now().Add(-150*time.Second).Truncate(time.Millisecond))
	a := cam.a
	cam.play(cam.next.Add(time.Second))
	waitStatus(t, base+"/snapshot/p", 200)
	type storage struct {
		Cameras []struct {
			Oldest    time.Time
			BudgetCut bool `json:"budget_cut"`
		}
	}
	var firstCut, wallDeadline time.Time
	deadline := cam.next.Add(150 * time.Second)
	for {
		if !cam.next.After(deadline) {
			cam.play(cam.next.Add(5 * time.Second))
		} else {
			// Played out: the web node's index re-reads where the tiers
			// start every 5 s of wall time, whatever the capture clock.
			time.Sleep(200 * time.Millisecond)
		}
		var st storage
		getJSON(t, base+"/api/storage", &st)
		if len(st.Cameras) == 1 && st.Cameras[0].BudgetCut {
			if firstCut.IsZero() {
				firstCut = st.Cameras[0].Oldest
			} else if st.Cameras[0].Oldest.After(firstCut.Add(2 * time.Second)) {
				break // the oldest moved on
			}
		}
		if cam.next.After(deadline) && wallDeadline.IsZero() {
			wallDeadline = time.Now().Add(12 * time.Second)
		}
		if !wallDeadline.IsZero() && time.Now().After(wallDeadline) {
			t.Fatalf("the budget never cut the recording, or its oldest did not move: %+v (first cut at %s)", st, firstCut)
		}
	}
	client, err := sarama.NewClient([]string{a.BrokerAddr()}, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	const segment = 1 << 20 // the smallest segment streamd sets
	for topic, share := range map[string]float64{cfg.Record.FullTopic: 0.25, cfg.Record.ReducedTopic: 0.75} {
		var held, largest int64
		readAll(t, client, topic, func(m *sarama.ConsumerMessage) {
			n := int64(len(m.Value) + len(m.Key))
			held += n
			largest = max(largest, n)
		})
		// Retention removes whole segments, and a segment rolls after the
		// record that takes it past its size: a partition may hold its
		// budget, plus a segment, plus one record.
		if limit := int64(budget*share) + segment + largest; held > limit {
			t.Errorf("%s holds %d bytes, over its budget plus a segment and a record (%d)", topic, held, limit)
		}
	}
}

// With recording.full_on: objects (the default), motion alone is kept at
// the reduced rate only: the scripted clip's shape makes motion events
// and no object event (object detection is off here), so the full tier
// stays empty while the reduced tier records every second.
func TestFullTierOnObjectsOnly(t *testing.T) {
	t.Parallel() // waits for events; no timing bound
	cfg := recordingConfig(t, "", map[string]string{"recording.full_on": "objects"})
	a, base := startRecording(t, cfg)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var evs []events.Event
		getJSON(t, base+"/api/events?camera=p&type=motion", &evs)
		if len(evs) >= 2 && !evs[len(evs)-1].Active() {
			break // an event ended: its window, pre- and post-roll are decided
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ended motion event within 60 s: %+v", evs)
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // the post-roll and a chunk's encode
	client, err := sarama.NewClient([]string{a.BrokerAddr()}, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	full, reduced := 0, 0
	readAll(t, client, cfg.Record.FullTopic, func(*sarama.ConsumerMessage) { full++ })
	readAll(t, client, cfg.Record.ReducedTopic, func(*sarama.ConsumerMessage) { reduced++ })
	if full != 0 || reduced < 5 {
		t.Fatalf("full tier %d chunks, reduced tier %d frames: want motion at the reduced rate only", full, reduced)
	}
}
