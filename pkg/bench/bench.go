// Package bench measures a running streamd from the outside, as `streamd
// bench` does: normal viewers and slow viewers on /stream/{camera} for a set
// time; per-viewer frame rate, capture→viewer latency (from X-Timestamp),
// delivery and drops; the server's CPU, RSS and goroutines (from /metrics);
// the bench client's own CPU; and the throughput ceiling of plain loopback
// TCP moving the same bytes, for comparison.
package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/streamd/streamd/pkg/mjpeg"
)

// Options configures a run. Zero fields take the documented defaults.
type Options struct {
	URL         string        // base URL of the streamd under test, e.g. http://127.0.0.1:8080
	Camera      string        // default "pattern"
	Viewers     int           // normal viewers; default 100
	SlowViewers int           // viewers reading at SlowRate; default 0
	SlowRate    int           // bytes per second for slow viewers; default 50000
	Duration    time.Duration // measurement time; default 30s
	Warmup      time.Duration // after connecting, before measuring; default 3s
	Ceiling     bool          // also measure plain loopback TCP with the same bytes
	// Replay, if set, makes the normal viewers replay instead of watching
	// live: viewer i asks for /stream/{camera}?at=-T with T spread evenly
	// from 10 s to Replay ago, so each reads a different point of what
	// Kafka holds. Their "latency" is then that distance, not a delay.
	Replay time.Duration
	Logger *slog.Logger // progress; default discard
}

func (o *Options) defaults() {
	if o.Camera == "" {
		o.Camera = "pattern"
	}
	if o.Viewers == 0 {
		o.Viewers = 100
	}
	if o.SlowRate == 0 {
		o.SlowRate = 50000
	}
	if o.Duration == 0 {
		o.Duration = 30 * time.Second
	}
	if o.Warmup == 0 {
		o.Warmup = 3 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.URL = strings.TrimRight(o.URL, "/")
}

// Report is what a run measured.
type Report struct {
	URL         string  `json:"url"`
	Camera      string  `json:"camera"`
	Viewers     int     `json:"viewers"`
	SlowViewers int     `json:"slow_viewers"`
	SlowRate    int     `json:"slow_rate_bytes_per_s"`
	Seconds     float64 `json:"seconds"`

	Connected     int     `json:"connected"` // normal viewers that stayed connected throughout
	FPSMin        float64 `json:"fps_min"`
	FPSP50        float64 `json:"fps_p50"`
	DeliveredPct  float64 `json:"delivered_pct"` // frames received / frames in the sequence range seen, all normal viewers
	LatencyP50MS  float64 `json:"latency_p50_ms"`
	LatencyP99MS  float64 `json:"latency_p99_ms"`
	LatencyMaxMS  float64 `json:"latency_max_ms"`
	BytesPerSec   float64 `json:"bytes_per_s"` // delivered to normal viewers
	SlowFPSP50    float64 `json:"slow_fps_p50"`
	ServerDropped float64 `json:"server_dropped"` // slow_viewer drops counted by the server during the run

	ServerCPUCores      float64 `json:"server_cpu_cores"`
	ServerCPUIdleCores  float64 `json:"server_cpu_idle_cores"`  // before viewers connected
	ServerCPUAfterCores float64 `json:"server_cpu_after_cores"` // in the 2 s after all disconnected
	ServerRSSMaxMB      float64 `json:"server_rss_max_mb"`
	GoroutinesBefore    float64 `json:"goroutines_before"`
	GoroutinesDuring    float64 `json:"goroutines_during"`
	GoroutinesAfter     float64 `json:"goroutines_after"`
	GoroutinesBackSecs  float64 `json:"goroutines_back_s"` // time to return to the baseline (+5) after disconnect; -1 if not within 5 s
	ClientCPUCores      float64 `json:"client_cpu_cores"`

	CeilingBytesPerSec float64 `json:"ceiling_bytes_per_s,omitempty"`
	CeilingPct         float64 `json:"ceiling_pct,omitempty"`
}

// viewerStats is what one normal viewer saw in the measurement window.
type viewerStats struct {
	frames   int
	bytes    int64
	firstSeq uint64
	lastSeq  uint64
	lat      []int32 // microseconds
	failed   error
}

// Run connects the viewers, measures, disconnects and reports.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	log := o.Logger
	if o.URL == "" {
		return nil, errors.New("bench: no URL")
	}
	transport := &http.Transport{
		MaxIdleConnsPerHost: -1,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	streamURL := o.URL + "/stream/" + o.Camera

	// Check the camera first, for a clear error.
	if err := probe(ctx, client, streamURL); err != nil {
		return nil, err
	}
	before, err := scrape(ctx, client, o.URL)
	if err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second)
	idle, err := scrape(ctx, client, o.URL)
	if err != nil {
		return nil, err
	}
	rep := &Report{URL: o.URL, Camera: o.Camera, Viewers: o.Viewers, SlowViewers: o.SlowViewers, SlowRate: o.SlowRate, Seconds: o.Duration.Seconds()}
	rep.ServerCPUIdleCores = (idle.cpu - before.cpu) / idle.at.Sub(before.at).Seconds()
	rep.GoroutinesBefore = idle.goroutines

	runCtx, stopViewers := context.WithCancel(ctx)
	defer stopViewers()
	var measuring atomic.Bool
	var windowStart, windowEnd atomic.Int64
	stats := make([]*viewerStats, o.Viewers)
	slowFrames := make([]atomic.Int64, o.SlowViewers)
	var wg sync.WaitGroup
	log.Info("connecting viewers", "viewers", o.Viewers, "slow", o.SlowViewers, "url", streamURL)
	for i := range o.Viewers {
		stats[i] = &viewerStats{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := streamURL
			if o.Replay > 0 {
				back := 10*time.Second + time.Duration(int64(o.Replay-10*time.Second)*int64(i)/int64(max(o.Viewers, 1)))
				u = fmt.Sprintf("%s?at=-%.3fs", streamURL, back.Seconds())
			}
			stats[i].failed = watch(runCtx, client, u, stats[i], &measuring)
		}()
	}
	for i := range o.SlowViewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = watchSlowly(runCtx, client, streamURL, o.SlowRate, &slowFrames[i], &measuring)
		}()
	}
	if err := sleep(ctx, o.Warmup); err != nil {
		return nil, err
	}
	start, err := scrape(ctx, client, o.URL)
	if err != nil {
		return nil, err
	}
	ru0 := rusage()
	windowStart.Store(time.Now().UnixNano())
	measuring.Store(true)
	log.Info("measuring", "for", o.Duration)
	peakRSS := start.rss
	peakG := start.goroutines
	deadline := time.Now().Add(o.Duration)
	for time.Now().Before(deadline) {
		if err := sleep(ctx, min(time.Second, time.Until(deadline))); err != nil {
			return nil, err
		}
		if m, err := scrape(ctx, client, o.URL); err == nil {
			peakRSS = math.Max(peakRSS, m.rss)
			peakG = math.Max(peakG, m.goroutines)
		}
	}
	measuring.Store(false)
	windowEnd.Store(time.Now().UnixNano())
	ru1 := rusage()
	end, err := scrape(ctx, client, o.URL)
	if err != nil {
		return nil, err
	}
	window := time.Duration(windowEnd.Load() - windowStart.Load()).Seconds()
	rep.ServerCPUCores = (end.cpu - start.cpu) / end.at.Sub(start.at).Seconds()
	rep.ClientCPUCores = (ru1 - ru0).Seconds() / window
	rep.ServerRSSMaxMB = math.Max(peakRSS, end.rss) / (1 << 20)
	rep.GoroutinesDuring = peakG
	rep.ServerDropped = end.slowDropped[o.Camera] - start.slowDropped[o.Camera]

	log.Info("disconnecting viewers")
	stopViewers()
	wg.Wait()
	transport.CloseIdleConnections()
	gone := time.Now()
	rep.GoroutinesBackSecs = -1
	for time.Since(gone) < 5*time.Second {
		m, err := scrape(ctx, client, o.URL)
		if err == nil && m.goroutines <= rep.GoroutinesBefore+5 {
			rep.GoroutinesBackSecs = time.Since(gone).Seconds()
			break
		}
		_ = sleep(ctx, 100*time.Millisecond)
	}
	a0, err := scrape(ctx, client, o.URL)
	if err != nil {
		return nil, err
	}
	_ = sleep(ctx, 2*time.Second)
	a1, err := scrape(ctx, client, o.URL)
	if err != nil {
		return nil, err
	}
	rep.ServerCPUAfterCores = (a1.cpu - a0.cpu) / a1.at.Sub(a0.at).Seconds()
	rep.GoroutinesAfter = a1.goroutines

	// Normal viewers.
	var fps []float64
	var lat []int32
	var received, expected, bytes int64
	for _, s := range stats {
		if s.failed != nil && !errors.Is(s.failed, context.Canceled) {
			log.Warn("viewer failed", "err", s.failed)
			continue
		}
		rep.Connected++
		fps = append(fps, float64(s.frames)/window)
		lat = append(lat, s.lat...)
		received += int64(s.frames)
		if s.frames > 0 {
			expected += int64(s.lastSeq-s.firstSeq) + 1
		}
		bytes += s.bytes
	}
	slices.Sort(fps)
	slices.Sort(lat)
	if len(fps) > 0 {
		rep.FPSMin, rep.FPSP50 = fps[0], fps[len(fps)/2]
	}
	if len(lat) > 0 {
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1000 }
		rep.LatencyP50MS, rep.LatencyP99MS, rep.LatencyMaxMS = q(0.5), q(0.99), q(1)
	}
	if expected > 0 {
		rep.DeliveredPct = 100 * float64(received) / float64(expected)
	}
	rep.BytesPerSec = float64(bytes) / window
	var slow []float64
	for i := range slowFrames {
		slow = append(slow, float64(slowFrames[i].Load())/window)
	}
	slices.Sort(slow)
	if len(slow) > 0 {
		rep.SlowFPSP50 = slow[len(slow)/2]
	}

	if o.Ceiling && bytes > 0 {
		log.Info("measuring the loopback TCP ceiling", "bytes", bytes, "connections", o.Viewers)
		perSec, err := Ceiling(ctx, o.Viewers, bytes)
		if err != nil {
			return nil, err
		}
		rep.CeilingBytesPerSec = perSec
		rep.CeilingPct = 100 * rep.BytesPerSec / perSec
	}
	return rep, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func probe(ctx context.Context, client *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("bench: open %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("bench: %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	r := mjpeg.NewReader(resp.Body, mjpeg.Boundary)
	r.SkipData = true
	if _, err := r.Next(); err != nil {
		return fmt.Errorf("bench: first frame of %s: %w", url, err)
	}
	return nil
}

// watch is one normal viewer: it reads parts as fast as they come and
// records, while measuring, their count, bytes and latency.
func watch(ctx context.Context, client *http.Client, url string, s *viewerStats, measuring *atomic.Bool) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("stream answered %s", resp.Status)
	}
	counted := &countingReader{r: resp.Body}
	r := mjpeg.NewReader(counted, mjpeg.Boundary)
	r.SkipData = true
	s.lat = make([]int32, 0, 4096)
	for {
		p, err := r.Next()
		if err != nil {
			return err
		}
		if !measuring.Load() {
			counted.n = 0
			continue
		}
		now := time.Now()
		if s.frames == 0 {
			s.firstSeq = p.Seq
		}
		s.lastSeq = p.Seq
		s.frames++
		s.bytes += counted.n
		counted.n = 0
		if !p.Timestamp.IsZero() {
			s.lat = append(s.lat, int32(min(now.Sub(p.Timestamp).Microseconds(), math.MaxInt32)))
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// watchSlowly is a slow viewer: it reads the stream at rate bytes/s.
func watchSlowly(ctx context.Context, client *http.Client, url string, rate int, frames *atomic.Int64, measuring *atomic.Bool) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := mjpeg.NewReader(&throttled{r: resp.Body, rate: rate, start: time.Now(), ctx: ctx}, mjpeg.Boundary)
	r.SkipData = true
	for {
		if _, err := r.Next(); err != nil {
			return err
		}
		if measuring.Load() {
			frames.Add(1)
		}
	}
}

type throttled struct {
	r     io.Reader
	rate  int
	start time.Time
	read  int64
	ctx   context.Context
}

func (t *throttled) Read(p []byte) (int, error) {
	if len(p) > 4096 {
		p = p[:4096]
	}
	due := t.start.Add(time.Duration(float64(t.read) / float64(t.rate) * float64(time.Second)))
	if wait := time.Until(due); wait > 0 {
		if err := sleep(t.ctx, wait); err != nil {
			return 0, err
		}
	}
	n, err := t.r.Read(p)
	t.read += int64(n)
	return n, err
}

// sample is one scrape of the server's /metrics.
type sample struct {
	at          time.Time
	cpu         float64 // process_cpu_seconds_total
	rss         float64 // process_resident_memory_bytes
	goroutines  float64
	slowDropped map[string]float64 // camera → slow_viewer drops
	// recorderLag is the worst camera's streamd_recorder_lag_seconds, -1
	// without a recorder; recorderLost sums
	// streamd_recorder_lost_frames_total.
	recorderLag, recorderLost float64
}

func scrape(ctx context.Context, client *http.Client, base string) (sample, error) {
	s := sample{at: time.Now(), slowDropped: map[string]float64{}, recorderLag: -1}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := client.Do(req)
	if err != nil {
		return s, fmt.Errorf("bench: scrape %s/metrics: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("bench: scrape %s/metrics: %s", base, resp.Status)
	}
	found := 0
	err = EachSample(resp.Body, func(name string, v float64) {
		switch {
		case name == "process_cpu_seconds_total":
			s.cpu = v
			found++
		case name == "process_resident_memory_bytes":
			s.rss = v
			found++
		case name == "go_goroutines":
			s.goroutines = v
			found++
		case strings.HasPrefix(name, `streamd_camera_frames_dropped_total{`) && strings.Contains(name, `reason="slow_viewer"`):
			if _, rest, ok := strings.Cut(name, `camera="`); ok {
				cam, _, _ := strings.Cut(rest, `"`)
				s.slowDropped[cam] = v
			}
		case strings.HasPrefix(name, "streamd_recorder_lag_seconds{"):
			s.recorderLag = max(s.recorderLag, v)
		case strings.HasPrefix(name, "streamd_recorder_lost_frames_total{"):
			s.recorderLost += v
		}
	})
	if err != nil {
		return s, fmt.Errorf("bench: scrape %s/metrics: %w", base, err)
	}
	if found < 3 {
		return s, fmt.Errorf("bench: %s/metrics lacks process_cpu_seconds_total, process_resident_memory_bytes or go_goroutines", base)
	}
	return s, nil
}

// EachSample reads Prometheus text exposition from r and calls fn with
// each sample's name (labels included, as written: `x_total{camera="a"}`)
// and value; comments and lines that are not samples are skipped.
func EachSample(r io.Reader, fn func(name string, value float64)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			fn(name, v)
		}
	}
	return sc.Err()
}

// Ceiling moves total bytes over conns loopback TCP connections with a plain
// sender and receiver per connection, in chunks the size of a 720p JPEG, and
// returns the bytes per second achieved.
func Ceiling(ctx context.Context, conns int, total int64) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ceiling: %w", err)
	}
	defer ln.Close()
	per := total / int64(conns)
	if per < 1 {
		per = 1
	}
	chunk := make([]byte, 40<<10)
	var wg sync.WaitGroup
	errs := make(chan error, 2*conns)
	accepted := make(chan net.Conn, conns)
	go func() {
		for range conns {
			c, err := ln.Accept()
			if err != nil {
				errs <- err
				return
			}
			accepted <- c
		}
	}()
	clients := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	var d net.Dialer
	for range conns {
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			return 0, fmt.Errorf("ceiling: %w", err)
		}
		clients = append(clients, c)
	}
	servers := make([]net.Conn, 0, conns)
	for range conns {
		select {
		case c := <-accepted:
			servers = append(servers, c)
		case err := <-errs:
			return 0, fmt.Errorf("ceiling: %w", err)
		}
	}
	start := time.Now()
	for i := range conns {
		wg.Add(2)
		go func(c net.Conn) { // sender
			defer wg.Done()
			defer c.Close()
			for left := per; left > 0; {
				n := min(left, int64(len(chunk)))
				if _, err := c.Write(chunk[:n]); err != nil {
					errs <- err
					return
				}
				left -= n
			}
		}(servers[i])
		go func(c net.Conn) { // receiver
			defer wg.Done()
			buf := make([]byte, 32<<10)
			if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, buf); err != nil {
				errs <- err
			}
		}(clients[i])
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	select {
	case err := <-errs:
		return 0, fmt.Errorf("ceiling: %w", err)
	default:
	}
	return float64(per*int64(conns)) / elapsed, nil
}

func rusage() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Table writes the report for people.
func (r *Report) Table(w io.Writer) {
	mb := func(b float64) string { return fmt.Sprintf("%.1f MB/s", b/1e6) }
	fmt.Fprintf(w, "streamd bench: %s camera %s, %d viewers + %d slow (%d B/s), %.0fs\n", r.URL, r.Camera, r.Viewers, r.SlowViewers, r.SlowRate, r.Seconds)
	fmt.Fprintf(w, "  viewers      connected %d of %d   fps min %.1f  p50 %.1f   delivered %.2f %%\n", r.Connected, r.Viewers, r.FPSMin, r.FPSP50, r.DeliveredPct)
	fmt.Fprintf(w, "  latency      capture→viewer p50 %.1f ms  p99 %.1f ms  max %.1f ms\n", r.LatencyP50MS, r.LatencyP99MS, r.LatencyMaxMS)
	fmt.Fprintf(w, "  slow         fps p50 %.2f   server-side slow_viewer drops %.0f\n", r.SlowFPSP50, r.ServerDropped)
	fmt.Fprintf(w, "  server       CPU %.2f cores (idle before %.2f, after disconnect %.2f)   RSS max %.0f MB\n", r.ServerCPUCores, r.ServerCPUIdleCores, r.ServerCPUAfterCores, r.ServerRSSMaxMB)
	fmt.Fprintf(w, "  goroutines   before %.0f  during %.0f  after %.0f  (back to baseline in %.1f s)\n", r.GoroutinesBefore, r.GoroutinesDuring, r.GoroutinesAfter, r.GoroutinesBackSecs)
	fmt.Fprintf(w, "  client       CPU %.2f cores\n", r.ClientCPUCores)
	fmt.Fprintf(w, "  throughput   streamd %s", mb(r.BytesPerSec))
	if r.CeilingBytesPerSec > 0 {
		fmt.Fprintf(w, "   plain loopback TCP ceiling %s   streamd = %.0f %% of ceiling", mb(r.CeilingBytesPerSec), r.CeilingPct)
	}
	fmt.Fprintln(w)
}
