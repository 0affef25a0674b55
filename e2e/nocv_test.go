//go:build e2e

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpenCVFreeBuild: `CGO_ENABLED=0 go build -tags nocv` gives a binary
// without OpenCV that serves viewers as a consumer of frames a full binary
// produces, and refuses to be a producer.
func TestOpenCVFreeBuild(t *testing.T) {
	nocv := filepath.Join(t.TempDir(), "streamd-nocv")
	if out, err := buildStreamd(nocv, []string{"CGO_ENABLED=0"}, "-tags", "nocv"); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build -tags nocv: %v\n%s", err, out)
	}
	// It is what it says: no cgo, no gocv linked in.
	info, err := exec.Command("go", "version", "-m", nocv).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, info)
	}
	if !strings.Contains(string(info), "CGO_ENABLED=0") || !strings.Contains(string(info), "-tags=nocv") || strings.Contains(string(info), "gocv.io/x/gocv") {
		t.Fatalf("the nocv binary is not a cgo-free build without gocv:\n%s", info)
	}

	t.Run("consumer of a full producer", func(t *testing.T) {
		full := startStreamd(t, "full", `
role: all
embedded:
  listen: 127.0.0.1:0
http:
  listen: 127.0.0.1:0
cameras:
  - id: pattern
    source: testpattern
    width: 320
    height: 240
    fps: 30
`)
		full.waitReady(t)
		if full.broker == "" {
			t.Fatalf("all-in-one ready file names no broker: %+v", full.ready)
		}
		consumer := startProc(t, procSpec{name: "nocv-consumer", bin: nocv, yaml: fmt.Sprintf(`
role: consumer
embedded:
  enabled: false
kafka:
  brokers: [%s]
http:
  listen: 127.0.0.1:0
cameras:
  - id: pattern
`, full.broker)})
		if consumer.ready.Role != "consumer" {
			t.Fatalf("nocv ready file: %+v", consumer.ready)
		}
		consumer.waitReady(t)
		if st := consumer.status(t); st.Role != "consumer" || !st.Ready {
			t.Fatalf("nocv consumer /api/status: %s", st)
		}
		v := watch(t, consumer.url("/stream/pattern"))
		parts := v.take(t, 30, 20*time.Second)
		for i, r := range parts {
			if i > 0 && r.part.Seq <= parts[i-1].part.Seq {
				t.Fatalf("part %d: X-Sequence %d after %d", i, r.part.Seq, parts[i-1].part.Seq)
			}
			img, err := jpeg.Decode(bytes.NewReader(r.part.Data))
			if err != nil {
				t.Fatalf("part %d is not a JPEG: %v", i, err)
			}
			if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 240 {
				t.Fatalf("part %d is %v, want 320x240", i, b)
			}
		}
	})

	t.Run("refuses to produce", func(t *testing.T) {
		dir := t.TempDir()
		path, ready := filepath.Join(dir, "producer.yaml"), filepath.Join(dir, "ready.json")
		yaml := "role: producer\nembedded:\n  enabled: false\nkafka:\n  brokers: [127.0.0.1:9]\nhttp:\n  listen: 127.0.0.1:0\ncameras:\n  - id: cam\n    source: testpattern\n"
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(nocv, "--config", path, "--ready-file", ready)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
			t.Fatalf("nocv binary with a producer config: %v, want exit code 2\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
		}
		if msg := stderr.String(); !strings.Contains(msg, "built without OpenCV") || !strings.Contains(msg, `"role"`) {
			t.Fatalf("stderr does not say the binary was built without OpenCV, quoting \"role\":\n%s", msg)
		}
		if _, err := os.Stat(ready); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the refused producer started serving: ready file: %v", err)
		}
	})
}
