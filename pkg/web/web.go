// Package web serves streamd over HTTP with a chi router: the index page,
// MJPEG streams, snapshots, the camera API and health endpoints.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/hub"
	"github.com/streamd/streamd/pkg/mjpeg"
)

// Check is a named readiness check: nil when ready, otherwise the reason.
type Check struct {
	Name string
	Fn   func() error
}

// Options configures the server. Zero fields take the documented defaults.
type Options struct {
	Addr         string        // listen address; default 127.0.0.1:0
	Hub          *hub.Hub      // nil: no viewer routes (producer role)
	Static       fs.FS         // index.html, app.js, style.css
	Checks       []Check       // for /readyz
	WriteTimeout time.Duration // deadline for each streamed part; default 10s
	Logger       *slog.Logger  // default: discard
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
}

// Start opens the listener and serves in the background.
func Start(o Options) (*Server, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("http listen on %s: %w", o.Addr, err)
	}
	s := &Server{o: o, ln: ln, log: o.Logger, done: make(chan struct{})}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	s.srv = &http.Server{
		BaseContext:       func(net.Listener) context.Context { return s.base },
		Handler:           s.Router(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
		// No global WriteTimeout: streams are long-lived, and each part
		// gets its own write deadline instead.
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	s.log.Info("http listening", "addr", ln.Addr().String())
	return s, nil
}

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
	r.Use(s.recoverer)
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
	if s.o.Hub != nil {
		r.Get("/", s.index)
		if s.o.Static != nil {
			r.Handle("/static/*", http.StripPrefix("/static/", http.FileServerFS(s.o.Static)))
		}
		r.Get("/api/cameras", s.cameras)
		r.Get("/stream/{camera}", s.stream)
		r.Get("/snapshot/{camera}", s.snapshot)
	}
	return r
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

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	if s.o.Static == nil {
		writeError(w, http.StatusNotFound, "no UI in this build")
		return
	}
	page, err := fs.ReadFile(s.o.Static, "index.html")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "read index page: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(page)
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

func (s *Server) cameras(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.o.Hub.Cameras())
}

// camera finds the camera named in the path or writes the error response.
func (s *Server) camera(w http.ResponseWriter, r *http.Request) (*hub.Camera, bool) {
	id := chi.URLParam(r, "camera")
	if err := frame.ValidateID(id); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	c, ok := s.o.Hub.Camera(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown camera %q", id))
		return nil, false
	}
	return c, true
}

func noCache(h http.Header) {
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate, private, max-age=0")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "0")
}

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	c, ok := s.camera(w, r)
	if !ok {
		return
	}
	f := c.Latest()
	if f == nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("camera %q has no frame yet", c.ID()))
		return
	}
	h := w.Header()
	noCache(h)
	h.Set("Content-Type", f.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(f.Data)))
	h.Set("X-Timestamp", string(mjpeg.AppendTimestamp(nil, f.CapturedAt)))
	h.Set("X-Sequence", strconv.FormatUint(f.Seq, 10))
	_, _ = w.Write(f.Data)
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	c, ok := s.camera(w, r)
	if !ok {
		return
	}
	v := c.Subscribe()
	defer v.Close()
	log := s.log.With("camera", c.ID(), "remote", r.RemoteAddr)
	h := w.Header()
	noCache(h)
	h.Set("Content-Type", mjpeg.ContentType)
	h.Set("X-Accel-Buffering", "no")
	h.Set("Connection", "close")
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	log.Debug("viewer joined")
	mw := mjpeg.NewWriter(w)
	ctx := r.Context()
	var sent uint64
	for {
		f, err := v.Next(ctx)
		if err != nil {
			break
		}
		// A fresh deadline per part: a stalled viewer is dropped after
		// WriteTimeout without affecting anyone else.
		if err := rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout)); err != nil {
			break
		}
		if err := mw.WritePart(mjpeg.Part{ContentType: f.ContentType, Timestamp: f.CapturedAt, Seq: f.Seq, Data: f.Data}); err != nil {
			log.Debug("viewer write failed", "err", err)
			break
		}
		if err := rc.Flush(); err != nil {
			break
		}
		sent++
	}
	log.Debug("viewer left", "frames", sent, "dropped", v.Dropped())
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
