package relay

import (
	"os"
	"strings"
	"testing"
)

func TestDefaultGroupIsPerHostAndPort(t *testing.T) {
	g := DefaultGroup("0.0.0.0:8080")
	host, _ := os.Hostname()
	if !strings.HasPrefix(g, "streamd-viewer-") || !strings.HasSuffix(g, "-8080") {
		t.Errorf("DefaultGroup = %q, want streamd-viewer-<host>-8080", g)
	}
	if g == DefaultGroup("0.0.0.0:8081") {
		t.Error("two ports share a group")
	}
	if want := "streamd-viewer-" + sanitize(host) + "-8080"; g != want {
		t.Errorf("DefaultGroup = %q, want %q", g, want)
	}
	if got := sanitize("a b/c:d-e.f_g"); got != "a_b_c_d-e.f_g" {
		t.Errorf("sanitize = %q", got)
	}
}
