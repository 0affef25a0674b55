//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Sixteen cameras in one page, over plain HTTP/1.1: every tile paints
// frames, the API still answers, and the page holds at most 3 connections
// to the server (the multiplexed stream, the events stream, the API), not
// one per camera. With an <img> per tile, cameras 7-16 never connected.
func TestGridOfSixteenCameras(t *testing.T) {
	p := startGrid(t, "grid")
	ctx := browserSized(t, 1700, 2600) // every tile in view
	err := chromedp.Do(ctx,
		chromedp.Navigate(p.url("/")),
		chromedp.Poll[chromedp.Void](`(() => { const s = window.streamd; if (!s) return false;
			for (let i = 0; i < 16; i++) { if (!(s.painted["cam" + String(i).padStart(2, "0")] >= 10)) return false; }
			return true; })()`, chromedp.WithPollingTimeout(45*time.Second)),
	)
	if err != nil {
		painted, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.streamd)`))
		t.Fatalf("not every tile painted 10 frames: %v; %s", err, painted)
	}
	// The stats and the API answer while the 16 cameras stream.
	stats, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
		const t0 = performance.now();
		const r = await fetch("/api/cameras"); const cams = await r.json();
		const e = await fetch("/api/events");
		return cams.length + " " + e.status + " " + Math.round(performance.now() - t0); })()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var n, code, ms int
	if _, err := fmt.Sscan(stats, &n, &code, &ms); err != nil || n != 16 || code != 200 || ms > 3000 {
		t.Fatalf("API while streaming: %q", stats)
	}
	// Connections: the page's, plus this test's own metrics scrape.
	conns := p.metric(t, "streamd_http_connections")
	if conns > 4 {
		t.Fatalf("%v connections open with the 16-camera page (want at most 3 for the page and 1 for this scrape)", conns)
	}
	lat, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.streamd.latency)`))
	t.Logf("16 tiles painting; %v server connections including this scrape; capture→paint latency per tile (ms): %s", conns, lat)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(80))
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile("/tmp/streamd-grid.jpg", shot, 0o644)
	// A hidden tab streams nothing: the multiplexed stream closes.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`Object.defineProperty(document, "hidden", {value: true, configurable: true}); document.dispatchEvent(new Event("visibilitychange"))`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for viewers, _ := p.metrics(t).sum("streamd_camera_viewers"); viewers > 0; viewers, _ = p.metrics(t).sum("streamd_camera_viewers") {
		if time.Now().After(deadline) {
			t.Fatal("the hidden tab still streams")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startGrid runs an all-in-one streamd with 16 small test-pattern cameras,
// cam00 to cam15, and waits until it is ready.
func startGrid(t *testing.T, name string) *proc {
	t.Helper()
	var cams strings.Builder
	for i := range 16 {
		fmt.Fprintf(&cams, "  - {id: cam%02d, source: testpattern, width: 320, height: 180, fps: 10, quality: 60}\n", i)
	}
	p := startStreamd(t, name, "embedded:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\ncameras:\n"+cams.String())
	p.waitReady(t)
	return p
}
