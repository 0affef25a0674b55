//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The wall: sixteen cameras in one window, without scrolling, every tile in
// view and painting new frames, in Chromium at 1600x1200 and 1920x1080 and
// in Firefox at 1600x1200; then the layout picker, pages, the keys and the
// folding events panel. Screenshots go to $TEST_ARTIFACTS (or the temporary
// directory): wall-chromium-1600x1200.png is the one in docs/img/wall.png.

// wallTile is a tile's place in the window, from the page.
type wallTile struct {
	ID      string  `json:"id"`
	X       float64 `json:"x"`
	Y       float64 `json:"y"`
	W       float64 `json:"w"`
	H       float64 `json:"h"`
	Painted int     `json:"painted"`
	Caption string  `json:"caption"`
}

// wallState is what the page shows: its tiles in view, the window and the
// page's size, and the layout.
type wallState struct {
	Tiles      []wallTile `json:"tiles"`
	InnerW     float64    `json:"innerW"`
	InnerH     float64    `json:"innerH"`
	ScrollH    float64    `json:"scrollH"`
	DPR        float64    `json:"dpr"`
	Streaming  string     `json:"streaming"`
	Layout     any        `json:"layout"`
	EventsOpen bool       `json:"eventsOpen"`
	GridW      float64    `json:"gridW"`
}

// wallStateJS returns wallState as JSON: the visible tiles' canvases (the
// painted frame), in page order.
const wallStateJS = `JSON.stringify({
	tiles: [...document.querySelectorAll(".tile")].filter((el) => !el.hidden).map((el) => {
		const r = el.querySelector("canvas").getBoundingClientRect();
		return {id: el.dataset.camera, x: r.left, y: r.top, w: r.width, h: r.height,
			painted: (window.streamd.painted[el.dataset.camera] || 0), caption: el.querySelector(".bar").textContent};
	}),
	innerW: innerWidth, innerH: innerHeight, scrollH: document.documentElement.scrollHeight, dpr: devicePixelRatio,
	streaming: window.streamd.cameras, layout: window.streamd.layout,
	eventsOpen: getComputedStyle(document.getElementById("events")).display !== "none",
	gridW: document.getElementById("grid").getBoundingClientRect().width})`

// checkWallInView fails unless n tiles are shown, each wholly inside the
// window, at least minW px wide, and the page does not scroll.
func checkWallInView(t *testing.T, s wallState, n int, minW float64) {
	t.Helper()
	if len(s.Tiles) != n {
		t.Fatalf("%d tiles shown, want %d: %+v", len(s.Tiles), n, s)
	}
	if s.ScrollH > s.InnerH+1 {
		t.Errorf("the page is %.0f px tall in a %.0f px window: it scrolls", s.ScrollH, s.InnerH)
	}
	for _, tl := range s.Tiles {
		if tl.X < 0 || tl.Y < 0 || tl.X+tl.W > s.InnerW+0.5 || tl.Y+tl.H > s.InnerH+0.5 || tl.W < minW || tl.H < minW*9/16-1 {
			t.Errorf("tile %s at %.0f,%.0f %.0fx%.0f is not wholly in the %.0fx%.0f window at %.0f px wide or more", tl.ID, tl.X, tl.Y, tl.W, tl.H, s.InnerW, s.InnerH, minW)
		}
	}
}

// tilesRepainted compares two screenshots of the window tile by tile and
// fails for a tile whose frame changed in fewer than 1 % of its pixels, or
// whose painted count did not grow.
func tilesRepainted(t *testing.T, browser string, before, after wallState, a, b image.Image) {
	t.Helper()
	painted := map[string]int{}
	for _, tl := range before.Tiles {
		painted[tl.ID] = tl.Painted
	}
	var report []string
	for _, tl := range after.Tiles {
		r := image.Rect(int(tl.X*after.DPR)+2, int(tl.Y*after.DPR)+2, int((tl.X+tl.W)*after.DPR)-2, int((tl.Y+tl.H)*after.DPR)-2)
		changed, total := diffIn(a, b, r)
		report = append(report, fmt.Sprintf("%s %d%%/+%d", tl.ID, changed*100/max(total, 1), tl.Painted-painted[tl.ID]))
		if total == 0 || changed*100 < total {
			t.Errorf("%s: tile %s changed %d of %d pixels in a second: not live", browser, tl.ID, changed, total)
		}
		if tl.Painted <= painted[tl.ID] {
			t.Errorf("%s: tile %s painted no frame in a second (%d then %d)", browser, tl.ID, painted[tl.ID], tl.Painted)
		}
	}
	t.Logf("%s: pixels changed and frames painted per tile in a second: %s", browser, strings.Join(report, ", "))
}

// diffIn is diff (browser_test.go) within r.
func diffIn(a, b image.Image, r image.Rectangle) (changed, total int) {
	r = r.Intersect(a.Bounds()).Intersect(b.Bounds())
	type sub interface {
		SubImage(image.Rectangle) image.Image
	}
	sa, ok1 := a.(sub)
	sb, ok2 := b.(sub)
	if !ok1 || !ok2 || r.Empty() {
		return 0, 0
	}
	return diff(sa.SubImage(r), sb.SubImage(r))
}

// artifact is where a test's screenshot goes: $TEST_ARTIFACTS or the
// temporary directory.
func artifact(name string) string {
	dir := os.Getenv("TEST_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	return filepath.Join(dir, name)
}

func TestWallOfSixteenCameras(t *testing.T) {
	p := startGrid(t, "wall")
	for _, size := range [][2]int{{1600, 1200}, {1920, 1080}} {
		t.Run(fmt.Sprintf("chromium %dx%d", size[0], size[1]), func(t *testing.T) {
			ctx := browserFor(t, size[0], size[1], 2*time.Minute)
			var mu sync.Mutex
			var jsErrors []string
			if err := chromedp.Listen(ctx, func(ev any) {
				if e, ok := ev.(*runtime.EventExceptionThrown); ok {
					mu.Lock()
					jsErrors = append(jsErrors, fmt.Sprintf("%s (line %d)", e.ExceptionDetails.Text, e.ExceptionDetails.LineNumber))
					mu.Unlock()
				}
			}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				mu.Lock()
				defer mu.Unlock()
				if len(jsErrors) > 0 {
					t.Errorf("JavaScript errors: %v", jsErrors)
				}
			})
			state := func() wallState {
				t.Helper()
				js, err := chromedp.Run(ctx, chromedp.Evaluate[string](wallStateJS))
				if err != nil {
					t.Fatal(err)
				}
				var s wallState
				if err := json.Unmarshal([]byte(js), &s); err != nil {
					t.Fatal(err)
				}
				return s
			}
			shot := func() image.Image {
				t.Helper()
				b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
				if err != nil {
					t.Fatal(err)
				}
				return decodePNG(t, b)
			}
			err := chromedp.Do(ctx,
				chromedp.Navigate(p.url("/")),
				chromedp.Poll[chromedp.Void](`(() => { const s = window.streamd; if (!s) return false;
					for (let i = 0; i < 16; i++) { if (!(s.painted["cam" + String(i).padStart(2, "0")] >= 10)) return false; }
					return true; })()`, chromedp.WithPollingTimeout(60*time.Second)),
			)
			if err != nil {
				t.Fatalf("not every tile painted 10 frames: %v; %+v", err, state())
			}
			before := state()
			checkWallInView(t, before, 16, 200)
			if n := len(strings.Split(before.Streaming, ",")); n != 16 {
				t.Errorf("the stream carries %d cameras (%q), want the 16 in view", n, before.Streaming)
			}
			a := shot()
			time.Sleep(time.Second)
			after := state()
			b := shot()
			tilesRepainted(t, fmt.Sprintf("chromium %dx%d", size[0], size[1]), before, after, a, b)
			for _, tl := range after.Tiles {
				if !strings.Contains(tl.Caption, "1 viewer") {
					t.Errorf("tile %s says %q, want its one viewer (this page)", tl.ID, tl.Caption)
				}
			}
			png, _ := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			name := artifact(fmt.Sprintf("wall-chromium-%dx%d.png", size[0], size[1]))
			_ = os.WriteFile(name, png, 0o644)
			t.Logf("16 tiles of at least %.0fx%.0f px in view, layout %v; screenshot %s", after.Tiles[0].W, after.Tiles[0].H, after.Layout, name)
			if size[0] != 1600 {
				return
			}

			// The picker: 2x2 shows four cameras a page, and only they stream.
			if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById("layout-pick");
				s.value = "2"; s.dispatchEvent(new Event("change")); })()`)); err != nil {
				t.Fatal(err)
			}
			waitStreaming := func(what, want string) {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for s := state(); s.Streaming != want; s = state() {
					if time.Now().After(deadline) {
						t.Fatalf("%s: the stream carries %q, want %q", what, s.Streaming, want)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			waitStreaming("2x2, page 1", "cam00,cam01,cam02,cam03")
			checkWallInView(t, state(), 4, 500)
			// Arrow right: the next page.
			if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.ArrowRight)); err != nil {
				t.Fatal(err)
			}
			waitStreaming("2x2, page 2", "cam04,cam05,cam06,cam07")
			s := state()
			checkWallInView(t, s, 4, 500)
			if s.Tiles[0].ID != "cam04" {
				t.Errorf("page 2 starts with %s, want cam04", s.Tiles[0].ID)
			}
			// The events panel folds away and the grid takes its room.
			wide := s.GridW
			if !s.EventsOpen {
				t.Fatal("the events panel is not open at first")
			}
			if err := chromedp.Do(ctx, chromedp.Click(`#toggle-events`)); err != nil {
				t.Fatal(err)
			}
			if s := state(); s.EventsOpen || s.GridW < wide+250 {
				t.Errorf("after folding the events panel: open %v, grid %.0f px wide (was %.0f)", s.EventsOpen, s.GridW, wide)
			}
			// Key 2 opens the second tile's camera (cam05 on page 2).
			if err := chromedp.Do(ctx, chromedp.KeyEvent("2")); err != nil {
				t.Fatal(err)
			}
			// The key navigates: the page's context goes away meanwhile.
			for deadline := time.Now().Add(10 * time.Second); ; {
				path, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname`))
				if err == nil && path == "/cameras/cam05" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("key 2 on page 2 of 2x2: at %q (%v), want /cameras/cam05", path, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			// On the camera page, the arrow keys step one frame while paused.
			if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`window.streamd && streamd.mode === "live" && streamd.painted > 5`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
				t.Fatalf("the camera page shows no live video: %v", err)
			}
			if err := chromedp.Do(ctx, chromedp.KeyEvent(" ")); err != nil {
				t.Fatal(err)
			}
			paused, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`streamd.mode === "paused" ? streamd.position : -1`))
			if err != nil || paused <= 0 {
				t.Fatalf("space did not pause the camera page: %v %v", paused, err)
			}
			time.Sleep(500 * time.Millisecond)
			if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.ArrowLeft)); err != nil {
				t.Fatal(err)
			}
			if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](fmt.Sprintf(`streamd.mode === "paused" && streamd.position < %f`, paused), chromedp.WithPollingTimeout(10*time.Second))); err != nil {
				st, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(streamd)`))
				t.Fatalf("arrow left while paused at %.0f did not show an earlier frame: %s", paused, st)
			}
			// The choice and the folded panel are remembered.
			if err := chromedp.Do(ctx, chromedp.Navigate(p.url("/"))); err != nil {
				t.Fatal(err)
			}
			waitStreaming("2x2 remembered", "cam00,cam01,cam02,cam03")
			if state().EventsOpen {
				t.Error("the folded events panel opened again after a reload")
			}
		})
	}
}

func TestWallOfSixteenCamerasFirefox(t *testing.T) {
	p := startGrid(t, "wall-firefox")
	ff := startFirefox(t)
	ff.do(t, "WebDriver:NewSession", map[string]any{})
	ff.do(t, "WebDriver:SetWindowRect", map[string]any{"width": 1600, "height": 1200})
	ff.do(t, "WebDriver:Navigate", map[string]any{"url": p.url("/")})
	state := func() wallState {
		t.Helper()
		var js string
		ff.scriptInto(t, &js, "return "+wallStateJS)
		var s wallState
		if err := json.Unmarshal([]byte(js), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	const allPainted = `const s = window.streamd; if (!s) return false;
		for (let i = 0; i < 16; i++) { if (!(s.painted["cam" + String(i).padStart(2, "0")] >= 10)) return false; }
		return true;`
	for deadline := time.Now().Add(60 * time.Second); ; {
		var ok bool
		ff.scriptInto(t, &ok, allPainted)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			ff.screenshot(t, artifact("wall-firefox-1600x1200.png"))
			t.Fatalf("not every tile painted 10 frames within 60 s: %+v", state())
		}
		time.Sleep(250 * time.Millisecond)
	}
	before := state()
	t.Logf("Firefox window %.0fx%.0f", before.InnerW, before.InnerH)
	checkWallInView(t, before, 16, 200)
	a := ffViewport(t, ff)
	time.Sleep(time.Second)
	after := state()
	b := ffViewport(t, ff)
	tilesRepainted(t, "firefox 1600x1200", before, after, a, b)
	ff.screenshot(t, artifact("wall-firefox-1600x1200.png"))
}

// ffViewport is a screenshot of Firefox's window (not the whole page).
func ffViewport(t *testing.T, ff *firefox) image.Image {
	t.Helper()
	path := filepath.Join(t.TempDir(), "viewport.png")
	ff.screenshotOf(t, path, false)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decodePNG(t, b)
}
