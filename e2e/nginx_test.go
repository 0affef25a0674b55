//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/testutil"
)

// startNginx runs Debian's nginx with the shipped site file, its upstream
// pointed at upstream, on a free port, and returns its base URL.
func startNginx(t *testing.T, upstream string) string {
	t.Helper()
	exe := requireTool(t, "nginx")
	site, err := os.ReadFile(inRepo("nginx/streamd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := string(site)
	for old, repl := range map[string]string{"server 127.0.0.1:8080;": "server " + upstream + ";", "listen 80;": "listen " + addr + ";"} {
		if !strings.Contains(conf, old) {
			t.Fatalf("nginx/streamd.conf no longer contains %q", old)
		}
		conf = strings.ReplaceAll(conf, old, repl)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "streamd.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	main := fmt.Sprintf(`worker_processes 1;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/streamd.conf;
}
`, dir)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(exe, "-t", "-p", dir, "-c", filepath.Join(dir, "nginx.conf")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t rejects the site: %v\n%s", err, out)
	}
	cmd := exec.Command(exe, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")
	out := &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\n%s", out, log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s:\n%s", addr, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNginxInFront(t *testing.T) {
	p := startStreamd(t, "all", "embedded:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\ncameras:\n  - id: pattern\n    source: testpattern\n    fps: 30\n")
	p.waitReady(t)
	proxy := startNginx(t, p.http)

	for _, path := range []string{"/", "/api/cameras", "/healthz"} {
		resp, err := http.Get(proxy + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s through nginx: %s", path, resp.Status)
		}
	}

	direct := watch(t, p.url("/stream/pattern"))
	proxied := watch(t, proxy+"/stream/pattern")
	const n = 90
	d := direct.take(t, n, 20*time.Second)
	pr := proxied.take(t, n, 20*time.Second)
	for i := 1; i < n; i++ {
		if pr[i].part.Seq != pr[i-1].part.Seq+1 {
			t.Fatalf("through nginx: X-Sequence %d after %d: frames out of order or lost", pr[i].part.Seq, pr[i-1].part.Seq)
		}
	}
	// Latency: the same frame's arrival through nginx against directly.
	arrived := map[uint64]time.Time{}
	for _, r := range d {
		arrived[r.part.Seq] = r.at
	}
	var extra []time.Duration
	for _, r := range pr {
		if at, ok := arrived[r.part.Seq]; ok {
			extra = append(extra, r.at.Sub(at))
		}
	}
	if len(extra) < n/2 {
		t.Fatalf("only %d frames seen both directly and through nginx", len(extra))
	}
	slices.Sort(extra)
	median := extra[len(extra)/2]
	t.Logf("extra latency through nginx: median %v, p90 %v", median, extra[len(extra)*9/10])
	if median > 5*time.Millisecond {
		t.Fatalf("nginx adds %v per frame (median): buffering is on somewhere", median)
	}
}

func TestNginxTLSSiteValidates(t *testing.T) {
	exe := requireTool(t, "nginx")
	site, err := os.ReadFile(inRepo("nginx/streamd-tls.conf"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cameras.example.org"},
		DNSNames: []string{"cameras.example.org"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	_ = os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	conf := string(site)
	for old, repl := range map[string]string{
		"/etc/ssl/certs/cameras.example.org.pem":   certPath,
		"/etc/ssl/private/cameras.example.org.key": keyPath,
		"listen 80;":            "listen " + testutil.FreeAddr(t) + ";",
		"listen 443 ssl http2;": "listen " + testutil.FreeAddr(t) + " ssl http2;",
	} {
		if !strings.Contains(conf, old) {
			t.Fatalf("nginx/streamd-tls.conf no longer contains %q", old)
		}
		conf = strings.ReplaceAll(conf, old, repl)
	}
	for _, want := range []string{"proxy_buffering off;", "gzip off;", "X-Real-IP", "proxy_read_timeout 1h;"} {
		if !strings.Contains(conf, want) {
			t.Fatalf("TLS site lacks %q", want)
		}
	}
	_ = os.WriteFile(filepath.Join(dir, "site.conf"), []byte(conf), 0o644)
	main := fmt.Sprintf("error_log %[1]s/error.log;\npid %[1]s/nginx.pid;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path %[1]s/b;\n  proxy_temp_path %[1]s/p;\n  fastcgi_temp_path %[1]s/f;\n  uwsgi_temp_path %[1]s/u;\n  scgi_temp_path %[1]s/s;\n  include %[1]s/site.conf;\n}\n", dir)
	_ = os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644)
	if out, err := exec.Command(exe, "-t", "-p", dir, "-c", filepath.Join(dir, "nginx.conf")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t rejects the TLS site: %v\n%s", err, out)
	}
}
