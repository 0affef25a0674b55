package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "streamd.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The shipped config is what `make run` starts: it must load and say what
// the README promises.
func TestShippedConfigLoads(t *testing.T) {
	cfg, err := Load(Sources{File: "../../config/streamd.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Role != RoleAll || !cfg.Embedded.Enabled || cfg.Embedded.Listen != "127.0.0.1:9092" || cfg.Embedded.DataDir == "" || cfg.HTTP.Listen != "127.0.0.1:8080" {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
	if len(cfg.Cameras) != 3 || cfg.Cameras[0].Source != "testpattern" || cfg.Cameras[0].Width != 1280 || cfg.Cameras[0].Height != 720 || cfg.Cameras[0].FPS != 30 {
		t.Fatalf("first camera: %+v", cfg.Cameras)
	}
	if !strings.HasSuffix(cfg.Cameras[1].Source, "vtest.avi") || !cfg.Cameras[1].Loop {
		t.Fatalf("second camera: %+v", cfg.Cameras[1])
	}
	if !strings.HasSuffix(cfg.Cameras[2].Source, "Megamind.avi") || !cfg.Cameras[2].Loop || !cfg.Runs(PartAnalyze) || !cfg.Analyzer.Faces.Enabled {
		t.Fatalf("third camera %+v, analyzer %+v: the shipped config analyzes faces", cfg.Cameras[2], cfg.Analyzer)
	}
}

func TestExampleRoleConfigsLoad(t *testing.T) {
	for file, role := range map[string]string{"producer.yaml": RoleProducer, "consumer.yaml": RoleConsumer, "analyzer.yaml": RoleAnalyzer, "recorder.yaml": RoleRecorder, "notifier.yaml": RoleNotifier} {
		cfg, err := Load(Sources{File: "../../config/" + file})
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if cfg.Role != role || cfg.Embedded.Enabled || len(cfg.Kafka.Brokers) == 0 {
			t.Fatalf("%s: %+v", file, cfg)
		}
	}
}

// The configuration page (docs/configuration.md, generated from
// config/reference.yaml) names every key.
func TestEveryKeyOfTheShippedConfigIsDocumented(t *testing.T) {
	page, err := os.ReadFile(pageFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range leafKeys(reflect.TypeFor[Config](), "") {
		if !strings.Contains(string(page), "`"+key+"`") {
			t.Errorf("docs/configuration.md does not document %q", key)
		}
	}
	for _, key := range []string{"id", "source", "loop", "fps", "width", "height", "quality"} {
		if !strings.Contains(string(page), "`cameras[]."+key+"`") {
			t.Errorf("docs/configuration.md does not document cameras[].%s", key)
		}
	}
	for _, key := range structKeys(reflect.TypeFor[Config](), "") {
		if !strings.Contains(string(page), "`"+key+"`") {
			t.Errorf("docs/configuration.md does not document %q", key)
		}
	}
}

func TestDefaultsWithoutFile(t *testing.T) {
	cfg, err := Load(Sources{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Role != RoleAll || cfg.Kafka.Topic != "streamd.frames" || cfg.Kafka.FetchMaxWait != 50*time.Millisecond || len(cfg.Cameras) != 0 {
		t.Fatalf("%+v", cfg)
	}
}

func TestPrecedence(t *testing.T) {
	path := writeFile(t, "role: consumer\nembedded:\n  enabled: false\nkafka:\n  brokers: [file:9092]\n  topic: from-file\n  partitions: 3\n")
	cfg, err := Load(Sources{
		File:      path,
		Env:       []string{"STREAMD_KAFKA_BROKERS=h1:9092, h2:9092", "STREAMD_KAFKA_TOPIC=from-env", "STREAMD_KAFKA_MAX_MESSAGE_BYTES=2097152", "HOME=/root"},
		Overrides: map[string]string{"kafka.topic": "from-flag", "http.listen": "127.0.0.1:0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Kafka.Brokers; len(got) != 2 || got[0] != "h1:9092" || got[1] != "h2:9092" {
		t.Errorf("brokers from env: %v", got)
	}
	if cfg.Kafka.Topic != "from-flag" || cfg.Kafka.Partitions != 3 || cfg.Kafka.MaxMessageBytes != 2<<20 || cfg.HTTP.Listen != "127.0.0.1:0" || cfg.Role != RoleConsumer {
		t.Errorf("precedence: %+v", cfg.Kafka)
	}
}

func TestCameraDefaults(t *testing.T) {
	cfg, err := Load(Sources{File: writeFile(t, "cameras:\n  - id: p\n    source: testpattern\n  - id: cam\n    source: \"0\"\n  - id: net\n    source: rtsp://10.0.0.1/live\n")})
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Cameras[0]
	if p.Width != 1280 || p.Height != 720 || p.FPS != 30 || p.Quality != 80 {
		t.Errorf("pattern defaults: %+v", p)
	}
	// Only the test pattern has a default size: other sources keep their own.
	for _, cam := range cfg.Cameras[1:] {
		if cam.Width != 0 || cam.Height != 0 || cam.FPS != 0 || cam.Quality != 80 {
			t.Errorf("camera %s defaults: %+v", cam.ID, cam)
		}
	}
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, yaml string
		env        []string
		overrides  map[string]string
		want       string // the whole message after "config: " or the file prefix
	}{
		{name: "unknown top-level key", yaml: "rol: all\n", want: `unknown key "rol"`},
		{name: "unknown nested key", yaml: "kafka:\n  brokerz: [a:1]\n", want: `unknown key "kafka.brokerz"`},
		{name: "unknown camera key", yaml: "cameras:\n  - id: a\n    sorce: testpattern\n", want: `unknown key "cameras[0].sorce"`},
		{name: "section as value", yaml: "http: 8080\n", want: `"http": must be a mapping of keys, got "8080"`},
		{name: "value as section", yaml: "role:\n  x: 1\n", want: `"role": must be a single value, got a mapping`},
		{name: "bad role", yaml: "role: viewer\n", want: `"role": must be producer, consumer, analyzer, recorder, notifier or all, got "viewer"`},
		{name: "bad acks", yaml: "kafka:\n  acks: some\n", want: `"kafka.acks": must be none, leader or all, got "some"`},
		{name: "bad retain", yaml: "recording:\n  retain: 30s\n", want: `"recording.retain": must be at least 1m (write days as 7d), got 30s`},
		{name: "sync without data", yaml: "embedded:\n  sync_writes: true\n", want: `"embedded.sync_writes": needs "embedded.data_dir": without it the broker keeps everything in memory`},
		{name: "bad preset", yaml: "recording:\n  preset: quick\n", want: `"recording.preset": must be one of ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow, got "quick"`},
		{name: "bad crf", yaml: "recording:\n  crf: 0\n", want: `"recording.crf": must be between 1 and 51, got 0`},
		{name: "bad number", yaml: "kafka:\n  partitions: many\n", want: `"kafka.partitions": cannot use "many" as a whole number`},
		{name: "bad duration", yaml: "kafka:\n  fetch_max_wait: 5 sec\n", want: `"kafka.fetch_max_wait": cannot use "5 sec" as a duration (such as 500ms, 10s, 1h)`},
		{name: "bad camera number", yaml: "cameras:\n  - id: a\n    source: testpattern\n    fps: fast\n", want: `"cameras[0].fps": cannot use "fast" as a number`},
		{name: "duplicate camera", yaml: "cameras:\n  - id: a\n    source: testpattern\n  - id: a\n    source: testpattern\n", want: `"cameras[1].id": duplicate camera id "a" (also cameras[0])`},
		{name: "bad camera id", yaml: "cameras:\n  - id: a/b\n    source: testpattern\n", want: `"cameras[0].id": invalid camera id "a/b": character '/' not allowed (use A-Z a-z 0-9 _ . -)`},
		{name: "consumer without brokers", yaml: "role: consumer\nembedded:\n  enabled: false\n", want: `"kafka.brokers": role "consumer" needs at least one broker (host:port), or set "embedded.enabled": true`},
		{name: "brokers and embedded", yaml: "kafka:\n  brokers: [k:9092]\n", want: `"kafka.brokers": must be empty while "embedded.enabled" is true (set embedded.enabled: false to use these brokers)`},
		{name: "broker without port", yaml: "embedded:\n  enabled: false\nkafka:\n  brokers: [kafka]\n", want: `"kafka.brokers[0]": must be host:port, got "kafka"`},
		{name: "producer without cameras", yaml: "role: producer\n", want: `"cameras": role "producer" needs at least one camera`},
		{name: "producer camera without source", yaml: "role: producer\ncameras:\n  - id: a\n", want: `"cameras[0].source": role "producer" needs a source: testpattern, a file, a device index or a URL`},
		{name: "unreadable file", yaml: "cameras:\n  - id: a\n    source: " + dir + "/missing.avi\n", want: `"cameras[0].source": cannot read video file: open ` + dir + `/missing.avi: no such file or directory`},
		{name: "directory as file", yaml: "cameras:\n  - id: a\n    source: " + dir + "\n", want: `"cameras[0].source": cannot read video file: ` + dir + ` is a directory`},
		{name: "quality", yaml: "cameras:\n  - id: a\n    source: testpattern\n    quality: 101\n", want: `"cameras[0].quality": must be between 1 and 100, got 101`},
		{name: "half a size", yaml: "cameras:\n  - id: a\n    source: \"0\"\n    width: 640\n", want: `"cameras[0].width": set both width and height or neither, got 640x0`},
		{name: "old kafka", yaml: "kafka:\n  version: 0.10.2\n", want: `"kafka.version": version "0.10.2" has no record headers; need 0.11.0 or later (2.8.0 recommended)`},
		{name: "small max message", yaml: "kafka:\n  max_message_bytes: 1000\n", want: `"kafka.max_message_bytes": must be between 65536 and 67108864, got 1000`},
		{name: "bad topic", yaml: "kafka:\n  topic: my topic\n", want: `"kafka.topic": character ' ' not allowed in topic name "my topic"`},
		{name: "unspecified embedded host", yaml: "embedded:\n  listen: 0.0.0.0:9092\n", want: `"embedded.listen": must name the address clients connect to, such as 127.0.0.1:9092; the broker advertises it, so "0.0.0.0:9092" cannot be used`},
		{name: "bad listen", yaml: "http:\n  listen: 8080\n", want: `"http.listen": must be host:port, got "8080"`},
		{name: "bad log format", yaml: "log:\n  format: xml\n", want: `"log.format": must be text or json, got "xml"`},
		{name: "short token", yaml: "auth:\n  tokens:\n    - name: a\n      token: short\n", want: `"auth.tokens[0].token": must be at least 16 characters (use a random string, e.g. openssl rand -hex 24)`},
		{name: "plain password", yaml: "auth:\n  users:\n    - name: bob\n      password_bcrypt: hunter2\n", want: `"auth.users[0].password_bcrypt": must be a bcrypt hash such as $2a$10$… (htpasswd -nbB user password), not a password`},
		{name: "duplicate principal", yaml: "auth:\n  tokens:\n    - name: bob\n      token: 0123456789abcdef0\n  users:\n    - name: bob\n      password_bcrypt: $2a$04$veWKOf/mZihrvKOZGDvcSO1wrA/jx/ODQ.SH.pRLFk6lqYbO2Ob3e\n", want: `"auth.users[0].name": duplicate name "bob" (also auth.tokens[0])`},
		{name: "bad allowed camera", yaml: "auth:\n  tokens:\n    - name: a\n      token: 0123456789abcdef0\n      cameras: [\"a b\"]\n", want: `"auth.tokens[0].cameras[0]": invalid camera id "a b": character ' ' not allowed (use A-Z a-z 0-9 _ . -)`},
		{name: "unknown auth key", yaml: "auth:\n  tokens:\n    - name: a\n      secret: x\n", want: `unknown key "auth.tokens[0].secret"`},
		{name: "nan camera fps", yaml: "cameras:\n  - id: a\n    source: testpattern\n    fps: nan\n", want: `"cameras[0].fps": must be between 0 and 240, got NaN`},
		{name: "yaml nan camera fps", yaml: "cameras:\n  - id: a\n    source: testpattern\n    fps: .nan\n", want: `"cameras[0].fps": must be between 0 and 240, got NaN`},
		{name: "infinite camera fps", yaml: "cameras:\n  - id: a\n    source: testpattern\n    fps: .inf\n", want: `"cameras[0].fps": must be between 0 and 240, got +Inf`},
		{name: "nan camera min_area", yaml: "cameras:\n  - id: a\n    source: testpattern\n    motion: {min_area: .nan}\n", want: `"cameras[0].motion.min_area": must be a fraction of the frame below 1 (0: analyzer.motion.min_area), got NaN`},
		{name: "nan camera motion fps", yaml: "cameras:\n  - id: a\n    source: testpattern\n    motion: {fps: nan}\n", want: `"cameras[0].motion.fps": must be between 0 and 60 (0: analyzer.fps), got NaN`},
		{name: "nan mask point", yaml: "cameras:\n  - id: a\n    source: testpattern\n    motion:\n      masks: [[[0, 0], [1, .nan], [1, 1]]]\n", want: `"cameras[0].motion.masks[0][1]": must be [x, y] with both between 0 and 1 (fractions of the frame), got [1 NaN]`},
		{name: "infinite mask point", yaml: "cameras:\n  - id: a\n    source: testpattern\n    motion:\n      masks: [[[0, 0], [-.inf, 1], [1, 1]]]\n", want: `"cameras[0].motion.masks[0][1]": must be [x, y] with both between 0 and 1 (fractions of the frame), got [-Inf 1]`},
		{name: "nan analyzer fps unused by the role", yaml: "analyzer:\n  fps: nan\n", want: `"analyzer.fps": must be a number, got NaN`},
		{name: "infinite faces fps unused by the role", yaml: "role: consumer\nembedded: {enabled: false}\nkafka: {brokers: [k:9092]}\nanalyzer:\n  faces: {fps: .inf}\n", want: `"analyzer.faces.fps": must be a number, got +Inf`},
		{name: "objects model missing", yaml: "analyzer:\n  enabled: true\n  objects: {enabled: true, model: /nonexistent/centernet.json}\n", want: `"analyzer.objects.model": cannot read model file: open /nonexistent/centernet.json: no such file or directory`},
		{name: "objects size", yaml: "analyzer:\n  enabled: true\n  objects: {enabled: true, size: 300}\n", want: `"analyzer.objects.size": must be a multiple of 32 from 128 to 1024, got 300`},
		{name: "objects fps", yaml: "analyzer:\n  enabled: true\n  objects: {enabled: true, fps: 0}\n", want: `"analyzer.objects.fps": must be more than 0 and at most 30, got 0`},
		{name: "objects max_cpu", yaml: "analyzer:\n  enabled: true\n  objects: {enabled: true, max_cpu: 0}\n", want: `"analyzer.objects.max_cpu": must be between 0.05 and 64 cores, got 0`},
		{name: "objects workers", yaml: "analyzer:\n  enabled: true\n  objects: {enabled: true, workers: 0}\n", want: `"analyzer.objects.workers": must be between 1 and 64, got 0`},
		{name: "objects no labels", yaml: "analyzer:\n  enabled: true\n  objects: {enabled: true, track: []}\n", want: `"analyzer.objects.track": must list at least one label (to stop detecting, set analyzer.objects.enabled: false)`},
		{name: "objects filter label", yaml: "analyzer:\n  enabled: true\n  objects:\n    enabled: true\n    filters: [{label: skis, min_score: 0.6}]\n", want: `"analyzer.objects.filters[0].label": "skis" is not in analyzer.objects.track`},
		{name: "objects filter twice", yaml: "analyzer:\n  enabled: true\n  objects:\n    enabled: true\n    filters: [{label: car}, {label: car}]\n", want: `"analyzer.objects.filters[1].label": "car" has a filter already`},
		{name: "objects filter score", yaml: "analyzer:\n  enabled: true\n  objects:\n    enabled: true\n    filters: [{label: person, threshold: 1.5}]\n", want: `"analyzer.objects.filters[0].threshold": must be between 0 and 1 (0: the default), got 1.5`},
		{name: "objects threshold below min_score", yaml: "analyzer:\n  enabled: true\n  objects:\n    enabled: true\n    filters: [{label: person, min_score: 0.7, threshold: 0.6}]\n", want: `"analyzer.objects.filters[0].threshold": must not be below min_score 0.7, got 0.6`},
		{name: "zone without name", yaml: "cameras:\n  - id: a\n    source: testpattern\n    zones: [{points: [[0, 0], [1, 0], [1, 1]]}]\n", want: `"cameras[0].zones[0].name": a zone name is 1 to 64 characters of A-Z a-z 0-9 _ . -, got ""`},
		{name: "zone twice", yaml: "cameras:\n  - id: a\n    source: testpattern\n    zones: [{name: z, points: [[0, 0], [1, 0], [1, 1]]}, {name: z, points: [[0, 0], [1, 0], [1, 1]]}]\n", want: `"cameras[0].zones[1].name": duplicate zone "z" (also cameras[0].zones[0])`},
		{name: "zone of two points", yaml: "cameras:\n  - id: a\n    source: testpattern\n    zones: [{name: z, points: [[0, 0], [1, 0]]}]\n", want: `"cameras[0].zones[0].points": a zone is a polygon of at least 3 [x, y] points, got 2`},
		{name: "zone point outside", yaml: "cameras:\n  - id: a\n    source: testpattern\n    zones: [{name: z, points: [[0, 0], [1.2, 0], [1, 1]]}]\n", want: `"cameras[0].zones[0].points[1]": must be [x, y] with both between 0 and 1 (fractions of the frame), got [1.2 0]`},
		{name: "zone inertia", yaml: "cameras:\n  - id: a\n    source: testpattern\n    zones: [{name: z, points: [[0, 0], [1, 0], [1, 1]], inertia: -1}]\n", want: `"cameras[0].zones[0].inertia": must be between 1 and 100 detections (0: 3), got -1`},
		{name: "zone unknown key", yaml: "cameras:\n  - id: a\n    source: testpattern\n    zones: [{name: z, polygon: [[0, 0], [1, 0], [1, 1]]}]\n", want: `unknown key "cameras[0].zones[0].polygon"`},
		{name: "full_on", yaml: "recording: {full_on: always}\n", want: `"recording.full_on": must be motion, objects or alerts, got "always"`},
		{name: "alert label not tracked", yaml: "analyzer:\n  enabled: true\n  objects: {track: [person, car]}\nreview:\n  alerts: {labels: [person, dog]}\n", want: `"review.alerts.labels[1]": "dog" is not in analyzer.objects.track`},
		{name: "alert zone unknown", yaml: "analyzer: {enabled: true}\nreview:\n  alerts: {required_zones: [porch]}\n", want: `"review.alerts.required_zones[0]": "porch" is not a zone of any camera (cameras[].zones)`},
		{name: "review unknown key", yaml: "review:\n  alerts: {zones: [porch]}\n", want: `unknown key "review.alerts.zones"`},
		{name: "objects filter unknown key", yaml: "analyzer:\n  enabled: true\n  objects:\n    enabled: true\n    filters: [{label: person, score: 0.6}]\n", want: `unknown key "analyzer.objects.filters[0].score"`},
		{name: "camera objects not a bool", yaml: "cameras:\n  - id: a\n    source: testpattern\n    objects: maybe\n", want: `"cameras[0].objects": cannot use "maybe" as true or false`},
		{name: "nan env analyzer fps", env: []string{"STREAMD_ANALYZER_MOTION_GLOBAL_FRACTION=NaN"}, want: `"analyzer.motion.global_fraction": must be a number, got NaN`},
		{name: "bad pointer value", yaml: "cameras:\n  - id: a\n    source: testpattern\n    analyze: maybe\n", want: `"cameras[0].analyze": cannot use "maybe" as true or false`},
		{name: "word in a mask point", yaml: "cameras:\n  - id: a\n    source: testpattern\n    motion:\n      masks: [[[0, 0], [1, x], [1, 1]]]\n", want: `"cameras[0].motion.masks[0][1][1]": cannot use "x" as a number`},
		{name: "list in a mask point", yaml: "cameras:\n  - id: a\n    source: testpattern\n    motion:\n      masks: [[[0, 0], [1, [2]], [1, 1]]]\n", want: `"cameras[0].motion.masks[0][1][1]": cannot use a list as a number`},
		{name: "mapping as a mask point", yaml: "cameras:\n  - id: a\n    source: testpattern\n    motion:\n      masks: [[[0, 0], {x: 1}, [1, 1]]]\n", want: `"cameras[0].motion.masks[0][1]": cannot use a mapping as a list`},
		{name: "errors in two cameras", yaml: "cameras:\n  - id: a\n    source: testpattern\n    fps: fast\n  - id: b\n    source: testpattern\n    quality: best\n", want: `"cameras[0].fps": cannot use "fast" as a number; "cameras[1].quality": cannot use "best" as a whole number`},
		{name: "short max_length", yaml: "events:\n  max_length: 5s\n", want: `"events.max_length": must be 0 (no limit) or between 10s and 24h, got 5s`},
		{name: "duration without unit", yaml: "kafka:\n  dial_timeout: 5\n", want: `"kafka.dial_timeout": 5 has no unit; write a duration such as 500ms, 10s, 1h`},
		{name: "fractional duration without unit", yaml: "kafka:\n  retention: 1.5\n", want: `"kafka.retention": 1.5 has no unit; write a duration such as 500ms, 10s, 1h`},
		{name: "quoted duration without unit", yaml: "hub:\n  max_delay: \"250\"\n", want: `"hub.max_delay": 250 has no unit; write a duration such as 500ms, 10s, 1h`},
		{name: "env duration without unit", env: []string{"STREAMD_KAFKA_DIAL_TIMEOUT=5"}, want: `"kafka.dial_timeout": 5 has no unit; write a duration such as 500ms, 10s, 1h`},
		{name: "bool as duration", yaml: "kafka:\n  fetch_max_wait: true\n", want: `"kafka.fetch_max_wait": cannot use "true" as a duration (such as 500ms, 10s, 1h)`},
		{name: "unknown env", env: []string{"STREAMD_KAFKA_BROKER=a:1"}, want: `environment variable STREAMD_KAFKA_BROKER: no such key`},
		{name: "bad env value", env: []string{"STREAMD_KAFKA_PARTITIONS=eight"}, want: `"kafka.partitions": cannot use "eight" as a whole number`},
		{name: "unknown flag key", overrides: map[string]string{"http.port": "1"}, want: `unknown key "http.port" on the command line`},
		{name: "flag key not a leaf", overrides: map[string]string{"kafka": "x"}, want: `unknown key "kafka" on the command line`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := Sources{Env: tc.env, Overrides: tc.overrides}
			if tc.yaml != "" {
				src.File = writeFile(t, tc.yaml)
			}
			_, err := Load(src)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			prefixes := []string{"config: ", "config " + src.File + ": "}
			ok := false
			for _, p := range prefixes {
				if strings.HasPrefix(msg, p) && (strings.TrimPrefix(msg, p) == tc.want || strings.HasPrefix(strings.TrimPrefix(msg, p), tc.want+" (keys:")) {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("error:\n  got  %s\n  want %s", msg, tc.want)
			}
		})
	}
}

func TestUnreadableConfigFile(t *testing.T) {
	_, err := Load(Sources{File: "/nonexistent/streamd.yaml"})
	if err == nil || !strings.Contains(err.Error(), "config: read /nonexistent/streamd.yaml: ") {
		t.Fatalf("got %v", err)
	}
	_, err = Load(Sources{File: writeFile(t, "role: [unclosed\n")})
	if err == nil || !strings.HasPrefix(err.Error(), "config: read ") {
		t.Fatalf("bad yaml: %v", err)
	}
}

// 0 is the one duration that needs no unit: it means "off" or "the
// default" where the README says so.
func TestZeroDurationNeedsNoUnit(t *testing.T) {
	cfg, err := Load(Sources{
		File: writeFile(t, "kafka:\n  retention: 0\n  fetch_max_wait: 0.0\nevents:\n  history: 0s\n"),
		Env:  []string{"STREAMD_KAFKA_RETENTION=0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.Retention != 0 || cfg.Kafka.FetchMaxWait != 0 || cfg.Events.History != 0 {
		t.Fatalf("%+v %+v", cfg.Kafka, cfg.Events)
	}
}
