//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestPageShowsObjects: vtest.avi's people become person events on the
// page: the events list names each by label and score ("person 0.64"),
// tags alerts (people are alerts by default), and filters by label and
// severity; a person in view has a captioned box over the live tile.
func TestPageShowsObjects(t *testing.T) {
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
  - id: hall
    source: /usr/share/doc/opencv-doc/examples/data/vtest.avi
    loop: true
    fps: 10
`)
	p.waitReady(t)
	ctx := browserFor(t, 1400, 900, 90*time.Second)
	err := chromedp.Do(ctx,
		chromedp.Navigate(p.url("/")),
		// A person event in the list.
		chromedp.Poll[chromedp.Void](`document.querySelector('#ev-list li.event.object .type') !== null`, chromedp.WithPollingTimeout(60*time.Second)),
	)
	if err != nil {
		t.Fatalf("page: %v", err)
	}
	// A person's captioned box over the tile while one is in view.
	caption, err := chromedp.Run(ctx, chromedp.Poll[string](`(document.querySelector('.tile .box.object .cap') || {}).textContent || false`,
		chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("no captioned box over the tile: %v", err)
	}
	var shown struct{ Title, Sev string }
	js := func(v any, src string) {
		t.Helper()
		out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(`+src+`)`))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("%s: %v: %s", src, err, out)
		}
	}
	js(&shown, `{Title: document.querySelector('#ev-list li.event.object .type').textContent,
		Sev: document.querySelector('#ev-list li.event.object .sev').textContent}`)
	label := regexp.MustCompile(`^person 0\.\d\d$`)
	if !label.MatchString(shown.Title) || shown.Sev != "ALERT" {
		t.Errorf("the list's object event reads %q with tag %q, want \"person 0.NN\" and ALERT", shown.Title, shown.Sev)
	}
	if !label.MatchString(caption) {
		t.Errorf("the live box's caption is %q, want \"person 0.NN\"", caption)
	}
	if dir := os.Getenv("TEST_ARTIFACTS"); dir != "" {
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90)); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "objects.png"), png, 0o644)
		}
	}
	// The filters: people's alerts only, then people's detections (none:
	// people are alerts).
	filter := func(label, severity string) (listed, others int) {
		t.Helper()
		var n struct{ Listed, Others int }
		js(&n, `(() => {
			for (const [id, v] of [["ev-label", "`+label+`"], ["ev-severity", "`+severity+`"]]) {
				const el = document.getElementById(id);
				el.value = v;
				el.dispatchEvent(new Event("change"));
			}
			const li = [...document.querySelectorAll('#ev-list li.event')];
			return {Listed: li.length, Others: li.filter((e) => !e.classList.contains("`+severity+`") ||
				!e.querySelector('.type').textContent.startsWith("`+label+`")).length};
		})()`)
		return n.Listed, n.Others
	}
	if listed, others := filter("person", "alert"); listed == 0 || others != 0 {
		t.Errorf("label person, alerts: %d events listed, %d of them not a person's alert", listed, others)
	}
	if listed, _ := filter("person", "detection"); listed != 0 {
		t.Errorf("label person, detections: %d events listed, want none (people are alerts)", listed)
	}
}
