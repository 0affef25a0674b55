package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/redact"
)

// MQTT timing: how long one publish may wait for its acknowledgement, and
// the reconnection back-off's cap (paho's own is 10 minutes: a broker that
// returns would wait that long).
const (
	publishTimeout  = 10 * time.Second
	maxReconnectGap = 10 * time.Second
)

// MQTTOptions is the MQTT target.
type MQTTOptions struct {
	// URL is the broker: mqtt:// or tcp:// (port 1883 by default),
	// mqtts://, ssl:// or tls:// (8883), ws:// or wss://. A user and
	// password in it are used when Username is empty, and never shown.
	URL string
	// Username and Password authenticate to the broker.
	Username, Password string
	// ClientID is the MQTT client id; "": streamd-<host>-<random>, so that
	// two notifiers never take each other's connection.
	ClientID string
	// TopicPrefix starts every topic; "": DefaultTopicPrefix.
	TopicPrefix string
	// CAFile, CertFile and KeyFile are PEM files for TLS (a CA other
	// than the system's; a client certificate); InsecureSkipVerify turns
	// verification off (testing only).
	CAFile, CertFile, KeyFile string
	InsecureSkipVerify        bool
	// Discovery publishes Home Assistant discovery configs under
	// DiscoveryPrefix ("": DefaultDiscoveryTopic).
	Discovery       bool
	DiscoveryPrefix string
	// Cameras and Labels are announced to Home Assistant at once; others
	// are announced when their first event arrives.
	Cameras, Labels []string
	// FreshStates says that every event of these cameras begins after
	// this notifier started (the analysis runs in the same process, and
	// a restart begins afresh): on connecting, the states of Cameras and
	// Labels are published as the notifier knows them, motion OFF and
	// counts 0 unless an event is going on, which clears those a crash
	// left retained ("ON" for ever). Without it, only the states already
	// published are published again on a new connection.
	FreshStates bool
	// Rules choose which changes go to <prefix>/events (the states follow
	// every event of the cameras the rules allow); Retry how a publish is
	// retried.
	Rules Rules
	Retry Retry
}

// mqttTarget publishes to an MQTT broker: the event messages the rules
// let through, and the states of every event of the allowed cameras.
type mqttTarget struct {
	o        MQTTOptions
	links    Links
	version  string
	log      *slog.Logger
	snapshot func(ctx context.Context, e events.Event) ([]byte, error)
	client   paho.Client
	url      string // redacted

	connected   atomic.Bool
	lastErr     atomic.Pointer[string]
	onConnect   chan struct{} // a connection was made: announce again
	closeOnce   sync.Once
	runningOnce atomic.Bool

	mu        sync.Mutex
	cams      map[string]*camState
	announced map[string]bool   // camera + "\x00" + label ("" for the camera itself) announced on this connection
	published map[string]string // retained state topic -> payload last published

	snapshotsMissing atomic.Uint64
}

// camState is what one camera has going on now.
type camState struct {
	motion map[string]bool            // active motion event ids
	labels map[string]map[string]bool // label -> active event ids
}

func newMQTT(o MQTTOptions, links Links, version string, log *slog.Logger, snapshot func(context.Context, events.Event) ([]byte, error)) (*mqttTarget, error) {
	if o.TopicPrefix == "" {
		o.TopicPrefix = DefaultTopicPrefix
	}
	if o.DiscoveryPrefix == "" {
		o.DiscoveryPrefix = DefaultDiscoveryTopic
	}
	if version == "" {
		version = "dev"
	}
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("mqtt url %q: want mqtt://host:port", redact.URL(o.URL))
	}
	if u.User != nil && o.Username == "" {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	u.User = nil // paho never sees the credentials in the URL, so never quotes them
	secure := false
	port := "1883"
	switch u.Scheme {
	case "mqtt", "tcp":
	case "mqtts", "ssl", "tls":
		secure, port = true, "8883"
	case "ws":
		port = "80"
	case "wss":
		secure, port = true, "443"
	default:
		return nil, fmt.Errorf("mqtt url %q: scheme %q: want mqtt, mqtts, tcp, ssl, tls, ws or wss", redact.URL(o.URL), u.Scheme)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	m := &mqttTarget{o: o, links: links, version: version, log: log.With("target", "mqtt"), snapshot: snapshot,
		url: redact.URL(u.String()), onConnect: make(chan struct{}, 1),
		cams: map[string]*camState{}, announced: map[string]bool{}, published: map[string]string{}}
	if o.ClientID == "" {
		host, _ := os.Hostname()
		o.ClientID = fmt.Sprintf("streamd-%s-%06x", topicSafe(host), rand.Uint32()&0xffffff)
		m.o.ClientID = o.ClientID
	}
	po := paho.NewClientOptions().AddBroker(u.String()).SetClientID(o.ClientID).
		SetUsername(o.Username).SetPassword(o.Password).
		SetCleanSession(true).SetOrderMatters(false).
		SetKeepAlive(30*time.Second).SetConnectTimeout(10*time.Second).SetWriteTimeout(publishTimeout).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(time.Second).SetMaxReconnectInterval(maxReconnectGap).
		// The broker says offline for us when we vanish (a crash).
		SetWill(m.availableTopic(), "offline", 1, true).
		SetOnConnectHandler(func(paho.Client) {
			m.connected.Store(true)
			select {
			case m.onConnect <- struct{}{}:
			default:
			}
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			m.connected.Store(false)
			m.setErr(err)
			m.log.Warn("mqtt connection lost, reconnecting", "broker", m.url, "err", redact.Error(err))
		}).
		SetConnectionNotificationHandler(func(_ paho.Client, n paho.ConnectionNotification) {
			switch n := n.(type) {
			case paho.ConnectionNotificationFailed:
				m.setErr(n.Reason)
			case paho.ConnectionNotificationBrokerFailed:
				m.setErr(n.Reason)
			}
		})
	if secure {
		tlsCfg, err := clientTLS(o.CAFile, o.CertFile, o.KeyFile, o.InsecureSkipVerify)
		if err != nil {
			return nil, fmt.Errorf("mqtt: %w", err)
		}
		po.SetTLSConfig(tlsCfg)
	}
	m.client = paho.NewClient(po)
	return m, nil
}

func (m *mqttTarget) setErr(err error) {
	if err == nil {
		return
	}
	s := redact.Text(err.Error())
	m.lastErr.Store(&s)
}

func (m *mqttTarget) availableTopic() string { return m.o.TopicPrefix + "/available" }

func (m *mqttTarget) describe() string { return m.url }

// trouble says that the broker is not connected, and why.
func (m *mqttTarget) trouble() string {
	if m.connected.Load() {
		return ""
	}
	if e := m.lastErr.Load(); e != nil {
		return "not connected to " + m.url + ": " + *e
	}
	return "connecting to " + m.url
}

// run connects (retrying until the broker is there) and, on every
// connection, says online and announces the known cameras again (a broker
// without persistence forgets retained messages when it restarts).
func (m *mqttTarget) run(ctx context.Context) {
	m.runningOnce.Store(true)
	m.client.Connect() // retried in the background until it works or Disconnect
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.onConnect:
		}
		m.log.Info("mqtt connected", "broker", m.url, "client_id", m.o.ClientID)
		m.mu.Lock()
		m.announced = map[string]bool{}
		cams := slices.Clone(m.o.Cameras)
		for id := range m.cams {
			if !slices.Contains(cams, id) {
				cams = append(cams, id)
			}
		}
		var msgs []message
		for _, c := range cams {
			msgs = append(msgs, m.announceLocked(c, "")...)
		}
		m.mu.Unlock()
		msgs = append([]message{{kind: "availability", topic: m.availableTopic(), body: []byte("online"), qos: 1, keep: true}}, msgs...)
		if m.deliverAll(ctx, msgs) {
			m.publishStates(ctx)
		}
	}
}

// deliverAll delivers msgs in order; false (logged) after the first that
// fails: the next connection does them again.
func (m *mqttTarget) deliverAll(ctx context.Context, msgs []message) bool {
	for _, msg := range msgs {
		if err := m.deliver(ctx, msg); err != nil {
			if ctx.Err() == nil {
				m.log.Warn("mqtt announce failed; done again on the next connection", "topic", msg.topic, "err", err)
			}
			return false
		}
	}
	return true
}

// publishStates publishes, on a connection, the retained states as this
// notifier knows them now: those it published before (a broker restarted
// without persistence has forgotten them), and with FreshStates those of
// every camera and label it announces. m.mu is held while they are
// published, so that no newer state of the same topic, computed by a
// runner meanwhile, is published before them.
func (m *mqttTarget) publishStates(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.o.TopicPrefix
	var msgs []message
	add := func(topic, payload string) {
		if _, known := m.published[topic]; !known && !m.o.FreshStates {
			return
		}
		m.published[topic] = payload
		msgs = append(msgs, message{kind: "state", topic: topic, body: []byte(payload), qos: 1, keep: true})
	}
	cams := slices.Clone(m.o.Cameras)
	for id := range m.cams {
		if !slices.Contains(cams, id) {
			cams = append(cams, id)
		}
	}
	slices.Sort(cams)
	for _, c := range cams {
		cs := m.cams[c]
		if cs == nil {
			cs = &camState{}
		}
		on := "OFF"
		if len(cs.motion) > 0 {
			on = "ON"
		}
		add(p+"/"+c+"/motion", on)
		labels := slices.Clone(m.o.Labels)
		for l := range cs.labels {
			if !slices.Contains(labels, l) {
				labels = append(labels, l)
			}
		}
		slices.Sort(labels)
		for _, l := range labels {
			if l != "motion" {
				add(p+"/"+c+"/"+topicSafe(l), strconv.Itoa(len(cs.labels[l])))
			}
		}
	}
	m.deliverAll(ctx, msgs)
}

// announceLocked returns the discovery configs not yet published on this
// connection for camera and, if not "", label. m.mu is held.
func (m *mqttTarget) announceLocked(camera, label string) []message {
	if !m.o.Discovery {
		return nil
	}
	var labels []string
	if !m.announced[camera+"\x00"] {
		m.announced[camera+"\x00"] = true
		labels = slices.Clone(m.o.Labels)
		for _, l := range labels {
			m.announced[camera+"\x00"+l] = true
		}
		var known []string
		if cs := m.cams[camera]; cs != nil {
			known = slices.Collect(maps.Keys(cs.labels))
		}
		if label != "" {
			known = append(known, label)
		}
		for _, l := range known {
			if !slices.Contains(labels, l) {
				labels = append(labels, l)
				m.announced[camera+"\x00"+l] = true
			}
		}
		var out []message
		for _, d := range m.discoveryFor(camera, labels) {
			out = append(out, d.message())
		}
		return out
	}
	if label == "" || m.announced[camera+"\x00"+label] {
		return nil
	}
	m.announced[camera+"\x00"+label] = true
	var out []message
	for _, d := range m.discoveryFor(camera, []string{label})[1:] { // not motion again
		out = append(out, d.message())
	}
	return out
}

// messages is, for one change: discovery of a camera or label seen for
// the first time, the snapshot of a new object or face event, the states
// that change (motion ON/OFF, the label's count), and the event messages
// the rules let through, in that order (an automation started by the event
// message finds the snapshot and states already there).
func (m *mqttTarget) messages(ctx context.Context, e events.Event, notes []Notification) []message {
	p := m.o.TopicPrefix
	label := Label(e)
	labelTopic := p + "/" + e.Camera + "/" + topicSafe(label)
	var out []message
	m.mu.Lock()
	cs := m.cams[e.Camera]
	if cs == nil {
		cs = &camState{motion: map[string]bool{}, labels: map[string]map[string]bool{}}
		m.cams[e.Camera] = cs
	}
	if e.Type == events.TypeMotion {
		out = append(out, m.announceLocked(e.Camera, "")...)
	} else {
		if cs.labels[label] == nil {
			cs.labels[label] = map[string]bool{}
		}
		out = append(out, m.announceLocked(e.Camera, label)...)
	}
	var states []message
	state := func(topic, payload string) {
		if m.published[topic] != payload {
			m.published[topic] = payload
			states = append(states, message{kind: "state", topic: topic, body: []byte(payload), qos: 1, keep: true})
		}
	}
	active := e.Phase != events.PhaseEnd
	if e.Type == events.TypeMotion {
		setActive(cs.motion, e.ID, active)
		on := "OFF"
		if len(cs.motion) > 0 {
			on = "ON"
		}
		state(p+"/"+e.Camera+"/motion", on)
	} else {
		setActive(cs.labels[label], e.ID, active)
		state(labelTopic, strconv.Itoa(len(cs.labels[label])))
	}
	m.mu.Unlock()
	if e.Phase == events.PhaseStart && e.Snapshot && e.Type != events.TypeMotion && m.snapshot != nil {
		if jpeg, err := m.snapshot(ctx, e); err == nil {
			out = append(out, message{kind: "snapshot", topic: labelTopic + "/snapshot", body: jpeg, qos: 1, keep: true})
		} else if ctx.Err() == nil {
			m.snapshotsMissing.Add(1)
			m.log.Warn("snapshot not found; the label's snapshot topic keeps the previous one", "event", e.ID, "err", err)
		}
	}
	out = append(out, states...)
	for i := range notes {
		n := &notes[i]
		body, _ := json.Marshal(MQTTEvent{Type: n.Type, Before: details(n.Before, m.links), After: details(n.Event, m.links)})
		out = append(out, message{kind: "notification", note: n, topic: p + "/events", body: body, qos: 1})
	}
	return out
}

// setActive adds id to the set while its event is active, and removes it
// once it ended.
func setActive(set map[string]bool, id string, active bool) {
	if active {
		set[id] = true
	} else {
		delete(set, id)
	}
}

// deliver publishes one message and waits for the broker's
// acknowledgement (QoS 1), at most publishTimeout.
func (m *mqttTarget) deliver(ctx context.Context, msg message) error {
	if !m.client.IsConnectionOpen() {
		if t := m.trouble(); t != "" {
			return errors.New(t)
		}
		return fmt.Errorf("not connected to %s", m.url)
	}
	tok := m.client.Publish(msg.topic, msg.qos, msg.keep, msg.body)
	timer := time.NewTimer(publishTimeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return fmt.Errorf("publish %s to %s: no acknowledgement within %s", msg.topic, m.url, publishTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("publish %s to %s: %w", msg.topic, m.url, redact.Error(err))
	}
	return nil
}

// close says offline (retained) and disconnects; a crash leaves the last
// will to say it.
func (m *mqttTarget) close() {
	m.closeOnce.Do(func() {
		if m.client.IsConnectionOpen() {
			tok := m.client.Publish(m.availableTopic(), 1, true, "offline")
			tok.WaitTimeout(time.Second)
		}
		if m.runningOnce.Load() {
			m.client.Disconnect(250)
		}
	})
}
