package notify

import (
	"encoding/json"
	"net/url"
	"strings"
)

// Home Assistant's MQTT discovery: one device per camera, with
//
//   - a binary_sensor "Motion" (device class motion) on <prefix>/<camera>/motion;
//   - per tracked label, a binary_sensor "<Label> occupancy" (device class
//     occupancy, on while the label's count is above 0) and a sensor
//     "<Label> count" (state class measurement), both on the retained
//     count <prefix>/<camera>/<label>;
//   - per tracked label, a camera "<Label> snapshot" whose image is the
//     retained JPEG <prefix>/<camera>/<label>/snapshot.
//
// Each config is retained at <discovery prefix>/<component>/<node>/<object>/config,
// where node is "streamd_<camera>" (Home Assistant allows [a-zA-Z0-9_-]
// there), and carries a unique_id, the device, the origin and the
// availability topic <prefix>/available (online / offline), so every entity
// shows unavailable when streamd's notifier is gone.

// Discovery is one entity's discovery config: the fields Home Assistant's
// MQTT discovery documents for binary_sensor, sensor and camera that
// streamd sets.
type Discovery struct {
	Name                string          `json:"name"`
	UniqueID            string          `json:"unique_id"`
	StateTopic          string          `json:"state_topic,omitempty"` // binary_sensor, sensor
	Topic               string          `json:"topic,omitempty"`       // camera: the image topic
	ValueTemplate       string          `json:"value_template,omitempty"`
	PayloadOn           string          `json:"payload_on,omitempty"`
	PayloadOff          string          `json:"payload_off,omitempty"`
	DeviceClass         string          `json:"device_class,omitempty"`
	StateClass          string          `json:"state_class,omitempty"`
	Icon                string          `json:"icon,omitempty"`
	AvailabilityTopic   string          `json:"availability_topic"`
	PayloadAvailable    string          `json:"payload_available"`
	PayloadNotAvailable string          `json:"payload_not_available"`
	Device              DiscoveryDevice `json:"device"`
	Origin              DiscoveryOrigin `json:"origin"`
	QoS                 int             `json:"qos"`
}

// DiscoveryDevice is the device block: one device per camera.
type DiscoveryDevice struct {
	Identifiers      []string `json:"identifiers"`
	Name             string   `json:"name"`
	Manufacturer     string   `json:"manufacturer"`
	Model            string   `json:"model"`
	SWVersion        string   `json:"sw_version"`
	ConfigurationURL string   `json:"configuration_url,omitempty"`
}

// DiscoveryOrigin names the application that published the config.
type DiscoveryOrigin struct {
	Name       string `json:"name"`
	SWVersion  string `json:"sw_version"`
	SupportURL string `json:"support_url,omitempty"`
}

// topicSafe makes a label usable as one level of an MQTT topic and in a
// Home Assistant object id: letters, digits, '_', '-' and '.' stay, the
// rest (spaces of "traffic light", '/', '+', '#') become '_'.
func topicSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// nodeID is a camera's node id in discovery topics and unique ids:
// Home Assistant allows [a-zA-Z0-9_-], so '.' becomes '_'.
func nodeID(camera string) string {
	return "streamd_" + strings.ReplaceAll(topicSafe(camera), ".", "_")
}

// title writes a label as an entity name starts: "person" -> "Person",
// "traffic light" -> "Traffic light".
func title(label string) string {
	if label == "" {
		return label
	}
	return strings.ToUpper(label[:1]) + label[1:]
}

// discoveryMessage is one retained config.
type discoveryMessage struct {
	topic string
	cfg   Discovery
}

// discoveryFor returns the configs of camera's entities: motion, and for
// each label its occupancy, count and snapshot camera.
func (m *mqttTarget) discoveryFor(camera string, labels []string) []discoveryMessage {
	node := nodeID(camera)
	p := m.o.TopicPrefix
	base := Discovery{
		AvailabilityTopic: p + "/available", PayloadAvailable: "online", PayloadNotAvailable: "offline", QoS: 1,
		Device: DiscoveryDevice{Identifiers: []string{node}, Name: camera, Manufacturer: "streamd", Model: "camera",
			SWVersion: m.version, ConfigurationURL: m.cameraURL(camera)},
		Origin: DiscoveryOrigin{Name: "streamd", SWVersion: m.version},
	}
	dp := m.o.DiscoveryPrefix
	motion := base
	motion.Name, motion.UniqueID = "Motion", node+"_motion"
	motion.StateTopic, motion.PayloadOn, motion.PayloadOff, motion.DeviceClass = p+"/"+camera+"/motion", "ON", "OFF", "motion"
	out := []discoveryMessage{{dp + "/binary_sensor/" + node + "/motion/config", motion}}
	for _, l := range labels {
		if l == "motion" {
			continue
		}
		obj := topicSafe(l)
		state := p + "/" + camera + "/" + obj
		occ := base
		occ.Name, occ.UniqueID = title(l)+" occupancy", node+"_"+obj+"_occupancy"
		occ.StateTopic, occ.DeviceClass = state, "occupancy"
		occ.ValueTemplate, occ.PayloadOn, occ.PayloadOff = "{{ 'ON' if value | int > 0 else 'OFF' }}", "ON", "OFF"
		count := base
		count.Name, count.UniqueID = title(l)+" count", node+"_"+obj+"_count"
		count.StateTopic, count.StateClass, count.Icon = state, "measurement", "mdi:counter"
		snap := base
		snap.Name, snap.UniqueID = title(l)+" snapshot", node+"_"+obj+"_snapshot"
		snap.Topic = state + "/snapshot"
		out = append(out,
			discoveryMessage{dp + "/binary_sensor/" + node + "/" + obj + "_occupancy/config", occ},
			discoveryMessage{dp + "/sensor/" + node + "/" + obj + "_count/config", count},
			discoveryMessage{dp + "/camera/" + node + "/" + obj + "_snapshot/config", snap})
	}
	return out
}

// cameraURL is the camera's page, the device's configuration URL.
func (m *mqttTarget) cameraURL(camera string) string {
	base := m.links.base()
	if base == "" {
		return ""
	}
	return base + "/cameras/" + url.PathEscape(camera)
}

func (d discoveryMessage) message() message {
	body, _ := json.Marshal(d.cfg) // plain strings: cannot fail
	return message{kind: "discovery", topic: d.topic, body: body, qos: 1, keep: true}
}
