//go:build e2e && soak

package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/mjpeg"
)

// TestSoak runs all-in-one at 720p30 with 50 viewers joining and leaving for
// SOAK_DURATION (default 10m), reports RSS, goroutines, open files and the
// broker's size on disk every 30 s, and fails if any of them keeps growing:
// the peak of the last half may not exceed the peak of the second quarter by
// more than a margin. Run it with `make soak`.
func TestSoak(t *testing.T) {
	duration := 10 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("SOAK_DURATION")); err == nil {
		duration = d
	}
	dataDir := filepath.Join(t.TempDir(), "kafka")
	p := startStreamd(t, "soak", fmt.Sprintf(`
embedded:
  listen: 127.0.0.1:0
  data_dir: %s
  segment_bytes: 4194304
  retention_check: 10s
kafka:
  retention: 2m
  retention_bytes: 33554432
http:
  listen: 127.0.0.1:0
cameras:
  - id: pattern
    source: testpattern
    width: 1280
    height: 720
    fps: 30
`, dataDir))
	p.waitReady(t)

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	sessions, frames := 0, 0
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 7))
			for ctx.Err() == nil {
				watchCtx, stop := context.WithTimeout(ctx, time.Duration(5+r.IntN(20))*time.Second)
				n := soakWatch(watchCtx, p.url("/stream/pattern"))
				stop()
				mu.Lock()
				sessions++
				frames += n
				mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(time.Duration(r.IntN(3000)) * time.Millisecond):
				}
			}
		}()
	}

	type sample struct{ rss, goroutines, fds, disk float64 }
	var samples []sample
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	start := time.Now()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		}
		s := sample{
			rss:        p.metric(t, "process_resident_memory_bytes") / (1 << 20),
			goroutines: p.metric(t, "go_goroutines"),
			fds:        p.metric(t, "process_open_fds"),
			disk:       dirSize(dataDir) / (1 << 20),
		}
		samples = append(samples, s)
		mu.Lock()
		t.Logf("%5.0fs  RSS %6.1f MB  goroutines %5.0f  open files %4.0f  broker on disk %6.1f MB  viewer sessions %d  frames %d",
			time.Since(start).Seconds(), s.rss, s.goroutines, s.fds, s.disk, sessions, frames)
		mu.Unlock()
	}
	cancel()
	wg.Wait()
	if len(samples) < 8 {
		t.Fatalf("only %d samples: run at least 4 minutes", len(samples))
	}
	peak := func(from, to int, f func(sample) float64) float64 {
		m := 0.0
		for _, s := range samples[from:to] {
			m = max(m, f(s))
		}
		return m
	}
	q := len(samples) / 4
	for _, c := range []struct {
		name  string
		get   func(sample) float64
		slack float64
	}{
		{"RSS (MB)", func(s sample) float64 { return s.rss }, 40},
		{"goroutines", func(s sample) float64 { return s.goroutines }, 60},
		{"open files", func(s sample) float64 { return s.fds }, 60},
		{"broker on disk (MB)", func(s sample) float64 { return s.disk }, 40},
	} {
		early, late := peak(q, 2*q, c.get), peak(2*q, len(samples), c.get)
		if late > early*1.25+c.slack {
			t.Errorf("%s keeps growing: peak %.0f in the second quarter, %.0f later", c.name, early, late)
		}
	}
	if frames == 0 {
		t.Fatal("viewers received no frames")
	}
}

// soakWatch watches a stream until ctx ends and returns the frames seen.
func soakWatch(ctx context.Context, url string) int {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	r := mjpeg.NewReader(resp.Body, mjpeg.Boundary)
	r.SkipData = true
	n := 0
	for {
		if _, err := r.Next(); err != nil {
			return n
		}
		n++
	}
}

func dirSize(dir string) float64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return float64(total)
}
