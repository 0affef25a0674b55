package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadErr loads yaml (with env) and returns the error's message after
// "config: " or the file's prefix; "" when it loaded.
func loadErr(t *testing.T, yaml string, env ...string) string {
	t.Helper()
	src := Sources{File: writeFile(t, yaml), Env: env}
	_, err := Load(src)
	if err == nil {
		return ""
	}
	msg := err.Error()
	for _, p := range []string{"config " + src.File + ": ", "config: "} {
		if strings.HasPrefix(msg, p) {
			return strings.TrimPrefix(msg, p)
		}
	}
	t.Fatalf("error without the config prefix: %s", msg)
	return ""
}

// secretFile writes content to a file of its own and returns its path.
func secretFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Bad notify.* values are refused naming the key, without quoting a
// credential.
func TestBadNotifyConfig(t *testing.T) {
	empty := secretFile(t, "\n")
	hook := func(fields string) string {
		return "notify:\n  webhooks:\n    - {name: phone, url: \"http://127.0.0.1:9/h\"" + fields + "}\n"
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"webhook url scheme", "notify:\n  webhooks:\n    - {name: phone, url: \"ftp://u:pw@h/\"}\n",
			`"notify.webhooks[0].url": must be an http:// or https:// URL, got "ftp://***@h/"`},
		{"webhook without name", "notify:\n  webhooks:\n    - {url: \"http://127.0.0.1:9/h\"}\n",
			`"notify.webhooks[0].name": must name the webhook in 1 to 64 characters of A-Z a-z 0-9 _ . - (it names its metrics and consumer group), got ""`},
		{"webhook name with a space", "notify:\n  webhooks:\n    - {name: my phone, url: \"http://127.0.0.1:9/h\"}\n",
			`"notify.webhooks[0].name": must name the webhook in 1 to 64 characters of A-Z a-z 0-9 _ . - (it names its metrics and consumer group), got "my phone"`},
		{"two secrets", hook(", secret: a, secret_env: B"), `"notify.webhooks[0].secret": set one of secret, secret_file and secret_env`},
		{"empty secret file", hook(", secret_file: " + empty), `"notify.webhooks[0].secret_file": ` + empty + ` is empty`},
		{"unset secret env", hook(", secret_env: STREAMD_TEST_UNSET_SECRET"), `"notify.webhooks[0].secret_env": environment variable STREAMD_TEST_UNSET_SECRET is not set`},
		{"reserved header", hook(", headers: [\"X-Streamd-Signature: x\"]"), `"notify.webhooks[0].headers[0]": X-Streamd-Signature is set by streamd`},
		{"header value not quoted", hook(", headers: [\"Authorization Bearer hunter2\"]"), `"notify.webhooks[0].headers[0]": must be "Name: value"`},
		{"bad quiet hours", hook(", rules: {quiet_hours: [\"22-06\"]}"), `"notify.webhooks[0].rules.quiet_hours[0]": must be HH:MM-HH:MM such as 22:30-06:00, got "22-06"`},
		{"bad phase", "notify:\n  phases: [start]\n  mqtt: {url: \"mqtt://127.0.0.1:1883\"}\n", `"notify.phases[0]": must be new, update or end, got "start"`},
		{"bad backoff", "notify:\n  backoff: 1ms\n  mqtt: {url: \"mqtt://127.0.0.1:1883\"}\n", `"notify.backoff": must be between 10ms and 1h, got 1ms`},
		{"mqtt scheme", "notify:\n  mqtt: {url: \"http://user:pw@broker:1883\"}\n", `"notify.mqtt.url": must be mqtt://host:port (or mqtts, tcp, ssl, tls, ws, wss), got "http://***@broker:1883"`},
		{"mqtt two passwords", "notify:\n  mqtt: {url: \"mqtt://b:1883\", password: p, password_file: " + empty + "}\n", `"notify.mqtt.password_file": set password or password_file, not both`},
		{"mqtt wildcard prefix", "notify:\n  mqtt: {url: \"mqtt://b:1883\", topic_prefix: \"a/#\"}\n", `"notify.mqtt.topic_prefix": must be an MQTT topic without + or # and without a leading or trailing /, got "a/#"`},
		{"notifier without target", "role: notifier\nembedded: {enabled: false}\nkafka: {brokers: [\"k:9092\"]}\nhttp: {public_url: \"https://nvr.example.org\"}\n",
			`"notify": role "notifier" needs a target: notify.webhooks or notify.mqtt.url`},
		{"notifier without public_url", "role: notifier\nembedded: {enabled: false}\nkafka: {brokers: [\"k:9092\"]}\nnotify:\n  mqtt: {url: \"mqtt://b:1883\"}\n",
			`"http.public_url": role "notifier" sends links to the page, which this process does not serve: set the address people open it at, such as https://cameras.example.org`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := loadErr(t, tc.yaml); got != tc.want && !strings.HasPrefix(got, tc.want+" (keys:") {
				t.Fatalf("error:\n  got  %s\n  want %s", got, tc.want)
			}
		})
	}
}

// The all-in-one serves the page, so its links may start with its own
// address; the notifier role's may not.
func TestNotifierPublicURL(t *testing.T) {
	if got := loadErr(t, "notify:\n  mqtt: {url: \"mqtt://b:1883\"}\n"); got != "" {
		t.Fatalf("role all with MQTT and no http.public_url: %s", got)
	}
	cfg, err := Load(Sources{File: writeFile(t, "role: notifier\nembedded: {enabled: false}\nkafka: {brokers: [\"k:9092\"]}\nhttp: {public_url: \"https://nvr.example.org/cams\"}\nnotify:\n  mqtt: {url: \"mqtt://b:1883\"}\n")})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Runs(PartNotify) || cfg.HTTP.PublicURL != "https://nvr.example.org/cams" {
		t.Fatalf("parts %v, public_url %q", cfg.Parts(), cfg.HTTP.PublicURL)
	}
}

// kafka.sasl's password comes from a file, the environment or the config
// file; errors name the key and never the password.
func TestKafkaSASLPassword(t *testing.T) {
	const pw = "s3cr3t-sasl-pw"
	file := secretFile(t, pw+"\n")
	base := "kafka:\n  sasl:\n    mechanism: SCRAM-SHA-256\n    username: streamd\n"
	load := func(t *testing.T, yaml string, env ...string) *Config {
		t.Helper()
		cfg, err := Load(Sources{File: writeFile(t, yaml), Env: env})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	t.Run("from a file", func(t *testing.T) {
		cfg := load(t, base+"    password_file: "+file+"\n")
		if got, err := cfg.Kafka.SASL.PasswordValue(); err != nil || got != pw {
			t.Fatalf("password %q, %v; want the file's line without its newline", got, err)
		}
	})
	t.Run("file from the environment", func(t *testing.T) {
		cfg := load(t, base, "STREAMD_KAFKA_SASL_PASSWORD_FILE="+file)
		if got, err := cfg.Kafka.SASL.PasswordValue(); err != nil || got != pw {
			t.Fatalf("password %q, %v", got, err)
		}
	})
	t.Run("from the environment", func(t *testing.T) {
		cfg := load(t, base, "STREAMD_KAFKA_SASL_PASSWORD="+pw)
		if got, err := cfg.Kafka.SASL.PasswordValue(); err != nil || got != pw {
			t.Fatalf("password %q, %v", got, err)
		}
	})
	empty := secretFile(t, "\n")
	for _, tc := range []struct {
		name, yaml string
		env        []string
		want       string
	}{
		{"none", base, nil, `"kafka.sasl.password": SASL SCRAM-SHA-256 needs a password: kafka.sasl.password_file, STREAMD_KAFKA_SASL_PASSWORD or kafka.sasl.password`},
		{"both", base + "    password_file: " + file + "\n", []string{"STREAMD_KAFKA_SASL_PASSWORD=" + pw}, `"kafka.sasl.password_file": set kafka.sasl.password or kafka.sasl.password_file, not both`},
		{"missing file", base + "    password_file: /nonexistent/pw\n", nil, `"kafka.sasl.password_file": cannot read the secret file: open /nonexistent/pw: no such file or directory`},
		{"empty file", base + "    password_file: " + empty + "\n", nil, `"kafka.sasl.password_file": ` + empty + ` is empty`},
		{"no user", "kafka:\n  sasl:\n    mechanism: PLAIN\n    password_file: " + file + "\n", nil, `"kafka.sasl.username": SASL PLAIN needs kafka.sasl.username`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := loadErr(t, tc.yaml, tc.env...)
			if got != tc.want && !strings.HasPrefix(got, tc.want+" (keys:") {
				t.Fatalf("error:\n  got  %s\n  want %s", got, tc.want)
			}
			if strings.Contains(got, pw) {
				t.Fatalf("the error quotes the password: %s", got)
			}
		})
	}
}
