package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad loads arbitrary YAML: it must never panic, and whatever it
// accepts must validate.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"streamd.yaml", "producer.yaml", "consumer.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "config", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
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
