package redact

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// stderrChild names the environment variable that makes this test binary
// play the filtered process.
const stderrChild = "STREAMD_TEST_STDERR_CHILD"

// The child writes to descriptor 2 the way C libraries do (write(2) on the
// descriptor, not through os.Stderr), a line without its newline at the
// end, and a line longer than the buffer with a URL across the buffer's
// end, then restores.
func stderrChildMain() {
	restore, err := FilterStderr()
	if err != nil {
		os.Exit(3)
	}
	msg := "[ERROR:0@0.036] CAP_IMAGES: can't find starting number (in the name of file): rtsp://admin:hunter2@127.0.0.1:1/stream\n" +
		"plain line, nothing to hide\n" +
		strings.Repeat("x", 65520) + " http://u:longpw@h/ " + strings.Repeat("y", 10) + "\n" +
		"last words at mqtt://user:mqpw@broker:1883"
	if _, err := syscall.Write(2, []byte(msg)); err != nil {
		os.Exit(4)
	}
	os.Stderr.WriteString("\nfrom Go: webhook https://hooks.example.org/x?token=tok123\n")
	restore()
	os.Stderr.WriteString("after restore\n")
	os.Exit(0)
}

func TestMain(m *testing.M) {
	if os.Getenv(stderrChild) == "1" {
		stderrChildMain()
	}
	os.Exit(m.Run())
}

// What a process writes to its standard error, C code included, reaches
// the real standard error redacted, whole and in order, also what was
// written just before the process exits.
func TestFilterStderr(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), stderrChild+"=1")
	var stderr, stdout bytes.Buffer
	cmd.Stderr, cmd.Stdout = &stderr, &stdout
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
	got := stderr.String()
	for _, secret := range []string{"hunter2", "longpw", "mqpw", "tok123"} {
		if strings.Contains(got, secret) {
			t.Errorf("stderr shows %q:\n%.400s", secret, got)
		}
	}
	want := "[ERROR:0@0.036] CAP_IMAGES: can't find starting number (in the name of file): rtsp://***@127.0.0.1:1/stream\n" +
		"plain line, nothing to hide\n" +
		strings.Repeat("x", 65520) + " http://***@h/ " + strings.Repeat("y", 10) + "\n" +
		"last words at mqtt://***@broker:1883\n" +
		"from Go: webhook https://hooks.example.org/x?token=***\n" +
		"after restore\n"
	if got != want {
		t.Errorf("stderr (%d bytes) is not the redacted lines in order (%d bytes); it starts %.200q and ends %q", len(got), len(want), got, got[max(0, len(got)-200):])
	}
}
