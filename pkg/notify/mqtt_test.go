package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/streamd/streamd/pkg/events"
)

// mosquitto is a real Mosquitto broker on a free loopback port.
type mosquitto struct {
	t    *testing.T
	port int
	conf string
	cmd  *exec.Cmd
}

func startMosquitto(t *testing.T) *mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("mosquitto is not installed (Debian: apt-get install mosquitto; make deps does): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &mosquitto{t: t, port: port, conf: conf}
	m.start()
	t.Cleanup(m.stop)
	return m
}

func (m *mosquitto) url() string { return fmt.Sprintf("mqtt://127.0.0.1:%d", m.port) }

func (m *mosquitto) start() {
	m.t.Helper()
	m.cmd = exec.Command("mosquitto", "-c", m.conf)
	if p, err := exec.LookPath("mosquitto"); err != nil || p == "" {
		m.cmd = exec.Command("/usr/sbin/mosquitto", "-c", m.conf)
	}
	var out bytes.Buffer
	m.cmd.Stdout, m.cmd.Stderr = &out, &out
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	waitFor(m.t, 10*time.Second, "mosquitto listening", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.port), 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func (m *mosquitto) stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
		m.cmd = nil
	}
}

// subscriber is an MQTT client that keeps every message of "#".
type subscriber struct {
	c    paho.Client
	mu   sync.Mutex
	msgs []paho.Message
}

func subscribe(t *testing.T, url string) *subscriber {
	t.Helper()
	s := &subscriber{}
	o := paho.NewClientOptions().AddBroker(strings.Replace(url, "mqtt://", "tcp://", 1)).SetClientID(fmt.Sprintf("test-sub-%d", time.Now().UnixNano()))
	s.c = paho.NewClient(o)
	if tok := s.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	if tok := s.c.Subscribe("#", 1, func(_ paho.Client, m paho.Message) {
		s.mu.Lock()
		s.msgs = append(s.msgs, m)
		s.mu.Unlock()
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { s.c.Disconnect(100) })
	return s
}

// on returns the payloads received on topic, in order.
func (s *subscriber) on(topic string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, m := range s.msgs {
		if m.Topic() == topic {
			out = append(out, m.Payload())
		}
	}
	return out
}

func (s *subscriber) last(topic string) string {
	p := s.on(topic)
	if len(p) == 0 {
		return ""
	}
	return string(p[len(p)-1])
}

func (s *subscriber) waitLast(t *testing.T, topic, want string) {
	t.Helper()
	waitFor(t, 20*time.Second, topic+" = "+want, func() bool { return s.last(topic) == want })
}

// eventMessages returns the <prefix>/events messages received.
func (s *subscriber) eventMessages(t *testing.T, prefix string) []MQTTEvent {
	t.Helper()
	var out []MQTTEvent
	for _, p := range s.on(prefix + "/events") {
		var e MQTTEvent
		if err := json.Unmarshal(p, &e); err != nil {
			t.Fatalf("events message %s: %v", p, err)
		}
		out = append(out, e)
	}
	return out
}

func mqttOptions(url string) *MQTTOptions {
	return &MQTTOptions{URL: url, Discovery: true, Cameras: []string{"yard"}, Labels: []string{"person"},
		Retry: Retry{Attempts: 0, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}}
}

// The MQTT target publishes Frigate-shaped events (QoS 1), retained
// counts, motion states and snapshots, says online, and offline when it
// stops.
func TestMQTTEventsStatesAndSnapshots(t *testing.T) {
	k := startKafka(t)
	mq := startMosquitto(t)
	sub := subscribe(t, mq.url())
	n := startNotifier(t, k.addr, Options{MQTT: mqttOptions(mq.url()), Links: Links{Base: "http://nvr:8080"}, Version: "9.9"})
	sub.waitLast(t, "streamd/available", "online")
	at := time.Now().UTC().Truncate(time.Microsecond)
	person := lifecycle("1762423821.000001-abcdef", "yard", events.TypeObject, "person", at)
	for i := range person {
		person[i].Snapshot = true
		person[i].Zones = []string{"porch"}
	}
	jpeg := append([]byte{0xff, 0xd8, 0xff}, bytes.Repeat([]byte("snapshot"), 100)...)
	k.publishSnapshot(t, person[0], jpeg)
	motion := lifecycle("1762423821.000002-ghijkl", "yard", events.TypeMotion, "", at)
	k.publish(t, motion[0], person[0], person[1])
	sub.waitLast(t, "streamd/yard/person", "1")
	sub.waitLast(t, "streamd/yard/motion", "ON")
	waitFor(t, 20*time.Second, "the snapshot", func() bool { return len(sub.on("streamd/yard/person/snapshot")) == 1 })
	if got := sub.on("streamd/yard/person/snapshot")[0]; !bytes.Equal(got, jpeg) {
		t.Errorf("snapshot: %d bytes, want the %d published", len(got), len(jpeg))
	}
	k.publish(t, person[2], motion[1], motion[2])
	sub.waitLast(t, "streamd/yard/person", "0")
	sub.waitLast(t, "streamd/yard/motion", "OFF")
	waitFor(t, 20*time.Second, "4 event messages", func() bool { return len(sub.eventMessages(t, "streamd")) == 4 })
	msgs := sub.eventMessages(t, "streamd")
	var personMsgs []MQTTEvent
	for _, m := range msgs {
		if m.After.ID == person[0].ID {
			personMsgs = append(personMsgs, m)
		}
	}
	if len(personMsgs) != 2 || personMsgs[0].Type != "new" || personMsgs[1].Type != "end" {
		t.Fatalf("person messages: %+v", personMsgs)
	}
	a := personMsgs[0].After
	if a.Camera != "yard" || a.Label != "person" || a.Kind != events.TypeObject || a.Score != 0.8 || a.TopScore != 0.8 || a.EndTime != nil ||
		!a.Active || !a.HasSnapshot || a.Severity != "alert" || len(a.EnteredZones) != 1 || a.EnteredZones[0] != "porch" ||
		a.StartTime != float64(at.UnixMicro())/1e6 || a.URLs.Snapshot != "http://nvr:8080/api/events/"+person[0].ID+"/snapshot.jpg" {
		t.Errorf("new's after: %+v", a)
	}
	end := personMsgs[1]
	if end.After.EndTime == nil || end.After.Active || end.Before.Phase != events.PhaseUpdate || end.After.Phase != events.PhaseEnd || len(end.After.CurrentZones) != 0 {
		t.Errorf("end: before %+v after %+v", end.Before, end.After)
	}
	// QoS 1 and retained where it should be.
	sub.mu.Lock()
	for _, m := range sub.msgs {
		if m.Qos() != 1 || (m.Topic() == "streamd/events" && m.Retained()) {
			t.Errorf("%s: qos %d retained %v", m.Topic(), m.Qos(), m.Retained())
		}
	}
	sub.mu.Unlock()
	late := subscribe(t, mq.url()) // a new subscriber gets the retained states at once
	late.waitLast(t, "streamd/yard/person/snapshot", string(jpeg))
	late.waitLast(t, "streamd/yard/motion", "OFF")
	late.waitLast(t, "streamd/yard/person", "0")
	// 1 snapshot, person 1 and 0, motion ON and OFF, 4 event messages
	// (discovery and availability are published apart).
	if m := n.metric(t, "mqtt"); m.Failed != 0 || m.Up != 1 || m.Delivered != 9 || m.Dropped[DropPhase] != 2 {
		t.Errorf("metrics: %+v", m)
	}
	n.stop()
	sub.waitLast(t, "streamd/available", "offline")
}

// Home Assistant discovery: one device per camera, motion, and per label
// an occupancy binary_sensor, a count sensor and a snapshot camera, each
// with a unique_id and availability, checked field by field.
func TestMQTTHomeAssistantDiscovery(t *testing.T) {
	k := startKafka(t)
	mq := startMosquitto(t)
	sub := subscribe(t, mq.url())
	startNotifier(t, k.addr, Options{MQTT: mqttOptions(mq.url()), Links: Links{Base: "https://nvr.example.org"}, Version: "9.9"})
	get := func(topic string) map[string]any {
		t.Helper()
		waitFor(t, 20*time.Second, topic, func() bool { return sub.last(topic) != "" })
		var m map[string]any
		if err := json.Unmarshal([]byte(sub.last(topic)), &m); err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		return m
	}
	device := map[string]any{"identifiers": []any{"streamd_yard"}, "name": "yard", "manufacturer": "streamd", "model": "camera",
		"sw_version": "9.9", "configuration_url": "https://nvr.example.org/cameras/yard"}
	common := map[string]any{"availability_topic": "streamd/available", "payload_available": "online", "payload_not_available": "offline",
		"device": device, "origin": map[string]any{"name": "streamd", "sw_version": "9.9"}, "qos": float64(1)}
	want := map[string]map[string]any{
		"homeassistant/binary_sensor/streamd_yard/motion/config": {"name": "Motion", "unique_id": "streamd_yard_motion",
			"state_topic": "streamd/yard/motion", "payload_on": "ON", "payload_off": "OFF", "device_class": "motion"},
		"homeassistant/binary_sensor/streamd_yard/person_occupancy/config": {"name": "Person occupancy", "unique_id": "streamd_yard_person_occupancy",
			"state_topic": "streamd/yard/person", "payload_on": "ON", "payload_off": "OFF", "device_class": "occupancy",
			"value_template": "{{ 'ON' if value | int > 0 else 'OFF' }}"},
		"homeassistant/sensor/streamd_yard/person_count/config": {"name": "Person count", "unique_id": "streamd_yard_person_count",
			"state_topic": "streamd/yard/person", "state_class": "measurement", "icon": "mdi:counter"},
		"homeassistant/camera/streamd_yard/person_snapshot/config": {"name": "Person snapshot", "unique_id": "streamd_yard_person_snapshot",
			"topic": "streamd/yard/person/snapshot"},
	}
	for topic, fields := range want {
		got := get(topic)
		for k, v := range common {
			fields[k] = v
		}
		for k, v := range fields {
			if fmt.Sprint(got[k]) != fmt.Sprint(v) {
				t.Errorf("%s: %s = %v, want %v", topic, k, got[k], v)
			}
		}
		for k := range got {
			if _, ok := fields[k]; !ok {
				t.Errorf("%s: field %s not expected (%v)", topic, k, got[k])
			}
		}
	}
	// A label seen for the first time, on a camera not configured, is
	// announced then.
	at := time.Now().UTC()
	k.publish(t, lifecycle("1762423821.000003-mnopqr", "gate.2", events.TypeObject, "traffic light", at)[0])
	c := get("homeassistant/sensor/streamd_gate_2/traffic_light_count/config")
	if c["name"] != "Traffic light count" || c["state_topic"] != "streamd/gate.2/traffic_light" || c["unique_id"] != "streamd_gate_2_traffic_light_count" {
		t.Errorf("new label's sensor: %v", c)
	}
	get("homeassistant/binary_sensor/streamd_gate_2/motion/config")
	sub.waitLast(t, "streamd/gate.2/traffic_light", "1")
}

// The broker goes away: streamd stays up, /readyz's degraded reason says
// so, and the messages arrive once the broker is back.
func TestMQTTBrokerDownThenBack(t *testing.T) {
	t.Parallel()
	k := startKafka(t)
	mq := startMosquitto(t)
	n := startNotifier(t, k.addr, Options{MQTT: mqttOptions(mq.url())})
	waitFor(t, 20*time.Second, "connected", func() bool { return n.n.Degraded() == "" })
	mq.stop()
	waitFor(t, 20*time.Second, "the broker's loss to show", func() bool { return strings.Contains(n.n.Degraded(), "mqtt: not connected to mqtt://127.0.0.1") })
	at := time.Now().UTC()
	person := lifecycle("1762423821.000004-stuvwx", "yard", events.TypeObject, "person", at)
	k.publish(t, person...)
	time.Sleep(3 * time.Second)
	if n.n.Ready() != nil {
		t.Errorf("a broker down made the notifier unready: %v", n.n.Ready())
	}
	mq.start()
	sub := subscribe(t, mq.url())
	waitFor(t, 40*time.Second, "new and end after the broker returned", func() bool { return len(sub.eventMessages(t, "streamd")) >= 2 })
	msgs := sub.eventMessages(t, "streamd")
	if msgs[0].Type != "new" || msgs[1].Type != "end" || msgs[0].After.ID != person[0].ID {
		t.Errorf("messages after the outage: %+v", msgs)
	}
	sub.waitLast(t, "streamd/yard/person", "0")
	sub.waitLast(t, "streamd/available", "online")
	if m := n.metric(t, "mqtt"); m.Retried == 0 || m.Up != 1 {
		t.Errorf("metrics: %+v", m)
	}
}

// publishRetained publishes payloads retained by topic, as another client.
func publishRetained(t *testing.T, url string, payloads map[string]string) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(strings.Replace(url, "mqtt://", "tcp://", 1)).SetClientID(fmt.Sprintf("test-pub-%d", time.Now().UnixNano()))
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	for topic, p := range payloads {
		if tok := c.Publish(topic, 1, true, p); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
}

// States a crash left retained (motion ON, a person present) are cleared
// when the notifier of an all-in-one starts (FreshStates: its analysis
// begins afresh), and an event going on is shown as it is.
func TestMQTTFreshStatesClearWhatACrashLeft(t *testing.T) {
	k := startKafka(t)
	mq := startMosquitto(t)
	publishRetained(t, mq.url(), map[string]string{"streamd/yard/motion": "ON", "streamd/yard/person": "2", "streamd/gate/motion": "ON"})
	o := mqttOptions(mq.url())
	o.Cameras, o.FreshStates = []string{"yard", "gate"}, true
	n := startNotifier(t, k.addr, Options{MQTT: o})
	late := subscribe(t, mq.url())
	late.waitLast(t, "streamd/available", "online")
	late.waitLast(t, "streamd/yard/motion", "OFF")
	late.waitLast(t, "streamd/yard/person", "0")
	late.waitLast(t, "streamd/gate/motion", "OFF")
	late.waitLast(t, "streamd/gate/person", "0")
	k.publish(t, lifecycle("1762423821.000005-abcxyz", "gate", events.TypeMotion, "", time.Now().UTC())[0])
	late.waitLast(t, "streamd/gate/motion", "ON")
	if m := n.metric(t, "mqtt"); m.Failed != 0 || m.Up != 1 {
		t.Errorf("metrics: %+v", m)
	}
}

// Without FreshStates (a notifier of its own: the events may have begun
// before it started), retained states are left alone, and after the
// broker restarts without persistence, the states the notifier published
// are published again without waiting for the next event.
func TestMQTTStatesSurviveABrokerRestart(t *testing.T) {
	k := startKafka(t)
	mq := startMosquitto(t)
	publishRetained(t, mq.url(), map[string]string{"streamd/gate/motion": "ON"})
	n := startNotifier(t, k.addr, Options{MQTT: mqttOptions(mq.url())})
	sub := subscribe(t, mq.url())
	sub.waitLast(t, "streamd/available", "online")
	k.publish(t, lifecycle("1762423821.000006-abcxyz", "yard", events.TypeObject, "person", time.Now().UTC())[0])
	sub.waitLast(t, "streamd/yard/person", "1")
	mq.stop()
	waitFor(t, 20*time.Second, "the broker's loss to show", func() bool { return n.n.Degraded() != "" })
	mq.start()
	waitFor(t, 40*time.Second, "reconnected", func() bool { return n.n.Degraded() == "" })
	late := subscribe(t, mq.url())
	late.waitLast(t, "streamd/available", "online")
	late.waitLast(t, "streamd/yard/person", "1")
	if got := late.on("streamd/gate/motion"); len(got) != 0 {
		t.Errorf("streamd/gate/motion after the broker restarted: %q, want nothing (never published by the notifier)", got)
	}
	if got := sub.on("streamd/gate/motion"); len(got) != 1 || string(got[0]) != "ON" {
		t.Errorf("streamd/gate/motion: %q, want the retained ON left alone", got)
	}
}
