//go:build e2e

package e2e

import (
	"fmt"
	"github.com/streamd/streamd/pkg/testutil"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// everythingShown is what a process shows people: its logs (stdout and
// stderr, where journald takes them), and its HTTP answers, by name.
func everythingShown(t *testing.T, p *proc, paths ...string) map[string]string {
	t.Helper()
	out := map[string]string{"logs": p.logs.String()}
	c := &http.Client{Timeout: 10 * time.Second}
	for _, path := range paths {
		resp, err := c.Get(p.url(path))
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		out[path] = string(b)
	}
	return out
}

// requireAbsent fails for every secret shown anywhere.
func requireAbsent(t *testing.T, shown map[string]string, secrets ...string) {
	t.Helper()
	for where, text := range shown {
		for _, s := range secrets {
			if i := strings.Index(text, s); i >= 0 {
				t.Errorf("%s shows the secret %q: …%s…", where, s, text[max(0, i-120):min(len(text), i+len(s)+40)])
			}
		}
	}
}

// TestSecretsNeverShown runs streamd with credentials everywhere a
// configuration holds them (a camera URL, a webhook URL with a user,
// password and token, its signing secret, an MQTT URL with a password,
// a Kafka SASL password) and targets that fail, so that every one of them
// is retried and reported for several seconds; no password shows in the
// process's logs, /api/status, /api/cameras, /readyz, /metrics, the
// events or the pages. What does show, the URLs with their credentials
// masked, proves the failures were reported.
func TestSecretsNeverShown(t *testing.T) {
	t.Parallel() // waits for events and deliveries; no timing bound
	t.Run("camera, webhook and MQTT URLs", func(t *testing.T) {
		secrets := []string{"hunter2", "whpw-e2e-7", "tok-e2e-7", "sig-e2e-7", "mqpw-e2e-7"}
		hookAddr, mqttAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
		p := startProc(t, procSpec{name: "all", env: []string{"E2E_SIG=sig-e2e-7"}, yaml: fmt.Sprintf(`http:
  listen: 127.0.0.1:0
embedded:
  listen: 127.0.0.1:0
analyzer:
  enabled: true
  faces:
    enabled: false
  objects:
    enabled: false
cameras:
  - id: door
    source: rtsp://admin:hunter2@127.0.0.1:1/stream
  - id: pattern
    source: testpattern
    width: 320
    height: 180
    fps: 10
notify:
  backoff: 100ms
  max_backoff: 500ms
  webhooks:
    - name: hook
      url: http://hookuser:whpw-e2e-7@%s/h?token=tok-e2e-7
      secret_env: E2E_SIG
  mqtt:
    url: mqtt://mquser:mqpw-e2e-7@%s
`, hookAddr, mqttAddr)})
		started := time.Now()
		// The camera retries, the webhook (told of the pattern's motion)
		// and MQTT fail: all three are reported, with the URLs masked.
		waitFor(t, "the camera and both targets failing", 60*time.Second, func() string {
			shown := everythingShown(t, p, "/api/status", "/readyz")
			var missing []string
			for _, want := range []string{"rtsp://***@127.0.0.1:1/stream", "webhook.hook: failing since", "http://***@" + hookAddr + "/h?token=***", "mqtt: not connected to mqtt://" + mqttAddr} {
				if !strings.Contains(shown["/api/status"], want) {
					missing = append(missing, want)
				}
			}
			if len(missing) > 0 {
				return fmt.Sprintf("/api/status lacks %q: %s", missing, shown["/api/status"])
			}
			return ""
		})
		time.Sleep(time.Until(started.Add(8 * time.Second)))
		shown := everythingShown(t, p, "/api/status", "/api/cameras", "/readyz", "/metrics", "/api/events", "/", "/cameras/door", "/cameras/pattern")
		if !strings.Contains(shown["logs"], "127.0.0.1:1/stream") {
			t.Errorf("the logs never named the failing camera source:\n%s", tail(shown["logs"], 3000))
		}
		requireAbsent(t, shown, secrets...)
		if err := p.terminate(); err != nil {
			t.Fatal(err)
		}
		// And nothing said while stopping.
		requireAbsent(t, map[string]string{"logs while stopping": p.logs.String()}, secrets...)
	})

	t.Run("kafka SASL password", func(t *testing.T) {
		const right, wrong, fromEnv = "right-e2e-pw-7", "wrong-e2e-pw-7", "env-e2e-pw-7"
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "streamd", right))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		dir := t.TempDir()
		file := func(name, content string) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		consumer := func(broker, sasl string) string {
			return fmt.Sprintf("role: consumer\nhttp:\n  listen: 127.0.0.1:0\nembedded:\n  enabled: false\nkafka:\n  brokers: [%q]\n  dial_timeout: 1s\n  sasl:\n    mechanism: SCRAM-SHA-256\n    username: streamd\n%s", broker, sasl)
		}
		paths := []string{"/api/status", "/readyz", "/metrics"}
		unready := func(t *testing.T, p *proc) {
			t.Helper()
			started := time.Now()
			waitFor(t, "/readyz saying Kafka is not reached", 30*time.Second, func() string {
				code, checks, err := p.readyz()
				if err != nil {
					return err.Error()
				}
				if code != http.StatusServiceUnavailable || checks["kafka"] == "ok" || checks["kafka"] == "" {
					return fmt.Sprintf("%d %v", code, checks)
				}
				return ""
			})
			time.Sleep(time.Until(started.Add(8 * time.Second))) // the connection retried for a while
		}

		// A wrong password, from password_file: refused by the broker.
		p := startProc(t, procSpec{name: "wrong-password", yaml: consumer(c.ListenAddrs()[0], "    password_file: "+file("wrong", wrong)+"\n")})
		unready(t, p)
		requireAbsent(t, everythingShown(t, p, paths...), wrong)
		if err := p.terminate(); err != nil {
			t.Fatal(err)
		}
		requireAbsent(t, map[string]string{"logs": p.logs.String()}, wrong)

		// The right one, from password_file: the file is what is used.
		p = startProc(t, procSpec{name: "right-password", yaml: consumer(c.ListenAddrs()[0], "    password_file: "+file("right", right)+"\n")})
		p.waitReady(t)
		requireAbsent(t, everythingShown(t, p, paths...), right)
		if err := p.terminate(); err != nil {
			t.Fatal(err)
		}
		requireAbsent(t, map[string]string{"logs": p.logs.String()}, right)

		// Brokers unreachable, the password from the environment.
		p = startProc(t, procSpec{name: "unreachable", env: []string{"STREAMD_KAFKA_SASL_PASSWORD=" + fromEnv}, yaml: consumer(testutil.FreeAddr(t), "")})
		unready(t, p)
		requireAbsent(t, everythingShown(t, p, paths...), fromEnv)
		if err := p.terminate(); err != nil {
			t.Fatal(err)
		}
		requireAbsent(t, map[string]string{"logs": p.logs.String()}, fromEnv)
	})
}
