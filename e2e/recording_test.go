//go:build e2e

package e2e

// The recording tier end to end (README, "Recording"): an all-in-one with
// the analyzer and the recorder, a camera looping a clip with scripted
// motion; the tiers read back with kcat and compared with the frames
// topic, the recorder's metrics, and MP4 exports and event clips played by
// headless Chromium, from a time the frames topic no longer holds.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/streamd/streamd/pkg/testutil/mp4check"
	"github.com/streamd/streamd/pkg/vision/visiontest"
)

// The recording's settings in recYAML, which the tests check against.
const (
	recCamera   = "p"
	recFPS      = 30
	recWidth    = 320
	recHeight   = 180
	recPreRoll  = 2 * time.Second
	recPostRoll = 1 * time.Second
	recGap      = 1 * time.Second // analyzer.gap
	recFrame    = time.Second / recFPS
)

// recScriptedMotion writes visiontest.ScriptedMotion at recWidth x
// recHeight (the clip pkg/app's recording tests loop too): 10 s at 30 fps,
// looped by the camera: a still scene for 5 s, an object crossing it for
// 3 s, still again: a motion event every 10 s.
func recScriptedMotion(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scripted.avi")
	if err := visiontest.WriteScriptedMotion(path, recWidth, recHeight); err != nil {
		t.Fatal(err)
	}
	return path
}

// recYAML is an all-in-one (embedded broker, producer, analyzer, recorder,
// viewer) with one partition per topic; kafka and recording are extra
// lines of those sections (indented by the caller).
func recYAML(clip, kafka, recording string) string {
	return `embedded:
  listen: 127.0.0.1:0
  retention_check: 1s
  segment_bytes: 1048576
http:
  listen: 127.0.0.1:0
kafka:
  partitions: 1
` + kafka + `analyzer:
  enabled: true
  gap: ` + recGap.String() + `
  fps: 15
  faces:
    enabled: false
  objects:
    enabled: false  # the scripted shape is no object: full rate on motion
recording:
  enabled: true
  full_on: motion
  partitions: 1
  pre_roll: ` + recPreRoll.String() + `
  post_roll: ` + recPostRoll.String() + `
` + recording + `cameras:
  - id: ` + recCamera + `
    source: ` + clip + `
    loop: true
    fps: 30
    quality: 70
`
}

// recStart starts the all-in-one and waits until it is ready.
func recStart(t *testing.T, kafka, recording string) *proc {
	t.Helper()
	p := startStreamd(t, "all", recYAML(recScriptedMotion(t), kafka, recording))
	p.waitReady(t)
	return p
}

// String names the record's place, key, size and headers.
func (r record) String() string {
	var hs []string
	for k, v := range r.Headers {
		if k == "seqs" || k == "times" {
			v = fmt.Sprintf("(%d entries)", strings.Count(v, ",")+1)
		}
		hs = append(hs, k+"="+v)
	}
	slices.Sort(hs)
	return fmt.Sprintf("%d/%d key=%q %d bytes [%s]", r.Partition, r.Offset, r.Key, r.Size, strings.Join(hs, " "))
}

// int returns header name as an integer, failing the test if it is not one.
func (r record) int(t *testing.T, name string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(r.Headers[name], 10, 64)
	if err != nil {
		t.Fatalf("record %s: header %q: %v", r, name, err)
	}
	return n
}

// kcatUntil is kcat's consumer from the oldest record of topic to the
// first one stamped at or after until, or the end of the partition. (-e
// alone never ends on a topic written more often than the fetch wait:
// the frames topic.)
func kcatUntil(t *testing.T, kcat, broker, topic string, until time.Time, args ...string) []byte {
	t.Helper()
	return kcatRun(t, kcat, append([]string{"-C", "-b", broker, "-t", topic, "-o", "beginning", "-o", fmt.Sprintf("e@%d", until.UnixMilli()), "-e", "-q"}, args...)...)
}

// kcatRun runs kcat and returns its output; it must end within a minute.
func kcatRun(t *testing.T, kcat string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, kcat, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %q: %v (%s)", args, err, strings.TrimSpace(stderr.String()))
	}
	return out
}

// kcatRead reads the records of topic stamped before until with kcat, the
// third-party client the README names (records as readTopic's, without
// their timestamps).
//
// With values, the key and headers come from kcat's JSON envelope (-J), the
// values byte for byte from a second read in a framed format
// (-f '%p %o %S\n%s'), matched by partition and offset. Without, the key,
// size and headers come from one read of -f '%h' (n=v,...: for headers
// whose values hold no comma), and values are not read (the frames topic
// is large).
func kcatRead(t *testing.T, kcat, broker, topic string, until time.Time, values bool) []record {
	t.Helper()
	if !values {
		return kcatHeaders(t, kcat, broker, topic, until)
	}
	out := kcatUntil(t, kcat, broker, topic, until, "-J")
	var recs []record
	at := map[[2]int64]int{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var m struct {
			Topic     string   `json:"topic"`
			Partition int32    `json:"partition"`
			Offset    int64    `json:"offset"`
			Headers   []string `json:"headers"`
			Key       *string  `json:"key"`
		}
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("kcat -J %s: record %d: %v", topic, len(recs), err)
		}
		if m.Topic != topic || m.Key == nil || len(m.Headers)%2 != 0 {
			t.Fatalf("kcat -J %s: record %d/%d: topic %q, key %v, headers %q", topic, m.Partition, m.Offset, m.Topic, m.Key, m.Headers)
		}
		r := record{Partition: m.Partition, Offset: m.Offset, Key: *m.Key, Headers: map[string]string{}, Size: -1}
		for i := 0; i < len(m.Headers); i += 2 {
			if _, dup := r.Headers[m.Headers[i]]; dup {
				t.Fatalf("kcat -J %s: record %d/%d has header %q twice: %q", topic, m.Partition, m.Offset, m.Headers[i], m.Headers)
			}
			r.Headers[m.Headers[i]] = m.Headers[i+1]
		}
		at[[2]int64{int64(r.Partition), r.Offset}] = len(recs)
		recs = append(recs, r)
	}
	raw := kcatUntil(t, kcat, broker, topic, until, "-f", "%p %o %S\n%s")
	br := bufio.NewReader(bytes.NewReader(raw))
	for n := 0; ; n++ {
		line, err := br.ReadString('\n')
		if err == io.EOF && line == "" {
			break
		}
		var part, off int64
		var size int
		if _, serr := fmt.Sscanf(line, "%d %d %d\n", &part, &off, &size); err != nil || serr != nil || size < 0 {
			t.Fatalf("kcat -f %s: record %d: bad frame line %q (%v, %v)", topic, n, line, err, serr)
		}
		v := make([]byte, size)
		if _, err := io.ReadFull(br, v); err != nil {
			t.Fatalf("kcat -f %s: record %d/%d: value of %d bytes: %v", topic, part, off, size, err)
		}
		// A record written between the two reads, stamped before until,
		// is in the second only.
		if i, ok := at[[2]int64{part, off}]; ok {
			recs[i].Value, recs[i].Size = v, size
		}
	}
	for _, r := range recs {
		if r.Size < 0 {
			t.Fatalf("kcat %s: record %d/%d read with -J but not with -f", topic, r.Partition, r.Offset)
		}
	}
	return recs
}

// kcatHeaders is kcatRead without values.
func kcatHeaders(t *testing.T, kcat, broker, topic string, until time.Time) []record {
	t.Helper()
	out := kcatUntil(t, kcat, broker, topic, until, "-f", "%p %o %S %k %h\n")
	var recs []record
	for _, line := range scanLines(string(out)) {
		f := strings.Fields(line)
		if len(f) != 5 {
			t.Fatalf("kcat %s: line %q", topic, line)
		}
		p, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		s, err3 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("kcat %s: line %q", topic, line)
		}
		r := record{Partition: int32(p), Offset: o, Size: s, Key: f[3], Headers: map[string]string{}}
		for _, kv := range strings.Split(f[4], ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("kcat %s: headers %q", topic, f[4])
			}
			r.Headers[k] = v
		}
		recs = append(recs, r)
	}
	return recs
}

// recFrameInfo is a frame of the frames topic.
type recFrameInfo struct {
	seq  int64
	at   int64 // captured-at, unix ns
	size int
}

// framesOf returns camera's frames in the frames topic, by seq.
func framesOf(t *testing.T, kcat, broker, camera string, until time.Time) map[int64]recFrameInfo {
	t.Helper()
	out := map[int64]recFrameInfo{}
	for _, r := range kcatRead(t, kcat, broker, "streamd.frames", until, false) {
		if r.Key != camera || r.Headers["rendition"] != "" {
			continue
		}
		f := recFrameInfo{seq: r.int(t, "seq"), at: r.int(t, "captured-at"), size: r.Size}
		if _, dup := out[f.seq]; dup {
			t.Fatalf("frames topic: seq %d of %s twice", f.seq, camera)
		}
		out[f.seq] = f
	}
	if len(out) == 0 {
		t.Fatalf("frames topic: no frame of %s", camera)
	}
	return out
}

// recSpan is an element of /api/cameras/{camera}/spans.
type recSpan struct {
	Tier  string    `json:"tier"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// waitFullWindow waits until the full tier's spans cover event e's window
// (pre-roll before its start to post-roll after its end): its chunks are
// written.
func waitFullWindow(t *testing.T, p *proc, e event, timeout time.Duration) {
	t.Helper()
	from, to := e.Start.Add(-recPreRoll), e.End.Add(recPostRoll)
	waitFor(t, "the full tier covers event "+e.ID, timeout, func() string {
		var sp struct {
			Camera string    `json:"camera"`
			Spans  []recSpan `json:"spans"`
		}
		if code := p.getJSON(t, "/api/cameras/"+recCamera+"/spans", &sp); code != 200 || sp.Camera != recCamera {
			t.Fatalf("spans: %d %+v", code, sp)
		}
		for _, s := range sp.Spans {
			if s.Tier == "full" && !s.Start.After(from.Add(100*time.Millisecond)) && !s.End.Before(to.Add(-100*time.Millisecond)) {
				return ""
			}
		}
		return fmt.Sprintf("window %s..%s, spans %+v", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), sp.Spans)
	})
}

var recClient = &http.Client{Timeout: 2 * time.Minute}

// recGet fetches u and returns its status and body.
func recGet(t *testing.T, u string) (int, []byte) {
	t.Helper()
	code, _, body := recGetHeader(t, u)
	return code, body
}

func recGetHeader(t *testing.T, u string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := recClient.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", u, err)
	}
	return resp.StatusCode, resp.Header, body
}

// unixSec writes t as a time parameter: unix seconds with a fraction.
func unixSec(t time.Time) string { return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 6, 64) }

// exportPath is the export of the camera from from to to.
func exportPath(from, to time.Time) string {
	return "/api/cameras/" + recCamera + "/export?" + url.Values{"from": {unixSec(from)}, "to": {unixSec(to)}}.Encode()
}

// TestRecordingKafkaInterop: any Kafka tool reads the recording. The
// reduced tier is the first frame of every second of capture time, the
// camera's own JPEG with its frame headers and the tier's; the full tier
// is every frame of each event's window, and only those, as H.264 MP4
// chunks whose headers list each frame's seq and capture time. The
// recorder's metrics agree with what the topics hold.
func TestRecordingKafkaInterop(t *testing.T) {
	// Mostly waiting for an event and the recorder, with no timing bound:
	// it runs beside TestRecordingExportPlaysInChromium, after the suite's
	// timing-sensitive tests.
	t.Parallel()
	kcat := requireTool(t, "kcat")
	p := recStart(t, "", "")
	started := time.Now()
	ev := waitEnded(t, p, recCamera, 60*time.Second)
	waitFullWindow(t, p, ev, 30*time.Second)
	// The reduced tier's first index entry sums 30 s.
	var scraped metrics
	waitFor(t, "streamd_recording_bytes of both tiers", 60*time.Second, func() string {
		scraped = p.metrics(t)
		full, _ := scraped.get(`streamd_recording_bytes{camera="p",tier="full"}`)
		reduced, _ := scraped.get(`streamd_recording_bytes{camera="p",tier="reduced"}`)
		if full > 0 && reduced > 0 {
			return ""
		}
		time.Sleep(400 * time.Millisecond)
		return fmt.Sprintf("full %v, reduced %v", full, reduced)
	})
	// The metrics first, the topics after: whatever the metrics counted
	// is in the topics.
	until := time.Now()
	reduced := kcatRead(t, kcat, p.broker, "streamd.rec.reduced", until, true)
	full := kcatRead(t, kcat, p.broker, "streamd.rec.full", until, true)
	// A chunk stamped (with its first frame) before until holds frames up
	// to recording.chunk (1 s) after it.
	frames := framesOf(t, kcat, p.broker, recCamera, until.Add(3*time.Second))
	events := p.apiEvents(t, url.Values{"camera": {recCamera}, "type": {"motion"}, "limit": {"100"}})
	t.Logf("after %s: %d frames, %d reduced records, %d full records, %d events", time.Since(started).Round(time.Second), len(frames), len(reduced), len(full), len(events))

	bySlot := map[int64]recFrameInfo{} // the first frame of each second
	for _, f := range frames {
		s := f.at / int64(time.Second)
		if g, ok := bySlot[s]; !ok || f.at < g.at {
			bySlot[s] = f
		}
	}

	var reducedBytes, reducedFrames int64
	t.Run("reduced tier: the first JPEG of every second", func(t *testing.T) {
		if len(reduced) < 25 {
			t.Fatalf("%d reduced records after %s, want one a second", len(reduced), time.Since(started))
		}
		var slots []int64
		for i, r := range reduced {
			if r.Key != recCamera {
				t.Fatalf("record %s: key %q, want the camera id %q", r, r.Key, recCamera)
			}
			for k, want := range map[string]string{"tier": "reduced", "codec": "jpeg", "frames": "1", "content-type": "image/jpeg",
				"width": strconv.Itoa(recWidth), "height": strconv.Itoa(recHeight)} {
				if r.Headers[k] != want {
					t.Errorf("record %s: header %q = %q, want %q", r, k, r.Headers[k], want)
				}
			}
			start, end, at, seq := r.int(t, "span-start"), r.int(t, "span-end"), r.int(t, "captured-at"), r.int(t, "seq")
			if start != end || start != at {
				t.Errorf("record %s: span-start %d, span-end %d, captured-at %d: one frame's span is its capture time", r, start, end, at)
			}
			if i > 0 && r.Offset != reduced[i-1].Offset+1 {
				t.Errorf("record %s follows offset %d", r, reduced[i-1].Offset)
			}
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(r.Value))
			if err != nil {
				t.Fatalf("record %s: value is not a JPEG: %v (% x...)", r, err, r.Value[:min(16, len(r.Value))])
			}
			if _, err := jpeg.Decode(bytes.NewReader(r.Value)); err != nil || cfg.Width != recWidth || cfg.Height != recHeight {
				t.Errorf("record %s: JPEG %dx%d: %v", r, cfg.Width, cfg.Height, err)
			}
			f, ok := frames[seq]
			switch {
			case !ok:
				t.Errorf("record %s: seq %d is not in the frames topic", r, seq)
			case f.at != at || f.size != r.Size:
				t.Errorf("record %s: the frames topic has seq %d captured at %d, %d bytes: the reduced tier holds the camera's own JPEG", r, seq, f.at, f.size)
			}
			slots = append(slots, at/int64(time.Second))
			reducedBytes += int64(r.Size)
			reducedFrames++
		}
		// Every second after the first recorded one, until the last:
		// exactly its first frame (the first record may be any frame,
		// it depends on where the recorder started).
		got := map[int64]int64{}
		for i, s := range slots {
			if i > 0 && s <= slots[i-1] {
				t.Errorf("record %s: second %d after second %d: one frame per second, in order", reduced[i], s, slots[i-1])
			}
			got[s] = reduced[i].int(t, "seq")
		}
		for s := slots[0] + 1; s <= slots[len(slots)-1]; s++ {
			want, ok := bySlot[s]
			if !ok {
				t.Errorf("second %d: no frame was captured in it, yet the reduced tier has seq %d", s, got[s])
				continue
			}
			if seq, ok := got[s]; !ok || seq != want.seq {
				t.Errorf("second %d: reduced tier has seq %d (present %v), want its first frame, seq %d", s, seq, ok, want.seq)
			}
		}
	})

	var fullBytes, fullFrames int64
	t.Run("full tier: every frame of each event window as H.264 MP4", func(t *testing.T) {
		if len(full) == 0 {
			t.Fatal("no full-tier record")
		}
		recorded := map[int64]bool{} // seqs
		for i, r := range full {
			if r.Key != recCamera {
				t.Fatalf("record %s: key %q, want the camera id %q", r, r.Key, recCamera)
			}
			for k, want := range map[string]string{"tier": "full", "codec": "h264/mp4", "width": strconv.Itoa(recWidth), "height": strconv.Itoa(recHeight)} {
				if r.Headers[k] != want {
					t.Errorf("record %s: header %q = %q, want %q", r, k, r.Headers[k], want)
				}
			}
			start, end, n := r.int(t, "span-start"), r.int(t, "span-end"), r.int(t, "frames")
			seqs, times := strings.Split(r.Headers["seqs"], ","), strings.Split(r.Headers["times"], ",")
			if start > end || n < 1 || int64(len(seqs)) != n || int64(len(times)) != n {
				t.Fatalf("record %s: span-start %d, span-end %d, frames %d, %d seqs, %d times", r, start, end, n, len(seqs), len(times))
			}
			if i > 0 {
				if prev := full[i-1]; start <= prev.int(t, "span-end") {
					t.Errorf("record %s starts at or before the end of record %s", r, prev)
				}
			}
			// Each frame: the frames topic's, captured at span-start plus
			// its time (µs, truncated).
			for j := range seqs {
				seq, err1 := strconv.ParseInt(seqs[j], 10, 64)
				us, err2 := strconv.ParseInt(times[j], 10, 64)
				if err1 != nil || err2 != nil {
					t.Fatalf("record %s: frame %d: seq %q, time %q", r, j, seqs[j], times[j])
				}
				f, ok := frames[seq]
				if !ok {
					t.Fatalf("record %s: frame %d: seq %d is not in the frames topic", r, j, seq)
				}
				if d := (f.at - start) / 1000; d != us && d-us != 1 && us-d != 1 {
					t.Errorf("record %s: frame %d (seq %d) at %d µs after span-start, the frames topic says %d µs", r, j, seq, us, d)
				}
				if (j == 0 && f.at != start) || (j == len(seqs)-1 && f.at != end) {
					t.Errorf("record %s: frame %d (seq %d) captured at %d, not span-start %d / span-end %d", r, j, seq, f.at, start, end)
				}
				if recorded[seq] {
					t.Errorf("record %s: seq %d recorded twice", r, seq)
				}
				recorded[seq] = true
			}
			// Only inside an event's window: pre-roll before its start
			// to post-roll after its end (the end arrives a gap after
			// it: what came meanwhile is recorded too).
			inside := false
			for _, e := range events {
				end := time.Now()
				if e.End != nil {
					end = e.End.Add(max(recPostRoll, recGap) + time.Second)
				}
				if start >= e.Start.Add(-recPreRoll).UnixNano() && r.int(t, "span-end") <= end.UnixNano() {
					inside = true
				}
			}
			if !inside {
				t.Errorf("record %s: span %s..%s is in no event's window: %s", r, time.Unix(0, start).Format("15:04:05.000"), time.Unix(0, end).Format("15:04:05.000"), listEvents(events))
			}
			m, err := mp4check.Parse(r.Value)
			if err != nil {
				t.Fatalf("record %s: %v (% x...)", r, err, r.Value[:min(16, len(r.Value))])
			}
			if !m.H264 {
				t.Errorf("record %s: the MP4's track is not H.264 (avc1/avcC)", r)
			}
			// One frame each, at the chunk's own rate.
			if n > 1 {
				interval := time.Duration(end-start) / time.Duration(n-1)
				want := interval * time.Duration(n)
				if d := m.Duration - want; d < -interval || d > interval {
					t.Errorf("record %s: MP4 lasts %s, %d frames over %s want %s", r, m.Duration, n, time.Duration(end-start), want)
				}
			}
			fullBytes += int64(r.Size)
			fullFrames += n
		}
		// The ended event's whole window: every frame the camera sent.
		from, to := ev.Start.Add(-recPreRoll).UnixNano(), ev.End.Add(recPostRoll).UnixNano()
		var missing []int64
		want := 0
		for seq, f := range frames {
			if f.at >= from && f.at <= to {
				want++
				if !recorded[seq] {
					missing = append(missing, seq)
				}
			}
		}
		slices.Sort(missing)
		if want < int((recPreRoll+recPostRoll)/recFrame) || len(missing) > 0 {
			t.Errorf("event %s: the frames topic has %d frames in its window %s..%s, the full tier lacks %d: %v",
				ev.ID, want, time.Unix(0, from).Format("15:04:05.000"), time.Unix(0, to).Format("15:04:05.000"), len(missing), head(missing, 20))
		}
		t.Logf("%d chunks, %d frames, %d bytes; event %s: %d frames in its window", len(full), fullFrames, fullBytes, ev.ID, want)
	})

	t.Run("metrics agree with the topics", func(t *testing.T) {
		for _, c := range []struct {
			name, labels string
			min, max     float64
		}{
			{"streamd_recorder_frames_total", `tier="full"`, 1, float64(fullFrames)},
			{"streamd_recorder_frames_total", `tier="reduced"`, 1, float64(reducedFrames)},
			{"streamd_recorder_bytes_total", `tier="full"`, 1, float64(fullBytes)},
			{"streamd_recorder_bytes_total", `tier="reduced"`, 1, float64(reducedBytes)},
			{"streamd_recording_bytes", `camera="p",tier="full"`, 1, float64(fullBytes)},
			{"streamd_recording_bytes", `camera="p",tier="reduced"`, 1, float64(reducedBytes)},
			{"streamd_recorder_errors_total", ``, 0, 0},
		} {
			series := c.name
			if c.labels != "" {
				series += "{" + c.labels + "}"
			}
			v, ok := scraped.get(series)
			if !ok || v < c.min || v > c.max {
				t.Errorf("%s{%s} = %v (present %v), want %v to %v (read from the topics after it)", c.name, c.labels, v, ok, c.min, c.max)
			}
		}
	})
}

// recPlayback is what a <video> of the page did with a source.
type recPlayback struct {
	Error    string  `json:"error"`
	Duration float64 `json:"duration"`
	Width    int     `json:"width"`
	Height   int     `json:"height"`
	T0       float64 `json:"t0"`     // currentTime before play()
	T1       float64 `json:"t1"`     // currentTime after
	Wall     float64 `json:"wall"`   // seconds between them
	Paused   bool    `json:"paused"` // after pause()
	Mean     float64 `json:"mean"`   // luma of the frame at T1
	Stddev   float64 `json:"stddev"`
	T2       float64 `json:"t2"` // currentTime when paused again, at the event
	// Share of pixels (luma difference > 40) that differ from the first
	// frame in the frame at T1 (still scene) and at T2 (the object in it).
	Still float64 `json:"still"`
	Moved float64 `json:"moved"`
	// After seeking back to 0.5 s: the seekable end, and where it went.
	SeekEnd  float64 `json:"seekEnd"`
	SeekedTo float64 `json:"seekedTo"`
}

// recPlayJS adds a muted <video> of src to the page and waits for its
// first frame; plays it until currentTime passed 1 s and pauses; plays on
// at 4x until eventAt and pauses. The frames shown at 0, at 1 s and at
// eventAt are read through a canvas (the page and the video are of one
// origin). Then it seeks back to 0.5 s: the whole video is seekable
// (streamd answers Range requests).
const recPlayJS = `(async (src, label, eventAt) => {
  const box = document.createElement("figure");
  const cap = document.createElement("figcaption");
  cap.textContent = label;
  const v = document.createElement("video");
  v.muted = true; v.preload = "auto"; v.controls = true; v.width = 480;
  box.append(v, cap);
  document.body.append(box);
  const out = {};
  const loaded = await new Promise(resolve => {
    v.addEventListener("loadeddata", () => resolve(true), {once: true});
    v.addEventListener("error", () => resolve(false), {once: true});
    v.src = src;
  });
  if (!loaded) { out.error = "load: " + (v.error ? v.error.code + " " + v.error.message : "no error"); return out; }
  out.duration = v.duration; out.width = v.videoWidth; out.height = v.videoHeight; out.t0 = v.currentTime;
  const c = document.createElement("canvas");
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext("2d", {willReadFrequently: true});
  const luma = () => {
    g.drawImage(v, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const y = new Float32Array(d.length / 4);
    for (let i = 0; i < y.length; i++) y[i] = 0.299 * d[4 * i] + 0.587 * d[4 * i + 1] + 0.114 * d[4 * i + 2];
    return y;
  };
  const changed = (a, b) => { let n = 0; for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) > 40) n++; return n / a.length; };
  const playUntil = async t => {
    try { await v.play(); } catch (e) { return "play(): " + e; }
    const start = performance.now();
    while (v.currentTime < t && performance.now() - start < 15000 && !v.ended && !v.error) {
      await new Promise(r => setTimeout(r, 20));
    }
    v.pause();
    await new Promise(r => setTimeout(r, 100));
    return v.error ? "playing: " + v.error.code + " " + v.error.message : "";
  };
  const first = luma();
  const t0 = performance.now();
  out.error = await playUntil(out.t0 + 1);
  out.t1 = v.currentTime; out.wall = (performance.now() - t0) / 1000; out.paused = v.paused;
  if (out.error) return out;
  const still = luma();
  let s = 0, s2 = 0;
  for (const l of still) { s += l; s2 += l * l; }
  out.mean = s / still.length; out.stddev = Math.sqrt(Math.max(0, s2 / still.length - out.mean ** 2));
  v.playbackRate = 4;
  out.error = await playUntil(eventAt);
  out.t2 = v.currentTime;
  out.still = changed(first, still); out.moved = changed(first, luma());
  out.seekEnd = v.seekable.length ? v.seekable.end(0) : 0;
  await new Promise(r => { v.addEventListener("seeked", r, {once: true}); v.currentTime = 0.5; setTimeout(r, 5000); });
  out.seekedTo = v.currentTime;
  return out;
})(%s, %s, %f)`

// TestRecordingExportPlaysInChromium: once the frames topic no longer holds
// an event, its export (pre-event reduced tier, the full tier, reduced
// again) and its event clip are MP4 files of exactly the length asked for
// that Chromium plays; the export routes answer errors as JSON naming the
// parameter; and recording.max_exports refuses an export over the cap
// with 429 while another is encoding, not after.
func TestRecordingExportPlaysInChromium(t *testing.T) {
	t.Parallel() // beside TestRecordingKafkaInterop: mostly waiting
	kcat := requireTool(t, "kcat")
	p := recStart(t, "  retention: 20s\n", "  max_exports: 1\n")
	ev := waitEnded(t, p, recCamera, 60*time.Second)
	waitFullWindow(t, p, ev, 30*time.Second)
	from, to := ev.Start.Add(-3*time.Second), ev.End.Add(3*time.Second)
	clipFrom, clipTo := ev.Start.Add(-recPreRoll), ev.End.Add(recPostRoll)

	// Played from the recording alone: the frames topic (retention 20 s)
	// has let go of everything captured before to.
	waitFor(t, "the frames topic no longer holds the export's range", 60*time.Second, func() string {
		out := kcatRun(t, kcat, "-C", "-b", p.broker, "-t", "streamd.frames", "-p", "0", "-o", "beginning", "-c", "1", "-e", "-q", "-f", "%h\n")
		for _, kv := range strings.Split(strings.TrimSpace(string(out)), ",") {
			if v, ok := strings.CutPrefix(kv, "captured-at="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err == nil && time.Unix(0, n).After(to) {
					return ""
				}
				time.Sleep(900 * time.Millisecond)
				return fmt.Sprintf("oldest frame captured at %s, the export ends %s", time.Unix(0, n).Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
			}
		}
		return fmt.Sprintf("oldest record's headers: %q", out)
	})

	t.Run("export over HTTP", func(t *testing.T) {
		code, h, body := recGetHeader(t, p.url(exportPath(from, to)))
		if code != 200 || h.Get("Content-Type") != "video/mp4" {
			t.Fatalf("export: %d %q %.300s", code, h.Get("Content-Type"), body)
		}
		if cd := h.Get("Content-Disposition"); !strings.Contains(cd, ".mp4") {
			t.Errorf("export: Content-Disposition %q", cd)
		}
		if n, err := strconv.Atoi(h.Get("Content-Length")); err != nil || n != len(body) {
			t.Errorf("export: Content-Length %q for %d bytes", h.Get("Content-Length"), len(body))
		}
		m, err := mp4check.Parse(body)
		if err != nil {
			t.Fatalf("export: %v", err)
		}
		if !m.H264 {
			t.Errorf("export: the MP4's track is not H.264 (avc1/avcC)")
		}
		if d := m.Duration - to.Sub(from); d < -recFrame || d > recFrame {
			t.Errorf("export: lasts %s, asked %s", m.Duration, to.Sub(from))
		}
	})

	t.Run("export and event clip play in Chromium", func(t *testing.T) {
		ctx := browserFor(t, 1100, 800, 90*time.Second)
		// A page of the server's origin, so that the canvas may read the
		// video's pixels.
		if err := chromedp.Do(ctx, chromedp.Navigate(p.url("/healthz"))); err != nil {
			t.Fatalf("navigate: %v", err)
		}
		// Halfway through the crossing, the object is in the picture.
		middle := ev.Start.Add(ev.End.Sub(ev.Start) / 2)
		for _, c := range []struct {
			name, path string
			want       time.Duration
			eventAt    time.Duration
		}{
			{"export", exportPath(from, to), to.Sub(from), middle.Sub(from)},
			{"event clip", "/api/events/" + ev.ID + "/clip.mp4", clipTo.Sub(clipFrom), middle.Sub(clipFrom)},
		} {
			// The video before this one may still hold the export slot
			// (max_exports 1): Chromium re-reads it after the seek.
			waitExportFree(t, p, from)
			js := fmt.Sprintf(recPlayJS, strconv.Quote(p.url(c.path)), strconv.Quote(c.name+" "+c.path), c.eventAt.Seconds())
			r, err := chromedp.Run(ctx, chromedp.Evaluate[recPlayback](js, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			t.Logf("%s: %+v", c.name, r)
			if r.Error != "" {
				t.Errorf("%s: the video failed: %s", c.name, r.Error)
				continue
			}
			got := time.Duration(r.Duration * float64(time.Second))
			if d := got - c.want; d < -recFrame || d > recFrame {
				t.Errorf("%s: Chromium says it lasts %s, want %s within a frame (%s)", c.name, got, c.want, recFrame)
			}
			if r.Width != recWidth || r.Height != recHeight {
				t.Errorf("%s: %dx%d, the camera is %dx%d", c.name, r.Width, r.Height, recWidth, recHeight)
			}
			if r.T1-r.T0 < 1 || r.T1 > r.Wall+r.T0+0.5 {
				t.Errorf("%s: currentTime went from %.3f to %.3f in %.1f s of playing", c.name, r.T0, r.T1, r.Wall)
			}
			if !r.Paused {
				t.Errorf("%s: not paused after pause()", c.name)
			}
			// The scripted scene is textured: a blank or single-colour
			// frame means the video does not show the camera.
			if r.Stddev < 10 || r.Mean < 10 || r.Mean > 245 {
				t.Errorf("%s: the frame shown has luma mean %.1f, deviation %.1f: not the camera's picture", c.name, r.Mean, r.Stddev)
			}
			// The scene is still before the event; halfway through it the
			// object is in the picture (the full tier's frames, not one held).
			if r.T2 < c.eventAt.Seconds() || r.T2 > c.eventAt.Seconds()+1 || r.Still > 0.005 || r.Moved < 0.01 {
				t.Errorf("%s: %.2f %% of the pixels changed from 0 s to %.2f s (still scene), %.2f %% to %.2f s (the object crossing, at %.2f s)",
					c.name, 100*r.Still, r.T1, 100*r.Moved, r.T2, c.eventAt.Seconds())
			}
			if r.SeekEnd < r.Duration-0.1 || r.SeekedTo < 0.45 || r.SeekedTo > 0.55 {
				t.Errorf("%s: seekable to %.2f s of %.2f; seeking to 0.5 s went to %.2f s", c.name, r.SeekEnd, r.Duration, r.SeekedTo)
			}
		}
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if b := decodePNG(t, shot).Bounds(); b.Dx() < 480 {
			t.Errorf("screenshot %v", b)
		}
		if dir := os.Getenv("TEST_ARTIFACTS"); dir != "" {
			_ = os.WriteFile(filepath.Join(dir, "recording-export.png"), shot, 0o644)
		}
	})

	t.Run("export errors are JSON naming the parameter", func(t *testing.T) {
		waitExportFree(t, p, from)
		for _, c := range []struct {
			query string
			code  int
			say   []string
		}{
			{"from=" + unixSec(to) + "&to=" + unixSec(from), 400, []string{`"from"`}},
			{"from=" + unixSec(from) + "&to=" + unixSec(from), 400, []string{`"from"`}},
			{"from=-1h&to=now", 400, []string{`"to"`, "recording.max_export"}},
			{"from=yesterday&to=now", 400, []string{`"from"`}},
			{"to=now", 400, []string{`"from"`}},
			{"from=" + unixSec(from.Add(-time.Hour)) + "&to=" + unixSec(from.Add(-time.Hour+10*time.Second)), 404, []string{"nothing recorded"}},
		} {
			code, h, body := recGetHeader(t, p.url("/api/cameras/"+recCamera+"/export?"+c.query))
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || h.Get("Content-Type") != "application/json" {
				t.Errorf("export?%s: %d %q %.200s: not a JSON error (%v)", c.query, code, h.Get("Content-Type"), body, err)
				continue
			}
			if code != c.code {
				t.Errorf("export?%s: %d %s, want %d", c.query, code, e.Error, c.code)
			}
			for _, s := range c.say {
				if !strings.Contains(e.Error, s) {
					t.Errorf("export?%s: error %q does not say %s", c.query, e.Error, s)
				}
			}
		}
	})

	t.Run("max_exports 1: a second export while one encodes gets 429", func(t *testing.T) {
		// The long export reaches 10 s into the future: it waits for
		// those frames, so it is surely still encoding 2 s after it was
		// asked for.
		waitExportFree(t, p, from)
		longFrom, longTo := time.Now().Add(-50*time.Second), time.Now().Add(10*time.Second)
		type answer struct {
			code   int
			header http.Header
			body   []byte
			err    error
		}
		long := make(chan answer, 1)
		go func() {
			resp, err := recClient.Get(p.url(exportPath(longFrom, longTo)))
			if err != nil {
				long <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			long <- answer{resp.StatusCode, resp.Header, b, err}
		}()
		time.Sleep(2 * time.Second)
		select {
		case a := <-long:
			t.Fatalf("the export ending 10 s from now answered after 2 s: %d %.300s %v", a.code, a.body, a.err)
		default:
		}
		code, h, body := recGetHeader(t, p.url(exportPath(from, to)))
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || code != http.StatusTooManyRequests || h.Get("Content-Type") != "application/json" ||
			!strings.Contains(e.Error, "max_exports") || h.Get("Retry-After") == "" {
			t.Errorf("second export while one encodes: %d %q Retry-After %q %.300s, want 429 with a JSON error naming recording.max_exports",
				code, h.Get("Content-Type"), h.Get("Retry-After"), body)
		}
		var a answer
		select {
		case a = <-long:
		case <-time.After(60 * time.Second):
			t.Fatal("the 60 s export did not answer within 60 s")
		}
		if a.err != nil || a.code != 200 || a.header.Get("Content-Type") != "video/mp4" {
			t.Fatalf("the 60 s export: %d %q %v %.300s", a.code, a.header.Get("Content-Type"), a.err, a.body)
		}
		m, err := mp4check.Parse(a.body)
		if err != nil {
			t.Fatalf("the 60 s export: %v", err)
		}
		if d := m.Duration - longTo.Sub(longFrom); d < -recFrame || d > recFrame {
			t.Errorf("the 60 s export lasts %s", m.Duration)
		}
		// The slot is free again.
		if code, body := recGet(t, p.url(exportPath(from, to))); code != 200 {
			t.Errorf("export after the other finished: %d %.300s", code, body)
		}
	})
}

// waitExportFree waits until the server takes an export again: with
// recording.max_exports 1 a browser still reading an earlier export holds
// the slot. It asks for an hour before from, where nothing is recorded,
// which answers 404 at once when a slot is free and 429 while none is.
func waitExportFree(t *testing.T, p *proc, from time.Time) {
	t.Helper()
	q := "/api/cameras/" + recCamera + "/export?from=" + unixSec(from.Add(-time.Hour)) + "&to=" + unixSec(from.Add(-time.Hour+10*time.Second))
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, body := recGetHeader(t, p.url(q))
		if code != http.StatusTooManyRequests {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the export slot stayed taken for 30 s: %d %s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
