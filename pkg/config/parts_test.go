package config

import (
	"slices"
	"testing"
)

// The recorder starts before the analyzer, so that it stops after it and
// records the ends of the events the analyzer closes as it stops.
func TestRecorderStopsAfterTheAnalyzer(t *testing.T) {
	for _, role := range []string{RoleAll, RoleAnalyzer} {
		c := Default()
		c.Role, c.Analyzer.Enabled, c.Record.Enabled = role, true, true
		p := c.Parts()
		ia, ir := slices.Index(p, PartAnalyze), slices.Index(p, PartRecord)
		if ia < 0 || ir < 0 || ir > ia {
			t.Errorf("role %s: parts %v: the recorder must start before the analyzer", role, p)
		}
	}
}
