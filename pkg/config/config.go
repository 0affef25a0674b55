// Package config defines streamd's configuration and loads it: defaults in
// code, then the YAML file, then STREAMD_* environment variables, then
// command-line overrides, then validation. Unknown keys are errors, and every
// error quotes the key at fault. config/reference.yaml lists every key with
// its default, and docs/configuration.md is generated from it.
//
// The package owns the default values. It may not import the packages that
// run the configuration (Kafka client, embedded broker, web server): a
// test holds its dependencies free of sarama, kfake and chi.
package config

import (
	"slices"
	"strings"
	"time"

	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/hub"
	"github.com/streamd/streamd/pkg/record"
	"github.com/streamd/streamd/pkg/replay"
	"github.com/streamd/streamd/pkg/source"
)

// Roles a streamd process can take.
const (
	RoleProducer = "producer"
	RoleConsumer = "consumer"
	RoleAll      = "all"
	RoleAnalyzer = "analyzer"
	RoleRecorder = "recorder"
	RoleNotifier = "notifier"
)

// Config is the whole configuration of one streamd process.
type Config struct {
	Role     string         `koanf:"role"`
	Log      LogConfig      `koanf:"log"`
	Kafka    KafkaConfig    `koanf:"kafka"`
	Embedded EmbeddedConfig `koanf:"embedded"`
	HTTP     HTTPConfig     `koanf:"http"`
	Hub      HubConfig      `koanf:"hub"`
	Replay   ReplayConfig   `koanf:"replay"`
	Analyzer AnalyzerConfig `koanf:"analyzer"`
	Events   EventsConfig   `koanf:"events"`
	Record   RecordConfig   `koanf:"recording"`
	Review   ReviewConfig   `koanf:"review"`
	Auth     AuthConfig     `koanf:"auth"`
	Notify   NotifyConfig   `koanf:"notify"`
	Cameras  []CameraConfig `koanf:"cameras"`
}

// NotifyConfig is the notifier (docs/notifications.md): webhooks and MQTT
// told about the analyzer's events. Role notifier runs it; role all runs
// it when a target is configured. Its keys at this level are every
// target's defaults.
type NotifyConfig struct {
	// Group prefixes each target's consumer group (<group>.webhook.<name>,
	// <group>.mqtt), shared by every notifier process.
	Group string `koanf:"group"`
	// Timezone is the IANA zone of quiet hours; "": the machine's.
	Timezone string `koanf:"timezone"`
	// Phases and Cooldown are the targets' defaults.
	Phases   []string      `koanf:"phases"`
	Cooldown time.Duration `koanf:"cooldown"`
	// Timeout bounds one delivery; Attempts (0: until delivered),
	// Backoff and MaxBackoff say how a failure is retried.
	Timeout    time.Duration   `koanf:"timeout"`
	Attempts   int             `koanf:"attempts"`
	Backoff    time.Duration   `koanf:"backoff"`
	MaxBackoff time.Duration   `koanf:"max_backoff"`
	Webhooks   []WebhookConfig `koanf:"webhooks"`
	MQTT       MQTTConfig      `koanf:"mqtt"`
}

// WebhookConfig is one webhook: where to POST, how to sign, and its rules.
type WebhookConfig struct {
	Name    string   `koanf:"name"`    // names it in metrics and its consumer group
	URL     string   `koanf:"url"`     // http:// or https://
	Headers []string `koanf:"headers"` // "Name: value" added to every request
	// The signing secret: inline, from a file, or from an environment
	// variable (at most one of the three).
	Secret             string `koanf:"secret"`
	SecretFile         string `koanf:"secret_file"`
	SecretEnv          string `koanf:"secret_env"`
	CAFile             string `koanf:"ca_file"`              // PEM CA bundle the receiver must chain to; "": the system's
	InsecureSkipVerify bool   `koanf:"insecure_skip_verify"` // do not verify the receiver (testing only)
	Rules              `koanf:"rules"`
}

// Rules choose which event changes a target is told about; empty lists
// allow everything.
type Rules struct {
	Cameras    []string      `koanf:"cameras"`
	Types      []string      `koanf:"types"`    // motion, face, object
	Labels     []string      `koanf:"labels"`   // object labels, face, motion
	Zones      []string      `koanf:"zones"`    // the event entered one of them
	Severity   []string      `koanf:"severity"` // alert, detection
	Phases     []string      `koanf:"phases"`   // new, update, end; empty: notify.phases
	Cooldown   time.Duration `koanf:"cooldown"` // per camera and label; 0: notify.cooldown
	QuietHours []string      `koanf:"quiet_hours"`
}

// MQTTConfig is the MQTT target; no URL: none.
type MQTTConfig struct {
	URL                string          `koanf:"url"` // mqtt://host:1883, mqtts://host:8883, ws://, wss://
	Username           string          `koanf:"username"`
	Password           string          `koanf:"password"`      // prefer STREAMD_NOTIFY_MQTT_PASSWORD or password_file
	PasswordFile       string          `koanf:"password_file"` // a file holding the password
	ClientID           string          `koanf:"client_id"`     // "": streamd-<host>-<random>
	TopicPrefix        string          `koanf:"topic_prefix"`
	CAFile             string          `koanf:"ca_file"`
	CertFile           string          `koanf:"cert_file"`
	KeyFile            string          `koanf:"key_file"`
	InsecureSkipVerify bool            `koanf:"insecure_skip_verify"`
	Discovery          DiscoveryConfig `koanf:"discovery"`
	Rules              `koanf:"rules"`
}

// DiscoveryConfig is Home Assistant's MQTT discovery.
type DiscoveryConfig struct {
	Enabled bool   `koanf:"enabled"`
	Prefix  string `koanf:"prefix"`
	// Labels are announced for every camera at once; empty: the
	// analyzer's (analyzer.objects.track when objects are on, and face
	// when faces are). Others are announced when first seen.
	Labels []string `koanf:"labels"`
}

// Notifies reports whether any notification target is configured.
func (n NotifyConfig) Notifies() bool { return len(n.Webhooks) > 0 || n.MQTT.URL != "" }

// RecordConfig is the recording tier (package record): a compact copy of
// every camera kept for days beside the short frames topic, in topics of
// its own, and exports of it as MP4.
type RecordConfig struct {
	// Enabled makes roles all and analyzer record too (role recorder
	// always does); web nodes read recordings whenever the topics exist.
	Enabled      bool   `koanf:"enabled"`
	Group        string `koanf:"group"` // shared by every recorder: cameras are split between them
	FullTopic    string `koanf:"full_topic"`
	ReducedTopic string `koanf:"reduced_topic"`
	IndexTopic   string `koanf:"index_topic"`
	Partitions   int    `koanf:"partitions"`
	// Retain is how long recordings are kept (retention.ms); MaxBytes,
	// if set, caps the bytes of both tiers together (retention.bytes,
	// split between the tiers by FullShare and between partitions).
	// Whichever is reached first removes the oldest recordings.
	Retain    time.Duration `koanf:"retain"`
	MaxBytes  int64         `koanf:"max_bytes"`
	FullShare float64       `koanf:"full_share"`
	Interval  time.Duration `koanf:"interval"` // reduced tier: one frame per interval
	PreRoll   time.Duration `koanf:"pre_roll"`
	PostRoll  time.Duration `koanf:"post_roll"`
	Chunk     time.Duration `koanf:"chunk"` // full tier: seconds of video per record
	// Codec of the full tier: "h264/mp4" (default, the smallest) or
	// "mpeg4/mp4" (2-10x the bytes; cheaper to encode than H.264 only at
	// x264's slower presets).
	Codec string `koanf:"codec"`
	// Preset and CRF tune the H.264 encoder (x264): its speed preset
	// (ultrafast by default: the cheapest, for bigger files) and constant
	// rate factor (quality: lower is better and bigger). They apply to
	// recorded chunks and to exports.
	Preset string `koanf:"preset"`
	CRF    int    `koanf:"crf"`
	// MaxExport caps the length of one MP4 export; MaxExports how many
	// run at once on a web node (more get 429).
	MaxExport  time.Duration `koanf:"max_export"`
	MaxExports int           `koanf:"max_exports"`
	// FullOn says which events the full tier records: "motion" (every
	// event), "objects" (object and face events: motion alone is kept at
	// the reduced rate) or "alerts" (object events of severity alert).
	FullOn string `koanf:"full_on"`
}

// ReviewConfig is how events are ranked for a person reviewing them.
type ReviewConfig struct {
	Alerts AlertsConfig `koanf:"alerts"`
}

// AlertsConfig says which object events are alerts (the rest are
// detections), as Frigate's review.alerts does.
type AlertsConfig struct {
	// Labels make alerts; [] makes none.
	Labels []string `koanf:"labels"`
	// RequiredZones, when not empty, make only objects that entered one
	// of these zones alerts; empty: anywhere in the frame.
	RequiredZones []string `koanf:"required_zones"`
}

// ReplayConfig tunes playback of what Kafka holds (/stream/{camera}?at=).
type ReplayConfig struct {
	MaxFPS float64 `koanf:"max_fps"` // output rate cap whatever the speed
}

// AnalyzerConfig is the security-camera analysis: motion and face
// detection on frames read with one consumer group shared by every
// analyzer, events and snapshots published back to Kafka.
type AnalyzerConfig struct {
	Enabled bool `koanf:"enabled"` // role all: analyze too (role analyzer always does)
	// Group is shared by every analyzer process: the frames topic's
	// partitions, and so the cameras, are split between them.
	Group          string `koanf:"group"`
	EventsTopic    string `koanf:"events_topic"`
	SnapshotsTopic string `koanf:"snapshots_topic"`
	// ActivityTopic holds each camera's activity per minute (how much of
	// the frame moved), for the day timeline.
	ActivityTopic   string        `koanf:"activity_topic"`
	EventsRetention time.Duration `koanf:"events_retention"` // retention.ms of the events, snapshots, activity and review topics
	MaxLag          time.Duration `koanf:"max_lag"`          // older frames are skipped, not analyzed late
	FPS             float64       `koanf:"fps"`              // analysis rate cap per camera
	SessionTimeout  time.Duration `koanf:"session_timeout"`  // a dead analyzer's cameras move after this
	Motion          MotionConfig  `koanf:"motion"`
	Faces           FacesConfig   `koanf:"faces"`
	Objects         ObjectsConfig `koanf:"objects"`
	MinFrames       int           `koanf:"min_frames"` // consecutive motion frames that start an event
	Gap             time.Duration `koanf:"gap"`        // an event ends after this long without motion
}

// MotionConfig tunes motion detection; cameras may override it. Zero
// values take package vision's defaults (config/reference.yaml gives them).
type MotionConfig struct {
	Threshold      int     `koanf:"threshold"`       // per-pixel difference that counts as change, 1-254
	MinArea        float64 `koanf:"min_area"`        // smallest moving region, as a fraction of the frame
	GlobalFraction float64 `koanf:"global_fraction"` // more of the frame changing at once resets the background (lights, exposure)
}

// FacesConfig tunes face detection, run only while motion is active.
type FacesConfig struct {
	Enabled bool          `koanf:"enabled"`
	Cascade string        `koanf:"cascade"` // OpenCV cascade XML (Haar or LBP)
	FPS     float64       `koanf:"fps"`     // detections per second per camera, at most
	Gap     time.Duration `koanf:"gap"`     // a face event ends after this long without a face
}

// ObjectsConfig is object detection (people, vehicles, animals): the
// CenterNet COCO model run on moving regions, its detections tracked into
// object events (docs/objects.md).
type ObjectsConfig struct {
	// Enabled runs object detection (the default); with the default
	// model path missing it is off with a warning, with another path
	// missing start-up fails.
	Enabled bool    `koanf:"enabled"`
	Model   string  `koanf:"model"`   // the model.json of the TF.js model (make install puts it here)
	Size    int     `koanf:"size"`    // model input in pixels, a multiple of 32: 320 (fast), 384, 512 (the model's own)
	FPS     float64 `koanf:"fps"`     // detections per second per camera while motion lasts, at most
	Workers int     `koanf:"workers"` // detections at once for all cameras (each on one core)
	// MaxCPU bounds detection's average use of the cores, every camera
	// together: past it a camera skips detection on a frame (counted).
	MaxCPU float64 `koanf:"max_cpu"`
	// Track are the labels that make events; others are ignored.
	Track []string `koanf:"track"`
	// Filters tune labels, one entry per label: min_score (a detection
	// below is dropped), threshold (the median score that makes an
	// object count), min_area and max_area (fractions of the frame; 0: no
	// bound).
	Filters []ObjectFilterConfig `koanf:"filters"`
	Gap     time.Duration        `koanf:"gap"` // an object unseen this long is gone
}

// ObjectFilterConfig is one label's filters; zero fields take the defaults.
type ObjectFilterConfig struct {
	Label     string  `koanf:"label"`
	MinScore  float64 `koanf:"min_score"`
	Threshold float64 `koanf:"threshold"`
	MinArea   float64 `koanf:"min_area"`
	MaxArea   float64 `koanf:"max_area"`
}

// DefaultObjectModel is where make install puts the object model (the
// value of package vision's DefaultModel, which this package may not
// import: it needs OpenCV).
const DefaultObjectModel = "/usr/local/share/streamd/models/centernet.json"

// EventsConfig is how events are cut (the analyzer) and the web node's view
// of them.
type EventsConfig struct {
	// History is read back from the events topic at start, so a restarted
	// node still lists recent events; older events are forgotten. A day,
	// so that the review page holds last night.
	History time.Duration `koanf:"history"`
	// MaxEvents bounds the events a web node holds (about 400 bytes each).
	MaxEvents int `koanf:"max_events"`
	// ReviewsTopic is the compacted topic of the review page's reviewed
	// marks, keyed by event id.
	ReviewsTopic string `koanf:"reviews_topic"`
	// MaxLength is the longest an event runs: one in progress this long
	// is closed and continued as a new event (0: no limit).
	MaxLength time.Duration `koanf:"max_length"`
}

// AuthConfig lists who may watch. With no tokens and no users, everyone who
// can reach the HTTP address may (and streamd then listens on loopback by
// default). /healthz and /readyz are always open.
type AuthConfig struct {
	Tokens []TokenConfig `koanf:"tokens"`
	Users  []UserConfig  `koanf:"users"`
}

// TokenConfig is a bearer token (header "Authorization: Bearer T" or query
// parameter "?token=T").
type TokenConfig struct {
	Name    string   `koanf:"name"`    // shown in logs
	Token   string   `koanf:"token"`   // the secret, at least 16 characters
	Cameras []string `koanf:"cameras"` // allowed cameras; empty: all
}

// UserConfig is an HTTP basic user.
type UserConfig struct {
	Name           string   `koanf:"name"`
	PasswordBcrypt string   `koanf:"password_bcrypt"` // bcrypt hash of the password
	Cameras        []string `koanf:"cameras"`         // allowed cameras; empty: all
}

// AuthEnabled reports whether any credentials are configured.
func (c *Config) AuthEnabled() bool { return len(c.Auth.Tokens) > 0 || len(c.Auth.Users) > 0 }

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  string `koanf:"level"`  // debug, info, warn, error
	Format string `koanf:"format"` // text or json
}

// KafkaConfig is how streamd talks to Kafka.
type KafkaConfig struct {
	Brokers           []string      `koanf:"brokers"`            // host:port; empty when the embedded broker is used
	Topic             string        `koanf:"topic"`              // frames topic
	ClientID          string        `koanf:"client_id"`          // Kafka client.id
	Group             string        `koanf:"group"`              // consumer group; default streamd-viewer-<host>-<http port>
	Version           string        `koanf:"version"`            // Kafka protocol version sarama speaks, e.g. 2.8.0
	Partitions        int           `koanf:"partitions"`         // when the topic is created
	ReplicationFactor int           `koanf:"replication_factor"` // when the topic is created
	Retention         time.Duration `koanf:"retention"`          // topic retention.ms
	RetentionBytes    int64         `koanf:"retention_bytes"`    // topic retention.bytes (per partition)
	MaxMessageBytes   int           `koanf:"max_message_bytes"`  // largest frame record; sets producer, topic and fetch sizes
	FetchMaxWait      time.Duration `koanf:"fetch_max_wait"`     // consumer fetch max wait; low for low latency
	Compression       string        `koanf:"compression"`        // none, gzip, snappy, lz4, zstd
	Acks              string        `koanf:"acks"`               // what a produce waits for: none, leader, all
	DialTimeout       time.Duration `koanf:"dial_timeout"`
	TLS               KafkaTLS      `koanf:"tls"`
	SASL              KafkaSASL     `koanf:"sasl"`
}

// KafkaTLS is TLS to the brokers.
type KafkaTLS struct {
	Enabled            bool   `koanf:"enabled"`
	CAFile             string `koanf:"ca_file"`              // PEM CA bundle; empty: the system's
	CertFile           string `koanf:"cert_file"`            // PEM client certificate, for mutual TLS
	KeyFile            string `koanf:"key_file"`             // its PEM key
	ServerName         string `koanf:"server_name"`          // expected broker name; default: the host dialled
	InsecureSkipVerify bool   `koanf:"insecure_skip_verify"` // do not verify the broker (testing only)
}

// KafkaSASL is SASL authentication to the brokers.
type KafkaSASL struct {
	Mechanism string `koanf:"mechanism"` // "" (none), PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	Username  string `koanf:"username"`
	Password  string `koanf:"password"` // prefer STREAMD_KAFKA_SASL_PASSWORD or password_file
	// PasswordFile is a file holding the password (its first line), so
	// that the config file need not: set it or Password, not both.
	PasswordFile string `koanf:"password_file"`
}

// EmbeddedConfig is the in-process Kafka-protocol broker (kfake) used for the
// zero-setup all-in-one mode.
type EmbeddedConfig struct {
	Enabled bool   `koanf:"enabled"`
	Listen  string `koanf:"listen"`   // host:port
	DataDir string `koanf:"data_dir"` // empty keeps everything in memory
	// SyncWrites fsyncs each write before it is acknowledged. Without it a
	// crash of the process loses nothing acknowledged (the kernel holds the
	// writes), but a power loss can lose the last seconds, as Kafka's
	// default (log.flush.interval.messages) does.
	SyncWrites     bool          `koanf:"sync_writes"`
	SegmentBytes   int           `koanf:"segment_bytes"`   // log.segment.bytes
	RetentionCheck time.Duration `koanf:"retention_check"` // log.cleaner.backoff.ms: how often retention is applied
}

// HTTPConfig is the web server.
type HTTPConfig struct {
	Listen       string        `koanf:"listen"`        // host:port
	WriteTimeout time.Duration `koanf:"write_timeout"` // deadline for each streamed part
	// UnsentLimit caps the bytes of a stream that may wait unsent in the
	// kernel (TCP_NOTSENT_LOWAT): past it a write blocks, so a slow viewer
	// falls behind in the hub, where it skips frames, instead of in socket
	// buffers, where its video would grow stale. 0 leaves the kernel's.
	UnsentLimit       int           `koanf:"unsent_limit"`
	Pprof             bool          `koanf:"pprof"`               // serve /debug/pprof/ (for profiling; keep off in production)
	ReadHeaderTimeout time.Duration `koanf:"read_header_timeout"` // a client must send its request headers within this
	IdleTimeout       time.Duration `koanf:"idle_timeout"`        // keep-alive connections idle longer are closed
	MaxViewers        int           `koanf:"max_viewers"`         // streams open at once, all cameras; 0: unlimited
	MaxViewersPerIP   int           `koanf:"max_viewers_per_ip"`  // streams open at once from one client address; 0: unlimited
	// TrustedProxies are the addresses (CIDRs) whose X-Real-IP or
	// X-Forwarded-For header names the real client, e.g. nginx on this host.
	TrustedProxies []string `koanf:"trusted_proxies"`
	// MaxReplays and MaxReplaysPerIP bound replays open at once (each
	// holds a Kafka partition reader); 0: unlimited.
	MaxReplays      int `koanf:"max_replays"`
	MaxReplaysPerIP int `koanf:"max_replays_per_ip"`
	// TLS makes the server speak HTTPS (and HTTP/2) itself.
	TLS HTTPTLS `koanf:"tls"`
	// PublicURL is the address people open the page at (behind a proxy,
	// say), for the links notifications carry; "": from http.listen.
	PublicURL string `koanf:"public_url"`
}

// HTTPTLS is the server's certificate; both files are re-read on SIGHUP.
type HTTPTLS struct {
	CertFile string `koanf:"cert_file"` // PEM certificate (chain)
	KeyFile  string `koanf:"key_file"`  // PEM private key
}

// HubConfig tunes the in-memory fan-out.
type HubConfig struct {
	RingSize int           `koanf:"ring_size"` // recent frames kept per camera; a burst larger than this is cut
	MaxDelay time.Duration `koanf:"max_delay"` // how stale a viewer's next frame may be before it skips to the newest
}

// CameraConfig is one camera. In the consumer role only ID is used (it makes
// the camera known before its first frame); Source is required for producers.
type CameraConfig struct {
	ID      string  `koanf:"id"`
	Source  string  `koanf:"source"`  // "testpattern", a file path, a device index ("0") or path (/dev/video0), or a URL (rtsp://, http://)
	Loop    bool    `koanf:"loop"`    // files: start again at the end
	FPS     float64 `koanf:"fps"`     // 0: the source's own rate (files, test pattern: 30); otherwise pace or cap at this rate
	Width   int     `koanf:"width"`   // 0: the source's size (test pattern: 1280)
	Height  int     `koanf:"height"`  // 0: the source's size (test pattern: 720)
	Quality int     `koanf:"quality"` // JPEG quality 1-100; 0 means 80
	// Substream, when width is set, publishes a low-resolution rendition
	// too, for grids of tiles.
	Substream SubstreamConfig `koanf:"substream"`
	// Analyze opts the camera out of analysis with false (default true).
	Analyze *bool `koanf:"analyze"`
	// Objects opts the camera out of object detection with false
	// (default true: wherever analyzer.objects is on).
	Objects *bool              `koanf:"objects"`
	Motion  CameraMotionConfig `koanf:"motion"`
	// Zones are named regions of the frame for object events: an object
	// is in a zone once the bottom-centre of its box has been inside for
	// inertia detections in a row, and its event lists the zones it
	// entered.
	Zones []ZoneConfig `koanf:"zones"`
}

// ZoneConfig is one named zone of a camera.
type ZoneConfig struct {
	Name    string      `koanf:"name"`
	Points  [][]float64 `koanf:"points"`  // a polygon of [x, y] points in 0..1 of the frame
	Inertia int         `koanf:"inertia"` // detections in a row inside that enter it; 0: 3
}

// SubstreamConfig is a camera's low-resolution rendition.
type SubstreamConfig struct {
	Width   int     `koanf:"width"`   // pixels; the height keeps the aspect ratio; 0: no substream
	Quality int     `koanf:"quality"` // JPEG quality; 0 means 70
	FPS     float64 `koanf:"fps"`     // at most this rate; 0 means 15
}

// CameraMotionConfig overrides the analyzer's motion settings for one
// camera; zero fields keep analyzer.motion's.
type CameraMotionConfig struct {
	Threshold int     `koanf:"threshold"`
	MinArea   float64 `koanf:"min_area"`
	FPS       float64 `koanf:"fps"` // analysis rate cap
	// Masks are regions to ignore (a clock overlay, a tree in the wind):
	// polygons of [x, y] points in 0..1 coordinates of the frame.
	Masks [][][]float64 `koanf:"masks"`
}

// Analyzed reports whether the camera is analyzed (the default).
func (c CameraConfig) Analyzed() bool { return c.Analyze == nil || *c.Analyze }

// Default returns the configuration used when nothing else is said: the
// all-in-one role with an in-memory embedded broker and no cameras.
// config/reference.yaml lists every value (a test holds the two equal).
// The Kafka client, embedded broker and web server values are written
// here, not taken from packages kafka, broker and web, so that this package
// does not build the Kafka client, broker or router; those packages keep
// the same values as fallbacks for zero options, and a test in package app
// holds them equal to these.
func Default() Config {
	return Config{
		Role: RoleAll,
		Log:  LogConfig{Level: "info", Format: "text"},
		Kafka: KafkaConfig{
			Topic:             "streamd.frames",
			ClientID:          "streamd",
			Version:           "2.8.0",
			Partitions:        8,
			ReplicationFactor: 1,
			Retention:         time.Hour,
			RetentionBytes:    256 << 20, // per partition
			MaxMessageBytes:   4 << 20,
			FetchMaxWait:      50 * time.Millisecond, // sarama's 500 ms adds ~200 ms p99 latency
			Compression:       "none",                // JPEG does not compress further
			Acks:              "all",
			DialTimeout:       5 * time.Second,
		},
		Embedded: EmbeddedConfig{
			Enabled:        true,
			Listen:         "127.0.0.1:9092",
			SegmentBytes:   16 << 20,
			RetentionCheck: 30 * time.Second,
		},
		HTTP: HTTPConfig{
			Listen:            "127.0.0.1:8080",
			WriteTimeout:      10 * time.Second,
			UnsentLimit:       64 << 10,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxViewers:        5000,
			MaxViewersPerIP:   50,
			TrustedProxies:    []string{"127.0.0.1/32", "::1/128"},
			MaxReplays:        50,
			MaxReplaysPerIP:   10,
		},
		Replay: ReplayConfig{MaxFPS: replay.DefaultMaxFPS},
		Hub:    HubConfig{RingSize: hub.DefaultRingSize, MaxDelay: hub.DefaultMaxDelay},
		Analyzer: AnalyzerConfig{
			Group:           "streamd-analyzer",
			EventsTopic:     events.DefaultTopic,
			SnapshotsTopic:  events.DefaultSnapshotsTopic,
			ActivityTopic:   events.DefaultActivityTopic,
			EventsRetention: 7 * 24 * time.Hour,
			MaxLag:          time.Second,
			FPS:             10,
			SessionTimeout:  6 * time.Second,
			// Motion's zero values take package vision's defaults.
			Faces: FacesConfig{Enabled: true, Cascade: "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml", FPS: 5, Gap: events.DefaultFaceGap},
			Objects: ObjectsConfig{Enabled: true, Model: DefaultObjectModel, Size: 320, FPS: 5, Workers: 1, MaxCPU: 0.25,
				Track: slices.Clone(events.DefaultObjectLabels), Gap: events.DefaultObjectGap},
			MinFrames: events.DefaultMinFrames,
			Gap:       events.DefaultGap,
		},
		Events: EventsConfig{History: 24 * time.Hour, MaxEvents: 50000, MaxLength: events.DefaultMaxLength, ReviewsTopic: "streamd.reviews"},
		Notify: NotifyConfig{Group: "streamd-notifier", Phases: []string{"new", "end"}, Cooldown: 30 * time.Second,
			Timeout: 10 * time.Second, Attempts: 10, Backoff: time.Second, MaxBackoff: time.Minute,
			MQTT: MQTTConfig{TopicPrefix: "streamd", Discovery: DiscoveryConfig{Enabled: true, Prefix: "homeassistant"}}},
		Record: RecordConfig{
			Group:        "streamd-recorder",
			FullTopic:    "streamd.rec.full",
			ReducedTopic: "streamd.rec.reduced",
			IndexTopic:   "streamd.rec.index",
			Partitions:   8,
			Retain:       7 * 24 * time.Hour,
			FullShare:    0.5,
			Interval:     record.DefaultInterval,
			PreRoll:      record.DefaultPreRoll,
			PostRoll:     record.DefaultPostRoll,
			Chunk:        record.DefaultChunk,
			Codec:        "h264/mp4",
			Preset:       "ultrafast",
			CRF:          23,
			MaxExport:    10 * time.Minute,
			MaxExports:   2,
			FullOn:       "objects",
		},
		Review: ReviewConfig{Alerts: AlertsConfig{Labels: slices.Clone(events.DefaultAlertLabels)}},
	}
}

// X264Presets returns the values of recording.preset, fastest first:
// package video's Presets, which a test holds equal.
func X264Presets() []string {
	return []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}
}

// SourceTestPattern is the Source of the built-in moving test pattern.
const SourceTestPattern = source.TestPattern

// Part is one kind of work a role does; app builds a component for each.
type Part string

// The parts roles are made of.
const (
	PartCapture Part = "capture" // read cameras and publish their frames to Kafka
	PartView    Part = "view"    // consume frames and serve them to viewers
	PartAnalyze Part = "analyze" // detect motion and faces, publish events
	PartRecord  Part = "record"  // keep the recording tiers
	PartNotify  Part = "notify"  // tell webhooks and MQTT about events
)

// needsOpenCV reports whether the part cannot run in a binary built with
// the nocv tag.
func (p Part) needsOpenCV() bool { return p == PartCapture || p == PartAnalyze || p == PartRecord }

// partsOf lists a role's parts, in start order; ok is false for an unknown
// role. Adding a role is one case here (and its components in package app).
// Parts stop in reverse order, so the recorder and the notifier start
// before the analyzer: they stop after it, and still see the events the
// analyzer ends as it stops (the recorder records them, the notifier
// tells its targets they are over).
func (c *Config) partsOf(role string) (parts []Part, ok bool) {
	switch role {
	case RoleProducer:
		return []Part{PartCapture}, true
	case RoleConsumer:
		return []Part{PartView}, true
	case RoleAnalyzer:
		if c.Record.Enabled {
			return []Part{PartRecord, PartAnalyze}, true
		}
		return []Part{PartAnalyze}, true
	case RoleRecorder:
		return []Part{PartRecord}, true
	case RoleNotifier:
		return []Part{PartNotify}, true
	case RoleAll:
		parts = []Part{PartView}
		if c.Record.Enabled {
			parts = append(parts, PartRecord)
		}
		if c.Notify.Notifies() {
			parts = append(parts, PartNotify)
		}
		if c.Analyzer.Enabled {
			parts = append(parts, PartAnalyze)
		}
		return append(parts, PartCapture), true
	}
	return nil, false
}

// Roles returns the role names, in the order the documentation lists them.
func Roles() []string {
	return []string{RoleProducer, RoleConsumer, RoleAnalyzer, RoleRecorder, RoleNotifier, RoleAll}
}

// rolesText is the roles as a sentence: "producer, consumer or all".
func rolesText() string {
	r := Roles()
	return strings.Join(r[:len(r)-1], ", ") + " or " + r[len(r)-1]
}

// Parts returns the parts the configured role runs, in start order.
func (c *Config) Parts() []Part { p, _ := c.partsOf(c.Role); return p }

// Runs reports whether the configured role runs part p.
func (c *Config) Runs(p Part) bool { return slices.Contains(c.Parts(), p) }
