package kafka

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
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/streamd/streamd/pkg/frame"
)

// testPKI makes a CA, a server certificate for 127.0.0.1 and a client
// certificate, and writes them as PEM files into dir.
func testPKI(t *testing.T, dir string) (server tls.Certificate, pool *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "streamd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: ips,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	srvDER, srvKey := issue("broker", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	cliDER, cliKey := issue("streamd", 3, x509.ExtKeyUsageClientAuth, nil)
	write("client.pem", "CERTIFICATE", cliDER)
	keyDER, _ := x509.MarshalECPrivateKey(cliKey)
	write("client-key.pem", "EC PRIVATE KEY", keyDER)
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}, pool
}

func TestTLSAndSASL(t *testing.T) {
	dir := t.TempDir()
	serverCert, pool := testPKI(t, dir)
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plainuser", "plain-pass"),
		kfake.Superuser("SCRAM-SHA-256", "scram256", "scram-256-pass"),
		kfake.Superuser("SCRAM-SHA-512", "scram512", "scram-512-pass"),
		// Mutual TLS: the broker requires a client certificate from our CA.
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	clientTLS, err := TLSConfig(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"), "", false)
	if err != nil {
		t.Fatal(err)
	}
	for i, sasl := range []SASL{
		{"PLAIN", "plainuser", "plain-pass"},
		{"SCRAM-SHA-256", "scram256", "scram-256-pass"},
		{"SCRAM-SHA-512", "scram512", "scram-512-pass"},
	} {
		t.Run(sasl.Mechanism, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			client, err := Dial(ctx, Options{Brokers: []string{addr}, TLS: clientTLS, SASL: sasl, FetchMaxWait: 20 * time.Millisecond}, testLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			topic := "secure" + string(rune('a'+i))
			ensure(t, client, topic)
			col := newCollector()
			startConsumer(t, client, "g-"+topic, topic, col.sink)
			prod, err := NewProducer(client, topic, 1<<20, 0, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := prod.Publish(&frame.Frame{Camera: "cam", Seq: 5, CapturedAt: time.Now(), ContentType: frame.TypeJPEG, Data: jpegBytes(t, 8, 8)}); err != nil {
				t.Fatal(err)
			}
			if got := col.wait(t, 1); got[0].Seq != 5 {
				t.Fatalf("seq %d", got[0].Seq)
			}
			_ = prod.Close()
		})
	}
	t.Run("wrong password is refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var reported error
		_, err := Dial(ctx, Options{Brokers: []string{addr}, TLS: clientTLS, SASL: SASL{"SCRAM-SHA-256", "scram256", "nope"}, DialTimeout: time.Second}, testLogger(t), func(e error) { reported = e })
		if err == nil || reported == nil {
			t.Fatal("a wrong password was accepted")
		}
	})
	t.Run("plaintext is refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := Dial(ctx, Options{Brokers: []string{addr}, SASL: SASL{"PLAIN", "plainuser", "plain-pass"}, DialTimeout: time.Second}, testLogger(t), nil); err == nil {
			t.Fatal("a client without TLS got through")
		}
	})
}
