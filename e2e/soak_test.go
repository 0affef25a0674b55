//go:build e2e && soak

package e2e

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/mjpeg"
)

// TestSoak runs the shipped default (config/streamd.yaml: three cameras in
// motion, the analyzer and the recorder on) with 50 viewers joining and
// leaving for SOAK_DURATION (default 10m). Every 30 s it reports CPU, RSS,
// goroutines, open files, the broker's size on disk and the recorder's
// worst lag. It fails if RSS, goroutines, open files or the lag keep
// growing (the peak of the last half may not exceed the peak of the second
// quarter by more than a margin), or if the recorder loses frames. The
// disk grows by design: recordings are kept for days. Run it with
// `make soak`.
func TestSoak(t *testing.T) {
	duration := 10 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("SOAK_DURATION")); err == nil {
		duration = d
	}
	dataDir := filepath.Join(t.TempDir(), "kafka")
	shipped, err := os.ReadFile(inRepo("config/streamd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := startStreamd(t, "soak", string(shipped), "--set", "embedded.data_dir="+dataDir,
		"--set", "embedded.listen=127.0.0.1:0", "--set", "http.listen=127.0.0.1:0")
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

	type sample struct{ cpu, rss, goroutines, fds, disk, lag float64 }
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
		m := p.metrics(t)
		s := sample{
			cpu:        m["process_cpu_seconds_total"],
			rss:        p.metric(t, "process_resident_memory_bytes") / (1 << 20),
			goroutines: p.metric(t, "go_goroutines"),
			fds:        p.metric(t, "process_open_fds"),
			disk:       dirSize(dataDir) / (1 << 20),
		}
		lost := 0.0
		for series, v := range m {
			switch {
			case strings.HasPrefix(series, "streamd_recorder_lag_seconds{"):
				s.lag = max(s.lag, v)
			case strings.HasPrefix(series, "streamd_recorder_lost_frames_total{"):
				lost += v
			}
		}
		if lost > 0 {
			t.Errorf("the recorder lost %.0f frames (streamd_recorder_lost_frames_total)", lost)
		}
		cores := 0.0
		if n := len(samples); n > 0 {
			cores = (s.cpu - samples[n-1].cpu) / 30
		}
		samples = append(samples, s)
		mu.Lock()
		t.Logf("%5.0fs  CPU %4.2f cores  RSS %6.1f MB  goroutines %5.0f  open files %4.0f  broker on disk %6.1f MB  recorder lag %5.2f s  viewer sessions %d  frames %d",
			time.Since(start).Seconds(), cores, s.rss, s.goroutines, s.fds, s.disk, s.lag, sessions, frames)
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
		{"recorder lag (s)", func(s sample) float64 { return s.lag }, 2},
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
