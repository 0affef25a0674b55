package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/streamd/streamd/pkg/auth"
)

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
