package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad loads arbitrary YAML: it must never panic, and whatever it
// accepts must validate.
func FuzzLoad(f *testing.F) {
	// Small seeds: the coverage-guided engine slows to a crawl on the
	// whole shipped files (TestShippedConfigLoads covers those).
	f.Add([]byte("role: consumer\nembedded:\n  enabled: false\nkafka:\n  brokers: [k:9092]\ncameras:\n  - id: a\n"))
	f.Add([]byte("http:\n  listen: 127.0.0.1:0\n  max_viewers: 3\n  trusted_proxies: [10.0.0.0/8]\n"))
	f.Add([]byte("auth:\n  tokens:\n    - name: t\n      token: 0123456789abcdef\n      cameras: [a]\n"))
	f.Add([]byte("cameras:\n  - id: a\n    source: testpattern\n    fps: 1e400\n"))
	f.Add([]byte("kafka: {brokers: [[a]], partitions: -1}\n"))
	f.Add([]byte("hub:\n  max_delay: 99999h\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, yaml []byte) {
		path := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(path, yaml, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(Sources{File: path})
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load accepted a config that does not validate: %v", err)
		}
	})
}
