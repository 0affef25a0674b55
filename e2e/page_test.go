//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The single-camera page (/cameras/{id}) in headless Chromium: live, a
// seek on the timeline into replay, the position kept across a reload, and
// an event of the index page opening a replay from 5 s before it.

// pgBrowser is browser (browser_test.go) with a longer bound: this test
// walks through several pages.
func pgBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	return browserFor(t, 1280, 900, timeout)
}

// pgState is window.streamd of the camera page, with the page's clock and
// address.
type pgState struct {
	Mode     string  `json:"mode"`
	Position float64 `json:"position"` // capture time (ms) of the frame shown
	Painted  int     `json:"painted"`
	Error    string  `json:"error"`
	Now      float64 `json:"now"` // Date.now()
	Search   string  `json:"search"`
	Path     string  `json:"path"`
	Badge    string  `json:"badge"`
	ModeText string  `json:"modeText"`
	Clock    string  `json:"clock"`
}

const pgStateJS = `({...window.streamd, now: Date.now(), search: location.search, path: location.pathname,
  badge: document.getElementById("badge").textContent, modeText: document.getElementById("mode").textContent,
  clock: document.getElementById("clock").textContent})`

func pgRead(t *testing.T, ctx context.Context) pgState {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[pgState](pgStateJS))
	if err != nil {
		t.Fatalf("read the page's state: %v", err)
	}
	return s
}

func pgWait(t *testing.T, ctx context.Context, what, js string, timeout time.Duration) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(timeout))); err != nil {
		t.Fatalf("%s: %v (page state: %+v)", what, err, pgReadQuiet(ctx))
	}
}

func pgReadQuiet(ctx context.Context) any {
	s, err := chromedp.Run(ctx, chromedp.Evaluate[pgState](pgStateJS))
	if err != nil {
		return err
	}
	return s
}

// pgAt is the at parameter of a page address, in ms.
func pgAt(t *testing.T, search string) float64 {
	t.Helper()
	q, err := url.ParseQuery(search[min(1, len(search)):])
	if err != nil || q.Get("at") == "" {
		t.Fatalf("page address %q has no at=", search)
	}
	at, err := strconv.ParseFloat(q.Get("at"), 64)
	if err != nil {
		t.Fatalf("page address %q: at: %v", search, err)
	}
	return at * 1000
}

func pgMS(t time.Time) float64 { return float64(t.UnixNano()) / 1e6 }

func TestCameraPageReplay(t *testing.T) {
	p := startStreamd(t, "all", `
embedded:
  listen: 127.0.0.1:0
http:
  listen: 127.0.0.1:0
analyzer:
  enabled: true
  faces:
    enabled: false
cameras:
  - id: pattern
    source: testpattern
    width: 640
    height: 360
    fps: 30
    motion:
      masks:
        - [[0, 0], [1, 0], [1, 0.67], [0, 0.67]]
        - [[0, 0.83], [1, 0.83], [1, 1], [0, 1]]
`)
	p.waitReady(t)
	// 20 s recorded, and the moving square's motion event.
	time.Sleep(20 * time.Second)
	type event struct {
		ID     string     `json:"id"`
		Camera string     `json:"camera"`
		Type   string     `json:"type"`
		Start  time.Time  `json:"start"`
		End    *time.Time `json:"end"`
	}
	var evs []event
	for deadline := time.Now().Add(20 * time.Second); ; {
		p.getJSON(t, "/api/events?camera=pattern&type=motion", &evs)
		if len(evs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no motion event for the moving square within 40 s")
		}
		time.Sleep(500 * time.Millisecond)
	}

	ctx := pgBrowser(t, 3*time.Minute)
	var mu sync.Mutex
	var jsErrors, navigated []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*page.EventFrameNavigated); ok && e.Frame.ParentID == "" {
			mu.Lock()
			navigated = append(navigated, e.Frame.URL+e.Frame.URLFragment)
			mu.Unlock()
		}
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			mu.Lock()
			jsErrors = append(jsErrors, fmt.Sprintf("%s %s (line %d)", e.ExceptionDetails.Text, e.ExceptionDetails.URL, e.ExceptionDetails.LineNumber))
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if len(jsErrors) > 0 {
			t.Errorf("JavaScript errors: %v", jsErrors)
		}
	})

	// Live.
	if err := chromedp.Do(ctx, chromedp.Navigate(p.url("/cameras/pattern"))); err != nil {
		t.Fatalf("open the camera page: %v", err)
	}
	pgWait(t, ctx, "live frames painted", `window.streamd && streamd.mode === "live" && streamd.painted > 10`, 20*time.Second)
	s1 := pgRead(t, ctx)
	time.Sleep(time.Second)
	s2 := pgRead(t, ctx)
	t.Logf("live: %d frames painted in %.0f ms, the one shown captured %.0f ms before the page's now; badge %q, mode %q", s2.Painted-s1.Painted, s2.Now-s1.Now, s2.Now-s2.Position, s2.Badge, s2.ModeText)
	if s2.Mode != "live" || s2.Painted-s1.Painted < 15 || s2.Now-s2.Position > 1000 || s2.Badge != "LIVE" {
		t.Fatalf("live page: %+v then %+v; want mode live, about 30 frames a second, frames under a second old", s1, s2)
	}
	if s2.Search != "" {
		t.Errorf("live page address has %q, want no at=", s2.Search)
	}

	// The range the page uses (its own copy, from the range API).
	pgWait(t, ctx, "the page's range", `range.newest > range.oldest`, 15*time.Second)
	type geom struct {
		X, Y, W, H     float64
		Oldest, Newest float64
	}
	const geomJS = `(() => { const r = document.getElementById("timeline").getBoundingClientRect();
	  return {X: r.left, Y: r.top, W: r.width, H: r.height, Oldest: range.oldest, Newest: range.newest}; })()`
	g, err := chromedp.Run(ctx, chromedp.Evaluate[geom](geomJS))
	if err != nil {
		t.Fatal(err)
	}
	api := p.rpRange(t, "pattern")
	if d := g.Oldest - float64(api.Oldest.UnixMilli()); d != 0 || g.Newest > pgMS(api.Newest)+1 || pgMS(api.Newest)-g.Newest > 6000 {
		t.Errorf("the page's range %.0f .. %.0f; the API's %s .. %s", g.Oldest, g.Newest, api.Oldest.Format(time.RFC3339Nano), api.Newest.Format(time.RFC3339Nano))
	}
	if g.W < 200 || g.H < 4 {
		t.Fatalf("timeline is %.0fx%.0f px", g.W, g.H)
	}

	// Seek: click at 25 % of the timeline. seek clicks at fraction f and
	// waits until the page shows a replay frame within 2 s (plus the time
	// since the click) of the time under the click, computed from the
	// range the page held before and after the click (it refreshes it
	// every 5 s).
	seek := func(label string, f float64) (pgState, bool) {
		t.Helper()
		g, err := chromedp.Run(ctx, chromedp.Evaluate[geom](geomJS))
		if err != nil {
			t.Fatal(err)
		}
		x, y := g.X+f*g.W, g.Y+g.H/2
		target, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => { const e = document.elementFromPoint(%f, %f); return e.id || e.className; })()`, x, y)))
		p0 := pgRead(t, ctx)
		clicked := time.Now()
		if err := chromedp.Do(ctx, chromedp.MouseClickXY(x, y)); err != nil {
			t.Fatalf("click the timeline: %v", err)
		}
		g2, err := chromedp.Run(ctx, chromedp.Evaluate[geom](geomJS))
		if err != nil {
			t.Fatal(err)
		}
		under := []float64{g.Oldest + f*(g.Newest-g.Oldest), g2.Oldest + f*(g2.Newest-g2.Oldest)}
		// The replay's start is the earliest position shown after the click
		// (a live frame in flight may be painted once, later ones only
		// advance), taken once 15 frames have been painted.
		var s pgState
		minPos, minSince := 0.0, 0.0
		for deadline := time.Now().Add(10 * time.Second); ; {
			time.Sleep(50 * time.Millisecond)
			s = pgRead(t, ctx)
			since := float64(time.Since(clicked).Milliseconds())
			if s.Mode == "replay" && s.Painted > p0.Painted && (minPos == 0 || s.Position < minPos) {
				minPos, minSince = s.Position, since
			}
			if s.Painted >= p0.Painted+15 && minPos != 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no replay frames painted within 10 s: %+v", label, s)
			}
		}
		off := minPos - under[0]
		if a := minPos - under[1]; pgAbs(a) < pgAbs(off) {
			off = a
		}
		t.Logf("%s: clicked %s at %.0f%% of the timeline, the time under the click %s; %.0f ms later the page showed the frame captured %+.0f ms from it (%.0f ms behind the page's now); then address %q; badge %q, mode %q, clock %q",
			label, target, f*100, time.UnixMilli(int64(under[0])).UTC().Format("15:04:05.000"), minSince, off, s.Now-s.Position, s.Search, s.Badge, s.ModeText, s.Clock)
		// At or after the time under the click (½ s for the ms rounding
		// of at= and a range refreshed between our reads and the click),
		// and within 2 s of it.
		if off < -500 || off > 2000+minSince {
			why := ""
			if strings.Contains(target, "mark") {
				why = " (the click landed on an event's mark, which spans the event on the timeline and replays from 5 s before the event's start instead of seeking: static/camera.js:122)"
			}
			t.Errorf("%s: the replay started with the frame captured at %s, %+.0f ms from the time under the click (%s); want at or after it, within 2 s%s",
				label, time.UnixMilli(int64(minPos)).UTC().Format("15:04:05.000"), off, time.UnixMilli(int64(under[0])).UTC().Format("15:04:05.000"), why)
			return s, false
		}
		if s.Badge != "REPLAY" || s.Error != "" {
			t.Errorf("%s: badge %q, error %q", label, s.Badge, s.Error)
		}
		if at := pgAt(t, s.Search); pgAbs(at-s.Position) > 500 {
			t.Errorf("%s: address at=%.3f s, the frame shown %.3f s", label, at/1000, s.Position/1000)
		}
		return s, true
	}
	s3, ok := seek("seek on the timeline", 0.25)
	if !ok {
		// Tell a mark that swallows the click from a seek that does not
		// work: make the event marks click-through and seek again.
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("tl-events").style.pointerEvents = "none"`)); err != nil {
			t.Fatal(err)
		}
		s3, _ = seek("seek with the event marks made click-through (diagnosis only)", 0.3)
	}
	// It plays at 1x.
	time.Sleep(2 * time.Second)
	s4 := pgRead(t, ctx)
	if rate := (s4.Position - s3.Position) / (s4.Now - s3.Now); s4.Mode != "replay" || rate < 0.8 || rate > 1.2 || s4.Painted-s3.Painted < 40 {
		t.Errorf("replay after 2 s: %+v; capture time advanced %.2fx, %d frames painted", s4, rate, s4.Painted-s3.Painted)
	}

	// Screenshot of the single-camera page in replay.
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if img := decodePNG(t, shot); img.Bounds().Dx() < 1000 {
		t.Errorf("screenshot %v", img.Bounds())
	}
	for _, path := range []string{filepath.Join(t.TempDir(), "camera-page.png"), "/tmp/streamd-camera-page.png"} {
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Errorf("write screenshot: %v", err)
		}
	}
	if dir := os.Getenv("TEST_ARTIFACTS"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "camera-page.png"), shot, 0o644)
	}
	marks, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#tl-events .mark.motion").length + 100 * document.querySelectorAll("#ev-list li").length`))
	if err != nil || marks%100 == 0 || marks/100 == 0 {
		t.Errorf("the page shows %d motion marks on the timeline and %d events in its list (%v); want the moving square's event in both", marks%100, marks/100, err)
	}

	// Reload: it continues from where it was, in replay.
	before := pgRead(t, ctx)
	atBefore := pgAt(t, before.Search)
	reloaded := time.Now()
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	pgWait(t, ctx, "replay frames after the reload", `window.streamd && streamd.mode === "replay" && streamd.painted >= 3`, 20*time.Second)
	took := float64(time.Since(reloaded).Milliseconds())
	s5 := pgRead(t, ctx)
	t.Logf("reload: at=%.3f in the address; %.0f ms later the frame shown was captured %+.0f ms from it", atBefore/1000, took, s5.Position-atBefore)
	if s5.Mode != "replay" || s5.Position < atBefore-5 || s5.Position > atBefore+took+2000 {
		t.Errorf("after the reload: %+v; want replay from at=%.3f (within the %.0f ms the reload took + 2 s)", s5, atBefore/1000, took)
	}

	// The index page's event list opens a replay 5 s before the event.
	if err := chromedp.Do(ctx, chromedp.Navigate(p.url("/"))); err != nil {
		t.Fatalf("open the index page: %v", err)
	}
	pgWait(t, ctx, "the event list", `document.querySelector("#ev-list li.motion[data-id]") !== null`, 20*time.Second)
	// Screenshot of the index page: its live tile and its event list. With
	// STREAMD_DOCS_SCREENSHOT=path.png in the environment it is saved (PNG)
	// to that path, for the documentation's picture of the page
	// (docs/img/page.png; TestMain reads the variable):
	//
	//	STREAMD_DOCS_SCREENSHOT=$PWD/../docs/img/page.png go test -tags e2e -run TestCameraPageReplay .
	if docsScreenshot != "" {
		// For the picture, the tile shows video, not its first black.
		pgWait(t, ctx, "the index page's tile painted", `window.streamd && streamd.painted && streamd.painted.pattern > 10`, 20*time.Second)
	}
	index, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot of the index page: %v", err)
	}
	if img := decodePNG(t, index); img.Bounds().Dx() < 1000 {
		t.Errorf("screenshot of the index page %v", img.Bounds())
	}
	if path := docsScreenshot; path != "" {
		if err := os.WriteFile(path, index, 0o644); err != nil {
			t.Errorf("write the index page's screenshot to STREAMD_DOCS_SCREENSHOT: %v", err)
		}
	}
	id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#ev-list li.motion[data-id]").dataset.id`))
	if err != nil {
		t.Fatal(err)
	}
	var e event
	if code := p.getJSON(t, "/api/events/"+url.PathEscape(id), &e); code != 200 || e.Camera != "pattern" {
		t.Fatalf("event %s: %d %+v", id, code, e)
	}
	opened := time.Now()
	if err := chromedp.Do(ctx, chromedp.Click(fmt.Sprintf(`#ev-list li[data-id=%q]`, id))); err != nil {
		t.Fatalf("click event %s: %v", id, err)
	}
	// The click navigates; the new page's state may take a moment to exist.
	var s6 pgState
	for deadline := time.Now().Add(20 * time.Second); ; {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[pgState](pgStateJS))
		if err == nil && s.Path == "/cameras/pattern" && s.Mode == "replay" && s.Painted >= 3 {
			s6 = s
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after clicking event %s: %+v %v", id, s, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	took = float64(time.Since(opened).Milliseconds())
	wantAt := fmt.Sprintf("%.3f", float64(e.Start.UnixMilli()-5000)/1000)
	if q, _ := url.ParseQuery(s6.Search[min(1, len(s6.Search)):]); q.Get("at") == "" {
		t.Errorf("event page address %q has no at=", s6.Search)
	}
	// The address follows the position from the first frame on; where it
	// started is the first replay request, which the page made from the
	// link's at. So check the link through the frame shown: the first frame
	// at or after start-5s (or the oldest held, if that is later).
	from := max(pgMS(e.Start)-5000, float64(api.Oldest.UnixMilli()))
	t.Logf("event %s started %s; the page opened with the frame captured %+.0f ms from max(start-5s, oldest) after %.0f ms; address %q (link at=%s)", id, e.Start.Format("15:04:05.000"), s6.Position-from, took, s6.Search, wantAt)
	if s6.Position < from-5 || s6.Position > from+took+2000 {
		t.Errorf("clicking the event shows the frame captured at %.0f; want from %.0f (5 s before the event's start %s) within %.0f ms + 2 s", s6.Position, from, e.Start.Format(time.RFC3339Nano), took)
	}
	mu.Lock()
	nav := navigated
	mu.Unlock()
	if len(nav) == 0 {
		t.Fatal("no navigation recorded")
	}
	// The address as the link opened it (the page then rewrites it).
	if u, err := url.Parse(nav[len(nav)-1]); err != nil || u.Path != "/cameras/pattern" || u.Query().Get("at") != wantAt {
		t.Errorf("the event link opened %s, want /cameras/pattern?at=%s", nav[len(nav)-1], wantAt)
	}
}

func pgAbs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
