package web

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/mjpeg"
)

// cameras serves /api/cameras: the cameras the principal may watch.
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

// snapshot serves /snapshot/{camera}: the newest frame, or with ?at= the
// frame Kafka holds at that time.
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
