package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestMakeInstall(t *testing.T) {
	requireTool(t, "make")
	dest := t.TempDir()
	cmd := exec.Command("make", "-s", "install", "DESTDIR="+dest, "PREFIX=/opt/streamd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for path, mode := range map[string]os.FileMode{
		"opt/streamd/bin/streamd":             0o755,
		"etc/systemd/system/streamd@.service": 0o644,
		"etc/streamd/producer.yaml":           0o640,
		"etc/streamd/consumer.yaml":           0o640,
		"etc/streamd/all.yaml":                0o640,
		"etc/nginx/sites-available/streamd":   0o644,
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
	for _, role := range []string{"producer", "consumer", "all"} {
		out, err := exec.Command(filepath.Join(dest, "opt/streamd/bin/streamd"), "--config", filepath.Join(dest, "etc/streamd", role+".yaml"), "--role", role, "--check").CombinedOutput()
		if err != nil {
			t.Fatalf("%s.yaml: %v\n%s", role, err, out)
		}
	}
	// A second install keeps edited configs.
	if err := os.WriteFile(filepath.Join(dest, "etc/streamd/producer.yaml"), []byte("# edited\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("make", "-s", "install", "DESTDIR="+dest, "PREFIX=/opt/streamd").CombinedOutput(); err != nil {
		t.Fatalf("second make install: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "etc/streamd/producer.yaml")); string(b) != "# edited\n" {
		t.Fatal("make install overwrote an edited config")
	}
}

func TestComposeFileValidates(t *testing.T) {
	compose := requireTool(t, "docker-compose")
	out, err := exec.Command(compose, "-f", "docker-compose.yml", "config").CombinedOutput()
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
		if _, err := os.Stat(f); err != nil {
			t.Errorf("compose needs %s: %v", f, err)
		}
	}
}
