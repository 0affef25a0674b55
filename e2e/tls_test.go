//go:build e2e

package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Built-in HTTPS: curl negotiates HTTP/2, HEAD answers, and a stream
// comes over it.
func TestHTTPSNegotiatesHTTP2(t *testing.T) {
	curl := requireTool(t, "curl")
	openssl := requireTool(t, "openssl")
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls.key")
	out, err := exec.Command(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
		"-keyout", key, "-out", cert, "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	p := startStreamd(t, "tls", "embedded:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\n  tls: {cert_file: "+cert+", key_file: "+key+"}\n"+
		"cameras:\n  - {id: pattern, source: testpattern, width: 320, height: 180, fps: 10}\n")
	base := "https://" + p.http
	head, err := exec.Command(curl, "--http2", "-k", "-sS", "-I", base+"/healthz").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(head), "HTTP/2 200") {
		t.Fatalf("curl --http2 -I: %v\n%s", err, head)
	}
	// A few seconds of the stream over HTTP/2: parts arrive.
	body, _ := exec.Command(curl, "--http2", "-k", "-sS", "--max-time", "4", base+"/stream/pattern").Output()
	if n := strings.Count(string(body), "Content-Type: image/jpeg"); n < 5 {
		t.Fatalf("%d parts over HTTP/2 in 4 s", n)
	}
	// Plain HTTP to the TLS port is refused, not served.
	if out, err := exec.Command(curl, "-sS", "--max-time", "3", "http://"+p.http+"/healthz").CombinedOutput(); err == nil && strings.Contains(string(out), `"ok"`) {
		t.Fatalf("plain HTTP served on the HTTPS port: %s", out)
	}
}
