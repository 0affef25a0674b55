//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browser starts headless Debian Chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	return browserSized(t, 1280, 900)
}

// browserSized starts headless Debian Chromium with a window of w x h.
func browserSized(t *testing.T, w, h int) context.Context {
	t.Helper()
	return browserFor(t, w, h, 60*time.Second)
}

// browserFor starts headless Debian Chromium with a window of w x h, for
// at most timeout.
func browserFor(t *testing.T, w, h int, timeout time.Duration) context.Context {
	t.Helper()
	exe := requireTool(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(w, h),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

func TestBrowserShowsLiveTestPattern(t *testing.T) {
	const cameras = `
cameras:
  - id: pattern
    source: testpattern
    width: 640
    height: 360
    fps: 30
`
	t.Run("open", func(t *testing.T) {
		p := startStreamd(t, "all", "embedded:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\n"+cameras)
		p.waitReady(t)
		checkLiveTile(t, p.url("/"))
	})
	t.Run("with a token in the page URL", func(t *testing.T) {
		const secret = "browser-token-0123456789"
		p := startStreamd(t, "all", "embedded:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\nauth:\n  tokens:\n    - name: wall\n      token: "+secret+"\n"+cameras)
		p.waitReady(t)
		if code, _ := getStatus(t, p.url("/")); code != 401 {
			t.Fatalf("page without the token: %d, want 401", code)
		}
		checkLiveTile(t, p.url("/?token="+secret))
	})
}

// checkLiveTile opens the page at url in Chromium and checks that the test
// pattern's tile is live: two screenshots a second apart differ.
func checkLiveTile(t *testing.T, url string) {
	t.Helper()
	ctx := browser(t)

	var mu sync.Mutex
	var jsErrors []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			mu.Lock()
			jsErrors = append(jsErrors, fmt.Sprintf("%s (line %d)", e.ExceptionDetails.Text, e.ExceptionDetails.LineNumber))
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	img := chromedp.CSS(`section[data-camera="pattern"] canvas`)
	err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(img),
		// Wait until the first frame is painted and the stats are shown.
		chromedp.Poll[chromedp.Void](`document.querySelector('section[data-camera="pattern"] canvas').width === 640 && window.streamd.painted.pattern > 5`, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Poll[chromedp.Void](`document.querySelector('section[data-camera="pattern"] .fps').textContent.includes("fps")`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	shot1, err := chromedp.Run(ctx, chromedp.Screenshot(img))
	if err != nil {
		t.Fatalf("first screenshot: %v", err)
	}
	time.Sleep(time.Second)
	shot2, err := chromedp.Run(ctx, chromedp.Screenshot(img))
	if err != nil {
		t.Fatalf("second screenshot: %v", err)
	}
	caption, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`section[data-camera="pattern"] .bar`)))
	if err != nil {
		t.Fatalf("caption: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(jsErrors) > 0 {
		t.Fatalf("JavaScript errors: %v", jsErrors)
	}
	a, b := decodePNG(t, shot1), decodePNG(t, shot2)
	if a.Bounds() != b.Bounds() || a.Bounds().Dx() < 300 {
		t.Fatalf("tile screenshots: %v and %v", a.Bounds(), b.Bounds())
	}
	changed, total := diff(a, b)
	if dir := os.Getenv("TEST_ARTIFACTS"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "tile1.png"), shot1, 0o644)
		_ = os.WriteFile(filepath.Join(dir, "tile2.png"), shot2, 0o644)
	}
	// The clock, the counter, the bars and the square all move: a live
	// tile changes a good part of its pixels in a second.
	if changed*100 < total {
		t.Fatalf("only %d of %d pixels changed in a second: the tile is not live", changed, total)
	}
	if !strings.Contains(caption, "pattern") || !strings.Contains(caption, "viewer") {
		t.Fatalf("tile caption %q", caption)
	}
	t.Logf("%d of %d pixels changed; caption %q", changed, total, caption)
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return img
}

// diff counts the pixels that differ noticeably between a and b.
func diff(a, b image.Image) (changed, total int) {
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			d := absDiff(r1, r2) + absDiff(g1, g2) + absDiff(b1, b2)
			if d > 3*0x1000 {
				changed++
			}
			total++
		}
	}
	return changed, total
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}
