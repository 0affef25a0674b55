//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/testutil/mp4check"
)

// notifyAllInOne is the all-in-one of TestNotifyWebhookAndMQTT: the door
// camera is a clip of an object crossing a still scene, looped (a motion
// event that begins and ends every 9 s); the hall is vtest.avi's people
// (person events, with snapshots).
func notifyAllInOne(doorClip, secretFile, doorHook, peopleHook, mqttURL string) string {
	return fmt.Sprintf(`http:
  listen: 127.0.0.1:0
embedded:
  listen: 127.0.0.1:0
analyzer:
  enabled: true
  gap: 2s
  faces:
    enabled: false
recording:
  enabled: true
cameras:
  - id: door
    source: %s
    loop: true
    fps: 10
    objects: false
  - id: hall
    source: %s
    loop: true
    fps: 10
notify:
  cooldown: 0s
  backoff: 200ms
  max_backoff: 1s
  attempts: 0
  webhooks:
    - name: door
      url: %s
      secret_file: %s
      headers: ["X-Tenant: e2e"]
      rules:
        cameras: [door]
        types: [motion]
    - name: people
      url: %s
      secret_file: %s
      headers: ["X-Tenant: e2e"]
      rules:
        types: [object]
        labels: [person]
  mqtt:
    url: %s
    topic_prefix: e2e
`, doorClip, vtestPath, doorHook, secretFile, peopleHook, secretFile, mqttURL)
}

// keysOf returns the distinct idempotency keys of ds in arrival order.
func keysOf(ds []delivery) []string {
	var out []string
	for _, d := range ds {
		if !slices.Contains(out, d.Body.IdempotencyKey) {
			out = append(out, d.Body.IdempotencyKey)
		}
	}
	return out
}

// TestNotifyWebhookAndMQTT runs one all-in-one streamd whose analyzer
// finds events in its cameras' pictures and tells two signed webhooks and
// a real Mosquitto about them. It checks what a webhook user and a Home
// Assistant user get: signed POSTs whose links open the event, its
// snapshot, its clip and the camera's page; Frigate-shaped MQTT events,
// retained motion ON/OFF, counts, snapshots, availability and Home
// Assistant discovery. Then the receiver is down for 12 s: /readyz stays
// 200 and names the webhook, and once it is back every change is
// delivered, in order. Last, a crash (SIGKILL: the last will says
// offline) and a clean stop (offline published).
func TestNotifyWebhookAndMQTT(t *testing.T) {
	t.Parallel() // waits for events and deliveries; no timing bound
	mq := startMosquitto(t)
	sub := subscribeMQTT(t, mq, "#")
	const secret = "e2e-webhook-secret"
	secretFile := filepath.Join(t.TempDir(), "hook.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hook := newHookReceiver(t, secret, map[string]string{"X-Tenant": "e2e"})
	door := shortObjectClip(t, "door", 7)
	p := startStreamd(t, "all", notifyAllInOne(door.path, secretFile, hook.url("/door"), hook.url("/people"), mq.url()))
	p.waitReady(t)
	base := strings.TrimSuffix(p.url("/"), "/") // http://127.0.0.1:<the port it got>

	// A door event notified from its beginning to its end, a person, and
	// their MQTT messages.
	ended := waitDoorEnd(t, hook)
	waitFor(t, "a person at the webhook", 120*time.Second, func() string {
		if len(hook.deliveries("/people")) > 0 {
			return ""
		}
		return "none yet"
	})
	waitFor(t, "door motion ON then OFF, a person's snapshot on MQTT", 60*time.Second, func() string {
		motion := sub.payloads("e2e/door/motion")
		if i := slices.Index(motion, "ON"); i < 0 || !slices.Contains(motion[i:], "OFF") {
			return fmt.Sprintf("e2e/door/motion: %v", motion)
		}
		if len(sub.on("e2e/hall/person/snapshot")) == 0 {
			return "no e2e/hall/person/snapshot"
		}
		return ""
	})

	t.Run("webhook: each door event new then end, in order, with its links", func(t *testing.T) {
		ds := hook.deliveries("/door")
		types := map[string][]string{} // event id -> notification types, in order
		var ids []string
		for _, key := range keysOf(ds) {
			id, typ, _ := strings.Cut(key, ":")
			if types[id] == nil {
				ids = append(ids, id)
			}
			types[id] = append(types[id], typ)
		}
		for _, id := range ids {
			if got := strings.Join(types[id], ","); got != "new" && got != "new,end" {
				t.Errorf("event %s: notified %s, want new then end (notify.phases)", id, got)
			}
		}
		var prev time.Time
		for _, d := range ds {
			if d.Event.Camera != "door" || d.Event.Type != "motion" || d.Body.Target != "door" {
				t.Errorf("door webhook got camera %q type %q target %q", d.Event.Camera, d.Event.Type, d.Body.Target)
			}
			if d.Body.Type == "new" && d.Event.Start.Before(prev) {
				t.Errorf("event %s (start %v) notified after one that started at %v", d.Event.ID, d.Event.Start, prev)
			}
			if d.Body.Type == "new" {
				prev = d.Event.Start
			}
		}
		// The links of the end: absolute, on this process's address, and
		// they open what they name.
		u, id := ended.Body.URLs, ended.Event.ID
		if ended.Event.End == nil || ended.Event.Phase != "end" {
			t.Errorf("the end notification's event has phase %q, end %v", ended.Event.Phase, ended.Event.End)
		}
		if u.Event != base+"/api/events/"+id || !strings.HasPrefix(u.Camera, base+"/cameras/door?at=") || u.Clip != base+"/api/events/"+id+"/clip.mp4" {
			t.Fatalf("links %+v, want them on %s", u, base)
		}
		body, err := fetch(u.Event, "application/json")
		if err != nil {
			t.Fatal(err)
		}
		var got notifiedEvent
		if err := json.Unmarshal(body, &got); err != nil || got.ID != id || got.Camera != "door" {
			t.Errorf("event link gave %v %s", err, body)
		}
		if _, err := fetch(u.Camera, "text/html"); err != nil {
			t.Error(err)
		}
		if ended.Event.Snapshot != (u.Snapshot != "") {
			t.Errorf("event snapshot %v, snapshot link %q", ended.Event.Snapshot, u.Snapshot)
		}
		if u.Snapshot != "" {
			if u.Snapshot != base+"/api/events/"+id+"/snapshot.jpg" {
				t.Errorf("snapshot link %q", u.Snapshot)
			}
			jpg, err := fetch(u.Snapshot, "image/jpeg")
			if err == nil {
				err = checkJPEG(jpg)
			}
			if err != nil {
				t.Errorf("snapshot: %v", err)
			}
		}
		mp4, err := fetch(u.Clip, "video/mp4")
		if err != nil {
			t.Fatal(err)
		}
		if m, err := mp4check.Parse(mp4); err != nil || m.Duration <= 0 {
			t.Errorf("clip: %v, %+v", err, m)
		}
	})

	t.Run("webhook: a person with its snapshot", func(t *testing.T) {
		d := hook.deliveries("/people")[0]
		if d.Body.Type != "new" || d.Event.Type != "object" || d.Event.Label != "person" || d.Event.Camera != "hall" {
			t.Fatalf("first person delivery: %s of a %s %q on %s", d.Body.Type, d.Event.Type, d.Event.Label, d.Event.Camera)
		}
		if !d.Event.Snapshot || d.Body.URLs.Snapshot == "" {
			t.Fatalf("a person event without a snapshot: %+v", d.Body.URLs)
		}
		jpg, err := fetch(d.Body.URLs.Snapshot, "image/jpeg")
		if err == nil {
			err = checkJPEG(jpg)
		}
		if err != nil {
			t.Fatalf("person snapshot: %v", err)
		}
	})

	t.Run("mqtt: Frigate-shaped events", func(t *testing.T) {
		type details struct {
			ID          string   `json:"id"`
			Camera      string   `json:"camera"`
			Label       string   `json:"label"`
			StartTime   float64  `json:"start_time"`
			EndTime     *float64 `json:"end_time"`
			Active      bool     `json:"active"`
			HasSnapshot bool     `json:"has_snapshot"`
			HasClip     bool     `json:"has_clip"`
			URLs        struct {
				Event string `json:"event"`
			} `json:"urls"`
		}
		byID := map[string][]string{}
		for _, m := range sub.on("e2e/events") {
			var msg struct {
				Type   string          `json:"type"`
				Before json.RawMessage `json:"before"`
				After  json.RawMessage `json:"after"`
			}
			var before, after details
			if err := json.Unmarshal(m.Payload, &msg); err != nil || json.Unmarshal(msg.Before, &before) != nil || json.Unmarshal(msg.After, &after) != nil {
				t.Fatalf("e2e/events: not {type, before, after}: %s", m.Payload)
			}
			if before.ID != after.ID || after.ID == "" || after.StartTime < 1e9 || !after.HasClip {
				t.Errorf("e2e/events %s: before %+v, after %+v", msg.Type, before, after)
			}
			if after.URLs.Event != base+"/api/events/"+after.ID {
				t.Errorf("e2e/events: event link %q", after.URLs.Event)
			}
			switch msg.Type {
			case "new":
				if after.EndTime != nil || !after.Active {
					t.Errorf("new with end_time %v, active %v", after.EndTime, after.Active)
				}
			case "end":
				if after.EndTime == nil || *after.EndTime < after.StartTime || after.Active {
					t.Errorf("end with end_time %v (start %v), active %v", after.EndTime, after.StartTime, after.Active)
				}
			default:
				t.Errorf("e2e/events type %q (notify.phases is new and end)", msg.Type)
			}
			if after.Camera == "door" {
				if after.Label != "motion" {
					t.Errorf("door event labelled %q", after.Label)
				}
				byID[after.ID] = append(byID[after.ID], msg.Type)
			}
		}
		if got := strings.Join(byID[ended.Event.ID], ","); got != "new,end" {
			t.Errorf("e2e/events of door event %s: %s, want new,end", ended.Event.ID, got)
		}
	})

	t.Run("mqtt: states, snapshot and availability, retained", func(t *testing.T) {
		counts := sub.payloads("e2e/hall/person")
		some := false
		for _, c := range counts {
			n, err := strconv.Atoi(c)
			if err != nil || n < 0 {
				t.Fatalf("e2e/hall/person: %q is not a count", c)
			}
			some = some || n > 0
		}
		if !some {
			t.Errorf("e2e/hall/person never above 0: %v", counts)
		}
		kept := retainedNow(t, mq, "#")
		if got := string(kept["e2e/available"]); got != "online" {
			t.Errorf("retained e2e/available %q, want online", got)
		}
		if got := string(kept["e2e/door/motion"]); got != "ON" && got != "OFF" {
			t.Errorf("retained e2e/door/motion %q", got)
		}
		if _, err := strconv.Atoi(string(kept["e2e/hall/person"])); err != nil {
			t.Errorf("retained e2e/hall/person %q", kept["e2e/hall/person"])
		}
		if err := checkJPEG(kept["e2e/hall/person/snapshot"]); err != nil {
			t.Errorf("retained e2e/hall/person/snapshot: %v", err)
		}
	})

	t.Run("home assistant discovery", func(t *testing.T) {
		kept := retainedNow(t, mq, "homeassistant/#")
		type config struct {
			Name                string `json:"name"`
			UniqueID            string `json:"unique_id"`
			StateTopic          string `json:"state_topic"`
			Topic               string `json:"topic"`
			ValueTemplate       string `json:"value_template"`
			PayloadOn           string `json:"payload_on"`
			PayloadOff          string `json:"payload_off"`
			DeviceClass         string `json:"device_class"`
			StateClass          string `json:"state_class"`
			AvailabilityTopic   string `json:"availability_topic"`
			PayloadAvailable    string `json:"payload_available"`
			PayloadNotAvailable string `json:"payload_not_available"`
			Device              struct {
				Identifiers      []string `json:"identifiers"`
				Name             string   `json:"name"`
				ConfigurationURL string   `json:"configuration_url"`
			} `json:"device"`
			Origin struct {
				Name string `json:"name"`
			} `json:"origin"`
		}
		unique := map[string]string{}
		for topic, payload := range kept {
			var c config
			if err := json.Unmarshal(payload, &c); err != nil {
				t.Errorf("%s: %v: %s", topic, err, payload)
				continue
			}
			// <prefix>/<component>/<node_id>/<object_id>/config
			parts := strings.Split(topic, "/")
			if len(parts) != 5 || parts[4] != "config" || !slices.Contains([]string{"binary_sensor", "sensor", "camera"}, parts[1]) {
				t.Errorf("discovery topic %s", topic)
				continue
			}
			camera := strings.TrimPrefix(parts[2], "streamd_")
			if c.Name == "" || c.UniqueID == "" || c.AvailabilityTopic != "e2e/available" || c.PayloadAvailable != "online" || c.PayloadNotAvailable != "offline" || c.Origin.Name != "streamd" {
				t.Errorf("%s: %s", topic, payload)
			}
			if other, dup := unique[c.UniqueID]; dup {
				t.Errorf("unique_id %s of %s and %s", c.UniqueID, topic, other)
			}
			unique[c.UniqueID] = topic
			if len(c.Device.Identifiers) != 1 || c.Device.Identifiers[0] != parts[2] || c.Device.Name != camera || c.Device.ConfigurationURL != base+"/cameras/"+camera {
				t.Errorf("%s: device %+v", topic, c.Device)
			}
			if parts[1] == "camera" && (c.Topic == "" || c.StateTopic != "") || parts[1] != "camera" && (c.StateTopic == "" || c.Topic != "") {
				t.Errorf("%s: state_topic %q, topic %q", topic, c.StateTopic, c.Topic)
			}
		}
		want := map[string]func(config) bool{
			"homeassistant/binary_sensor/streamd_door/motion/config": func(c config) bool {
				return c.StateTopic == "e2e/door/motion" && c.DeviceClass == "motion" && c.PayloadOn == "ON" && c.PayloadOff == "OFF"
			},
			"homeassistant/binary_sensor/streamd_hall/person_occupancy/config": func(c config) bool {
				return c.StateTopic == "e2e/hall/person" && c.DeviceClass == "occupancy" && c.PayloadOn == "ON" && c.PayloadOff == "OFF" && strings.Contains(c.ValueTemplate, "value | int > 0")
			},
			"homeassistant/sensor/streamd_hall/person_count/config": func(c config) bool {
				return c.StateTopic == "e2e/hall/person" && c.StateClass == "measurement"
			},
			"homeassistant/camera/streamd_hall/person_snapshot/config": func(c config) bool {
				return c.Topic == "e2e/hall/person/snapshot"
			},
		}
		for topic, ok := range want {
			var c config
			if err := json.Unmarshal(kept[topic], &c); err != nil || !ok(c) {
				t.Errorf("%s retained: %v %s", topic, err, kept[topic])
			}
		}
		// A device's link opens its camera's page.
		if _, err := fetch(base+"/cameras/door", "text/html"); err != nil {
			t.Error(err)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := p.metrics(t)
		for series, least := range map[string]float64{
			`streamd_notify_delivered_total{target="webhook.door"}`:   float64(len(keysOf(hook.deliveries("/door")))),
			`streamd_notify_delivered_total{target="webhook.people"}`: 1,
			`streamd_notify_delivered_total{target="mqtt"}`:           1,
			`streamd_notify_up{target="mqtt"}`:                        1,
			`streamd_notify_up{target="webhook.door"}`:                1,
		} {
			if v, ok := m.get(series); !ok || v < least {
				t.Errorf("%s = %v (present %v), want at least %v", series, v, ok, least)
			}
		}
	})
	if t.Failed() {
		return
	}

	// The receiver goes away for 12 s (more than a door event's period).
	downAt := time.Now()
	hook.down()
	waitFor(t, "/readyz naming the webhook that is down", 60*time.Second, func() string {
		code, checks, err := p.readyz()
		if err != nil {
			return err.Error()
		}
		if n := checks["notifier"]; code != 200 || !strings.HasPrefix(n, "degraded: ") || !strings.Contains(n, "webhook.door: failing since") {
			return fmt.Sprintf("%d, notifier %q", code, n)
		}
		return ""
	})
	if v := p.metric(t, `streamd_notify_up{target="webhook.door"}`); v != 0 {
		t.Errorf(`streamd_notify_up{target="webhook.door"} = %v while the receiver is down`, v)
	}
	time.Sleep(time.Until(downAt.Add(12 * time.Second)))
	hook.up()
	upAt := time.Now()
	if v := p.metric(t, `streamd_notify_retried_total{target="webhook.door"}`); v == 0 {
		t.Errorf("no retries counted while the receiver was down")
	}
	// Deliveries resume: the door's order is kept, so once an event that
	// began after the receiver came back is notified, every change before
	// it has been delivered.
	var after delivery
	waitFor(t, "the new of a door event that began after the receiver came back", 90*time.Second, func() string {
		for _, d := range hook.deliveries("/door") {
			if d.Body.Type == "new" && d.Event.Start.After(upAt) {
				after = d
				return ""
			}
		}
		return fmt.Sprintf("door deliveries: %v", keysOf(hook.deliveries("/door")))
	})
	// What should have come: every change of the door's motion events in
	// the events topic before that event began.
	// (From the first door event notified on: the notifier's group began
	// at the newest events when it started.)
	first := hook.deliveries("/door")[0].Event.Start
	var want []string
	duringOutage, reached := 0, false
	for _, r := range readTopic(t, "streamd.events", true, p.broker) {
		var e notifiedEvent
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatalf("events topic: %v: %s", err, r.Value)
		}
		if e.Camera != "door" || e.Type != "motion" || reached || e.Start.Before(first) {
			continue
		}
		if e.ID == after.Event.ID { // the door's records are one partition, in order
			reached = true
			continue
		}
		switch e.Phase {
		case "start":
			want = append(want, e.ID+":new")
			if e.Start.After(downAt) && e.Start.Before(upAt) {
				duringOutage++
			}
		case "end":
			want = append(want, e.ID+":end")
		}
	}
	if duringOutage == 0 {
		t.Fatalf("no door event began while the receiver was down (%v to %v): nothing was tested", downAt, upAt)
	}
	var got []string
	for _, k := range keysOf(hook.deliveries("/door")) {
		if slices.Contains(want, k) {
			got = append(got, k)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("delivered, in order of first arrival:\n  %v\nthe events topic's door changes before %s:\n  %v", got, after.Event.ID, want)
	}
	t.Logf("receiver down for %v: %d door events began meanwhile; the %d door changes before %s delivered in order, %d requests in all",
		upAt.Sub(downAt).Round(time.Second), duringOutage, len(want), after.Event.ID, len(hook.deliveries("/door")))
	waitFor(t, "/readyz ok again", 30*time.Second, func() string {
		code, checks, err := p.readyz()
		if err != nil {
			return err.Error()
		}
		if code != 200 || checks["notifier"] != "ok" {
			return fmt.Sprintf("%d, notifier %q", code, checks["notifier"])
		}
		return ""
	})

	// A crash: the broker says offline for it (the last will).
	availability := func() []string { return sub.payloads("e2e/available") }
	n := len(availability())
	p.kill()
	waitFor(t, "the last will on e2e/available", 15*time.Second, func() string {
		if a := availability(); len(a) > n && a[len(a)-1] == "offline" {
			return ""
		}
		return fmt.Sprintf("%v", availability()[n:])
	})
	// Back: online again; a clean stop says offline itself.
	n = len(availability())
	p.start()
	p.waitReady(t)
	waitFor(t, "online on e2e/available after the restart", 30*time.Second, func() string {
		if a := availability(); len(a) > n && a[len(a)-1] == "online" {
			return ""
		}
		return fmt.Sprintf("%v", availability()[n:])
	})
	// Something is going on when it stops (vtest.avi's walkers are one
	// long motion event).
	motion := len(sub.payloads("e2e/hall/motion"))
	waitFor(t, "the hall's motion ON after the restart", 60*time.Second, func() string {
		if m := sub.payloads("e2e/hall/motion"); len(m) > motion && m[len(m)-1] == "ON" {
			return ""
		}
		return fmt.Sprintf("%v", sub.payloads("e2e/hall/motion")[motion:])
	})
	n = len(availability())
	if err := p.terminate(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "offline on e2e/available after SIGTERM", 15*time.Second, func() string {
		if a := availability(); len(a) > n && a[len(a)-1] == "offline" {
			return ""
		}
		return fmt.Sprintf("%v", availability()[n:])
	})
	// The analysis ended every event as it stopped, and the notifier
	// delivered the ends before it said offline: Home Assistant is left
	// with motion OFF and counts of 0, not someone present for ever.
	kept := retainedNow(t, mq, "e2e/#")
	if got := string(kept["e2e/available"]); got != "offline" {
		t.Errorf("retained e2e/available after the stop: %q", got)
	}
	states := 0
	for topic, payload := range kept {
		parts := strings.Split(topic, "/")
		if len(parts) != 3 || parts[1] == "events" { // e2e/<camera>/<label>
			continue
		}
		states++
		if want := map[bool]string{true: "OFF", false: "0"}[parts[2] == "motion"]; string(payload) != want {
			t.Errorf("retained %s after a clean stop: %q, want %q", topic, payload, want)
		}
	}
	if states < 3 {
		t.Errorf("retained states after the stop: %d of %v", states, slices.Sorted(maps.Keys(kept)))
	}
}

// TestNotifierRole runs the notifier as a role of its own: an all-in-one
// analyzes a camera (and notifies nobody), a notifier process reads its
// events from its broker and POSTs them, with links to the all-in-one's
// page from http.public_url. Without http.public_url the notifier role
// is refused, naming the key: its own address serves no page.
func TestNotifierRole(t *testing.T) {
	t.Parallel() // waits for events and deliveries; no timing bound
	const secret = "e2e-role-secret"
	hook := newHookReceiver(t, secret, nil)
	door := shortObjectClip(t, "door", 8)
	nvr := startStreamd(t, "nvr", fmt.Sprintf(`http:
  listen: 127.0.0.1:0
embedded:
  listen: 127.0.0.1:0
analyzer:
  enabled: true
  gap: 2s
  faces:
    enabled: false
  objects:
    enabled: false
cameras:
  - id: door
    source: %s
    loop: true
    fps: 10
`, door.path))
	nvr.waitReady(t)
	page := strings.TrimSuffix(nvr.url("/"), "/")
	notifier := func(publicURL string) string {
		return fmt.Sprintf(`role: notifier
http:
  listen: 127.0.0.1:0
  public_url: %q
embedded:
  enabled: false
kafka:
  brokers: [%q]
notify:
  webhooks:
    - name: door
      url: %s
      secret_env: E2E_HOOK_SECRET
`, publicURL, nvr.broker, hook.url("/door"))
	}

	cfg := filepath.Join(t.TempDir(), "notifier.yaml")
	if err := os.WriteFile(cfg, []byte(notifier("")), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "--config", cfg)
	cmd.Env = append(os.Environ(), "E2E_HOOK_SECRET="+secret)
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), `"http.public_url": role "notifier" sends links to the page`) {
		t.Fatalf("role notifier without http.public_url: exit %d (%v), want 2 naming the key:\n%s", code, err, out)
	}

	n := startProc(t, procSpec{name: "notifier", yaml: notifier(page), env: []string{"E2E_HOOK_SECRET=" + secret}})
	n.waitReady(t)
	ended := waitDoorEnd(t, hook)
	u := ended.Body.URLs
	if u.Event != page+"/api/events/"+ended.Event.ID || !strings.HasPrefix(u.Camera, page+"/cameras/door?at=") {
		t.Fatalf("links %+v, want them on the page's address %s", u, page)
	}
	if u.Clip != "" {
		t.Errorf("clip link %q though nothing records", u.Clip)
	}
	for _, l := range []struct{ url, ctype string }{{u.Event, "application/json"}, {u.Camera, "text/html"}, {u.Snapshot, "image/jpeg"}} {
		if l.url == "" {
			t.Errorf("no %s link in %+v", l.ctype, u)
			continue
		}
		if _, err := fetch(l.url, l.ctype); err != nil {
			t.Error(err)
		}
	}
	if code, checks, err := n.readyz(); err != nil || code != 200 || checks["notifier"] != "ok" {
		t.Errorf("notifier /readyz: %d %v %v", code, checks, err)
	}
}

// waitDoorEnd waits for the end of a door event at the webhook's /door
// and returns its delivery.
func waitDoorEnd(t *testing.T, hook *hookReceiver) delivery {
	t.Helper()
	var ended delivery
	waitFor(t, "a door event's end at the webhook", 120*time.Second, func() string {
		for _, d := range hook.deliveries("/door") {
			if d.Body.Type == "end" {
				ended = d
				return ""
			}
		}
		return fmt.Sprintf("door deliveries: %v", keysOf(hook.deliveries("/door")))
	})
	return ended
}
