// Package web serves streamd over HTTP with a chi router: the index page,
// MJPEG streams, snapshots, the camera API and health endpoints.
package web

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"golang.org/x/sys/unix"

	"github.com/streamd/streamd/pkg/auth"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/hub"
	"github.com/streamd/streamd/pkg/lograte"
	"github.com/streamd/streamd/pkg/mjpeg"
)

// Check is a named readiness check: nil when ready, otherwise the reason.
type Check struct {
	Name string
	Fn   func() error
}

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

// Reader is one viewer's sequence of frames: a live hub viewer, or (next)
// a replay of what Kafka holds. The MJPEG loop is fed by either.
type Reader interface {
	// Next blocks for the next frame. part, if not nil, is the frame's
	// whole MJPEG part, encoded once and shared by every viewer.
	Next(ctx context.Context) (f *frame.Frame, part []byte, err error)
	// Dropped counts the frames this reader skipped to stay current.
	Dropped() uint64
	// Close releases the reader.
	Close()
}

// Live is what the server needs from the live fan-out; HubLive adapts a
// *hub.Hub.
type Live interface {
	// Cameras returns every known camera's state.
	Cameras() []hub.Stats
	// Latest returns a camera's newest frame, nil before its first; ok
	// is false for a camera nobody knows.
	Latest(camera string) (f *frame.Frame, ok bool)
	// Subscribe opens a reader of a camera's live frames; ok is false
	// for a camera nobody knows.
	Subscribe(camera string) (r Reader, ok bool)
}

// HubLive adapts the hub to Live.
func HubLive(h *hub.Hub) Live { return hubLive{h} }

type hubLive struct{ h *hub.Hub }

// Cameras lists the cameras, not their substreams ("<id>~sub").
func (l hubLive) Cameras() []hub.Stats {
	all := l.h.Cameras()
	out := all[:0]
	for _, c := range all {
		if !strings.Contains(c.ID, "~") {
			out = append(out, c)
		}
	}
	return out
}

func (l hubLive) Latest(id string) (*frame.Frame, bool) {
	c, ok := l.h.Camera(id)
	if !ok {
		return nil, false
	}
	return c.Latest(), true
}

func (l hubLive) Subscribe(id string) (Reader, bool) {
	c, ok := l.h.Camera(id)
	if !ok {
		return nil, false
	}
	return c.Subscribe(), true
}

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
	// default); see config.HTTPConfig.UnsentLimit.
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

// Server is a running HTTP server.
type Server struct {
	o      Options
	srv    *http.Server
	ln     net.Listener
	log    *slog.Logger
	done   chan struct{}
	mu     sync.Mutex
	closed bool
	// base is the parent of every request context; cancelling it ends
	// all streams at once on shutdown.
	base       context.Context
	cancelBase context.CancelFunc

	authLog *lograte.Limiter
	page    *template.Template // index.html, nil without one
	camPage *template.Template // camera.html, nil without one

	viewersMu    sync.Mutex
	viewers      int            // open streams
	perIP        map[string]int // open streams per client address
	replays      int            // open replays
	replaysPerIP map[string]int
	exports      int // MP4 exports encoding now

	conns atomic.Int64 // open client connections
	cert  atomic.Pointer[tls.Certificate]
}

// Start opens the listener and serves in the background.
func Start(o Options) (*Server, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("http listen on %s: %w", o.Addr, err)
	}
	s := &Server{o: o, ln: ln, log: o.Logger, done: make(chan struct{}), perIP: map[string]int{}, replaysPerIP: map[string]int{}, authLog: lograte.New(time.Second)}
	if o.Static != nil {
		if _, err := fs.Stat(o.Static, "index.html"); err == nil {
			if s.page, err = template.ParseFS(o.Static, "index.html"); err != nil {
				ln.Close()
				return nil, fmt.Errorf("http: parse index page: %w", err)
			}
		}
		if _, err := fs.Stat(o.Static, "camera.html"); err == nil {
			if s.camPage, err = template.ParseFS(o.Static, "camera.html"); err != nil {
				ln.Close()
				return nil, fmt.Errorf("http: parse camera page: %w", err)
			}
		}
	}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	s.srv = &http.Server{
		BaseContext: func(net.Listener) context.Context { return s.base },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		Handler: s.Router(),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.conns.Add(1)
			case http.StateClosed, http.StateHijacked:
				s.conns.Add(-1)
			}
		},
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
		// No global WriteTimeout: streams are long-lived, and each part
		// gets its own write deadline instead.
	}
	if o.TLSCertFile != "" {
		if err := s.ReloadCert(); err != nil {
			ln.Close()
			return nil, err
		}
		s.srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil },
		}
	}
	go func() {
		defer close(s.done)
		serve := s.srv.Serve
		if s.srv.TLSConfig != nil {
			// ServeTLS also sets up HTTP/2 (ALPN h2).
			serve = func(l net.Listener) error { return s.srv.ServeTLS(l, "", "") }
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	s.log.Info("http listening", "addr", ln.Addr().String())
	return s, nil
}

// ReloadCert reads the TLS certificate and key again (SIGHUP, after a
// renewal); on error the certificate in use stays.
func (s *Server) ReloadCert() error {
	if s.o.TLSCertFile == "" {
		return nil
	}
	c, err := tls.LoadX509KeyPair(s.o.TLSCertFile, s.o.TLSKeyFile)
	if err != nil {
		return fmt.Errorf("http tls: load %s and %s: %w", s.o.TLSCertFile, s.o.TLSKeyFile, err)
	}
	s.cert.Store(&c)
	return nil
}

// TLS reports whether the server speaks HTTPS.
func (s *Server) TLS() bool { return s.o.TLSCertFile != "" }

// Connections returns the client connections open now.
func (s *Server) Connections() int64 { return s.conns.Load() }

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting connections and ends open streams (their request
// contexts are cancelled), waiting until ctx ends at most. It is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	// Streams never become idle, so Shutdown alone would wait for ctx:
	// end them through their base context, then shut down.
	s.cancelBase()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// Router returns the HTTP routes.
func (s *Server) Router() http.Handler {
	r := chi.NewRouter()
	// HEAD is answered wherever GET is (uptime checkers use it); net/http
	// sends the headers and drops the body.
	r.Use(s.recoverer, limitBody, middleware.GetHead)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such page: "+r.URL.Path)
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
	})
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	r.Get("/readyz", s.ready)
	r.Group(func(r chi.Router) { s.protected(r) })
	return r
}

// protected adds the routes that need credentials when auth is on.
func (s *Server) protected(r chi.Router) {
	r.Use(s.authenticate)
	if s.o.Metrics != nil {
		r.With(s.requireAllCameras).Method(http.MethodGet, "/metrics", s.o.Metrics)
	}
	if s.o.Status != nil {
		r.With(s.requireAllCameras).Get("/api/status", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, s.o.Status())
		})
	}
	if s.o.Pprof {
		r.Group(func(r chi.Router) {
			r.Use(s.requireAllCameras)
			r.HandleFunc("/debug/pprof/*", pprof.Index)
			r.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
			r.HandleFunc("/debug/pprof/profile", pprof.Profile)
			r.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			r.HandleFunc("/debug/pprof/trace", pprof.Trace)
		})
	}
	if s.o.Live != nil {
		r.Get("/", s.index)
		r.Get("/cameras/{camera}", s.cameraPage)
		if s.o.Static != nil {
			r.Handle("/static/*", http.StripPrefix("/static/", http.FileServerFS(s.o.Static)))
		}
		r.Get("/api/cameras", s.cameras)
		r.Get("/stream/{camera}", s.stream)
		r.Get("/snapshot/{camera}", s.snapshot)
		r.Get("/api/live", s.muxStream)
		if s.o.Replays != nil {
			r.Get("/api/cameras/{camera}/range", s.cameraRange)
		}
	}
	if s.o.Events != nil {
		s.routeEvents(r)
	}
	if s.o.Recordings != nil && s.o.Live != nil {
		s.routeRecordings(r)
	}
}

type principalKey struct{}

// principal returns who made the request (everyone when auth is off).
func principal(r *http.Request) *auth.Principal {
	if p, ok := r.Context().Value(principalKey{}).(*auth.Principal); ok {
		return p
	}
	return auth.Anyone()
}

// authenticate answers 401 without valid credentials.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.o.Auth == nil || !s.o.Auth.Enabled() {
			next.ServeHTTP(w, r)
			return
		}
		p, err := s.o.Auth.Authenticate(r)
		if err != nil {
			if s.o.Auth.HasUsers() {
				w.Header().Set("WWW-Authenticate", `Basic realm="streamd", charset="UTF-8"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="streamd"`)
			}
			if errors.Is(err, auth.ErrBadCredentials) {
				if ok, n := s.authLog.Allow(); ok {
					s.log.Warn("authentication failed", "client", s.clientIP(r), "path", r.URL.Path, "similar_failures", n)
				}
			}
			writeError(w, http.StatusUnauthorized, err.Error())
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// requireAllCameras answers 403 to principals limited to some cameras
// (metrics and profiles name every camera).
func (s *Server) requireAllCameras(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !principal(r).AllCameras() {
			writeError(w, http.StatusForbidden, principal(r).Name+" may not read this: it covers every camera")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody refuses request bodies: no route takes one.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

const maxBody = 4 << 10

// clientIP is the address of the client: the connection's peer, or, when
// that is a trusted proxy, the X-Real-IP or last X-Forwarded-For entry.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer := net.ParseIP(host)
	if peer == nil {
		return host
	}
	for _, n := range s.o.TrustedProxies {
		if !n.Contains(peer) {
			continue
		}
		if ip := net.ParseIP(strings.TrimSpace(r.Header.Get("X-Real-IP"))); ip != nil {
			return ip.String()
		}
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				return ip.String()
			}
		}
		break
	}
	return peer.String()
}

// admit counts a new stream, or says why it cannot be opened.
func (s *Server) admit(ip string) (release func(), refusal string) {
	s.viewersMu.Lock()
	defer s.viewersMu.Unlock()
	if s.o.MaxViewers > 0 && s.viewers >= s.o.MaxViewers {
		return nil, fmt.Sprintf("server at its viewer limit (%d)", s.o.MaxViewers)
	}
	if s.o.MaxViewersPerIP > 0 && s.perIP[ip] >= s.o.MaxViewersPerIP {
		return nil, fmt.Sprintf("too many streams from %s (limit %d)", ip, s.o.MaxViewersPerIP)
	}
	s.viewers++
	s.perIP[ip]++
	return func() {
		s.viewersMu.Lock()
		defer s.viewersMu.Unlock()
		s.viewers--
		if s.perIP[ip]--; s.perIP[ip] <= 0 {
			delete(s.perIP, ip)
		}
	}, ""
}

// admitOr429 counts a new long-lived response (a stream, the events
// stream), or answers 429 with the reason.
func (s *Server) admitOr429(w http.ResponseWriter, ip string) (release func(), ok bool) {
	release, refusal := s.admit(ip)
	if release == nil {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, refusal)
		return nil, false
	}
	return release, true
}

// streamHeaders sets the headers of a long-lived response: no caching, no
// proxy buffering (nginx), and contentType.
func streamHeaders(h http.Header, contentType string) {
	noCache(h)
	h.Set("Content-Type", contentType)
	h.Set("X-Accel-Buffering", "no")
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in http handler", "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// index serves the page. It is a template: a token the page was opened
// with (?token=) is carried into its own asset links, which cannot send an
// Authorization header.
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	s.renderPage(w, r, s.page)
}

// cameraPage serves the single-camera view of a camera the principal may
// watch.
func (s *Server) cameraPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.camera(w, r); ok {
		s.renderPage(w, r, s.camPage)
	}
}

func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, page *template.Template) {
	if page == nil {
		writeError(w, http.StatusNotFound, "no such page in this build")
		return
	}
	var data struct{ Query string }
	if tok := r.URL.Query().Get("token"); tok != "" {
		data.Query = "?token=" + url.QueryEscape(tok)
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, data); err != nil {
		writeError(w, http.StatusInternalServerError, "render page: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // keep tokens out of Referer headers
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	checks := map[string]string{}
	ready := true
	for _, c := range s.o.Checks {
		if err := c.Fn(); err != nil {
			checks[c.Name] = err.Error()
			ready = false
		} else {
			checks[c.Name] = "ok"
		}
	}
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"ready": ready, "checks": checks})
}

func (s *Server) cameras(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	all := s.o.Live.Cameras()
	visible := all[:0]
	for _, c := range all {
		if p.Allowed(c.ID) {
			visible = append(visible, c)
		}
	}
	writeJSON(w, http.StatusOK, visible)
}

// camera checks the camera named in the path (valid, allowed, known) or
// writes the error response.
func (s *Server) camera(w http.ResponseWriter, r *http.Request) (id string, ok bool) {
	id = chi.URLParam(r, "camera")
	if err := frame.ValidateID(id); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return "", false
	}
	// Checked before existence, so a limited principal learns nothing
	// about other cameras.
	if p := principal(r); !p.Allowed(id) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("%s may not watch camera %q", p.Name, id))
		return "", false
	}
	if _, known := s.o.Live.Latest(id); !known {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown camera %q", id))
		return "", false
	}
	return id, true
}

func noCache(h http.Header) {
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate, private, max-age=0")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "0")
}

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	id, ok := s.camera(w, r)
	if !ok {
		return
	}
	if r.URL.Query().Has("at") && s.o.Replays != nil {
		s.snapshotAt(w, r, id)
		return
	}
	f, _ := s.o.Live.Latest(id)
	if f == nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("camera %q has no frame yet", id))
		return
	}
	writeFrame(w, f)
}

// writeFrame answers with one frame's image and its capture time.
func writeFrame(w http.ResponseWriter, f *frame.Frame) {
	h := w.Header()
	noCache(h)
	h.Set("Content-Type", f.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(f.Data)))
	h.Set("X-Timestamp", string(mjpeg.AppendTimestamp(nil, f.CapturedAt)))
	h.Set("X-Sequence", strconv.FormatUint(f.Seq, 10))
	_, _ = w.Write(f.Data)
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	id, ok := s.camera(w, r)
	if !ok {
		return
	}
	if q := r.URL.Query(); (q.Has("at") || q.Has("speed")) && s.o.Replays != nil {
		s.replayStream(w, r, id)
		return
	}
	ip := s.clientIP(r)
	release, ok := s.admitOr429(w, ip)
	if !ok {
		return
	}
	defer release()
	src, ok := s.o.Live.Subscribe(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown camera %q", id))
		return
	}
	defer src.Close()
	log := s.log.With("camera", id, "client", ip, "principal", principal(r).Name)
	observe := func(time.Duration) {}
	if s.o.Latency != nil {
		observe = s.o.Latency(id)
	}
	log.Debug("viewer joined")
	sent := s.serveMJPEG(w, r, src, observe, log)
	log.Debug("viewer left", "frames", sent, "dropped", src.Dropped())
}

// serveMJPEG writes src's frames to w as an MJPEG stream until src ends,
// the client leaves, or one write stalls past WriteTimeout. It is the one
// streaming loop, whatever feeds it. It returns the frames written.
func (s *Server) serveMJPEG(w http.ResponseWriter, r *http.Request, src Reader, observe func(time.Duration), log *slog.Logger) (sent uint64) {
	h := w.Header()
	streamHeaders(h, mjpeg.ContentType)
	// No chunked encoding: the stream is the body until the connection
	// closes, as MJPEG servers send it, so a part is one write.
	h.Set("Transfer-Encoding", "identity")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return 0
	}
	if s.o.UnsentLimit > 0 {
		if err := setUnsentLimit(r.Context(), s.o.UnsentLimit); err != nil {
			log.Debug("cannot limit unsent bytes", "err", err)
		}
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return 0
	}
	ctx := r.Context()
	// Parts come from the hub already encoded (see EncodePart): one write
	// per part, shared bytes, nothing formatted per viewer. A frame without
	// them (published before anyone watched, or a hub without an encoder)
	// is written piece by piece, to the same bytes.
	mw := mjpeg.NewWriter(w)
	if _, err := w.Write(mjpeg.Opening); err != nil {
		return 0
	}
	for {
		f, wire, err := src.Next(ctx)
		if err != nil {
			return sent
		}
		// A fresh deadline per part: a stalled viewer is dropped after
		// WriteTimeout without affecting anyone else.
		if err := rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout)); err != nil {
			return sent
		}
		if wire != nil {
			_, err = w.Write(wire)
		} else {
			err = mw.WriteBody(mjpeg.Part{ContentType: f.ContentType, Timestamp: f.CapturedAt, Seq: f.Seq, Data: f.Data})
		}
		if err != nil {
			log.Debug("viewer write failed", "err", err)
			return sent
		}
		if err := rc.Flush(); err != nil {
			return sent
		}
		observe(time.Since(f.CapturedAt))
		sent++
	}
}

// EncodePart is the hub encoder for MJPEG streams: the whole part of a
// frame, built once and shared by every viewer.
func EncodePart(f *frame.Frame) []byte {
	p := mjpeg.Part{ContentType: f.ContentType, Timestamp: f.CapturedAt, Seq: f.Seq, Data: f.Data}
	return mjpeg.AppendPart(make([]byte, 0, len(f.Data)+160), p)
}

type connKey struct{}

// setUnsentLimit sets TCP_NOTSENT_LOWAT on the request's connection.
func setUnsentLimit(ctx context.Context, n int) error {
	c, ok := ctx.Value(connKey{}).(net.Conn)
	if !ok {
		return errors.New("no connection in context")
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return fmt.Errorf("not a TCP connection: %T", c)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set TCP_NOTSENT_LOWAT: %w", serr)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		code, body = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
