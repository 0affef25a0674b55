//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// The review page with 16 cameras, in Chromium and Firefox: it lists the
// day's items grouped by hour as the API has them, filters them by camera
// and kind, flips through an event's recorded frames while the pointer is
// on its picture, and marks items reviewed; a mark made on one web node
// shows on a second one (and on the second one's page). The Chromium test's
// screenshot (review-chromium.png in $TEST_ARTIFACTS or the temporary
// directory) is docs/img/review.png.

// reviewCameras are 16 test patterns whose moving square alone is seen
// (the rest is masked, as in TestCameraPageReplay), events cut every 10 s.
// Object detection is off: the review lists motion for cameras without
// it (a camera with it lists what moved, and the square is nothing).
func reviewConfig(extra string) string {
	var cams strings.Builder
	for i := range 16 {
		fmt.Fprintf(&cams, "  - {id: cam%02d, source: testpattern, width: 320, height: 180, fps: 10, quality: 60, motion: {masks: [[[0, 0], [1, 0], [1, 0.67], [0, 0.67]], [[0, 0.83], [1, 0.83], [1, 1], [0, 1]]]}}\n", i)
	}
	return `embedded:
  listen: 127.0.0.1:0
http:
  listen: 127.0.0.1:0
analyzer:
  enabled: true
  fps: 5
  gap: 2s
  faces:
    enabled: false
  objects:
    enabled: false
events:
  max_length: 10s
recording:
  enabled: true
` + extra + "cameras:\n" + cams.String()
}

// reviewItem is an item of /api/review as documented.
type reviewItem struct {
	ID       string     `json:"id"`
	Camera   string     `json:"camera"`
	Kind     string     `json:"kind"`
	What     string     `json:"what"`
	Start    time.Time  `json:"start"`
	End      *time.Time `json:"end"`
	Snapshot bool       `json:"snapshot"`
	Reviewed *struct {
		By string    `json:"by"`
		At time.Time `json:"at"`
	} `json:"reviewed"`
}

type reviewList struct {
	Items  []reviewItem `json:"items"`
	Counts struct {
		Alert, Detection, Motion, Unreviewed int
	} `json:"counts"`
}

func getReviewList(t *testing.T, p *proc, query string) reviewList {
	t.Helper()
	var l reviewList
	if code := p.getJSON(t, "/api/review?"+query, &l); code != 200 {
		t.Fatalf("/api/review?%s: %d", query, code)
	}
	return l
}

// waitReviewItems waits until the review lists ended items with snapshots
// of at least n cameras, ended at least 3 s ago (so the recording has
// their frames).
func waitReviewItems(t *testing.T, p *proc, n int) reviewList {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		l := getReviewList(t, p, "")
		cams := map[string]bool{}
		for _, it := range l.Items {
			if it.End != nil && it.Snapshot && time.Since(*it.End) > 3*time.Second {
				cams[it.Camera] = true
			}
		}
		if len(cams) >= n {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90 s the review lists ended items of %d cameras, want %d: %d items", len(cams), n, len(l.Items))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// markOn marks ids reviewed through node p's API.
func markOn(t *testing.T, p *proc, ids ...string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"ids": ids})
	resp, err := http.Post(p.url("/api/review/marks"), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("mark %v on %s: %s", ids, p.name, resp.Status)
	}
}

// pageDriver is what the review checks need of a browser: run a script
// (an expression) for its value as JSON, click, and point at an element.
type pageDriver interface {
	eval(t *testing.T, js string, v any)
	click(t *testing.T, selector string)
	hover(t *testing.T, selector string)
	shot(t *testing.T) image.Image
}

// The review page's state, as the checks read it.
const reviewPageJS = `JSON.stringify({
	state: window.streamd || null,
	cards: [...document.querySelectorAll("article.item")].map((el) => ({id: el.dataset.id, camera: el.dataset.camera,
		reviewed: el.classList.contains("reviewed"), kind: el.querySelector(".kind").textContent})),
	hours: [...document.querySelectorAll("section.hour")].map((s) => ({label: s.querySelector("h3 .label").textContent, n: s.querySelectorAll("article.item").length})),
	unreviewed: document.getElementById("n-unreviewed").textContent})`

type reviewPage struct {
	State *struct {
		Items, Loads, Marked, Previews int
		Error                          string
	} `json:"state"`
	Cards []struct {
		ID, Camera, Kind string
		Reviewed         bool
	} `json:"cards"`
	Hours []struct {
		Label string
		N     int
	} `json:"hours"`
	Unreviewed string `json:"unreviewed"`
}

func readReviewPage(t *testing.T, d pageDriver) reviewPage {
	t.Helper()
	var s string
	d.eval(t, reviewPageJS, &s)
	var p reviewPage
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func waitReviewPage(t *testing.T, d pageDriver, what string, ok func(reviewPage) bool) reviewPage {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p := readReviewPage(t, d)
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s: %+v", what, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkReviewPage walks through the review page on node p in browser d:
// it lists what the API lists, grouped by hour; a camera filter; a hover
// flipping through recorded frames; a mark; the unreviewed filter.
func checkReviewPage(t *testing.T, browser string, p *proc, d pageDriver) {
	t.Helper()
	// Every item of today (the page asks for the local day; the test's
	// day is the machine's, so is the server's list of the last hours).
	page := waitReviewPage(t, d, "the page lists items", func(r reviewPage) bool { return r.State != nil && r.State.Loads > 0 && len(r.Cards) > 0 })
	if page.State.Error != "" {
		t.Fatalf("%s: the page says %q", browser, page.State.Error)
	}
	midnight := time.Now()
	midnight = time.Date(midnight.Year(), midnight.Month(), midnight.Day(), 0, 0, 0, 0, time.Local)
	api := getReviewList(t, p, "since="+url.QueryEscape(midnight.Format(time.RFC3339))+"&limit=5000")
	// The page and the API may be a few seconds apart: compare the ended
	// items the page shows with the API's.
	ended := map[string]bool{}
	for _, it := range api.Items {
		if it.End != nil {
			ended[it.ID] = true
		}
	}
	shown := map[string]bool{}
	hours := 0
	for _, c := range page.Cards {
		shown[c.ID] = true
	}
	for _, h := range page.Hours {
		hours += h.N
	}
	// The page reloads every 10 s: what started 15 s ago is on it.
	var missing []string
	for _, it := range api.Items {
		if ended[it.ID] && time.Since(it.Start) > 15*time.Second && !shown[it.ID] {
			missing = append(missing, it.ID)
		}
	}
	if len(missing) > 0 || hours != len(page.Cards) || len(page.Hours) == 0 || len(page.Cards) < 12 {
		t.Fatalf("%s: the page shows %d cards in %d hours (%d in hour sections); ended items of the API not shown: %v", browser, len(page.Cards), len(page.Hours), hours, missing)
	}
	t.Logf("%s: %d items in %d hour(s) (%v), %s", browser, len(page.Cards), len(page.Hours), page.Hours, page.Unreviewed)

	// Filter: one camera.
	d.eval(t, `(() => { const s = document.getElementById("f-camera"); s.value = "cam03"; s.dispatchEvent(new Event("change")); return "ok"; })()`, new(string))
	page = waitReviewPage(t, d, "the camera filter", func(r reviewPage) bool {
		if len(r.Cards) == 0 {
			return false
		}
		for _, c := range r.Cards {
			if c.Camera != "cam03" {
				return false
			}
		}
		return true
	})
	var search string
	d.eval(t, `location.search`, &search)
	if !strings.Contains(search, "camera=cam03") {
		t.Errorf("%s: the address %q does not keep the filter", browser, search)
	}
	// Kinds: without motion, nothing (these cameras make motion only).
	d.eval(t, `(() => { const c = document.querySelector('.kinds input[value="motion"]'); c.checked = false; c.dispatchEvent(new Event("change")); return "ok"; })()`, new(string))
	waitReviewPage(t, d, "the kind filter", func(r reviewPage) bool { return len(r.Cards) == 0 })
	d.eval(t, `(() => { const c = document.querySelector('.kinds input[value="motion"]'); c.checked = true; c.dispatchEvent(new Event("change")); return "ok"; })()`, new(string))
	page = waitReviewPage(t, d, "motion again", func(r reviewPage) bool { return len(r.Cards) > 0 })

	// Hover an ended item's picture: it flips through recorded frames.
	var target string
	for _, c := range page.Cards {
		for _, it := range api.Items {
			if it.ID == c.ID && it.End != nil && it.Snapshot && time.Since(*it.End) > 3*time.Second && !c.Reviewed {
				target = c.ID
			}
		}
		if target != "" {
			break
		}
	}
	if target == "" {
		t.Fatalf("%s: no ended item of cam03 with a snapshot on the page: %+v", browser, page.Cards)
	}
	// Its frames are recorded once the recording index lists the camera
	// (after its first 30 s of recording).
	for deadline := time.Now().Add(45 * time.Second); ; {
		code, _ := getStatus(t, p.url("/api/events/"+target+"/preview"))
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /api/events/%s/preview answers %d after 45 s", browser, target, code)
		}
		time.Sleep(500 * time.Millisecond)
	}
	pic := fmt.Sprintf(`article.item[data-id=%q] .pic`, target)
	d.eval(t, fmt.Sprintf(`(() => { document.querySelector(%q).scrollIntoView(); return "ok"; })()`, pic), new(string))
	d.hover(t, pic)
	var frames string
	deadline := time.Now().Add(20 * time.Second)
	for {
		d.eval(t, fmt.Sprintf(`(() => { const el = document.querySelector(%q); return (el.closest("article").dataset.frame || "0") + " " + el.querySelector("img").src.slice(0, 5); })()`, pic), &frames)
		var n int
		var src string
		fmt.Sscan(frames, &n, &src)
		if n >= 4 && src == "blob:" {
			break
		}
		if time.Now().After(deadline) {
			var why string
			d.eval(t, fmt.Sprintf(`(() => { const el = document.querySelector(%q); const r = el.getBoundingClientRect(); const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
				return JSON.stringify({previews: window.streamd.previews, classes: el.closest("article").className, under: at ? at.outerHTML.slice(0, 80) : null, rect: [r.left, r.top, r.width, r.height], inner: [innerWidth, innerHeight]}); })()`, pic), &why)
			t.Fatalf("%s: hovering %s: frame %q after 20 s, want the 4th recorded frame shown from a blob; %s", browser, target, frames, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
	a := d.shot(t)
	time.Sleep(900 * time.Millisecond)
	b := d.shot(t)
	var rect struct{ X, Y, W, H float64 }
	var rs string
	d.eval(t, fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect(); return JSON.stringify({X: r.left, Y: r.top, W: r.width, H: r.height}); })()`, pic), &rs)
	_ = json.Unmarshal([]byte(rs), &rect)
	changed, total := diffIn(a, b, image.Rect(int(rect.X)+2, int(rect.Y)+2, int(rect.X+rect.W)-2, int(rect.Y+rect.H)-2))
	t.Logf("%s: hovering %s flips through its recorded frames (%s); %d of %d pixels of the picture changed in 0.9 s", browser, target, frames, changed, total)
	if total == 0 || changed*200 < total {
		t.Errorf("%s: the hovered picture changed %d of %d pixels in 0.9 s: not flipping", browser, changed, total)
	}

	// Mark it: the card turns reviewed, and the API says who.
	d.click(t, fmt.Sprintf(`article.item[data-id=%q] .mark`, target))
	waitReviewPage(t, d, "the card marked", func(r reviewPage) bool {
		for _, c := range r.Cards {
			if c.ID == target {
				return c.Reviewed
			}
		}
		return false
	})
	l := getReviewList(t, p, "camera=cam03&reviewed=true")
	if len(l.Items) == 0 || l.Items[0].ID != target && !containsItem(l.Items, target) {
		t.Fatalf("%s: after the click the API's reviewed items of cam03 are %+v, want %s", browser, l.Items, target)
	}
	// Unreviewed only: the marked card goes.
	d.eval(t, `(() => { const c = document.getElementById("f-unreviewed"); c.checked = true; c.dispatchEvent(new Event("change")); return "ok"; })()`, new(string))
	waitReviewPage(t, d, "unreviewed only", func(r reviewPage) bool {
		if len(r.Cards) == 0 {
			return false
		}
		for _, c := range r.Cards {
			if c.ID == target || c.Reviewed {
				return false
			}
		}
		return true
	})
}

func containsItem(items []reviewItem, id string) bool {
	for _, it := range items {
		if it.ID == id {
			return true
		}
	}
	return false
}

// cdp drives Chromium with chromedp: real mouse events.
type cdp struct{ ctx context.Context }

func (c cdp) eval(t *testing.T, js string, v any) {
	t.Helper()
	raw, err := chromedp.Run(c.ctx, chromedp.Evaluate[json.RawMessage](js))
	if err != nil {
		t.Fatalf("evaluate %.80s: %v", js, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("evaluate %.80s: %v", js, err)
	}
}

func (c cdp) center(t *testing.T, selector string) (x, y float64) {
	t.Helper()
	var s string
	c.eval(t, fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.scrollIntoView({block: "nearest"});
		const r = el.getBoundingClientRect(); return (r.left + r.width / 2) + " " + (r.top + r.height / 2); })()`, selector), &s)
	fmt.Sscan(s, &x, &y)
	return x, y
}

func (c cdp) click(t *testing.T, selector string) {
	t.Helper()
	x, y := c.center(t, selector)
	if err := chromedp.Do(c.ctx, chromedp.MouseClickXY(x, y)); err != nil {
		t.Fatal(err)
	}
}

func (c cdp) hover(t *testing.T, selector string) {
	t.Helper()
	x, y := c.center(t, selector)
	if err := chromedp.Do(c.ctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y)); err != nil {
		t.Fatal(err)
	}
}

func (c cdp) shot(t *testing.T) image.Image {
	t.Helper()
	b, err := chromedp.Run(c.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	return decodePNG(t, b)
}

// marionette drives Firefox: clicks and hovers are dispatched by script.
type marionette struct{ ff *firefox }

func (m marionette) eval(t *testing.T, js string, v any) {
	t.Helper()
	m.ff.scriptInto(t, v, "return "+js)
}

func (m marionette) click(t *testing.T, selector string) {
	t.Helper()
	m.ff.script(t, fmt.Sprintf(`document.querySelector(%q).click(); return true`, selector))
}

func (m marionette) hover(t *testing.T, selector string) {
	t.Helper()
	m.ff.script(t, fmt.Sprintf(`document.querySelector(%q).dispatchEvent(new PointerEvent("pointerenter")); return true`, selector))
}

func (m marionette) shot(t *testing.T) image.Image { t.Helper(); return ffViewport(t, m.ff) }

func TestReviewPage(t *testing.T) {
	t.Parallel() // waits for events and deliveries; no timing bound
	p := startStreamd(t, "review", reviewConfig(""))
	p.waitReady(t)
	waitReviewItems(t, p, 12)

	t.Run("chromium", func(t *testing.T) {
		ctx := browserFor(t, 1600, 1200, 3*time.Minute)
		d := cdp{ctx}
		if err := chromedp.Do(ctx, chromedp.Navigate(p.url("/review"))); err != nil {
			t.Fatal(err)
		}
		// The screenshot for the documentation: the day as it opens.
		waitReviewPage(t, d, "the page lists items", func(r reviewPage) bool { return r.State != nil && len(r.Cards) > 0 })
		time.Sleep(time.Second) // the thumbnails load
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(artifact("review-chromium.png"), png, 0o644)
		checkReviewPage(t, "chromium", p, d)
	})
	t.Run("firefox", func(t *testing.T) {
		ff := startFirefox(t)
		ff.do(t, "WebDriver:NewSession", map[string]any{})
		ff.do(t, "WebDriver:SetWindowRect", map[string]any{"width": 1600, "height": 1200})
		ff.do(t, "WebDriver:Navigate", map[string]any{"url": p.url("/review")})
		checkReviewPage(t, "firefox", p, marionette{ff})
		ff.screenshot(t, artifact("review-firefox.png"))
	})
}

// A mark made on one web node shows on a second, in its API and on its
// page, and is still there after the second restarts.
func TestReviewMarkOnTwoNodes(t *testing.T) {
	t.Parallel() // waits for events and deliveries; no timing bound
	a := startStreamd(t, "review-a", reviewConfig(""))
	a.waitReady(t)
	var cams strings.Builder
	for i := range 16 {
		fmt.Fprintf(&cams, "  - id: cam%02d\n", i)
	}
	b := startStreamd(t, "review-b", fmt.Sprintf("role: consumer\nembedded:\n  enabled: false\nkafka:\n  brokers: [%s]\nhttp:\n  listen: 127.0.0.1:0\ncameras:\n%s", a.broker, cams.String()))
	b.waitReady(t)
	l := waitReviewItems(t, a, 4)
	var id string
	for _, it := range l.Items {
		if it.End != nil && it.Reviewed == nil {
			id = it.ID
			break
		}
	}
	// Node b holds the event too (it reads the events topic).
	for deadline := time.Now().Add(20 * time.Second); !containsItem(getReviewList(t, b, "").Items, id); {
		if time.Now().After(deadline) {
			t.Fatalf("node b does not list event %s", id)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ff := startFirefox(t)
	ff.do(t, "WebDriver:NewSession", map[string]any{})
	ff.do(t, "WebDriver:SetWindowRect", map[string]any{"width": 1600, "height": 1200})
	ff.do(t, "WebDriver:Navigate", map[string]any{"url": b.url("/review")})
	d := marionette{ff}
	waitReviewPage(t, d, "node b's page lists the item unreviewed", func(r reviewPage) bool {
		for _, c := range r.Cards {
			if c.ID == id {
				return !c.Reviewed
			}
		}
		return false
	})

	marked := time.Now()
	markOn(t, a, id)
	reviewedOn := func(p *proc) bool {
		for _, it := range getReviewList(t, p, "reviewed=true").Items {
			if it.ID == id {
				return it.Reviewed != nil && it.Reviewed.By == "anonymous"
			}
		}
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); !reviewedOn(b); {
		if time.Now().After(deadline) {
			t.Fatalf("node b does not show the mark made on node a within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the mark made on node a showed on node b after %v", time.Since(marked).Round(time.Millisecond))
	// Node b's page shows it at its next load (every 10 s).
	waitReviewPage(t, d, "node b's page shows the mark", func(r reviewPage) bool {
		for _, c := range r.Cards {
			if c.ID == id {
				return c.Reviewed
			}
		}
		return false
	})
	// Restarted, node b reads the marks back from the topic.
	if err := b.terminate(); err != nil {
		t.Fatal(err)
	}
	b.start()
	b.waitReady(t)
	for deadline := time.Now().Add(30 * time.Second); !reviewedOn(b); {
		if time.Now().After(deadline) {
			t.Fatalf("restarted node b does not show the mark")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The index page counts what is left unreviewed, and links to the
	// review.
	var sum struct {
		Unreviewed int `json:"unreviewed"`
	}
	b.getJSON(t, "/api/review/summary", &sum)
	if sum.Unreviewed == 0 {
		t.Errorf("summary: nothing unreviewed, but only one item was marked")
	}
	ff.do(t, "WebDriver:Navigate", map[string]any{"url": b.url("/")})
	var link string
	for deadline := time.Now().Add(20 * time.Second); ; {
		ff.scriptInto(t, &link, `const a = document.getElementById("unreviewed"); return a.hidden ? "" : a.textContent + " -> " + a.getAttribute("href")`)
		var n int
		if _, err := fmt.Sscanf(link, "%d unreviewed -> /review", &n); err == nil && n > 0 && n >= sum.Unreviewed-16 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the index page's unreviewed link says %q; the summary said %d", link, sum.Unreviewed)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("node b's index page: %q (summary a moment before: %d)", link, sum.Unreviewed)
}
