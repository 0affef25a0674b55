package web

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
)

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
