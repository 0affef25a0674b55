package config

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/redact"
)

// reservedWebhookHeaders are set by streamd on every webhook request
// (package notify's ReservedHeader, which this package may not import:
// it pulls in the Kafka client).
var reservedWebhookHeaders = []string{"X-Streamd-Signature", "X-Streamd-Timestamp", "X-Streamd-Event", "Idempotency-Key",
	"Content-Type", "Content-Length", "Host", "User-Agent", "Transfer-Encoding", "Connection"}

// SecretValue returns the webhook's signing secret: inline, the first line
// of SecretFile, or the environment variable SecretEnv; "" for none.
func (w WebhookConfig) SecretValue() (string, error) {
	switch {
	case w.SecretFile != "":
		return readSecretFile(w.SecretFile)
	case w.SecretEnv != "":
		v, ok := os.LookupEnv(w.SecretEnv)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", w.SecretEnv)
		}
		return v, nil
	}
	return w.Secret, nil
}

// PasswordValue returns the MQTT password: inline (or from
// STREAMD_NOTIFY_MQTT_PASSWORD), or the content of PasswordFile.
func (m MQTTConfig) PasswordValue() (string, error) {
	if m.PasswordFile != "" {
		return readSecretFile(m.PasswordFile)
	}
	return m.Password, nil
}

// validateNotify checks the notify keys (only where the notifier runs:
// other roles ignore them).
func (c *Config) validateNotify(bad func(key, format string, args ...any)) {
	n := c.Notify
	if c.Role == RoleNotifier && !n.Notifies() {
		bad("notify", "role %q needs a target: notify.webhooks or notify.mqtt.url", c.Role)
	}
	if !c.Runs(PartView) && c.HTTP.PublicURL == "" {
		// The links of notifications and Home Assistant's devices lead to
		// the page; without it here, its own address would lead nowhere.
		bad("http.public_url", "role %q sends links to the page, which this process does not serve: set the address people open it at, such as https://cameras.example.org", c.Role)
	}
	if n.Group == "" || len(n.Group) > 200 {
		bad("notify.group", "must be 1 to 200 characters, got %q", n.Group)
	}
	if _, err := time.LoadLocation(n.Timezone); err != nil {
		bad("notify.timezone", "must be an IANA time zone such as Europe/Berlin (\"\": the machine's), got %q", n.Timezone)
	}
	checkPhases(bad, "notify.phases", n.Phases)
	if len(n.Phases) == 0 {
		bad("notify.phases", "must list at least one of new, update, end")
	}
	if n.Cooldown < 0 || n.Cooldown > 24*time.Hour {
		bad("notify.cooldown", "must be between 0 (none) and 24h, got %s", n.Cooldown)
	}
	if n.Timeout < 100*time.Millisecond || n.Timeout > 5*time.Minute {
		bad("notify.timeout", "must be between 100ms and 5m, got %s", n.Timeout)
	}
	if n.Attempts < 0 || n.Attempts > 1000 {
		bad("notify.attempts", "must be between 0 (until delivered) and 1000, got %d", n.Attempts)
	}
	if n.Backoff < 10*time.Millisecond || n.Backoff > time.Hour {
		bad("notify.backoff", "must be between 10ms and 1h, got %s", n.Backoff)
	}
	if n.MaxBackoff < n.Backoff || n.MaxBackoff > 24*time.Hour {
		bad("notify.max_backoff", "must be between notify.backoff (%s) and 24h, got %s", n.Backoff, n.MaxBackoff)
	}
	names := map[string]int{}
	for i, w := range n.Webhooks {
		key := func(f string) string { return fmt.Sprintf("notify.webhooks[%d].%s", i, f) }
		if err := frame.ValidateID(w.Name); err != nil {
			// The same rules as camera ids, but not their words.
			bad(key("name"), "must name the webhook in 1 to %d characters of A-Z a-z 0-9 _ . - (it names its metrics and consumer group), got %q", frame.MaxIDLen, w.Name)
		} else if j, dup := names[w.Name]; dup {
			bad(key("name"), "duplicate name %q (also notify.webhooks[%d])", w.Name, j)
		} else {
			names[w.Name] = i
		}
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(key("url"), "must be an http:// or https:// URL, got %q", redact.URL(w.URL))
		}
		for j, h := range w.Headers {
			name, _, ok := strings.Cut(h, ":")
			name = strings.TrimSpace(name)
			switch {
			case !ok || name == "" || strings.ContainsAny(name, " \t\r\n"):
				bad(fmt.Sprintf("%s[%d]", key("headers"), j), "must be \"Name: value\"") // the value is not quoted: it may be a credential
			case slices.ContainsFunc(reservedWebhookHeaders, func(r string) bool { return strings.EqualFold(r, name) }):
				bad(fmt.Sprintf("%s[%d]", key("headers"), j), "%s is set by streamd", name)
			case strings.ContainsAny(h, "\r\n"):
				bad(fmt.Sprintf("%s[%d]", key("headers"), j), "must be one line")
			}
		}
		set := 0
		for _, v := range []string{w.Secret, w.SecretFile, w.SecretEnv} {
			if v != "" {
				set++
			}
		}
		if set > 1 {
			bad(key("secret"), "set one of secret, secret_file and secret_env")
		} else if _, err := w.SecretValue(); err != nil {
			which := "secret_file"
			if w.SecretEnv != "" {
				which = "secret_env"
			}
			bad(key(which), "%v", err)
		}
		if w.CAFile != "" {
			if err := checkPEM(w.CAFile, false); err != nil {
				bad(key("ca_file"), "%v", err)
			}
		}
		checkRules(bad, fmt.Sprintf("notify.webhooks[%d].rules", i), w.Rules)
	}
	m := n.MQTT
	if m.URL == "" {
		return
	}
	if u, err := url.Parse(m.URL); err != nil || u.Host == "" || !slices.Contains([]string{"mqtt", "mqtts", "tcp", "ssl", "tls", "ws", "wss"}, u.Scheme) {
		bad("notify.mqtt.url", "must be mqtt://host:port (or mqtts, tcp, ssl, tls, ws, wss), got %q", redact.URL(m.URL))
	}
	if m.Password != "" && m.PasswordFile != "" {
		bad("notify.mqtt.password_file", "set password or password_file, not both")
	} else if _, err := m.PasswordValue(); err != nil {
		bad("notify.mqtt.password_file", "%v", err)
	}
	if len(m.ClientID) > 128 || strings.ContainsAny(m.ClientID, "+#/ ") {
		bad("notify.mqtt.client_id", "must be at most 128 characters without + # / or spaces, got %q", m.ClientID)
	}
	for key, p := range map[string]string{"notify.mqtt.topic_prefix": m.TopicPrefix, "notify.mqtt.discovery.prefix": m.Discovery.Prefix} {
		if p == "" || strings.ContainsAny(p, "+#\x00") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
			bad(key, "must be an MQTT topic without + or # and without a leading or trailing /, got %q", p)
		}
	}
	for key, f := range map[string]string{"notify.mqtt.ca_file": m.CAFile, "notify.mqtt.cert_file": m.CertFile, "notify.mqtt.key_file": m.KeyFile} {
		if f != "" {
			if err := checkPEM(f, key == "notify.mqtt.key_file"); err != nil {
				bad(key, "%v", err)
			}
		}
	}
	if (m.CertFile == "") != (m.KeyFile == "") {
		bad("notify.mqtt.cert_file", "a client certificate needs both notify.mqtt.cert_file and notify.mqtt.key_file")
	}
	for i, l := range m.Discovery.Labels {
		if l == "" || len(l) > 64 {
			bad(fmt.Sprintf("notify.mqtt.discovery.labels[%d]", i), "must be a label of 1 to 64 characters, got %q", l)
		}
	}
	checkRules(bad, "notify.mqtt.rules", m.Rules)
}

func checkPhases(bad func(key, format string, args ...any), key string, phases []string) {
	for i, p := range phases {
		if p != "new" && p != "update" && p != "end" {
			bad(fmt.Sprintf("%s[%d]", key, i), "must be new, update or end, got %q", p)
		}
	}
}

// checkRules checks one target's rules.
func checkRules(bad func(key, format string, args ...any), key string, r Rules) {
	checkCameraList(bad, key+".cameras", r.Cameras)
	for i, t := range r.Types {
		if t != "motion" && t != "face" && t != "object" {
			bad(fmt.Sprintf("%s.types[%d]", key, i), "must be motion, face or object, got %q", t)
		}
	}
	for _, l := range []struct {
		name string
		v    []string
	}{{"labels", r.Labels}, {"zones", r.Zones}} {
		for i, v := range l.v {
			if v == "" || len(v) > 64 {
				bad(fmt.Sprintf("%s.%s[%d]", key, l.name, i), "must be 1 to 64 characters, got %q", v)
			}
		}
	}
	for i, s := range r.Severity {
		if s != "alert" && s != "detection" {
			bad(fmt.Sprintf("%s.severity[%d]", key, i), "must be alert or detection, got %q", s)
		}
	}
	checkPhases(bad, key+".phases", r.Phases)
	if r.Cooldown < 0 || r.Cooldown > 24*time.Hour {
		bad(key+".cooldown", "must be between 0 (notify.cooldown) and 24h, got %s", r.Cooldown)
	}
	for i, q := range r.QuietHours {
		if err := checkQuietHours(q); err != nil {
			bad(fmt.Sprintf("%s.quiet_hours[%d]", key, i), "%v", err)
		}
	}
}

// checkQuietHours checks "HH:MM-HH:MM" (package notify parses it the same
// way; a test holds the two in agreement).
func checkQuietHours(s string) error {
	from, to, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return fmt.Errorf("must be HH:MM-HH:MM such as 22:30-06:00, got %q", s)
	}
	f, ferr := clockMinutes(from)
	t, terr := clockMinutes(to)
	if ferr != nil || terr != nil {
		return fmt.Errorf("must be HH:MM-HH:MM such as 22:30-06:00, got %q", s)
	}
	if f == t {
		return fmt.Errorf("%q starts and ends at the same time", s)
	}
	return nil
}

func clockMinutes(s string) (int, error) {
	var h, m int
	s = strings.TrimSpace(s)
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("bad time %q", s)
	}
	if _, err := fmt.Sscanf(s, "%02d:%02d", &h, &m); err != nil || h > 24 || m > 59 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return h*60 + m, nil
}
