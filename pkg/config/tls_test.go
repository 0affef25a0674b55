package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A TLS file that is readable but holds no PEM is refused when the
// configuration loads, naming the key, instead of failing at the first
// connection while the process runs on unready.
func TestTLSFilesMustBePEM(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(cert, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		over map[string]string
		want string
	}{
		{map[string]string{"kafka.tls.ca_file": junk}, `"kafka.tls.ca_file": ` + junk + ` holds no PEM certificate`},
		{map[string]string{"kafka.tls.cert_file": cert, "kafka.tls.key_file": cert}, `"kafka.tls.key_file": ` + cert + ` holds no PEM private key`},
		{map[string]string{"kafka.tls.cert_file": junk, "kafka.tls.key_file": junk}, `"kafka.tls.cert_file": ` + junk + ` holds no PEM certificate`},
	} {
		over := map[string]string{"kafka.tls.enabled": "true"}
		for k, v := range tc.over {
			over[k] = v
		}
		_, err := Load(Sources{Overrides: over})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.over, err, tc.want)
		}
	}
}

func TestRolesAndParts(t *testing.T) {
	for _, role := range Roles() {
		c := Default()
		c.Role = role
		if len(c.Parts()) == 0 {
			t.Errorf("role %q has no parts", role)
		}
	}
	c := Default()
	if !c.Runs(PartCapture) || !c.Runs(PartView) {
		t.Fatalf("all runs %v", c.Parts())
	}
	c.Role = RoleConsumer
	if c.Runs(PartCapture) {
		t.Fatal("consumer captures")
	}
}
