//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestMakeInstall(t *testing.T) {
	t.Parallel() // what make install writes: it waits beside the other waiting tests
	requireTool(t, "make")
	dest := t.TempDir()
	// NODEPS=1: the build skips `make deps`, so the test never runs apt-get
	// or sudo (with a DESTDIR, install itself adds no user and runs no
	// systemctl). Stand-ins for them, and for the dpkg-query that deps
	// starts with, come first on PATH and record any call.
	shims, called := t.TempDir(), filepath.Join(t.TempDir(), "called")
	for _, name := range []string{"apt-get", "sudo", "dpkg-query", "useradd", "systemctl"} {
		script := fmt.Sprintf("#!/bin/sh\necho %s \"$@\" >> %s\nexit 1\n", name, called)
		if err := os.WriteFile(filepath.Join(shims, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	install := func() ([]byte, error) {
		cmd := exec.Command("make", "-s", "-C", repoRoot, "install", "NODEPS=1", "DESTDIR="+dest, "PREFIX=/opt/streamd")
		cmd.Env = append(os.Environ(), "PATH="+shims+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if calls, _ := os.ReadFile(called); len(calls) > 0 {
			t.Fatalf("make install NODEPS=1 ran the package/system tools it must leave alone:\n%s\nmake output:\n%s", calls, out)
		}
		return out, err
	}
	if out, err := install(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for path, mode := range map[string]os.FileMode{
		"opt/streamd/bin/streamd":             0o755,
		"etc/systemd/system/streamd@.service": 0o644,
		"etc/streamd/producer.yaml":           0o640,
		"etc/streamd/consumer.yaml":           0o640,
		"etc/streamd/all.yaml":                0o640,
		"etc/streamd/analyzer.yaml":           0o640,
		"etc/streamd/recorder.yaml":           0o640,
		"etc/streamd/notifier.yaml":           0o640,
		"etc/nginx/sites-available/streamd":   0o644,
		// The object model, where the analyzer looks by default.
		"usr/local/share/streamd/models/centernet.json": 0o644,
		"usr/local/share/streamd/models/centernet.bin":  0o644,
	} {
		st, err := os.Stat(filepath.Join(dest, path))
		if err != nil {
			t.Fatalf("make install did not install %s: %v", path, err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(dest, "etc/systemd/system/streamd@.service"))
	if !strings.Contains(string(unit), "ExecStart=/opt/streamd/bin/streamd --config /etc/streamd/%i.yaml") {
		t.Fatalf("unit not adapted to PREFIX:\n%s", unit)
	}
	// Every installed config passes the installed binary's check.
	for _, role := range []string{"producer", "consumer", "analyzer", "recorder", "notifier", "all"} {
		out, err := exec.Command(filepath.Join(dest, "opt/streamd/bin/streamd"), "--config", filepath.Join(dest, "etc/streamd", role+".yaml"), "--role", role, "--check").CombinedOutput()
		if err != nil {
			t.Fatalf("%s.yaml: %v\n%s", role, err, out)
		}
	}
	// A second install keeps edited configs.
	if err := os.WriteFile(filepath.Join(dest, "etc/streamd/producer.yaml"), []byte("# edited\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if out, err := install(); err != nil {
		t.Fatalf("second make install: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "etc/streamd/producer.yaml")); string(b) != "# edited\n" {
		t.Fatal("make install overwrote an edited config")
	}
}

func TestComposeFileValidates(t *testing.T) {
	compose := requireTool(t, "docker-compose")
	out, err := exec.Command(compose, "-f", inRepo("docker-compose.yml"), "config").CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"apache/kafka", "KAFKA_PROCESS_ROLES: broker,controller", "/etc/streamd/producer.yaml", "/etc/streamd/consumer.yaml",
		"condition: service_healthy", "/readyz", "restart: unless-stopped", "streamd.conf", "KAFKA_MESSAGE_MAX_BYTES"} {
		if !strings.Contains(text, want) {
			t.Errorf("compose config lacks %q", want)
		}
	}
	// The files the services use exist in the repository.
	for _, f := range []string{"Dockerfile", "nginx/streamd.conf", "config/producer.yaml", "config/consumer.yaml"} {
		if _, err := os.Stat(inRepo(f)); err != nil {
			t.Errorf("compose needs %s: %v", f, err)
		}
	}
}
