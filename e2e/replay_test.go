//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/mjpeg"
)

// Replay: /stream/{camera}?at=T[&speed=S], /snapshot/{camera}?at=T and
// /api/cameras/{camera}/range against the real binary, its embedded broker
// and the built-in test pattern (30 fps, small to spare the CPU).

const rpFrame = time.Second / 30 // the test pattern's frame interval

// rpPatternYAML is an all-in-one with the test pattern at 30 fps; extra is
// appended to the http section (indented by the caller).
func rpPatternYAML(httpExtra, top string) string {
	return "embedded:\n  listen: 127.0.0.1:0\n" + top +
		"http:\n  listen: 127.0.0.1:0\n" + httpExtra +
		"cameras:\n  - id: pattern\n    source: testpattern\n    width: 320\n    height: 180\n    fps: 30\n"
}

// rpClient never reuses connections, so that a closed stream or an answered
// error leaves no connection (and no file descriptor) behind on the server.
var rpClient = &http.Client{Transport: &http.Transport{
	DisableKeepAlives:     true,
	ResponseHeaderTimeout: 30 * time.Second,
}}

// rpViewer is a replay (or live) stream with its response headers and when
// it was asked for and answered.
type rpViewer struct {
	*viewer
	header    http.Header
	requested time.Time
	answered  time.Time
}

// rpTry asks for url with header pairs (name, value, ...). A 200 MJPEG
// answer is returned as a viewer reading its parts; any other answer as its
// status and (at most 4 KiB of) body.
func rpTry(t *testing.T, rawURL string, hdr ...string) (*rpViewer, int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	requested := time.Now()
	resp, err := rpClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	answered := time.Now()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != mjpeg.ContentType {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode, resp.Header, string(body)
	}
	v := &viewer{connected: make(chan struct{}), parts: make(chan received, 8192), err: make(chan error, 1), cancel: cancel}
	close(v.connected)
	t.Cleanup(cancel)
	go func() {
		defer resp.Body.Close()
		r := mjpeg.NewReader(resp.Body, mjpeg.Boundary)
		for {
			p, err := r.Next()
			if err != nil {
				v.err <- err
				return
			}
			p.Data = bytes.Clone(p.Data)
			v.parts <- received{part: p, at: time.Now()}
		}
	}()
	return &rpViewer{viewer: v, header: resp.Header, requested: requested, answered: answered}, resp.StatusCode, resp.Header, ""
}

// rpOpen opens a stream that must answer 200 with MJPEG.
func rpOpen(t *testing.T, rawURL string, hdr ...string) *rpViewer {
	t.Helper()
	v, code, _, body := rpTry(t, rawURL, hdr...)
	if v == nil {
		t.Fatalf("GET %s: %d %s, want an MJPEG stream", rawURL, code, body)
	}
	return v
}

// rpExpectError requires rawURL to answer code with a JSON {"error": ...}
// that contains every one of want.
func rpExpectError(t *testing.T, rawURL string, code int, want []string, hdr ...string) (http.Header, string) {
	t.Helper()
	v, got, h, body := rpTry(t, rawURL, hdr...)
	if v != nil {
		v.cancel()
		t.Errorf("GET %s: answered an MJPEG stream, want %d", rawURL, code)
		return nil, ""
	}
	if got != code {
		t.Errorf("GET %s: %d %s, want %d", rawURL, got, body, code)
		return h, body
	}
	var e struct {
		Error string `json:"error"`
	}
	if ct := h.Get("Content-Type"); ct != "application/json" || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
		t.Errorf("GET %s: %d with %q %q, want a JSON error", rawURL, got, ct, body)
		return h, body
	}
	for _, w := range want {
		if !strings.Contains(e.Error, w) {
			t.Errorf("GET %s: %d error %q does not mention %s", rawURL, got, e.Error, w)
		}
	}
	return h, body
}

// rpTakeFor receives every part that arrives within d.
func rpTakeFor(t *testing.T, v *viewer, d time.Duration) []received {
	t.Helper()
	var out []received
	deadline := time.After(d)
	for {
		select {
		case r := <-v.parts:
			out = append(out, r)
		case err := <-v.err:
			t.Fatalf("stream ended after %d parts: %v", len(out), err)
		case <-deadline:
			return out
		}
	}
}

// rpAt formats a time as the at parameter, exactly (RFC 3339 with
// nanoseconds).
func rpAt(t time.Time) string { return url.QueryEscape(t.UTC().Format(time.RFC3339Nano)) }

// rpUnix formats a time as unix seconds with 6 decimals.
func rpUnix(t time.Time) string { return string(mjpeg.AppendTimestamp(nil, t)) }

func rpParseTS(t *testing.T, what, s string) time.Time {
	t.Helper()
	ts, err := mjpeg.ParseTimestamp([]byte(s))
	if err != nil {
		t.Fatalf("%s %q: %v", what, s, err)
	}
	return ts
}

type rpRange struct {
	Camera string    `json:"camera"`
	Oldest time.Time `json:"oldest"`
	Newest time.Time `json:"newest"`
}

func (p *proc) rpRange(t *testing.T, camera string) rpRange {
	t.Helper()
	var r rpRange
	if code := p.getJSON(t, "/api/cameras/"+camera+"/range", &r); code != http.StatusOK {
		t.Fatalf("range of %s: %d", camera, code)
	}
	if r.Camera != camera || r.Oldest.IsZero() || r.Newest.Before(r.Oldest) {
		t.Fatalf("range of %s: %+v", camera, r)
	}
	return r
}

// rpViewers is the hub's viewer count of camera in /api/cameras: live
// viewers, and replays that handed over to the live stream.
func (p *proc) rpViewers(t *testing.T, camera string) int64 {
	t.Helper()
	var cams []struct {
		ID      string `json:"id"`
		Viewers int64  `json:"viewers"`
	}
	p.getJSON(t, "/api/cameras", &cams)
	for _, c := range cams {
		if c.ID == camera {
			return c.Viewers
		}
	}
	t.Fatalf("/api/cameras has no %s", camera)
	return 0
}

// rpSeqs checks parts are in capture order with strictly increasing
// sequence numbers and returns how many frames were skipped between them
// and the largest step.
func rpSeqs(t *testing.T, what string, parts []received) (skipped, maxStep uint64) {
	t.Helper()
	for i := 1; i < len(parts); i++ {
		a, b := parts[i-1].part, parts[i].part
		if b.Seq <= a.Seq {
			t.Fatalf("%s: part %d has X-Sequence %d after %d (duplicate or out of order)", what, i, b.Seq, a.Seq)
		}
		if !b.Timestamp.After(a.Timestamp) {
			t.Fatalf("%s: part %d captured at %s, not after the one before (%s)", what, i, b.Timestamp.Format(time.RFC3339Nano), a.Timestamp.Format(time.RFC3339Nano))
		}
		step := b.Seq - a.Seq
		skipped += step - 1
		maxStep = max(maxStep, step)
	}
	return skipped, maxStep
}

// rpRate is how fast capture time advanced against wall time from part i
// to part j.
func rpRate(parts []received, i, j int) float64 {
	return parts[j].part.Timestamp.Sub(parts[i].part.Timestamp).Seconds() / parts[j].at.Sub(parts[i].at).Seconds()
}

func rpLag(r received) time.Duration { return r.at.Sub(r.part.Timestamp) }

func TestReplay(t *testing.T) {
	started := time.Now()
	p := startStreamd(t, "all", rpPatternYAML("  max_replays_per_ip: 25\n", ""))
	p.waitReady(t)
	live := watch(t, p.url("/stream/pattern"))
	firstLive := live.take(t, 1, 20*time.Second)[0].part
	live.cancel()
	// Enough recorded for a replay from 10 s ago.
	time.Sleep(time.Until(firstLive.Timestamp.Add(14 * time.Second)))

	t.Run("range covers what was recorded", func(t *testing.T) {
		latest := p.rpSnapshotTime(t, "/snapshot/pattern")
		r := p.rpRange(t, "pattern")
		now := time.Now()
		t.Logf("range %s .. %s (%v); first live frame %s; process started %s", r.Oldest.Format(time.RFC3339Nano), r.Newest.Format(time.RFC3339Nano), r.Newest.Sub(r.Oldest).Round(time.Millisecond), firstLive.Timestamp.Format(time.RFC3339Nano), started.Format(time.RFC3339Nano))
		if r.Oldest.Truncate(time.Microsecond).After(firstLive.Timestamp) || r.Oldest.Before(started) {
			t.Errorf("oldest %s: want at or before the first frame seen live (%s) and after the process started (%s)", r.Oldest.Format(time.RFC3339Nano), firstLive.Timestamp.Format(time.RFC3339Nano), started.Format(time.RFC3339Nano))
		}
		if r.Newest.Before(latest) || r.Newest.After(now) {
			t.Errorf("newest %s: want at or after the latest snapshot (%s), not after now (%s)", r.Newest.Format(time.RFC3339Nano), latest.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
		}
		// The oldest frame held is where a replay from long ago starts.
		v := rpOpen(t, p.url("/stream/pattern?at=1"))
		first := v.take(t, 1, 10*time.Second)[0].part
		v.cancel()
		if !first.Timestamp.Equal(r.Oldest.Truncate(time.Microsecond)) {
			t.Errorf("a replay from 1970 starts at %s, the range's oldest is %s", first.Timestamp.Format(time.RFC3339Nano), r.Oldest.Format(time.RFC3339Nano))
		}
		if v.header.Get("X-Replay-Clamped") == "" {
			t.Errorf("a replay from 1970 has no X-Replay-Clamped header")
		}
		if _, code, _, body := rpTry(t, p.url("/api/cameras/nosuch/range")); code != http.StatusNotFound {
			t.Errorf("range of an unknown camera: %d %s", code, body)
		}
	})

	t.Run("snapshot at T is the first frame at or after T", func(t *testing.T) {
		for _, back := range []time.Duration{5 * time.Second, 10 * time.Second} {
			at := time.Now().Add(-back)
			ts, seq, img := p.rpSnapshotAt(t, "pattern", rpUnix(at))
			// The snapshot's time is truncated to microseconds, as at is.
			d := ts.Sub(at.Truncate(time.Microsecond))
			t.Logf("snapshot at now-%v: frame %d captured %v after T", back, seq, d)
			if d < 0 || d > rpFrame+15*time.Millisecond {
				t.Errorf("snapshot at %s: frame captured at %s, %v after T; want within one frame interval (%v, +15ms jitter)", rpUnix(at), ts.Format(time.RFC3339Nano), d, rpFrame)
			}
			if _, err := jpeg.DecodeConfig(bytes.NewReader(img)); err != nil {
				t.Errorf("snapshot at %s is not a JPEG: %v", rpUnix(at), err)
			}
			// The same frame for T exactly its capture time; the next one
			// for a T just after it: "at or after", to the microsecond.
			if _, s2, _ := p.rpSnapshotAt(t, "pattern", rpAt(ts)); s2 != seq {
				t.Errorf("snapshot at its own capture time %s: frame %d, want %d", ts.Format(time.RFC3339Nano), s2, seq)
			}
			after := ts.Add(2 * time.Microsecond)
			if ts3, s3, _ := p.rpSnapshotAt(t, "pattern", rpAt(after)); s3 <= seq || ts3.Before(after.Truncate(time.Microsecond)) {
				t.Errorf("snapshot at %s (2µs after frame %d was captured): frame %d captured at %s, which is before T", after.Format(time.RFC3339Nano), seq, s3, ts3.Format(time.RFC3339Nano))
			}
		}
	})

	t.Run("1x from -10s", func(t *testing.T) {
		v := rpOpen(t, p.url("/stream/pattern?at=-10s"))
		parts := rpTakeFor(t, v.viewer, 10500*time.Millisecond)
		hubViewers := p.rpViewers(t, "pattern")
		v.cancel()
		if len(parts) < 2 {
			t.Fatalf("%d parts in 10.5 s", len(parts))
		}
		first := parts[0]
		if from := rpParseTS(t, "X-Replay-From", v.header.Get("X-Replay-From")); !from.Equal(first.part.Timestamp) {
			t.Errorf("X-Replay-From %s, first part captured at %s", v.header.Get("X-Replay-From"), first.part.Timestamp.Format(time.RFC3339Nano))
		}
		if c := v.header.Get("X-Replay-Clamped"); c != "" {
			t.Errorf("X-Replay-Clamped %q for a time well within what is held", c)
		}
		// The server takes "now" between our request and its answer.
		lo, hi := v.requested.Add(-10*time.Second), v.answered.Add(-10*time.Second)
		t.Logf("first frame captured %v after request time -10s (server's T between +0 and +%v); first part %v after the request", first.part.Timestamp.Sub(lo).Round(time.Microsecond), hi.Sub(lo).Round(time.Microsecond), first.at.Sub(v.requested).Round(time.Millisecond))
		if first.part.Timestamp.Before(lo.Add(-time.Millisecond)) || first.part.Timestamp.After(hi.Add(rpFrame+15*time.Millisecond)) {
			t.Errorf("first frame captured at %s; want within one frame interval (%v, +15ms jitter) after now-10s (%s .. %s)", first.part.Timestamp.Format(time.RFC3339Nano), rpFrame, lo.Format(time.RFC3339Nano), hi.Format(time.RFC3339Nano))
		}
		rate := rpRate(parts, 1, len(parts)-1)
		skipped, maxStep := rpSeqs(t, "1x", parts)
		span := parts[len(parts)-1].at.Sub(parts[1].at)
		t.Logf("%d parts in %v: capture time at %.4fx wall time, %.1f parts/s, %d frames skipped (largest step %d), lag %v .. %v, hub viewers %d",
			len(parts), span.Round(time.Millisecond), rate, float64(len(parts)-2)/span.Seconds(), skipped, maxStep, rpLag(parts[0]).Round(time.Millisecond), rpLag(parts[len(parts)-1]).Round(time.Millisecond), hubViewers)
		if rate < 0.95 || rate > 1.05 {
			t.Errorf("capture time advanced %.3fx wall time, want 1x ±5%%", rate)
		}
		if len(parts) < 290 {
			t.Errorf("%d parts in 10.5 s at speed 1 from a 30 fps camera, want about 315", len(parts))
		}
		// A 30 fps source through a 30 fps cap: every frame, but the cap's
		// slack (a frame may come 20% early) lets a rare capture-time
		// jitter skip one. Allow 1%, never two in a row.
		if maxStep > 2 || skipped*100 > uint64(len(parts)) {
			t.Errorf("X-Sequence skipped %d frames in %d parts (largest step %d): want every frame, 1%% slack for the rate cap's jitter", skipped, len(parts), maxStep)
		}
		if l := rpLag(parts[len(parts)-1]); l < 9500*time.Millisecond || l > 11*time.Second {
			t.Errorf("after 10 s the replay shows frames %v old, want still about 10 s (no hand-over at speed 1 while 10 s behind)", l)
		}
		if hubViewers != 0 {
			t.Errorf("a replay 10 s behind counts %d viewers of the live hub, want 0", hubViewers)
		}
	})

	t.Run("2x reaches the live edge and continues live", func(t *testing.T) {
		v := rpOpen(t, p.url("/stream/pattern?at=-6s&speed=2"))
		var parts []received
		liveSince := -1
		before := int64(-1)
		deadline := time.Now().Add(25 * time.Second)
		for {
			got := rpTakeFor(t, v.viewer, 250*time.Millisecond)
			parts = append(parts, got...)
			if liveSince < 0 {
				for i, r := range parts {
					if rpLag(r) < 500*time.Millisecond {
						liveSince = i
						break
					}
				}
				if liveSince < 0 && len(parts) > 0 && rpLag(parts[len(parts)-1]) > 2*time.Second && before < 0 {
					before = p.rpViewers(t, "pattern")
				}
			}
			if liveSince >= 0 && parts[len(parts)-1].at.Sub(parts[liveSince].at) > 4*time.Second {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no part within 0.5 s of now, then 4 s of parts, within 25 s (%d parts, last lag %v)", len(parts), rpLag(parts[len(parts)-1]))
			}
		}
		after := p.rpViewers(t, "pattern")
		v.cancel()

		first := parts[0]
		lo, hi := v.requested.Add(-6*time.Second), v.answered.Add(-6*time.Second)
		if first.part.Timestamp.Before(lo.Add(-time.Millisecond)) || first.part.Timestamp.After(hi.Add(rpFrame+15*time.Millisecond)) {
			t.Errorf("first frame captured at %s; want within one frame interval after now-6s (%s .. %s)", first.part.Timestamp.Format(time.RFC3339Nano), lo.Format(time.RFC3339Nano), hi.Format(time.RFC3339Nano))
		}
		// The replay phase: frames more than 1.5 s old.
		last := 0
		for i, r := range parts {
			if rpLag(r) > 1500*time.Millisecond {
				last = i
			}
		}
		if last < 30 {
			t.Fatalf("only %d parts before the replay came within 1.5 s of now", last)
		}
		rate := rpRate(parts, 1, last)
		// The live edge: the first part within a second of now.
		edge := slices.IndexFunc(parts, func(r received) bool { return rpLag(r) < time.Second })
		reached := parts[edge].at.Sub(v.requested)
		_, replayStep := rpSeqs(t, "2x, replay phase", parts[:edge+1])
		skipped, maxStep := rpSeqs(t, "2x, whole stream", parts)
		var jumps []string
		for i := edge + 1; i < len(parts); i++ {
			if d := parts[i].part.Seq - parts[i-1].part.Seq; d != 1 {
				jumps = append(jumps, fmt.Sprintf("part %d: %d → %d (lag %v → %v)", i, parts[i-1].part.Seq, parts[i].part.Seq, rpLag(parts[i-1]).Round(time.Millisecond), rpLag(parts[i]).Round(time.Millisecond)))
			}
		}
		var maxLiveLag time.Duration
		for _, r := range parts[liveSince:] {
			maxLiveLag = max(maxLiveLag, rpLag(r))
		}
		liveSpan := parts[len(parts)-1].at.Sub(parts[liveSince].at)
		t.Logf("%d parts; replay phase %d parts at %.4fx (largest step %d); within 1 s of now %v after the request (part %d), within 0.5 s at part %d; then %.1f parts/s, lag ≤ %v; skipped %d in all (largest step %d); hub viewers %d during the replay, %d after",
			len(parts), last+1, rate, replayStep, reached.Round(time.Millisecond), edge, liveSince, float64(len(parts)-1-liveSince)/liveSpan.Seconds(), maxLiveLag.Round(time.Millisecond), skipped, maxStep, before, after)
		if rate < 1.9 || rate > 2.1 {
			t.Errorf("capture time advanced %.3fx wall time at speed 2, want 2x ±5%%", rate)
		}
		if reached < 4*time.Second || reached > 7*time.Second {
			t.Errorf("reached the live edge %v after the request; from 6 s back at 2x it is 5 s", reached)
		}
		if len(jumps) > 0 {
			t.Errorf("X-Sequence not contiguous from the live edge on (a gap or skip at the hand-over): %s", strings.Join(jumps, "; "))
		}
		if maxLiveLag > 500*time.Millisecond {
			t.Errorf("after the hand-over parts were up to %v old, want within 0.5 s of now", maxLiveLag)
		}
		if before != 0 || after != 1 {
			t.Errorf("hub viewers: %d while replaying, %d after the live edge; want 0 then 1 (the replay continues as a live viewer)", before, after)
		}
	})

	t.Run("errors", func(t *testing.T) {
		future := time.Now().Add(time.Minute)
		bad := []struct {
			path  string
			param string
		}{
			{"/stream/pattern?at=yesterday", `"at"`},
			{"/stream/pattern?at=-5x", `"at"`},
			{"/stream/pattern?at=2026-13-45T00:00:00Z", `"at"`},
			{"/stream/pattern?at=" + rpUnix(future), `"at"`},
			{"/stream/pattern?at=" + rpAt(future), `"at"`},
			{"/stream/pattern?at=-5s&speed=fast", `"speed"`},
			{"/stream/pattern?at=-5s&speed=0.1", `"speed"`},
			{"/stream/pattern?at=-5s&speed=0", `"speed"`},
			{"/stream/pattern?at=-5s&speed=-1", `"speed"`},
			{"/stream/pattern?at=-5s&speed=9", `"speed"`},
			{"/stream/pattern?at=-5s&speed=NaN", `"speed"`},
			{"/stream/pattern?at=-5s&speed=Inf", `"speed"`},
			{"/snapshot/pattern?at=yesterday", `"at"`},
			{"/snapshot/pattern?at=" + rpUnix(future), `"at"`},
		}
		for _, b := range bad {
			rpExpectError(t, p.url(b.path), http.StatusBadRequest, []string{b.param})
		}
		// The bounds of speed are accepted.
		for _, s := range []string{"0.25", "8"} {
			v := rpOpen(t, p.url("/stream/pattern?at=-5s&speed="+s))
			v.take(t, 3, 10*time.Second)
			v.cancel()
		}
		rpExpectError(t, p.url("/stream/nosuch?at=-5s"), http.StatusNotFound, []string{"nosuch"})
		rpExpectError(t, p.url("/snapshot/nosuch?at=-5s"), http.StatusNotFound, []string{"nosuch"})

		// A camera known to a viewer node but never recorded: a consumer
		// on the same broker that names it.
		c := startStreamd(t, "consumer", fmt.Sprintf("role: consumer\nembedded:\n  enabled: false\nkafka:\n  brokers: [%s]\nhttp:\n  listen: 127.0.0.1:0\ncameras:\n  - id: ghost\n", p.broker))
		c.waitReady(t)
		rpExpectError(t, c.url("/stream/ghost?at=-5s"), http.StatusNotFound, []string{"ghost", "nothing recorded"})
		rpExpectError(t, c.url("/snapshot/ghost?at=-5s"), http.StatusNotFound, []string{"ghost", "nothing recorded"})
		rpExpectError(t, c.url("/api/cameras/ghost/range"), http.StatusNotFound, []string{"ghost"})
		// That node replays the recorded camera as well as the all-in-one.
		v := rpOpen(t, c.url("/stream/pattern?at=-8s"))
		parts := v.take(t, 30, 10*time.Second)
		v.cancel()
		if l := rpLag(parts[0]); l < 7*time.Second || l > 9*time.Second {
			t.Errorf("replay from -8s on the consumer node: first frame %v old", l)
		}
		rpSeqs(t, "consumer node replay", parts)
	})

	t.Run("at forms agree", func(t *testing.T) {
		at := time.Now().Add(-7 * time.Second)
		var from []string
		for _, q := range []string{rpUnix(at), rpAt(at), url.QueryEscape(at.Format(time.RFC3339Nano))} {
			v := rpOpen(t, p.url("/stream/pattern?at="+q))
			v.take(t, 1, 10*time.Second)
			v.cancel()
			from = append(from, v.header.Get("X-Replay-From"))
		}
		if from[0] != from[1] || from[1] != from[2] {
			t.Errorf("the same T as unix seconds, RFC 3339 UTC and RFC 3339 with a zone start at %v", from)
		}
	})

	t.Run("20 replays leave nothing behind", func(t *testing.T) {
		// Warm up the replay client, then wait for a steady state.
		w := rpOpen(t, p.url("/stream/pattern?at=-3s"))
		w.take(t, 5, 10*time.Second)
		w.cancel()
		g0, f0 := p.rpSteady(t)

		// First-frame latency, one at a time.
		var lat []time.Duration
		for i := range 10 {
			v := rpOpen(t, p.url(fmt.Sprintf("/stream/pattern?at=-%ds", 3+i)))
			r := v.take(t, 1, 10*time.Second)[0]
			lat = append(lat, r.at.Sub(v.requested))
			v.cancel()
		}
		slices.Sort(lat)
		t.Logf("first part of a replay after the request: p50 %v, min %v, max %v (10 replays)", lat[len(lat)/2].Round(time.Microsecond), lat[0].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))

		var open []*rpViewer
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			path := fmt.Sprintf("/stream/pattern?at=-%ds", 2+i)
			if i >= 15 { // these reach the live edge and hand over
				path = "/stream/pattern?at=-3s&speed=4"
			}
			v := rpOpen(t, p.url(path))
			open = append(open, v)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := v.takeErr(20, 20*time.Second); err != nil {
					errs <- fmt.Errorf("%s: %w", path, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		time.Sleep(2 * time.Second) // the fast ones are live by now
		g1, f1, v1 := p.metric(t, "go_goroutines"), p.metric(t, "process_open_fds"), p.rpViewers(t, "pattern")
		for _, v := range open {
			v.cancel()
		}
		if g1 < g0+20 || f1 < f0+15 {
			t.Errorf("with 20 replays open: %v goroutines (baseline %v), %v fds (baseline %v): the measure does not see them", g1, g0, f1, f0)
		}
		var g2, f2 float64
		var v2 int64
		deadline := time.Now().Add(15 * time.Second)
		for {
			g2, f2, v2 = p.metric(t, "go_goroutines"), p.metric(t, "process_open_fds"), p.rpViewers(t, "pattern")
			if g2 <= g0+5 && f2 <= f0+2 && v2 == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("15 s after closing 20 replays: %v goroutines (baseline %v), %v open fds (baseline %v), %d hub viewers: something a replay held is still held", g2, g0, f2, f0, v2)
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("goroutines %v → %v with 20 replays (%d of them handed over to live) → %v after; open fds %v → %v → %v", g0, g1, v1, g2, f0, f1, f2)
		if v1 != 5 {
			t.Errorf("%d hub viewers with 5 replays at 4x that should have reached the live edge, want 5", v1)
		}
		// The replay slots were given back: 20 again are admitted.
		for i := range 20 {
			v := rpOpen(t, p.url(fmt.Sprintf("/stream/pattern?at=-%ds", 2+i%10)))
			defer v.cancel()
		}
	})
}

// rpSnapshotTime is the capture time of the snapshot at path.
func (p *proc) rpSnapshotTime(t *testing.T, path string) time.Time {
	t.Helper()
	resp, err := http.Get(p.url(path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", path, resp.Status)
	}
	return rpParseTS(t, path+" X-Timestamp", resp.Header.Get("X-Timestamp"))
}

// rpSnapshotAt fetches /snapshot/{camera}?at=at (at already escaped).
func (p *proc) rpSnapshotAt(t *testing.T, camera, at string, hdr ...string) (time.Time, uint64, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.url("/snapshot/"+camera+"?at="+at), nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := rpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("snapshot of %s at %s: %s %q %v %.200s", camera, at, resp.Status, resp.Header.Get("Content-Type"), err, body)
	}
	seq, err := strconv.ParseUint(resp.Header.Get("X-Sequence"), 10, 64)
	if err != nil {
		t.Fatalf("snapshot X-Sequence %q", resp.Header.Get("X-Sequence"))
	}
	return rpParseTS(t, "snapshot X-Timestamp", resp.Header.Get("X-Timestamp")), seq, body
}

// rpSteady waits until the goroutine count stops moving and returns it
// with the open file descriptors.
func (p *proc) rpSteady(t *testing.T) (goroutines, fds float64) {
	t.Helper()
	goroutines = -1
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		g := p.metric(t, "go_goroutines")
		if g == goroutines {
			break
		}
		goroutines = g
	}
	return goroutines, p.metric(t, "process_open_fds")
}

// rpCheckWindow replays [from, to] at speed 1 and checks every frame of it
// comes, in order, at the camera's pace.
func rpCheckWindow(t *testing.T, p *proc, what string, from, to time.Time, hdr ...string) []received {
	t.Helper()
	v := rpOpen(t, p.url("/stream/pattern?at="+rpAt(from)), hdr...)
	defer v.cancel()
	parts := v.takeUntil(t, to.Sub(from)+15*time.Second, what+": a frame captured at the end of the window", func(r received) bool { return !r.part.Timestamp.Before(to) })
	parts = parts[:len(parts)-1] // the one past the window
	if len(parts) < 2 {
		t.Fatalf("%s: %d parts", what, len(parts))
	}
	// 1 ms of slack before from: Kafka seeks by millisecond (see the
	// snapshot subtest of TestReplay, which checks the microsecond).
	for _, r := range parts {
		if r.part.Timestamp.Before(from.Add(-time.Millisecond)) || !r.part.Timestamp.Before(to) {
			t.Fatalf("%s: a part captured at %s, outside %s .. %s", what, r.part.Timestamp.Format(time.RFC3339Nano), from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
		}
	}
	skipped, maxStep := rpSeqs(t, what, parts)
	rate := rpRate(parts, 1, len(parts)-1)
	t.Logf("%s: %d parts captured %s .. %s, X-Sequence %d .. %d, %d skipped (largest step %d), %.4fx", what, len(parts), parts[0].part.Timestamp.Format("15:04:05.000000"), parts[len(parts)-1].part.Timestamp.Format("15:04:05.000000"), parts[0].part.Seq, parts[len(parts)-1].part.Seq, skipped, maxStep, rate)
	if want := int(to.Sub(from) / rpFrame); len(parts) < want*95/100 {
		t.Errorf("%s: %d parts for %v at 30 fps, want about %d", what, len(parts), to.Sub(from), want)
	}
	if maxStep > 2 || skipped*100 > uint64(len(parts)) {
		t.Errorf("%s: %d frames skipped (largest step %d)", what, skipped, maxStep)
	}
	if rate < 0.95 || rate > 1.05 {
		t.Errorf("%s: capture time advanced %.3fx wall time at speed 1", what, rate)
	}
	return parts
}

func TestReplayAfterRestart(t *testing.T) {
	yaml := rpPatternYAML("", "  data_dir: "+t.TempDir()+"\n")
	a := startStreamd(t, "all-1", yaml)
	a.waitReady(t)
	live := watch(t, a.url("/stream/pattern"))
	firstLive := live.take(t, 1, 20*time.Second)[0].part
	live.cancel()
	// 14 s held: the first 10 s are replayed after the restart.
	time.Sleep(time.Until(firstLive.Timestamp.Add(14 * time.Second)))
	r1 := a.rpRange(t, "pattern")
	if err := a.terminate(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()

	b := startStreamd(t, "all-2", yaml)
	b.waitReady(t)
	r2 := b.rpRange(t, "pattern")
	t.Logf("before the restart %s .. %s; after %s .. %s; restarted in %v", r1.Oldest.Format(time.RFC3339Nano), r1.Newest.Format(time.RFC3339Nano), r2.Oldest.Format(time.RFC3339Nano), r2.Newest.Format(time.RFC3339Nano), time.Since(stopped).Round(time.Millisecond))
	if !r2.Oldest.Equal(r1.Oldest) {
		t.Errorf("oldest frame held %s after the restart, %s before", r2.Oldest.Format(time.RFC3339Nano), r1.Oldest.Format(time.RFC3339Nano))
	}
	if !r2.Newest.After(r1.Newest) {
		t.Errorf("newest %s after the restart, not after %s", r2.Newest.Format(time.RFC3339Nano), r1.Newest.Format(time.RFC3339Nano))
	}
	// The first 10 s of the first run, every frame, in order.
	parts := rpCheckWindow(t, b, "first 10 s after the restart", r1.Oldest, r1.Oldest.Add(10*time.Second))
	if !parts[0].part.Timestamp.Equal(r1.Oldest.Truncate(time.Microsecond)) {
		t.Errorf("replay from the oldest frame starts at %s, want %s", parts[0].part.Timestamp.Format(time.RFC3339Nano), r1.Oldest.Format(time.RFC3339Nano))
	}
	// A snapshot in the middle of it.
	mid := r1.Oldest.Add(5 * time.Second)
	if ts, _, _ := b.rpSnapshotAt(t, "pattern", rpAt(mid)); ts.Before(mid.Truncate(time.Microsecond)) || ts.Sub(mid) > rpFrame+15*time.Millisecond {
		t.Errorf("snapshot at %s after the restart: frame captured at %s", mid.Format(time.RFC3339Nano), ts.Format(time.RFC3339Nano))
	}
}

func TestReplayWhileNothingProduces(t *testing.T) {
	dir := t.TempDir()
	a := startStreamd(t, "all", rpPatternYAML("", "  data_dir: "+dir+"\n"))
	a.waitReady(t)
	live := watch(t, a.url("/stream/pattern"))
	firstLive := live.take(t, 1, 20*time.Second)[0].part
	live.cancel()
	time.Sleep(time.Until(firstLive.Timestamp.Add(20 * time.Second)))
	ra := a.rpRange(t, "pattern")
	if err := a.terminate(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()

	// The same broker data, now with no producer: a viewer node that never
	// saw the camera live.
	b := startStreamd(t, "consumer", fmt.Sprintf("role: consumer\nembedded:\n  enabled: true\n  listen: 127.0.0.1:0\n  data_dir: %s\nhttp:\n  listen: 127.0.0.1:0\ncameras:\n  - id: pattern\n  - id: ghost\n", dir))
	b.waitReady(t)
	rb := b.rpRange(t, "pattern")
	t.Logf("recorded %s .. %s; range on the consumer %s .. %s", ra.Oldest.Format(time.RFC3339Nano), ra.Newest.Format(time.RFC3339Nano), rb.Oldest.Format(time.RFC3339Nano), rb.Newest.Format(time.RFC3339Nano))
	if !rb.Oldest.Equal(ra.Oldest) || rb.Newest.Before(ra.Newest) || rb.Newest.After(stopped) {
		t.Errorf("range on the consumer %s .. %s; want from %s to the last frame before the stop (%s .. %s)", rb.Oldest.Format(time.RFC3339Nano), rb.Newest.Format(time.RFC3339Nano), ra.Oldest.Format(time.RFC3339Nano), ra.Newest.Format(time.RFC3339Nano), stopped.Format(time.RFC3339Nano))
	}

	// The last minute, fast: from the oldest frame (clamped) to the newest.
	v := rpOpen(t, b.url("/stream/pattern?at=-60s&speed=8"))
	if v.header.Get("X-Replay-Clamped") == "" {
		t.Errorf("replay of the last minute with %v recorded: no X-Replay-Clamped", rb.Newest.Sub(rb.Oldest).Round(time.Second))
	}
	if from := rpParseTS(t, "X-Replay-From", v.header.Get("X-Replay-From")); !from.Equal(rb.Oldest.Truncate(time.Microsecond)) {
		t.Errorf("X-Replay-From %s, oldest %s", from.Format(time.RFC3339Nano), rb.Oldest.Format(time.RFC3339Nano))
	}
	newest := rb.Newest.Truncate(time.Microsecond)
	// 20 s at 8x is 2.5 s; then nothing more comes (the stream stays open).
	parts := rpTakeFor(t, v.viewer, rb.Newest.Sub(rb.Oldest)/8+5*time.Second)
	v.cancel()
	if len(parts) < 30 {
		t.Fatalf("last minute at 8x: %d parts", len(parts))
	}
	rpSeqs(t, "last minute at 8x", parts)
	end := len(parts) - 1
	for end > 1 && parts[end].at.Sub(parts[end-1].at) > 500*time.Millisecond {
		end-- // a frame shown late, after the pause at the end
	}
	rate := rpRate(parts, 1, end)
	lastTS := parts[len(parts)-1].part.Timestamp
	t.Logf("last minute at 8x: %d parts, %.2fx, %.1f parts/s; the last part captured %v before the newest held, received %v after the one before",
		len(parts), rate, float64(end-1)/parts[end].at.Sub(parts[1].at).Seconds(), newest.Sub(lastTS), parts[len(parts)-1].at.Sub(parts[len(parts)-2].at).Round(time.Millisecond))
	if rate < 7.6 || rate > 8.4 {
		t.Errorf("capture time advanced %.2fx wall time at speed 8", rate)
	}
	if fps := float64(end-1) / parts[end].at.Sub(parts[1].at).Seconds(); fps > 31 {
		t.Errorf("%.1f parts/s at speed 8: over replay.max_fps (30)", fps)
	}
	if !lastTS.Equal(newest) {
		t.Errorf("the replay stopped at the frame captured %s, %v before the newest held (%s): the last frame recorded is never shown", lastTS.Format(time.RFC3339Nano), newest.Sub(lastTS), newest.Format(time.RFC3339Nano))
	}

	// The last 5 s before the stop, every frame at 1x.
	// (to is the newest frame itself: the window ends with it.)
	rpCheckWindow(t, b, "last 5 s recorded", rb.Newest.Add(-5*time.Second), rb.Newest.Truncate(time.Microsecond))
	rpExpectError(t, b.url("/stream/ghost?at=-60s"), http.StatusNotFound, []string{"ghost", "nothing recorded"})
}

func TestReplayLimitsAndAuth(t *testing.T) {
	const admin, lobby = "replay-admin-0123456789", "replay-lobby-0123456789"
	p := startStreamd(t, "all", rpPatternYAML("  max_replays: 2\n  max_replays_per_ip: 1\n",
		"auth:\n  tokens:\n    - name: admin\n      token: "+admin+"\n    - name: lobby-only\n      token: "+lobby+"\n      cameras: [lobby]\n"))
	p.waitReady(t)
	auth := func(ip string) []string { return []string{"Authorization", "Bearer " + admin, "X-Real-IP", ip} }
	// Something recorded.
	time.Sleep(3 * time.Second)

	// Auth first: without a token 401, a token for other cameras 403, on
	// every replay route.
	for _, path := range []string{"/stream/pattern?at=-2s", "/snapshot/pattern?at=-2s", "/api/cameras/pattern/range"} {
		if _, code, h, body := rpTry(t, p.url(path)); code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s without a token: %d %s", path, code, body)
		}
		rpExpectError(t, p.url(path), http.StatusForbidden, []string{"pattern"}, "Authorization", "Bearer "+lobby)
	}
	// The limits: one per client address, two in all.
	a1 := rpOpen(t, p.url("/stream/pattern?at=-2s"), auth("10.0.0.1")...)
	a1.take(t, 1, 10*time.Second)
	h, _ := rpExpectError(t, p.url("/stream/pattern?at=-2s"), http.StatusTooManyRequests, []string{"10.0.0.1"}, auth("10.0.0.1")...)
	if h != nil && h.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	b1 := rpOpen(t, p.url("/stream/pattern?at=-2s"), auth("10.0.0.2")...)
	b1.take(t, 1, 10*time.Second)
	rpExpectError(t, p.url("/stream/pattern?at=-2s"), http.StatusTooManyRequests, []string{"limit (2)"}, auth("10.0.0.3")...)
	// Live viewers are not replays.
	lv := rpOpen(t, p.url("/stream/pattern"), auth("10.0.0.3")...)
	lv.take(t, 1, 10*time.Second)
	lv.cancel()
	// A closed replay gives its place back.
	a1.cancel()
	rpOpenOnce429s(t, p.url("/stream/pattern?at=-2s"), auth("10.0.0.3")...).cancel()
	b1.cancel()
	// The page passes the token in the URL.
	rpOpenOnce429s(t, p.url("/stream/pattern?at=-2s&token="+admin)).cancel()
}

// rpOpenOnce429s opens a replay, retrying while it gets 429 (a replay just
// closed is given back when the server notices, not at once), and takes
// its first part.
func rpOpenOnce429s(t *testing.T, rawURL string, hdr ...string) *rpViewer {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, code, _, body := rpTry(t, rawURL, hdr...)
		if v != nil {
			v.take(t, 1, 10*time.Second)
			return v
		}
		if code != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %s", rawURL, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
