//go:build e2e

package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/testutil/mp4check"
)

// The camera page's tools in Chromium: the day timeline (the analyzer's
// activity per minute drawn as density, a day button and a click to reach
// a time, previous and next event), the export of several cameras as a
// ZIP of MP4s, and the masks and zones editor whose YAML the config reads.
func TestCameraPageDayExportAndEditor(t *testing.T) {
	t.Parallel() // waits for events and deliveries; no timing bound
	p := startStreamd(t, "daytools", `
embedded:
  listen: 127.0.0.1:0
http:
  listen: 127.0.0.1:0
analyzer:
  enabled: true
  gap: 2s
  faces:
    enabled: false
events:
  max_length: 15s
recording:
  enabled: true
cameras:
  - id: hall
    source: `+vtestPath+`
    loop: true
    fps: 10
  - id: pattern
    source: testpattern
    width: 640
    height: 360
    fps: 10
    motion:
      masks:
        - [[0, 0], [1, 0], [1, 0.67], [0, 0.67]]
        - [[0, 0.83], [1, 0.83], [1, 1], [0, 1]]
`)
	p.waitReady(t)

	// A minute of activity (published at the minute's end) and ended
	// events of the hall.
	type minute struct {
		T    time.Time `json:"t"`
		Area float64   `json:"area"`
	}
	type event struct {
		ID    string     `json:"id"`
		Start time.Time  `json:"start"`
		End   *time.Time `json:"end"`
	}
	var act struct {
		Minutes []minute `json:"minutes"`
	}
	var evs []event
	for deadline := time.Now().Add(100 * time.Second); ; {
		p.getJSON(t, "/api/cameras/hall/activity", &act)
		p.getJSON(t, "/api/events?camera=hall&type=motion", &evs)
		ended := 0
		for _, e := range evs {
			if e.End != nil {
				ended++
			}
		}
		if len(act.Minutes) > 0 && act.Minutes[0].Area > 0 && ended >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 100 s: activity %+v, %d ended events of the hall", act.Minutes, ended)
		}
		time.Sleep(time.Second)
	}
	t.Logf("hall: activity %+v", act.Minutes)

	ctx := browserFor(t, 1600, 1000, 4*time.Minute)
	d := cdp{ctx}
	if err := chromedp.Do(ctx, chromedp.Navigate(p.url("/cameras/hall"))); err != nil {
		t.Fatal(err)
	}
	waitJS := func(what, js string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			st, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({...window.streamd, editor: undefined})`))
			t.Fatalf("%s: %v; page state %s", what, err, st)
		}
	}
	waitJS("the day's activity loaded", `window.streamd && streamd.dayMinutes >= 1 && streamd.painted > 3`)

	// Density: the column of the active minute is drawn, a column of a
	// minute nobody analyzed is not.
	var dens string
	d.eval(t, fmt.Sprintf(`(() => { const c = document.getElementById("day-density"), g = c.getContext("2d");
		const from = new Date(); from.setHours(0, 0, 0, 0); const day = new Date(from); day.setDate(day.getDate() + 1);
		const col = (ms) => { const x = Math.floor((ms - from.getTime()) / (day - from) * c.width); const px = g.getImageData(x, 0, 1, c.height).data;
			let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++; return n; };
		return col(%d) + " " + col(%d); })()`, act.Minutes[0].T.UnixMilli(), act.Minutes[0].T.Add(-3*time.Hour).UnixMilli()), &dens)
	var lit, dark int
	fmt.Sscan(dens, &lit, &dark)
	if lit < 2 || dark != 0 {
		t.Errorf("density: %d pixels drawn in the active minute's column, %d three hours before (nothing analyzed then); want some and none", lit, dark)
	}

	// Two clicks: today's button, then the time 3 s into an ended event.
	var target event
	for _, e := range evs {
		if e.End != nil && time.Since(e.Start) > 20*time.Second {
			target = e
			break
		}
	}
	if target.ID == "" {
		target = evs[len(evs)-1]
	}
	want := target.Start.Add(3 * time.Second)
	// The day of the event: today, or yesterday when the test runs
	// across midnight (the days held are each a button).
	d.click(t, fmt.Sprintf(`#days button[data-day="%s"]`, want.Local().Format("2006-01-02")))
	var rect struct{ X, W, Y, H float64 }
	var rs string
	d.eval(t, `(() => { const r = document.getElementById("day-tl").getBoundingClientRect(); return JSON.stringify({X: r.left, W: r.width, Y: r.top, H: r.height}); })()`, &rs)
	_ = json.Unmarshal([]byte(rs), &rect)
	wl := want.Local()
	midnight := time.Date(wl.Year(), wl.Month(), wl.Day(), 0, 0, 0, 0, time.Local)
	frac := float64(want.Sub(midnight)) / float64(midnight.AddDate(0, 0, 1).Sub(midnight))
	x := rect.X + frac*rect.W
	if err := chromedp.Do(ctx, chromedp.MouseClickXY(x, rect.Y+rect.H/2)); err != nil {
		t.Fatal(err)
	}
	// One pixel of a 24-hour bar is a minute over its width: the page asks
	// for the start of the minute under the click (the click within a
	// pixel of the time aimed at) and plays from there.
	pixel := float64(24*time.Hour) / rect.W / 1e6 // ms
	waitJS("replay from the clicked time", fmt.Sprintf(`streamd.mode === "replay" && streamd.seek %% 60000 === 0 && streamd.seek >= %d - %f - 60000 && streamd.seek <= %d + %f`,
		want.UnixMilli(), pixel+1, want.UnixMilli(), pixel+1))
	var seek float64
	d.eval(t, `streamd.seek`, &seek)
	var painted int
	d.eval(t, `streamd.painted`, &painted)
	waitJS("frames of the replay", fmt.Sprintf(`streamd.mode === "replay" && streamd.painted > %d`, painted+3))
	t.Logf("clicked the day bar at %s (a pixel is %.0f s): the page asked for %s and plays", want.Format("15:04:05"), pixel/1e9, time.UnixMilli(int64(seek)).Format("15:04:05.000"))

	// Previous and next event: N jumps to 2 s before the start of the
	// event after the position, P to the one before.
	starts := map[int64]bool{}
	for _, e := range evs {
		starts[e.Start.UnixMilli()-2000] = true
	}
	jump := func(key string) float64 {
		t.Helper()
		// From a paused position, so that the next replay is the jump's.
		d.eval(t, `(() => { if (streamd.mode !== "paused") document.getElementById("play").click(); return "ok"; })()`, new(string))
		waitJS("paused", `streamd.mode === "paused"`)
		var before float64
		d.eval(t, `streamd.seek || 0`, &before)
		if err := chromedp.Do(ctx, chromedp.KeyEvent(key)); err != nil {
			t.Fatal(err)
		}
		waitJS("the jump of key "+key, fmt.Sprintf(`streamd.mode === "replay" && streamd.seek !== %f`, before))
		var at float64
		d.eval(t, `streamd.seek`, &at)
		if !starts[int64(at)] {
			t.Errorf("%s: the page asked for %s, not 2 s before an event's start", key, time.UnixMilli(int64(at)).Format("15:04:05.000"))
		}
		return at
	}
	// The events list is the node's: refresh it, the page has its own.
	// Every event counts, motion and objects (the hall's people).
	p.getJSON(t, "/api/events?camera=hall", &evs)
	for _, e := range evs {
		starts[e.Start.UnixMilli()-2000] = true
	}
	first := jump("n")
	second := jump("n")
	back := jump("p")
	if back != first || second <= first {
		t.Errorf("N, N, P asked for %s, %s, %s: want the first again after the second", time.UnixMilli(int64(first)).Format("15:04:05.000"), time.UnixMilli(int64(second)).Format("15:04:05.000"), time.UnixMilli(int64(back)).Format("15:04:05.000"))
	}
	t.Logf("next event: %s, next: %s, previous: %s", time.UnixMilli(int64(first)).Format("15:04:05.000"), time.UnixMilli(int64(second)).Format("15:04:05.000"), time.UnixMilli(int64(back)).Format("15:04:05.000"))

	// Export several cameras: the hall and the pattern, 20 s ending 5 s
	// ago, one MP4 each in a ZIP.
	if err := chromedp.Do(ctx, chromedp.Click(`#export-many summary`)); err != nil {
		t.Fatal(err)
	}
	waitJS("the camera list", `document.querySelectorAll("#xp-cams input").length === 2`)
	to := time.Now().Add(-5 * time.Second).Truncate(time.Second)
	from := to.Add(-20 * time.Second)
	local := func(t time.Time) string { return t.Local().Format("2006-01-02T15:04:05") }
	d.eval(t, fmt.Sprintf(`(() => { document.querySelector('#xp-cams input[value="pattern"]').checked = true;
		document.getElementById("xp-from").value = %q; document.getElementById("xp-to").value = %q; return "ok"; })()`, local(from), local(to)), new(string))
	// The download itself is the browser's; the page's address for it is
	// fetched here.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.onbeforeunload = () => {}`)); err != nil {
		t.Fatal(err)
	}
	d.click(t, `#xp-go`)
	waitJS("the export's address", `!!streamd.exportURL`)
	var u string
	d.eval(t, `streamd.exportURL`, &u)
	resp, err := http.Get(p.url(u))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("export %s: %s %.300s", u, resp.Status, body)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		dur, err := mp4check.Duration(b)
		if err != nil || dur < 19*time.Second || dur > 21*time.Second {
			t.Errorf("%s: %d bytes, duration %v (%v); want an MP4 of 20 s", f.Name, len(b), dur, err)
		}
		names = append(names, fmt.Sprintf("%s (%d kB, %v)", f.Name, len(b)/1000, dur.Round(100*time.Millisecond)))
	}
	if len(zr.File) != 2 || !strings.HasPrefix(zr.File[0].Name, "hall-") || !strings.HasPrefix(zr.File[1].Name, "pattern-") {
		t.Fatalf("the ZIP holds %v, want the hall's and the pattern's MP4", names)
	}
	t.Logf("export of two cameras: %s", strings.Join(names, ", "))

	// The editor: a mask of three points closed on its first, a zone of
	// four closed with the button; the YAML holds both, in 0..1.
	if err := chromedp.Do(ctx, chromedp.Click(`#editor summary`)); err != nil {
		t.Fatal(err)
	}
	waitJS("the snapshot", `document.getElementById("ed-img").complete && document.getElementById("ed-img").naturalWidth > 0 && document.getElementById("ed-canvas").width > 0`)
	d.eval(t, `(() => { document.getElementById("ed-stage").scrollIntoView(); return "ok"; })()`, new(string))
	var cr string
	d.eval(t, `(() => { const r = document.getElementById("ed-canvas").getBoundingClientRect(); return JSON.stringify({X: r.left, Y: r.top, W: r.width, H: r.height}); })()`, &cr)
	var c struct{ X, Y, W, H float64 }
	_ = json.Unmarshal([]byte(cr), &c)
	at := func(fx, fy float64) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.MouseClickXY(c.X+fx*c.W, c.Y+fy*c.H)); err != nil {
			t.Fatal(err)
		}
	}
	for _, pt := range [][2]float64{{0.1, 0.1}, {0.3, 0.1}, {0.2, 0.3}, {0.1, 0.1}} {
		at(pt[0], pt[1])
	}
	d.eval(t, `(() => { const s = document.getElementById("ed-kind"); s.value = "zone"; s.dispatchEvent(new Event("change"));
		document.getElementById("ed-name").value = "porch"; return "ok"; })()`, new(string))
	for _, pt := range [][2]float64{{0.5, 0.5}, {0.9, 0.5}, {0.9, 0.9}, {0.5, 0.9}} {
		at(pt[0], pt[1])
	}
	d.click(t, `#ed-done`)
	var yaml string
	d.eval(t, `document.getElementById("ed-yaml").value`, &yaml)
	t.Logf("the editor's YAML:\n%s", yaml)
	re := regexp.MustCompile(`(?s)^cameras:\n  - id: hall\n    motion:\n      masks:\n        - (\[\[.*?\]\])\n    zones:\n      - name: porch\n        points: (\[\[.*?\]\])\n        inertia: 3\n$`)
	m := re.FindStringSubmatch(yaml)
	if m == nil {
		t.Fatalf("the YAML is not a mask and a zone named porch:\n%s", yaml)
	}
	checkPoints := func(what, list string, want [][2]float64) {
		t.Helper()
		var got [][]float64
		if err := json.Unmarshal([]byte(list), &got); err != nil || len(got) != len(want) {
			t.Fatalf("%s %s: %v", what, list, err)
		}
		for i, p := range got {
			if len(p) != 2 || abs(p[0]-want[i][0]) > 0.01 || abs(p[1]-want[i][1]) > 0.01 {
				t.Errorf("%s point %d: %v, want %v (within 0.01)", what, i, p, want[i])
			}
		}
	}
	checkPoints("mask", m[1], [][2]float64{{0.1, 0.1}, {0.3, 0.1}, {0.2, 0.3}})
	checkPoints("zone", m[2], [][2]float64{{0.5, 0.5}, {0.9, 0.5}, {0.9, 0.9}, {0.5, 0.9}})
	// The config reads the masks as they are (zones are read by the
	// object tracker's configuration).
	masksOnly := yaml[:strings.Index(yaml, "    zones:")]
	cfgFile := filepath.Join(t.TempDir(), "masks.yaml")
	if err := os.WriteFile(cfgFile, []byte(strings.Replace(masksOnly, "  - id: hall\n", "  - id: hall\n    source: testpattern\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Sources{File: cfgFile})
	if err != nil {
		t.Fatalf("the config does not read the editor's masks: %v", err)
	}
	if got := cfg.Cameras[0].Motion.Masks; len(got) != 1 || len(got[0]) != 3 {
		t.Fatalf("masks read: %v", got)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err == nil {
		_ = os.WriteFile(artifact("camera-editor-chromium.png"), png, 0o644)
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
