package config

import (
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/redact"
	"github.com/streamd/streamd/pkg/source"
)

// applyDefaults fills zero camera fields.
func (c *Config) applyDefaults() {
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		if cam.Quality == 0 {
			cam.Quality = source.DefaultQuality
		}
		if source.KindOf(cam.Source) == source.Pattern {
			if cam.Width == 0 {
				cam.Width = source.DefaultPatternWidth
			}
			if cam.Height == 0 {
				cam.Height = source.DefaultPatternHeight
			}
			if cam.FPS == 0 {
				cam.FPS = source.DefaultPatternFPS
			}
		}
	}
}

// Validate checks the configuration and returns the first problem found,
// quoting its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %q: %s", key, fmt.Sprintf(format, args...)))
	}
	if parts, ok := c.partsOf(c.Role); !ok {
		bad("role", "must be %s, got %q", rolesText(), c.Role)
	} else if !OpenCV {
		for _, p := range parts {
			if p.needsOpenCV() {
				bad("role", "role %q needs OpenCV (to %s), and this binary was built without OpenCV (-tags nocv); run the full streamd build", c.Role, p)
				break
			}
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}

	k := c.Kafka
	if c.Embedded.Enabled && len(k.Brokers) > 0 {
		bad("kafka.brokers", "must be empty while \"embedded.enabled\" is true (set embedded.enabled: false to use these brokers)")
	}
	if !c.Embedded.Enabled && len(k.Brokers) == 0 {
		bad("kafka.brokers", "role %q needs at least one broker (host:port), or set \"embedded.enabled\": true", c.Role)
	}
	for i, b := range k.Brokers {
		if err := checkHostPort(b, false); err != nil {
			bad(fmt.Sprintf("kafka.brokers[%d]", i), "%v", err)
		}
	}
	if err := checkTopic(k.Topic); err != nil {
		bad("kafka.topic", "%v", err)
	}
	if k.ClientID == "" {
		bad("kafka.client_id", "must not be empty")
	}
	if k.Group != "" && len(k.Group) > 249 {
		bad("kafka.group", "at most 249 characters")
	}
	if _, err := ParseKafkaVersion(k.Version); err != nil {
		bad("kafka.version", "%v", err)
	}
	if k.Partitions < 1 || k.Partitions > 10000 {
		bad("kafka.partitions", "must be between 1 and 10000, got %d", k.Partitions)
	}
	if k.ReplicationFactor < 1 || k.ReplicationFactor > 32 {
		bad("kafka.replication_factor", "must be between 1 and 32, got %d", k.ReplicationFactor)
	}
	if k.Retention < 0 || (k.Retention > 0 && k.Retention.Milliseconds() < 1000) {
		bad("kafka.retention", "must be at least 1s (0 keeps the broker's default), got %s", k.Retention)
	}
	if k.RetentionBytes < -1 || (k.RetentionBytes >= 0 && k.RetentionBytes < int64(k.MaxMessageBytes)) {
		bad("kafka.retention_bytes", "must be -1 (unlimited) or at least kafka.max_message_bytes (%d), got %d", k.MaxMessageBytes, k.RetentionBytes)
	}
	if k.MaxMessageBytes < 64<<10 || k.MaxMessageBytes > 64<<20 {
		bad("kafka.max_message_bytes", "must be between 65536 and 67108864, got %d", k.MaxMessageBytes)
	}
	if k.FetchMaxWait < 0 || k.FetchMaxWait > 10e9 {
		bad("kafka.fetch_max_wait", "must be between 0 and 10s, got %s", k.FetchMaxWait)
	}
	switch k.Compression {
	case "none", "gzip", "snappy", "lz4", "zstd":
	default:
		bad("kafka.compression", "must be none, gzip, snappy, lz4 or zstd, got %q", k.Compression)
	}
	switch k.Acks {
	case "none", "leader", "all":
	default:
		bad("kafka.acks", "must be none, leader or all, got %q", k.Acks)
	}
	if t := k.TLS; t.Enabled {
		for key, f := range map[string]string{"kafka.tls.ca_file": t.CAFile, "kafka.tls.cert_file": t.CertFile, "kafka.tls.key_file": t.KeyFile} {
			if f != "" {
				if err := checkReadable(f); err != nil {
					bad(key, "%v", strings.Replace(err.Error(), "video file", "file", 1))
				} else if err := checkPEM(f, key == "kafka.tls.key_file"); err != nil {
					bad(key, "%v", err)
				}
			}
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			bad("kafka.tls.cert_file", "a client certificate needs both kafka.tls.cert_file and kafka.tls.key_file")
		}
	} else if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" {
		bad("kafka.tls.enabled", "must be true when TLS files are set")
	}
	switch k.SASL.Mechanism {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		switch {
		case k.SASL.Password != "" && k.SASL.PasswordFile != "":
			bad("kafka.sasl.password_file", "set kafka.sasl.password or kafka.sasl.password_file, not both")
		case k.SASL.PasswordFile != "":
			if _, err := k.SASL.PasswordValue(); err != nil {
				bad("kafka.sasl.password_file", "%v", err)
			}
		case k.SASL.Password == "":
			bad("kafka.sasl.password", "SASL %s needs a password: kafka.sasl.password_file, STREAMD_KAFKA_SASL_PASSWORD or kafka.sasl.password", k.SASL.Mechanism)
		}
		if k.SASL.Username == "" {
			bad("kafka.sasl.username", "SASL %s needs kafka.sasl.username", k.SASL.Mechanism)
		}
	default:
		bad("kafka.sasl.mechanism", "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", k.SASL.Mechanism)
	}
	if k.DialTimeout <= 0 {
		bad("kafka.dial_timeout", "must be positive, got %s", k.DialTimeout)
	}

	if c.Embedded.Enabled {
		if err := checkHostPort(c.Embedded.Listen, true); err != nil {
			bad("embedded.listen", "%v", err)
		} else if host, _, _ := net.SplitHostPort(c.Embedded.Listen); host == "" || net.ParseIP(host).IsUnspecified() {
			bad("embedded.listen", "must name the address clients connect to, such as 127.0.0.1:9092; the broker advertises it, so %q cannot be used", c.Embedded.Listen)
		}
		if c.Embedded.SegmentBytes < 1<<20 {
			bad("embedded.segment_bytes", "must be at least 1048576, got %d", c.Embedded.SegmentBytes)
		}
		if c.Embedded.RetentionCheck < 1e9 {
			bad("embedded.retention_check", "must be at least 1s, got %s", c.Embedded.RetentionCheck)
		}
		if c.Embedded.SyncWrites && c.Embedded.DataDir == "" {
			bad("embedded.sync_writes", "needs \"embedded.data_dir\": without it the broker keeps everything in memory")
		}
	}

	if err := checkHostPort(c.HTTP.Listen, true); err != nil {
		bad("http.listen", "%v", err)
	}
	if c.HTTP.WriteTimeout < 1e8 {
		bad("http.write_timeout", "must be at least 100ms, got %s", c.HTTP.WriteTimeout)
	}
	if c.HTTP.UnsentLimit < 0 || (c.HTTP.UnsentLimit > 0 && c.HTTP.UnsentLimit < 4096) {
		bad("http.unsent_limit", "must be 0 (kernel default) or at least 4096, got %d", c.HTTP.UnsentLimit)
	}
	if c.HTTP.ReadHeaderTimeout < 100*time.Millisecond || c.HTTP.ReadHeaderTimeout > 5*time.Minute {
		bad("http.read_header_timeout", "must be between 100ms and 5m, got %s", c.HTTP.ReadHeaderTimeout)
	}
	if c.HTTP.IdleTimeout < time.Second {
		bad("http.idle_timeout", "must be at least 1s, got %s", c.HTTP.IdleTimeout)
	}
	if c.HTTP.MaxViewers < 0 {
		bad("http.max_viewers", "must be 0 (unlimited) or more, got %d", c.HTTP.MaxViewers)
	}
	if t := c.HTTP.TLS; t.CertFile != "" || t.KeyFile != "" {
		if t.CertFile == "" || t.KeyFile == "" {
			bad("http.tls.cert_file", "HTTPS needs both http.tls.cert_file and http.tls.key_file")
		}
		for key, f := range map[string]string{"http.tls.cert_file": t.CertFile, "http.tls.key_file": t.KeyFile} {
			if f == "" {
				continue
			}
			if err := checkReadable(f); err != nil {
				bad(key, "%v", strings.Replace(err.Error(), "video file", "file", 1))
			} else if err := checkPEM(f, key == "http.tls.key_file"); err != nil {
				bad(key, "%v", err)
			}
		}
	}
	if c.HTTP.MaxReplays < 0 {
		bad("http.max_replays", "must be 0 (unlimited) or more, got %d", c.HTTP.MaxReplays)
	}
	if c.HTTP.MaxReplaysPerIP < 0 {
		bad("http.max_replays_per_ip", "must be 0 (unlimited) or more, got %d", c.HTTP.MaxReplaysPerIP)
	}
	if !(c.Replay.MaxFPS >= 1 && c.Replay.MaxFPS <= 120) {
		bad("replay.max_fps", "must be between 1 and 120, got %g", c.Replay.MaxFPS)
	}
	if c.HTTP.MaxViewersPerIP < 0 {
		bad("http.max_viewers_per_ip", "must be 0 (unlimited) or more, got %d", c.HTTP.MaxViewersPerIP)
	}
	for i, cidr := range c.HTTP.TrustedProxies {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			bad(fmt.Sprintf("http.trusted_proxies[%d]", i), "must be an address range such as 10.0.0.0/8 or 127.0.0.1/32, got %q", cidr)
		}
	}
	if c.Hub.MaxDelay < 10*time.Millisecond || c.Hub.MaxDelay > time.Minute {
		bad("hub.max_delay", "must be between 10ms and 1m, got %s", c.Hub.MaxDelay)
	}
	if c.Hub.RingSize < 2 || c.Hub.RingSize > 1024 {
		bad("hub.ring_size", "must be between 2 and 1024, got %d", c.Hub.RingSize)
	}

	if c.Runs(PartAnalyze) || c.Runs(PartView) || c.Runs(PartRecord) || c.Runs(PartNotify) {
		c.validateAnalyzer(bad)
		c.validateRecord(bad)
	}
	if c.Runs(PartNotify) || c.Role == RoleNotifier {
		c.validateNotify(bad)
	}
	if u := c.HTTP.PublicURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.User != nil || pu.RawQuery != "" {
			bad("http.public_url", "must be the http:// or https:// address of the page, without credentials or query, got %q", redact.URL(u))
		}
	}
	c.checkUnusedFloats(bad)
	if c.Events.History < 0 || c.Events.History > 30*24*time.Hour {
		bad("events.history", "must be between 0 and 720h, got %s", c.Events.History)
	}
	if n := c.Events.MaxEvents; n < 100 || n > 1000000 {
		bad("events.max_events", "must be between 100 and 1000000, got %d", n)
	}
	if m := c.Events.MaxLength; m != 0 && (m < 10*time.Second || m > 24*time.Hour) {
		bad("events.max_length", "must be 0 (no limit) or between 10s and 24h, got %s", m)
	}

	names := map[string]string{}
	for i, tk := range c.Auth.Tokens {
		key := func(f string) string { return fmt.Sprintf("auth.tokens[%d].%s", i, f) }
		if tk.Name == "" {
			bad(key("name"), "must be set (it names the token in logs)")
		} else if prev, dup := names[tk.Name]; dup {
			bad(key("name"), "duplicate name %q (also %s)", tk.Name, prev)
		} else {
			names[tk.Name] = fmt.Sprintf("auth.tokens[%d]", i)
		}
		if len(tk.Token) < 16 {
			bad(key("token"), "must be at least 16 characters (use a random string, e.g. openssl rand -hex 24)")
		}
		checkCameraList(bad, key("cameras"), tk.Cameras)
	}
	for i, u := range c.Auth.Users {
		key := func(f string) string { return fmt.Sprintf("auth.users[%d].%s", i, f) }
		if u.Name == "" || strings.Contains(u.Name, ":") {
			bad(key("name"), "must be set and contain no ':'")
		} else if prev, dup := names[u.Name]; dup {
			bad(key("name"), "duplicate name %q (also %s)", u.Name, prev)
		} else {
			names[u.Name] = fmt.Sprintf("auth.users[%d]", i)
		}
		if _, err := bcrypt.Cost([]byte(u.PasswordBcrypt)); err != nil {
			bad(key("password_bcrypt"), "must be a bcrypt hash such as $2a$10$… (htpasswd -nbB user password), not a password")
		}
		checkCameraList(bad, key("cameras"), u.Cameras)
	}

	if c.Role == RoleProducer && len(c.Cameras) == 0 {
		bad("cameras", "role %q needs at least one camera", c.Role)
	}
	seen := map[string]int{}
	for i, cam := range c.Cameras {
		key := func(f string) string { return fmt.Sprintf("cameras[%d].%s", i, f) }
		if err := frame.ValidateID(cam.ID); err != nil {
			bad(key("id"), "%v", err)
		} else if j, dup := seen[cam.ID]; dup {
			bad(key("id"), "duplicate camera id %q (also cameras[%d])", cam.ID, j)
		} else {
			seen[cam.ID] = i
		}
		if cam.Quality < 1 || cam.Quality > 100 {
			bad(key("quality"), "must be between 1 and 100, got %d", cam.Quality)
		}
		if !within(cam.FPS, 0, 240) {
			bad(key("fps"), "must be between 0 and 240, got %g", cam.FPS)
		}
		if cam.Width < 0 || cam.Width > 8192 || cam.Height < 0 || cam.Height > 8192 {
			bad(key("width"), "width and height must be between 0 and 8192, got %dx%d", cam.Width, cam.Height)
		} else if (cam.Width == 0) != (cam.Height == 0) {
			bad(key("width"), "set both width and height or neither, got %dx%d", cam.Width, cam.Height)
		}
		checkMotion(bad, key("motion"), cam.Motion)
		checkZones(bad, key("zones"), cam.Zones)
		if sub := cam.Substream; sub.Width != 0 || sub.Quality != 0 || sub.FPS != 0 {
			if sub.Width < 16 || sub.Width > 4096 {
				bad(key("substream.width"), "must be between 16 and 4096 pixels, got %d", sub.Width)
			}
			if sub.Quality < 0 || sub.Quality > 100 {
				bad(key("substream.quality"), "must be between 1 and 100 (0: 70), got %d", sub.Quality)
			}
			if !(sub.FPS >= 0 && sub.FPS <= 60) {
				bad(key("substream.fps"), "must be between 0 and 60 (0: 15), got %g", sub.FPS)
			}
		}
		if !c.Runs(PartCapture) {
			continue
		}
		if cam.Source == "" {
			bad(key("source"), "role %q needs a source: testpattern, a file, a device index or a URL", c.Role)
			continue
		}
		if source.KindOf(cam.Source) == source.File {
			if err := checkReadable(cam.Source); err != nil {
				bad(key("source"), "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

// checkPEM makes sure a TLS file holds what it should: a certificate, or
// for a key file a private key. A readable file that is not PEM would
// otherwise only fail when the first connection is made.
func checkPEM(path string, key bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read file: %w", err)
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if key == strings.Contains(b.Type, "PRIVATE KEY") {
			return nil
		}
	}
	if key {
		return fmt.Errorf("%s holds no PEM private key", path)
	}
	return fmt.Errorf("%s holds no PEM certificate", path)
}

// validateRecord checks the recording keys. Topics are checked for every
// role: web nodes read them.
func (c *Config) validateRecord(bad func(key, format string, args ...any)) {
	r := c.Record
	seen := map[string]string{c.Kafka.Topic: "kafka.topic", c.Analyzer.EventsTopic: "analyzer.events_topic", c.Analyzer.SnapshotsTopic: "analyzer.snapshots_topic"}
	for _, t := range []struct{ key, topic string }{
		{"recording.full_topic", r.FullTopic}, {"recording.reduced_topic", r.ReducedTopic}, {"recording.index_topic", r.IndexTopic},
		{"analyzer.activity_topic", c.Analyzer.ActivityTopic}, {"events.reviews_topic", c.Events.ReviewsTopic},
	} {
		if err := checkTopic(t.topic); err != nil {
			bad(t.key, "%v", err)
		} else if other, dup := seen[t.topic]; dup {
			bad(t.key, "must differ from %s %q", other, t.topic)
		}
		seen[t.topic] = t.key
	}
	if r.Partitions < 1 || r.Partitions > 10000 {
		bad("recording.partitions", "must be between 1 and 10000, got %d", r.Partitions)
	}
	if r.Retain < time.Minute {
		bad("recording.retain", "must be at least 1m (write days as 7d), got %s", r.Retain)
	}
	if r.MaxBytes < 0 {
		bad("recording.max_bytes", "must be 0 (no cap: recording.retain alone) or a number of bytes, got %d", r.MaxBytes)
	} else if r.MaxBytes > 0 && r.MaxBytes < int64(4*r.Partitions)<<20 {
		bad("recording.max_bytes", "must be at least 4 MiB per partition of each tier (%d bytes for %d partitions), got %d", int64(4*r.Partitions)<<20, r.Partitions, r.MaxBytes)
	}
	if !within(r.FullShare, 0.05, 0.95) {
		bad("recording.full_share", "must be a fraction between 0.05 and 0.95, got %g", r.FullShare)
	}
	if r.Interval < 100*time.Millisecond || r.Interval > time.Minute {
		bad("recording.interval", "must be between 100ms and 1m, got %s", r.Interval)
	}
	if r.PreRoll < 0 || r.PreRoll > time.Minute {
		bad("recording.pre_roll", "must be between 0 and 1m, got %s", r.PreRoll)
	}
	if r.PostRoll < 0 || r.PostRoll > 10*time.Minute {
		bad("recording.post_roll", "must be between 0 and 10m, got %s", r.PostRoll)
	}
	if r.Chunk < 500*time.Millisecond || r.Chunk > 30*time.Second {
		bad("recording.chunk", "must be between 500ms and 30s, got %s", r.Chunk)
	}
	if r.Codec != "h264/mp4" && r.Codec != "mpeg4/mp4" {
		bad("recording.codec", "must be %q or %q, got %q", "h264/mp4", "mpeg4/mp4", r.Codec)
	}
	if !slices.Contains(X264Presets(), r.Preset) {
		bad("recording.preset", "must be one of %s, got %q", strings.Join(X264Presets(), ", "), r.Preset)
	}
	if r.CRF < 1 || r.CRF > 51 {
		bad("recording.crf", "must be between 1 and 51, got %d", r.CRF)
	}
	if r.MaxExport < time.Second || r.MaxExport > 24*time.Hour {
		bad("recording.max_export", "must be between 1s and 24h, got %s", r.MaxExport)
	}
	if r.MaxExports < 1 || r.MaxExports > 64 {
		bad("recording.max_exports", "must be between 1 and 64, got %d", r.MaxExports)
	}
	switch r.FullOn {
	case "motion", "objects", "alerts":
	default:
		bad("recording.full_on", "must be motion, objects or alerts, got %q", r.FullOn)
	}
	if c.Runs(PartRecord) && (r.Group == "" || len(r.Group) > 241) {
		// 249, less the "-reduced" of the reduced tier's group.
		bad("recording.group", "must be 1 to 241 characters, got %q", r.Group)
	}
}

// validateAnalyzer checks the analyzer's keys, and the topics a viewer
// reads events from.
func (c *Config) validateAnalyzer(bad func(key, format string, args ...any)) {
	a := c.Analyzer
	for key, topic := range map[string]string{"analyzer.events_topic": a.EventsTopic, "analyzer.snapshots_topic": a.SnapshotsTopic} {
		if err := checkTopic(topic); err != nil {
			bad(key, "%v", err)
		} else if topic == c.Kafka.Topic {
			bad(key, "must differ from kafka.topic %q", c.Kafka.Topic)
		}
	}
	if a.EventsTopic == a.SnapshotsTopic {
		bad("analyzer.snapshots_topic", "must differ from analyzer.events_topic %q", a.EventsTopic)
	}
	if a.EventsRetention < time.Minute {
		bad("analyzer.events_retention", "must be at least 1m, got %s", a.EventsRetention)
	}
	if !c.Runs(PartAnalyze) {
		return
	}
	if a.Group == "" || len(a.Group) > 249 {
		bad("analyzer.group", "must be 1 to 249 characters, got %q", a.Group)
	}
	if a.MaxLag < 50*time.Millisecond || a.MaxLag > time.Minute {
		bad("analyzer.max_lag", "must be between 50ms and 1m, got %s", a.MaxLag)
	}
	if !(a.FPS > 0 && a.FPS <= 60) {
		bad("analyzer.fps", "must be more than 0 and at most 60, got %g", a.FPS)
	}
	if a.SessionTimeout < 3*time.Second || a.SessionTimeout > 5*time.Minute {
		bad("analyzer.session_timeout", "must be between 3s and 5m, got %s", a.SessionTimeout)
	}
	if a.MinFrames < 1 || a.MinFrames > 100 {
		bad("analyzer.min_frames", "must be between 1 and 100, got %d", a.MinFrames)
	}
	if a.Gap < time.Second || a.Gap > time.Hour {
		bad("analyzer.gap", "must be between 1s and 1h, got %s", a.Gap)
	}
	// Zero motion values take package vision's defaults.
	m := a.Motion
	if m.Threshold < 0 || m.Threshold > 254 {
		bad("analyzer.motion.threshold", "must be between 1 and 254 (0: the default), got %d", m.Threshold)
	}
	if !(m.MinArea >= 0 && m.MinArea < 1) {
		bad("analyzer.motion.min_area", "must be a fraction of the frame below 1 (0: the default), got %g", m.MinArea)
	}
	if !(m.GlobalFraction >= 0 && m.GlobalFraction <= 1) {
		bad("analyzer.motion.global_fraction", "must be a fraction of at most 1 (0: the default), got %g", m.GlobalFraction)
	}
	if f := a.Faces; f.Enabled {
		if err := checkReadable(f.Cascade); err != nil {
			bad("analyzer.faces.cascade", "%v (Debian: apt-get install opencv-data)", strings.Replace(err.Error(), "video file", "cascade file", 1))
		}
		if !(f.FPS > 0 && f.FPS <= 30) {
			bad("analyzer.faces.fps", "must be more than 0 and at most 30, got %g", f.FPS)
		}
		if f.Gap < time.Second || f.Gap > time.Hour {
			bad("analyzer.faces.gap", "must be between 1s and 1h, got %s", f.Gap)
		}
	}
	if o := a.Objects; o.Enabled {
		// A missing model at the default path turns detection off at
		// start (with a warning); a path someone wrote must be there.
		if o.Model != DefaultObjectModel {
			if err := checkReadable(o.Model); err != nil {
				bad("analyzer.objects.model", "%v", strings.Replace(err.Error(), "video file", "model file", 1))
			}
		}
		if o.Size < 128 || o.Size > 1024 || o.Size%32 != 0 {
			bad("analyzer.objects.size", "must be a multiple of 32 from 128 to 1024, got %d", o.Size)
		}
		if !(o.FPS > 0 && o.FPS <= 30) {
			bad("analyzer.objects.fps", "must be more than 0 and at most 30, got %g", o.FPS)
		}
		if !(o.MaxCPU >= 0.05 && o.MaxCPU <= 64) {
			bad("analyzer.objects.max_cpu", "must be between 0.05 and 64 cores, got %g", o.MaxCPU)
		}
		if o.Workers < 1 || o.Workers > 64 {
			bad("analyzer.objects.workers", "must be between 1 and 64, got %d", o.Workers)
		}
		if len(o.Track) == 0 {
			bad("analyzer.objects.track", "must list at least one label (to stop detecting, set analyzer.objects.enabled: false)")
		}
		for i, l := range o.Track {
			if l == "" || len(l) > 64 {
				bad(fmt.Sprintf("analyzer.objects.track[%d]", i), "must be a label of 1 to 64 characters, got %q", l)
			}
		}
		seen := map[string]bool{}
		for i, f := range o.Filters {
			key := fmt.Sprintf("analyzer.objects.filters[%d]", i)
			switch {
			case !slices.Contains(o.Track, f.Label):
				bad(key+".label", "%q is not in analyzer.objects.track", f.Label)
			case seen[f.Label]:
				bad(key+".label", "%q has a filter already", f.Label)
			}
			seen[f.Label] = true
			for _, v := range []struct {
				name string
				v    float64
			}{{"min_score", f.MinScore}, {"threshold", f.Threshold}, {"min_area", f.MinArea}, {"max_area", f.MaxArea}} {
				if !within(v.v, 0, 1) {
					bad(key+"."+v.name, "must be between 0 and 1 (0: the default), got %g", v.v)
				}
			}
			if f.MaxArea > 0 && f.MinArea > f.MaxArea {
				bad(key+".max_area", "must not be below min_area %g, got %g", f.MinArea, f.MaxArea)
			}
			if f.Threshold > 0 && f.MinScore > f.Threshold {
				bad(key+".threshold", "must not be below min_score %g, got %g", f.MinScore, f.Threshold)
			}
		}
		if o.Gap < time.Second || o.Gap > time.Hour {
			bad("analyzer.objects.gap", "must be between 1s and 1h, got %s", o.Gap)
		}
		for i, l := range c.Review.Alerts.Labels {
			if len(o.Track) > 0 && !slices.Contains(o.Track, l) {
				bad(fmt.Sprintf("review.alerts.labels[%d]", i), "%q is not in analyzer.objects.track", l)
			}
		}
		zones := map[string]bool{}
		for _, cam := range c.Cameras {
			for _, z := range cam.Zones {
				zones[z.Name] = true
			}
		}
		for i, z := range c.Review.Alerts.RequiredZones {
			if !zones[z] {
				bad(fmt.Sprintf("review.alerts.required_zones[%d]", i), "%q is not a zone of any camera (cameras[].zones)", z)
			}
		}
	}
}

// within reports whether lo <= x <= hi. It is false for NaN, which
// compares false with everything, so write a range check as !within(...)
// or !(x > lo && ...), never as x < lo || x > hi, which NaN passes.
func within(x, lo, hi float64) bool { return x >= lo && x <= hi }

// checkUnusedFloats refuses NaN and ±Inf in the analyzer's numbers that
// this role does not range-check (a viewer does not analyze; faces may be
// off): unused, but never a setting, and a NaN does not even equal itself
// when the configuration is compared or written back.
func (c *Config) checkUnusedFloats(bad func(key, format string, args ...any)) {
	a := c.Analyzer
	analyzes := c.Runs(PartAnalyze)
	for _, f := range []struct {
		key     string
		v       float64
		checked bool
	}{
		{"analyzer.fps", a.FPS, analyzes},
		{"analyzer.motion.min_area", a.Motion.MinArea, analyzes},
		{"analyzer.motion.global_fraction", a.Motion.GlobalFraction, analyzes},
		{"analyzer.faces.fps", a.Faces.FPS, analyzes && a.Faces.Enabled},
		{"analyzer.objects.fps", a.Objects.FPS, analyzes && a.Objects.Enabled},
	} {
		if !f.checked && (math.IsNaN(f.v) || math.IsInf(f.v, 0)) {
			bad(f.key, "must be a number, got %g", f.v)
		}
	}
}

// checkZones checks a camera's zones: names unique within the camera,
// polygons inside the frame.
func checkZones(bad func(key, format string, args ...any), key string, zones []ZoneConfig) {
	seen := map[string]int{}
	for i, z := range zones {
		zk := fmt.Sprintf("%s[%d]", key, i)
		if err := frame.ValidateID(z.Name); err != nil {
			bad(zk+".name", "a zone name is 1 to 64 characters of A-Z a-z 0-9 _ . -, got %q", z.Name)
		} else if j, dup := seen[z.Name]; dup {
			bad(zk+".name", "duplicate zone %q (also %s[%d])", z.Name, key, j)
		} else {
			seen[z.Name] = i
		}
		if len(z.Points) < 3 {
			bad(zk+".points", "a zone is a polygon of at least 3 [x, y] points, got %d", len(z.Points))
		}
		for j, pt := range z.Points {
			if len(pt) != 2 || !within(pt[0], 0, 1) || !within(pt[1], 0, 1) {
				bad(fmt.Sprintf("%s.points[%d]", zk, j), "must be [x, y] with both between 0 and 1 (fractions of the frame), got %v", pt)
			}
		}
		if z.Inertia < 0 || z.Inertia > 100 {
			bad(zk+".inertia", "must be between 1 and 100 detections (0: 3), got %d", z.Inertia)
		}
	}
}

// checkMotion checks a camera's motion overrides (zero keeps the default).
func checkMotion(bad func(key, format string, args ...any), key string, m CameraMotionConfig) {
	if m.Threshold < 0 || m.Threshold > 254 {
		bad(key+".threshold", "must be between 1 and 254 (0: analyzer.motion.threshold), got %d", m.Threshold)
	}
	if !(m.MinArea >= 0 && m.MinArea < 1) {
		bad(key+".min_area", "must be a fraction of the frame below 1 (0: analyzer.motion.min_area), got %g", m.MinArea)
	}
	if !within(m.FPS, 0, 60) {
		bad(key+".fps", "must be between 0 and 60 (0: analyzer.fps), got %g", m.FPS)
	}
	for i, poly := range m.Masks {
		pk := fmt.Sprintf("%s.masks[%d]", key, i)
		if len(poly) < 3 {
			bad(pk, "a mask is a polygon of at least 3 [x, y] points, got %d", len(poly))
			continue
		}
		for j, pt := range poly {
			if len(pt) != 2 || !within(pt[0], 0, 1) || !within(pt[1], 0, 1) {
				bad(fmt.Sprintf("%s[%d]", pk, j), "must be [x, y] with both between 0 and 1 (fractions of the frame), got %v", pt)
			}
		}
	}
}

func checkCameraList(bad func(key, format string, args ...any), key string, ids []string) {
	for j, id := range ids {
		if err := frame.ValidateID(id); err != nil {
			bad(fmt.Sprintf("%s[%d]", key, j), "%v", err)
		}
	}
}

func checkHostPort(s string, listen bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("must be host:port, got %q", s)
	}
	if !listen && host == "" {
		return fmt.Errorf("must be host:port with a host, got %q", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 || (!listen && p == 0) {
		return fmt.Errorf("bad port in %q", s)
	}
	return nil
}

func checkTopic(t string) error {
	if t == "" || t == "." || t == ".." || len(t) > 249 {
		return fmt.Errorf("must be a Kafka topic name of 1 to 249 characters, got %q", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("character %q not allowed in topic name %q", r, t)
		}
	}
	return nil
}

func checkReadable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read video file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot read video file: %w", err)
	}
	if st.IsDir() {
		return fmt.Errorf("cannot read video file: %s is a directory", path)
	}
	return nil
}

// ParseKafkaVersion checks a dotted Kafka version such as "2.8.0" or
// "3.7.0" and returns its numeric parts. Versions before 0.11 carry no record
// headers and are refused.
func ParseKafkaVersion(s string) ([]int, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 4 {
		return nil, fmt.Errorf("must be a Kafka version such as 2.8.0, got %q", s)
	}
	nums := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("must be a Kafka version such as 2.8.0, got %q", s)
		}
		nums[i] = n
	}
	if nums[0] == 0 && nums[1] < 11 {
		return nil, fmt.Errorf("version %q has no record headers; need 0.11.0 or later (2.8.0 recommended)", s)
	}
	return nums, nil
}
