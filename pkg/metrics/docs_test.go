package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Every metric this package exports is in the metrics table of
// docs/http-api.md, and the table names no metric that does not exist.
func TestMetricsAreDocumented(t *testing.T) {
	src, err := os.ReadFile("metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/http-api.md")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`"(streamd_[a-z_]+)"`)
	exported := map[string]bool{}
	for _, m := range name.FindAllStringSubmatch(string(src), -1) {
		exported[m[1]] = true
	}
	if len(exported) < 30 {
		t.Fatalf("found %d metric names in metrics.go: the pattern no longer matches", len(exported))
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`(streamd_[a-z_]+)[{`]").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	for m := range exported {
		if !documented[m] {
			t.Errorf("%s is exported but not in docs/http-api.md's metrics table", m)
		}
	}
	for m := range documented {
		// Histograms are documented by their name; Prometheus adds the
		// _bucket, _sum and _count series.
		if !exported[m] && !exported[strings.TrimSuffix(m, "_bucket")] {
			t.Errorf("docs/http-api.md names %s, which streamd does not export", m)
		}
	}
}
