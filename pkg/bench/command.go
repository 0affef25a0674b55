package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Main runs `streamd bench ARGS` and returns the exit code. Without --url it
// starts its own streamd (this executable, all-in-one, embedded broker, a
// 1280x720 30 fps test pattern) as a separate process, so that the server's
// CPU is measured apart from the bench client's.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("streamd bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.StringVar(&o.URL, "url", "", "base URL of a running streamd (default: start one with the embedded broker)")
	fs.StringVar(&o.Camera, "camera", "pattern", "camera to watch")
	fs.IntVar(&o.Viewers, "viewers", 100, "normal viewers")
	fs.IntVar(&o.SlowViewers, "slow", 0, "slow viewers")
	fs.IntVar(&o.SlowRate, "slow-rate", 50000, "bytes per second a slow viewer reads")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "measurement time")
	fs.DurationVar(&o.Warmup, "warmup", 3*time.Second, "time between connecting and measuring (--cost: from start to measuring, default 20s)")
	fs.DurationVar(&o.Replay, "replay", 0, "viewers replay from points spread over the last DURATION (at least 10s) instead of watching live")
	fs.BoolVar(&o.Ceiling, "ceiling", true, "also measure plain loopback TCP moving the same bytes")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	width := fs.Int("width", 1280, "test pattern width (own server only)")
	height := fs.Int("height", 720, "test pattern height (own server only)")
	fps := fs.Int("fps", 30, "test pattern frame rate (own server only)")
	cost := fs.Bool("cost", false, "measure each component's cost instead of viewers: one process per step, analyzer and recorder on or off")
	cameras := fs.Int("cameras", 1, "test pattern cameras (--cost)")
	config := fs.String("config", "", "with --cost: run this config file instead of test pattern cameras (e.g. config/streamd.yaml)")
	var sets []string
	fs.Func("set", "with --cost: a setting key=value for every step's server, as streamd's own --set (repeatable; e.g. recording.chunk=1s)", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("%q is not key=value", v)
		}
		sets = append(sets, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cost {
		if *cameras < 1 {
			fmt.Fprintln(stderr, "streamd bench: need --cameras ≥ 1")
			return 2
		}
		warmup := 20 * time.Second // a cost step warms up longer than viewers do
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "warmup" {
				warmup = o.Warmup
			}
		})
		rep, err := Cost(ctx, CostOptions{Cameras: *cameras, Width: *width, Height: *height, FPS: *fps, Config: *config,
			Sets: sets, Warmup: warmup, Duration: o.Duration}, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "streamd bench:", err)
			return 1
		}
		report(stdout, *asJSON, rep)
		return 0
	}
	if o.Viewers < 1 || o.SlowViewers < 0 || o.SlowRate < 1 || o.Duration < time.Second {
		fmt.Fprintln(stderr, "streamd bench: need --viewers ≥ 1, --slow ≥ 0, --slow-rate ≥ 1 and --duration ≥ 1s")
		return 2
	}
	o.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	if o.URL == "" {
		stop, url, err := startOwn(ctx, *width, *height, *fps, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "streamd bench:", err)
			return 1
		}
		defer stop()
		o.URL = url
		o.Camera = "pattern"
	}
	rep, err := Run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "streamd bench:", err)
		return 1
	}
	report(stdout, *asJSON, rep)
	return 0
}

// report writes a report as indented JSON or as its table.
func report(w io.Writer, asJSON bool, rep interface{ Table(io.Writer) }) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return
	}
	rep.Table(w)
}

var listeningRE = regexp.MustCompile(`msg="http listening".* addr=(\S+)`)

// startOwn starts this executable as an all-in-one streamd and returns a
// function that stops it and its base URL.
func startOwn(ctx context.Context, width, height, fps int, stderr io.Writer) (func(), string, error) {
	return startServer(ctx, patternConfig(1, width, height, fps, true, true), nil, stderr)
}

// patternConfig is an all-in-one configuration with n test-pattern cameras
// (ids pattern, pattern2, ...) and the analyzer and recorder on or off.
// "%[1]s" in it is the data directory.
func patternConfig(n, width, height, fps int, analyzer, recording bool) string {
	cfg := fmt.Sprintf(`role: all
log:
  level: warn
embedded:
  listen: 127.0.0.1:0
  data_dir: %%[1]s
http:
  listen: 127.0.0.1:0
  max_viewers: 0          # every bench viewer comes from 127.0.0.1
  max_viewers_per_ip: 0
analyzer:
  enabled: %t
recording:
  enabled: %t
cameras:
`, analyzer, recording)
	for i := range n {
		id := "pattern"
		if i > 0 {
			id = fmt.Sprintf("pattern%d", i+1)
		}
		cfg += fmt.Sprintf("  - id: %s\n    source: testpattern\n    width: %d\n    height: %d\n    fps: %d\n", id, width, height, fps)
	}
	return cfg
}

// startServer starts this executable with config (a YAML text, "%[1]s" in
// it the data directory; or, if empty, the file of args' --config) and
// args, and returns a function that stops it and its base URL.
func startServer(ctx context.Context, config string, args []string, stderr io.Writer) (func(), string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("find own executable: %w", err)
	}
	dir, err := os.MkdirTemp("", "streamd-bench-")
	if err != nil {
		return nil, "", fmt.Errorf("temp dir: %w", err)
	}
	data := filepath.Join(dir, "kafka")
	if config != "" {
		path := filepath.Join(dir, "bench.yaml")
		if err := os.WriteFile(path, []byte(fmt.Sprintf(config, data)), 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, "", fmt.Errorf("write bench config: %w", err)
		}
		args = append([]string{"--config", path}, args...)
	} else {
		args = append(args, "--set", "embedded.data_dir="+data, "--set", "embedded.listen=127.0.0.1:0",
			"--set", "http.listen=127.0.0.1:0", "--set", "http.max_viewers=0", "--set", "http.max_viewers_per_ip=0")
	}
	// Log at info for the listen line, quietly otherwise.
	cmd := exec.Command(exe, append(args, "--set", "log.level=info")...)
	cmd.Stdout = io.Discard
	logs, err := cmd.StderrPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("start streamd: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		os.RemoveAll(dir)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if m := listeningRE.FindStringSubmatch(line); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
			if !sent || containsLevel(line, "WARN", "ERROR") {
				fmt.Fprintln(stderr, "  server:", line)
			}
		}
	}()
	select {
	case a := <-addr:
		return stop, "http://" + a, nil
	case <-time.After(30 * time.Second):
		stop()
		return nil, "", errors.New("own streamd did not start listening within 30s")
	case <-ctx.Done():
		stop()
		return nil, "", ctx.Err()
	}
}

func containsLevel(line string, levels ...string) bool {
	for _, l := range levels {
		if regexp.MustCompile(`level=` + l + `\b`).MatchString(line) {
			return true
		}
	}
	return false
}
