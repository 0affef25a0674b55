//go:build e2e

package e2e

// Helpers of the notification tests (notify_test.go): a real Mosquitto
// broker started on a free loopback port, an MQTT subscriber (Eclipse
// Paho, as Home Assistant's own client is a Paho), and a webhook receiver
// that checks every request as docs/notifications.md tells users to:
// the HMAC-SHA256 signature over the raw body (computed here, not with
// streamd's code), the timestamp, the headers.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/streamd/streamd/pkg/testutil"
)

// mosquittoBroker is a real Mosquitto on a free loopback port.
type mosquittoBroker struct {
	port int
	cmd  *exec.Cmd
	logs *testutil.Buffer
}

func startMosquitto(t *testing.T) *mosquittoBroker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto" // Debian installs it there, outside a user's PATH
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("mosquitto not installed: run `make deps` (it installs every test dependency): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &mosquittoBroker{port: port, logs: &testutil.Buffer{}}
	m.cmd = exec.Command(bin, "-c", conf)
	m.cmd.Stdout, m.cmd.Stderr = m.logs, m.logs
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
		if t.Failed() {
			t.Logf("mosquitto logs:\n%s", tail(m.logs.String(), 4000))
		}
	})
	waitFor(t, "mosquitto listening on "+m.addr(), 10*time.Second, func() string {
		c, err := net.DialTimeout("tcp", m.addr(), 200*time.Millisecond)
		if err != nil {
			return err.Error()
		}
		c.Close()
		return ""
	})
	return m
}

func (m *mosquittoBroker) addr() string { return fmt.Sprintf("127.0.0.1:%d", m.port) }
func (m *mosquittoBroker) url() string  { return "mqtt://" + m.addr() }

// mqttMsg is one message a subscriber got.
type mqttMsg struct {
	Topic    string
	Payload  []byte
	Retained bool // delivered from the broker's retained store (at subscription)
	At       time.Time
}

// mqttSub is a subscriber that keeps every message of its filter.
type mqttSub struct {
	c    paho.Client
	mu   sync.Mutex
	msgs []mqttMsg
}

// subscribeMQTT connects a subscriber of filter to the broker.
func subscribeMQTT(t *testing.T, m *mosquittoBroker, filter string) *mqttSub {
	t.Helper()
	s := &mqttSub{}
	o := paho.NewClientOptions().AddBroker("tcp://" + m.addr()).SetClientID(fmt.Sprintf("e2e-%d", time.Now().UnixNano())).SetCleanSession(true)
	s.c = paho.NewClient(o)
	if tok := s.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt subscriber: connect: %v", tok.Error())
	}
	t.Cleanup(func() { s.c.Disconnect(100) })
	if tok := s.c.Subscribe(filter, 1, func(_ paho.Client, msg paho.Message) {
		s.mu.Lock()
		s.msgs = append(s.msgs, mqttMsg{Topic: msg.Topic(), Payload: bytes.Clone(msg.Payload()), Retained: msg.Retained(), At: time.Now()})
		s.mu.Unlock()
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt subscriber: subscribe %s: %v", filter, tok.Error())
	}
	return s
}

// on returns the messages of topic, in order.
func (s *mqttSub) on(topic string) []mqttMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []mqttMsg
	for _, m := range s.msgs {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// payloads returns the payloads of topic as strings, in order.
func (s *mqttSub) payloads(topic string) []string {
	var out []string
	for _, m := range s.on(topic) {
		out = append(out, string(m.Payload))
	}
	return out
}

// retainedNow connects a new subscriber of filter and returns what the
// broker holds retained for it, by topic: what Home Assistant finds when
// it (re)starts.
func retainedNow(t *testing.T, m *mosquittoBroker, filter string) map[string][]byte {
	t.Helper()
	s := subscribeMQTT(t, m, filter)
	// The broker sends the retained messages right after the
	// subscription's acknowledgement; wait until none came for a moment.
	n, quiet := -1, time.Now()
	for time.Since(quiet) < 500*time.Millisecond {
		s.mu.Lock()
		if len(s.msgs) != n {
			n, quiet = len(s.msgs), time.Now()
		}
		s.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	s.c.Disconnect(100)
	out := map[string][]byte{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, msg := range s.msgs {
		if msg.Retained {
			out[msg.Topic] = msg.Payload
		}
	}
	return out
}

// hookBody is a webhook's JSON as docs/notifications.md documents it,
// decoded here on its own.
type hookBody struct {
	Type           string          `json:"type"`
	IdempotencyKey string          `json:"idempotency_key"`
	Timestamp      int64           `json:"timestamp"`
	Target         string          `json:"target"`
	Event          json.RawMessage `json:"event"`
	URLs           struct {
		Event    string `json:"event"`
		Snapshot string `json:"snapshot"`
		Clip     string `json:"clip"`
		Camera   string `json:"camera"`
	} `json:"urls"`
}

// notifiedEvent is what the tests read of a notification's event (and of
// a record of the events topic): the fields every type of event has.
type notifiedEvent struct {
	ID       string     `json:"id"`
	Camera   string     `json:"camera"`
	Type     string     `json:"type"` // motion, face, object
	Label    string     `json:"label"`
	Phase    string     `json:"phase"`
	Start    time.Time  `json:"start"`
	End      *time.Time `json:"end"`
	Updated  time.Time  `json:"updated"`
	Snapshot bool       `json:"snapshot"`
	Severity string     `json:"severity"`
}

// delivery is one request the receiver accepted.
type delivery struct {
	Path   string
	Header http.Header
	Body   hookBody
	Event  notifiedEvent
	At     time.Time
}

// hookReceiver is a webhook receiver on 127.0.0.1 that checks every
// request, keeps those it accepts, and can go down and come back on the
// same address.
type hookReceiver struct {
	t       *testing.T
	secret  string
	headers map[string]string // headers every request must carry

	mu   sync.Mutex
	addr string
	srv  *http.Server
	got  []delivery
	bad  []string
}

func newHookReceiver(t *testing.T, secret string, headers map[string]string) *hookReceiver {
	t.Helper()
	h := &hookReceiver{t: t, secret: secret, headers: headers}
	h.up()
	t.Cleanup(func() {
		h.down()
		if bad := h.refused(); len(bad) > 0 {
			t.Errorf("the receiver refused %d requests; the first: %s", len(bad), bad[0])
		}
	})
	return h
}

// url is the receiver's address of path.
func (h *hookReceiver) url(path string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return "http://" + h.addr + path
}

// up starts serving (again, on the same address after down).
func (h *hookReceiver) up() {
	h.t.Helper()
	h.mu.Lock()
	addr := h.addr
	h.mu.Unlock()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for try := 0; try < 50; try++ { // the closed socket may linger a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		h.t.Fatalf("webhook receiver: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(h.serve), ReadHeaderTimeout: 5 * time.Second}
	h.mu.Lock()
	h.addr, h.srv = ln.Addr().String(), srv
	h.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// down stops serving: connections are refused until up.
func (h *hookReceiver) down() {
	h.mu.Lock()
	srv := h.srv
	h.srv = nil
	h.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	refuse := func(format string, args ...any) {
		why := fmt.Sprintf(format, args...)
		h.mu.Lock()
		h.bad = append(h.bad, why)
		h.mu.Unlock()
		http.Error(w, why, http.StatusUnauthorized)
	}
	// As docs/notifications.md says: the signature over the raw body,
	// compared in constant time, then the timestamp it covers.
	mac := hmac.New(sha256.New, []byte(h.secret))
	mac.Write(raw)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(r.Header.Get("X-Streamd-Signature")), []byte(want)) {
		refuse("%s: bad signature %q", r.URL.Path, r.Header.Get("X-Streamd-Signature"))
		return
	}
	var b hookBody
	if err := json.Unmarshal(raw, &b); err != nil {
		refuse("%s: body is not the documented JSON: %v: %s", r.URL.Path, err, raw)
		return
	}
	var ev notifiedEvent
	if err := json.Unmarshal(b.Event, &ev); err != nil || ev.ID == "" || ev.Camera == "" {
		refuse("%s: event is not an event: %v: %s", r.URL.Path, err, b.Event)
		return
	}
	ts, err := strconv.ParseInt(r.Header.Get("X-Streamd-Timestamp"), 10, 64)
	switch {
	case r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json":
		refuse("%s %s with content type %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	case err != nil || ts != b.Timestamp || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute:
		refuse("%s: timestamp header %q, body %d", r.URL.Path, r.Header.Get("X-Streamd-Timestamp"), b.Timestamp)
	case b.Type != "new" && b.Type != "update" && b.Type != "end":
		refuse("%s: type %q", r.URL.Path, b.Type)
	case r.Header.Get("X-Streamd-Event") != b.Type:
		refuse("%s: X-Streamd-Event %q, body type %q", r.URL.Path, r.Header.Get("X-Streamd-Event"), b.Type)
	case r.Header.Get("Idempotency-Key") != b.IdempotencyKey || !strings.HasPrefix(b.IdempotencyKey, ev.ID+":"+b.Type):
		refuse("%s: Idempotency-Key %q, body %q, event %s %s", r.URL.Path, r.Header.Get("Idempotency-Key"), b.IdempotencyKey, ev.ID, b.Type)
	case !strings.HasPrefix(r.Header.Get("User-Agent"), "streamd/"):
		refuse("%s: User-Agent %q", r.URL.Path, r.Header.Get("User-Agent"))
	default:
		for k, v := range h.headers {
			if r.Header.Get(k) != v {
				refuse("%s: header %s %q, want %q", r.URL.Path, k, r.Header.Get(k), v)
				return
			}
		}
		h.mu.Lock()
		h.got = append(h.got, delivery{Path: r.URL.Path, Header: r.Header.Clone(), Body: b, Event: ev, At: time.Now()})
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
}

// deliveries returns the accepted requests to path, in arrival order.
func (h *hookReceiver) deliveries(path string) []delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []delivery
	for _, d := range h.got {
		if d.Path == path {
			out = append(out, d)
		}
	}
	return out
}

func (h *hookReceiver) refused() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bad...)
}

// fetch GETs an absolute URL a notification carries and returns the body
// if it answered 200 with a content type starting with ctype.
func fetch(u, ctype string) ([]byte, error) {
	c := &http.Client{Timeout: 90 * time.Second} // a clip is encoded on request
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) {
		return nil, fmt.Errorf("GET %s: %s, %q, want 200 and %s: %.300s", u, resp.Status, resp.Header.Get("Content-Type"), ctype, body)
	}
	return body, nil
}

// checkJPEG requires b to decode as a JPEG image of a plausible size.
func checkJPEG(b []byte) error {
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not a JPEG (%d bytes): %w", len(b), err)
	}
	if s := img.Bounds().Size(); s.X < 32 || s.Y < 32 {
		return fmt.Errorf("a JPEG of %v", s)
	}
	return nil
}

// readyz reads /readyz: its status code and its checks by component.
func (p *proc) readyz() (int, map[string]string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(p.url("/readyz"))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Checks map[string]string `json:"checks"`
		Ready  bool              `json:"ready"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("/readyz: %w", err)
	}
	if r.Ready != (resp.StatusCode == http.StatusOK) {
		return resp.StatusCode, r.Checks, fmt.Errorf("/readyz answered %d with ready %v", resp.StatusCode, r.Ready)
	}
	return resp.StatusCode, r.Checks, nil
}
