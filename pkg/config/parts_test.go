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

// The notifier starts before the analyzer too: it stops after it, and
// tells its targets that the events the analyzer ends as it stops are over.
func TestNotifierStopsAfterTheAnalyzer(t *testing.T) {
	c := Default()
	c.Analyzer.Enabled, c.Record.Enabled = true, true
	c.Notify.MQTT.URL = "mqtt://127.0.0.1:1883"
	p := c.Parts()
	ia, in := slices.Index(p, PartAnalyze), slices.Index(p, PartNotify)
	if ia < 0 || in < 0 || in > ia {
		t.Errorf("role all: parts %v: the notifier must start before the analyzer", p)
	}
}
