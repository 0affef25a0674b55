//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/bench"
)

// metrics is one scrape of a process's /metrics: every sample by its
// series, the metric name with its labels exactly as exposed, such as
// go_goroutines or streamd_camera_frames_captured_total{camera="a"}. It is
// the one reader of the Prometheus text of these tests, on bench.EachSample
// (as streamd bench reads it).
type metrics map[string]float64

// parseMetrics reads a Prometheus text exposition.
func parseMetrics(r io.Reader) (metrics, error) {
	m := metrics{}
	err := bench.EachSample(r, func(series string, v float64) { m[series] = v })
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return m, nil
}

// get returns the sample of series: name or name{labels}, as exposed.
func (m metrics) get(series string) (float64, bool) {
	v, ok := m[series]
	return v, ok
}

// sum adds up every series of the metric name, unlabelled or with any
// labels, and says whether there was one.
func (m metrics) sum(name string) (float64, bool) {
	sum, found := 0.0, false
	for series, v := range m {
		if series == name || strings.HasPrefix(series, name+"{") {
			sum += v
			found = true
		}
	}
	return sum, found
}

// byCamera returns the series of the metric name whose first label is
// camera, by camera.
func (m metrics) byCamera(name string) map[string]float64 {
	out := map[string]float64{}
	prefix := name + `{camera="`
	for series, v := range m {
		if rest, ok := strings.CutPrefix(series, prefix); ok {
			if cam, _, ok := strings.Cut(rest, `"`); ok {
				out[cam] = v
			}
		}
	}
	return out
}

// hasPrefix reports whether a series starts with prefix.
func (m metrics) hasPrefix(prefix string) bool {
	for series := range m {
		if strings.HasPrefix(series, prefix) {
			return true
		}
	}
	return false
}

// scrape fetches and parses the process's /metrics, which must answer 200;
// for goroutines other than the test's.
func (p *proc) scrape() (metrics, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(p.url("/metrics"))
	if err != nil {
		return nil, fmt.Errorf("%s: scrape: %w", p.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: scrape: /metrics answered %s", p.name, resp.Status)
	}
	m, err := parseMetrics(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: scrape: %w", p.name, err)
	}
	return m, nil
}

// metrics is scrape that fails the test.
func (p *proc) metrics(t testing.TB) metrics {
	t.Helper()
	m, err := p.scrape()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// metric reads one series (see metrics.get) of /metrics, failing the test
// if it is not there.
func (p *proc) metric(t testing.TB, series string) float64 {
	t.Helper()
	v, ok := p.metrics(t).get(series)
	if !ok {
		t.Fatalf("%s: /metrics has no %s", p.name, series)
	}
	return v
}

// metricSum sums every series of the metric name in /metrics (see
// metrics.sum); it is an error if there is none.
func (p *proc) metricSum(name string) (float64, error) {
	m, err := p.scrape()
	if err != nil {
		return 0, err
	}
	v, ok := m.sum(name)
	if !ok {
		return 0, fmt.Errorf("%s: no %s in /metrics", p.name, name)
	}
	return v, nil
}

// metricByCamera reads a per-camera metric of /metrics (see
// metrics.byCamera).
func (p *proc) metricByCamera(name string) (map[string]float64, error) {
	m, err := p.scrape()
	if err != nil {
		return nil, err
	}
	return m.byCamera(name), nil
}
