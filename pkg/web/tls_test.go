package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/hub"
	"github.com/streamd/streamd/pkg/mjpeg"
)

// selfSigned writes a certificate for 127.0.0.1 named cn and its key.
func selfSigned(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// With a certificate the server speaks HTTPS, browsers' HTTP/2 is
// negotiated, streams work over it, and a renewed certificate is taken
// without a restart.
func TestHTTPSWithHTTP2(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir, "first")
	h := hub.New(hub.WithEncoder(EncodePart))
	h.Register("cam")
	s, err := Start(Options{Live: HubLive(h), TLSCertFile: certFile, TLSKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	var seen string
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error { //nolint:gosec // test
			seen = cs.PeerCertificates[0].Subject.CommonName
			return nil
		}}}}
	base := "https://" + s.Addr()
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || seen != "first" {
		t.Fatalf("proto %s, certificate %q", resp.Proto, seen)
	}
	// A stream over HTTP/2.
	resp, err = client.Get(base + "/stream/cam")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for seq := range uint64(50) {
			f := img(seq)
			h.Publish(f)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	r := mjpeg.NewReader(resp.Body, mjpeg.Boundary)
	for range 3 {
		if p, err := r.Next(); err != nil || len(p.Data) != 64<<10 {
			t.Fatalf("part over HTTP/2: %v", err)
		}
	}
	resp.Body.Close()
	// Renewal: new files, ReloadCert, new connections see the new one.
	selfSigned(t, dir, "second")
	if err := s.ReloadCert(); err != nil {
		t.Fatal(err)
	}
	client.CloseIdleConnections()
	resp, err = client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if seen != "second" {
		t.Fatalf("after reload the certificate is %q", seen)
	}
	// A broken renewal keeps the certificate in use.
	if err := os.WriteFile(certFile, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadCert(); err == nil {
		t.Fatal("a broken certificate was accepted")
	}
	if _, err := client.Get(base + "/healthz"); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
}
