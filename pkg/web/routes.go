package web

import (
	"net/http"
	"net/http/pprof"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

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
		if s.o.Activity != nil {
			r.Get("/api/cameras/{camera}/activity", s.activity)
		}
	}
	if s.o.Events != nil {
		s.routeEvents(r)
		if s.o.Live != nil {
			s.routeReview(r)
		}
	}
	if s.o.Recordings != nil && s.o.Live != nil {
		s.routeRecordings(r)
	}
}

// ready serves /readyz: 200 when every check passes, else 503, with
// each check's result.
func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	checks := map[string]string{}
	ready := true
	for _, c := range s.o.Checks {
		if err := c.Fn(); err != nil {
			checks[c.Name] = err.Error()
			ready = false
		} else if why := degraded(c); why != "" {
			checks[c.Name] = "degraded: " + why
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

func degraded(c Check) string {
	if c.Degraded == nil {
		return ""
	}
	return c.Degraded()
}
