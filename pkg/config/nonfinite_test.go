//go:build !nocv

package config

import (
	"strings"
	"testing"
)

// Where the role checks the analyzer's ranges, NaN and infinities fail
// those checks rather than slipping past them.
func TestAnalyzerRefusesNonFinite(t *testing.T) {
	// Built only with OpenCV (!nocv): role analyzer needs it.
	for _, tc := range []struct{ yaml, key, got string }{
		{"fps: nan", "analyzer.fps", "NaN"},
		{"fps: .inf", "analyzer.fps", "+Inf"},
		{"motion: {min_area: nan}", "analyzer.motion.min_area", "NaN"},
		{"motion: {min_area: -.inf}", "analyzer.motion.min_area", "-Inf"},
		{"motion: {global_fraction: nan}", "analyzer.motion.global_fraction", "NaN"},
		{"faces: {fps: .nan}", "analyzer.faces.fps", "NaN"},
	} {
		_, err := Load(Sources{File: writeFile(t, "role: analyzer\nanalyzer:\n  "+tc.yaml+"\n")})
		found := false
		if err != nil {
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if strings.HasPrefix(line, `config: "`+tc.key+`": `) && strings.HasSuffix(line, "got "+tc.got) {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s: got %v, want a line quoting %q ending in got %s", tc.yaml, err, tc.key, tc.got)
		}
	}
}
