package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/streamd/streamd/pkg/config"
)

// CostOptions configures a cost run: what each component of the pipeline
// costs, in cores and memory, for cameras in permanent motion.
type CostOptions struct {
	// Cameras is the number of test-pattern cameras; default 1. The
	// pattern moves everywhere all the time: the analyzer sees motion in
	// every frame and runs object detection on it, and the recorder's
	// full tier (on motion, recording.full_on: motion) encodes every
	// frame.
	Cameras int
	// Width, Height and FPS are the pattern's; default 1280x720 at 30.
	Width, Height, FPS int
	// Config, if set, is a configuration file run instead of the pattern
	// cameras (the shipped config/streamd.yaml, say), with the analyzer and
	// the recorder switched per step.
	Config string
	// Sets are settings (key=value, as streamd's --set) for every step's
	// server, after the step's own: recording.chunk=1s, say.
	Sets []string
	// Warmup is the time from start to measuring; default 20 s. Duration
	// is the measurement; default 30 s.
	Warmup, Duration time.Duration
}

// CostStep is one configuration measured.
type CostStep struct {
	Name  string  `json:"name"`
	Cores float64 `json:"cores"`
	RSSMB float64 `json:"rss_mb"`
	// RecorderLagS is the worst camera's recorder lag at the end
	// (streamd_recorder_lag_seconds); -1 without a recorder.
	RecorderLagS float64 `json:"recorder_lag_s"`
	// RecorderLagMedianS and RecorderLagMaxS are the worst camera's lag
	// read once a second over the measurement: its median and its most.
	// The lag includes the chunk being filled and encoded (up to
	// recording.chunk and an encode), so a recorder that keeps up sits
	// below chunk + encode and does not grow.
	RecorderLagMedianS float64 `json:"recorder_lag_median_s"`
	RecorderLagMaxS    float64 `json:"recorder_lag_max_s"`
	// LostFrames are the frames the recorder could not record
	// (streamd_recorder_lost_frames_total, all cameras).
	LostFrames float64 `json:"lost_frames"`
}

// CostReport is a cost run's result: the steps, and each component's cost
// as the difference between them.
type CostReport struct {
	Cameras int     `json:"cameras"`
	Source  string  `json:"source"`
	Seconds float64 `json:"seconds"`
	// Sets are the settings given for every step (CostOptions.Sets).
	Sets  []string   `json:"sets,omitempty"`
	Steps []CostStep `json:"steps"`
	// Components maps a component to its cores (all cameras), from the
	// steps' differences.
	Components []Component `json:"components"`
}

// Component is one part of the pipeline's measured cost.
type Component struct {
	Name      string  `json:"name"`
	Cores     float64 `json:"cores"`
	PerCamera float64 `json:"cores_per_camera"`
}

// costStep is one configuration of a cost run.
type costStep struct {
	name                         string
	analyzer, objects, recording bool
}

// costSteps returns the steps of a cost run, in order; Cost measures each
// in its own process. With objects off the faces are off too: with them
// on, faces are searched only inside people.
func costSteps() []costStep {
	return []costStep{
		{"capture + JPEG + broker + relay (no viewer)", false, false, false},
		{"+ analyzer, motion only", true, false, false},
		{"+ analyzer with object detection (faces inside people)", true, true, false},
		{"+ recorder, reduced tier only (analyzer off: no events)", false, false, true},
		{"+ analyzer with objects + recorder, full tier", true, true, true},
	}
}

// sets are the settings of a step, as --set arguments.
func (st costStep) sets() []string {
	return []string{
		"--set", fmt.Sprintf("analyzer.enabled=%t", st.analyzer),
		"--set", fmt.Sprintf("analyzer.objects.enabled=%t", st.objects),
		"--set", fmt.Sprintf("analyzer.faces.enabled=%t", st.objects),
		"--set", fmt.Sprintf("recording.enabled=%t", st.recording),
	}
}

// Cost starts this executable once per step, with the analyzer and the
// recorder on or off, waits o.Warmup, and measures the process's CPU (from
// its own process_cpu_seconds_total) over o.Duration, its RSS and the
// recorder's lag at the end.
func Cost(ctx context.Context, o CostOptions, stderr io.Writer) (*CostReport, error) {
	if o.Cameras <= 0 {
		o.Cameras = 1
	}
	if o.Width <= 0 || o.Height <= 0 || o.FPS <= 0 {
		o.Width, o.Height, o.FPS = 1280, 720, 30
	}
	if o.Warmup <= 0 {
		o.Warmup = 20 * time.Second
	}
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	rep := &CostReport{Cameras: o.Cameras, Seconds: o.Duration.Seconds(), Sets: o.Sets,
		Source: fmt.Sprintf("%d test pattern(s) %dx%d at %d fps", o.Cameras, o.Width, o.Height, o.FPS)}
	if o.Config != "" {
		cfg, err := config.Load(config.Sources{File: o.Config})
		if err != nil {
			return nil, fmt.Errorf("cost: %w", err)
		}
		rep.Cameras = max(1, len(cfg.Cameras))
		rep.Source = fmt.Sprintf("%s (%d cameras)", o.Config, len(cfg.Cameras))
	}
	client := &http.Client{Timeout: 5 * time.Second}
	var extra []string
	for _, kv := range o.Sets {
		extra = append(extra, "--set", kv)
	}
	for _, st := range costSteps() {
		var stop func()
		var url string
		var err error
		if o.Config != "" {
			stop, url, err = startServer(ctx, "", append(append([]string{"--config", o.Config}, st.sets()...), extra...), stderr)
		} else {
			// The full tier records on motion: the pattern is no object,
			// and every frame in an event is the worst case.
			stop, url, err = startServer(ctx, patternConfig(o.Cameras, o.Width, o.Height, o.FPS, false, false),
				append(append(st.sets(), "--set", "recording.full_on=motion"), extra...), stderr)
		}
		if err != nil {
			return nil, fmt.Errorf("cost step %q: %w", st.name, err)
		}
		step, err := measureStep(ctx, client, url, o.Warmup, o.Duration)
		stop()
		if err != nil {
			return nil, fmt.Errorf("cost step %q: %w", st.name, err)
		}
		step.Name = st.name
		fmt.Fprintf(stderr, "  %-60s %.2f cores  %.0f MB\n", st.name, step.Cores, step.RSSMB)
		rep.Steps = append(rep.Steps, step)
	}
	s := rep.Steps
	n := float64(rep.Cameras)
	add := func(name string, cores float64) {
		rep.Components = append(rep.Components, Component{Name: name, Cores: cores, PerCamera: cores / n})
	}
	add("capture + JPEG + broker + relay", s[0].Cores)
	add("analyzer, motion", s[1].Cores-s[0].Cores)
	add("analyzer, object detection", s[2].Cores-s[1].Cores)
	add("recorder, reduced tier", s[3].Cores-s[0].Cores)
	add("recorder, full tier", s[4].Cores-s[2].Cores-(s[3].Cores-s[0].Cores))
	add("whole pipeline", s[4].Cores)
	return rep, nil
}

// measureStep waits warmup, then reads the server's metrics twice,
// duration apart.
func measureStep(ctx context.Context, client *http.Client, url string, warmup, duration time.Duration) (CostStep, error) {
	if err := sleep(ctx, warmup); err != nil {
		return CostStep{}, err
	}
	a, err := scrape(ctx, client, url)
	if err != nil {
		return CostStep{}, err
	}
	var lags []float64
	end := time.Now().Add(duration)
	for time.Now().Before(end) {
		if err := sleep(ctx, min(time.Second, time.Until(end))); err != nil {
			return CostStep{}, err
		}
		m, err := scrape(ctx, client, url)
		if err != nil {
			return CostStep{}, err
		}
		if m.recorderLag >= 0 {
			lags = append(lags, m.recorderLag)
		}
	}
	b, err := scrape(ctx, client, url)
	if err != nil {
		return CostStep{}, err
	}
	st := CostStep{Cores: (b.cpu - a.cpu) / b.at.Sub(a.at).Seconds(), RSSMB: b.rss / 1e6,
		RecorderLagS: b.recorderLag, LostFrames: b.recorderLost, RecorderLagMedianS: -1, RecorderLagMaxS: -1}
	if len(lags) > 0 {
		slices.Sort(lags)
		st.RecorderLagMedianS, st.RecorderLagMaxS = lags[len(lags)/2], lags[len(lags)-1]
	}
	return st, nil
}

// Table writes the report for people.
func (r *CostReport) Table(w io.Writer) {
	fmt.Fprintf(w, "streamd bench --cost: %s, %.0f s a step\n", r.Source, r.Seconds)
	if len(r.Sets) > 0 {
		fmt.Fprintf(w, "  settings: %s\n", strings.Join(r.Sets, " "))
	}
	for _, s := range r.Steps {
		lag := "-"
		if s.RecorderLagS >= 0 {
			lag = fmt.Sprintf("%.2f s (median %.2f, most %.2f)", s.RecorderLagS, s.RecorderLagMedianS, s.RecorderLagMaxS)
		}
		fmt.Fprintf(w, "  %-60s %5.2f cores  %5.0f MB RSS  recorder lag %s  lost %.0f\n", s.Name, s.Cores, s.RSSMB, lag, s.LostFrames)
	}
	fmt.Fprintf(w, "  per component (differences between the steps):\n")
	for _, c := range r.Components {
		fmt.Fprintf(w, "    %-40s %5.2f cores  %5.3f per camera\n", c.Name, c.Cores, c.PerCamera)
	}
}
