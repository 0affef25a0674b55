package web

import (
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/streamd/streamd/pkg/auth"
)

// Defaults of Options, used for zero fields.
const (
	DefaultWriteTimeout      = 10 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	// DefaultUnsentLimit keeps at most 64 KiB of a stream unsent in the
	// kernel, so a slow viewer skips frames in the hub instead of
	// watching seconds-old video queued in its socket.
	DefaultUnsentLimit     = 64 << 10
	DefaultMaxViewers      = 5000
	DefaultMaxViewersPerIP = 50
	// Replays each hold a Kafka partition reader and its buffers (about
	// 1 MB): fewer are allowed than live viewers, which share the hub.
	DefaultMaxReplays      = 50
	DefaultMaxReplaysPerIP = 10
)

// Options configures the server. Zero fields take the documented defaults.
type Options struct {
	Addr         string        // listen address; default 127.0.0.1:0
	Live         Live          // nil: no viewer routes (producer role)
	Static       fs.FS         // index.html, app.js, style.css
	Checks       []Check       // for /readyz
	WriteTimeout time.Duration // deadline for each streamed part; default DefaultWriteTimeout
	Logger       *slog.Logger  // default: discard
	// Status, if set, answers /api/status (JSON) for principals allowed
	// every camera.
	Status func() any
	// Events, if set, serves the analyzer's events: /api/events, its live
	// stream and snapshots.
	Events Events
	// Activity, if set, serves /api/cameras/{camera}/activity: how much
	// each camera's scene moved, per minute, for the day timeline.
	Activity Activity
	// Reviews, if set, stores the review page's reviewed marks
	// (POST /api/review/marks, DELETE /api/review/marks/{id}); without it
	// the review page lists events but cannot mark them.
	Reviews Reviews
	// Replays, if set, serves /stream/{camera}?at=, /snapshot/{camera}?at=
	// and /api/cameras/{camera}/range.
	Replays Replays
	// Recordings, if set, serves /api/storage, spans and MP4 exports;
	// MaxExport caps an export's length, MaxExports how many run at once
	// (0: no cap), and ClipPreRoll and ClipPostRoll widen an event's clip.
	Recordings                Recordings
	MaxExport                 time.Duration
	MaxExports                int
	ClipPreRoll, ClipPostRoll time.Duration
	// MaxReplays and MaxReplaysPerIP bound replays open at once (0:
	// unlimited); past them a replay request gets 429.
	MaxReplays, MaxReplaysPerIP int
	// Metrics, if set, is served at /metrics.
	Metrics http.Handler
	// UnsentLimit sets TCP_NOTSENT_LOWAT on stream connections (0: kernel
	// default; Linux only); see config.HTTPConfig.UnsentLimit.
	UnsentLimit int
	// Pprof serves the runtime profiles at /debug/pprof/.
	Pprof bool
	// ReadHeaderTimeout and IdleTimeout bound slow and idle clients;
	// defaults 10s and 2m.
	ReadHeaderTimeout, IdleTimeout time.Duration
	// MaxViewers and MaxViewersPerIP bound open streams (0: unlimited);
	// past them a stream request gets 429.
	MaxViewers, MaxViewersPerIP int
	// TrustedProxies are the networks whose X-Real-IP / X-Forwarded-For
	// name the client (for the per-IP limit and logs).
	TrustedProxies []*net.IPNet
	// Auth, if set and enabled, protects every route but /healthz and
	// /readyz; principals limited to some cameras get 403 for others.
	Auth *auth.Authenticator
	// TLSCertFile and TLSKeyFile, if set, make the server speak HTTPS
	// (PEM files; ReloadCert re-reads them). Browsers then negotiate
	// HTTP/2, so every stream of a page shares one connection.
	TLSCertFile, TLSKeyFile string
	// Latency, if set, returns a camera's recorder of capture→serve
	// latency; it is resolved once per stream and called for every part.
	Latency func(camera string) func(time.Duration)
}
