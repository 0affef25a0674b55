package config

import (
	"os/exec"
	"strings"
	"testing"
)

// The configuration is read by every role, and by tools that only check
// it: it must not build the Kafka client (sarama), the embedded broker
// (kfake) or the router (chi). The default values it needs are its own.
func TestNoHeavyDependencies(t *testing.T) {
	for _, tags := range []string{"", "nocv"} {
		// go test puts the go command that runs it first in PATH.
		cmd := exec.Command("go", "list", "-tags", tags, "-deps", ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -tags %q -deps: %v\n%s", tags, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 || !strings.Contains(string(out), "github.com/knadh/koanf/v2") {
			t.Fatalf("go list -tags %q -deps listed too little to judge: %q", tags, deps)
		}
		for _, dep := range deps {
			for _, banned := range []string{"github.com/IBM/sarama", "github.com/twmb/franz-go", "github.com/go-chi/chi"} {
				if strings.HasPrefix(dep, banned) {
					t.Errorf("package config (tags %q) depends on %s", tags, dep)
				}
			}
		}
	}
}
