package web

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/streamd/streamd/pkg/frame"
)

// Recordings is what a web node knows of the recording tiers (package
// record): what they hold, and MP4 exports of them.
type Recordings interface {
	// Storage reports what is held, per camera.
	Storage() []Storage
	// Spans returns the spans of camera's recording between from and to.
	Spans(camera string, from, to time.Time) []Span
	// Export returns camera's video from from to to as an H.264 MP4;
	// ErrNothingRecorded when nothing is held in that time.
	Export(ctx context.Context, camera string, from, to time.Time) ([]byte, error)
	// ReducedFrames returns up to n frames of camera's reduced tier (the
	// JPEGs as stored) between from and to, spread over that time;
	// ErrNothingRecorded when it holds none.
	ReducedFrames(ctx context.Context, camera string, from, to time.Time, n int) ([]*frame.Frame, error)
}

// Storage is what the recording holds of one camera.
type Storage struct {
	Camera string        `json:"camera"`
	Oldest time.Time     `json:"oldest"` // the oldest frame held, any tier
	Newest time.Time     `json:"newest"`
	Tiers  []TierStorage `json:"tiers"`
	// BudgetCut says recording.max_bytes removed recordings younger
	// than recording.retain.
	BudgetCut bool `json:"budget_cut"`
	// RecorderLag is now minus the capture time the camera is recorded
	// up to, in seconds, when the recorder runs in this process; nil
	// (absent) where it runs elsewhere.
	RecorderLag *float64 `json:"recorder_lag_seconds,omitempty"`
	// RecorderLost counts the camera's frames the recorder in this
	// process never recorded (retention removed them before it read
	// them); nil (absent) where the recorder runs elsewhere.
	RecorderLost *uint64 `json:"recorder_lost_frames,omitempty"`
}

// TierStorage is what one tier holds of a camera.
type TierStorage struct {
	Tier         string    `json:"tier"`
	Bytes        int64     `json:"bytes"` // per replica
	Frames       int       `json:"frames"`
	Oldest       time.Time `json:"oldest"`
	Newest       time.Time `json:"newest"`
	BytesPerHour float64   `json:"bytes_per_hour"` // measured over what is held
}

// Span is a stretch of time one tier recorded without a break.
type Span struct {
	Tier  string    `json:"tier"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// ErrExportUnsupported is returned by Recordings.Export in a binary that
// cannot encode video.
var ErrExportUnsupported = errors.New("export needs OpenCV, and this binary was built without it")

// routeRecordings adds the recording routes (inside the protected group).
func (s *Server) routeRecordings(r chi.Router) {
	r.Get("/api/storage", s.storage)
	r.Get("/api/cameras/{camera}/spans", s.spans)
	r.Get("/api/cameras/{camera}/export", s.export)
	r.Get("/api/export", s.exportZip)
	if s.o.Events != nil {
		r.Get("/api/events/{id}/clip.mp4", s.eventClip)
	}
}

// storage serves /api/storage: the cameras the principal may watch.
func (s *Server) storage(w http.ResponseWriter, r *http.Request) {
	list := s.o.Recordings.Storage()
	p := principal(r)
	now := time.Now()
	type camera struct {
		Storage
		HeldSeconds float64 `json:"held_seconds"`
		Held        string  `json:"held"` // "2 d 4 h"
	}
	out := make([]camera, 0, len(list))
	for _, st := range list {
		if !p.Allowed(st.Camera) {
			continue
		}
		c := camera{Storage: st}
		if st.Tiers == nil {
			c.Tiers = []TierStorage{}
		}
		if !st.Oldest.IsZero() {
			c.HeldSeconds = now.Sub(st.Oldest).Seconds()
			c.Held = HumanDuration(now.Sub(st.Oldest))
		}
		out = append(out, c)
	}
	writeJSON(w, http.StatusOK, map[string]any{"cameras": out})
}

// HumanDuration writes d the way the page says how far back a camera
// goes: "2 d 4 h", "3 h 12 min", "5 min", "40 s".
func HumanDuration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%d d %d h", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	return fmt.Sprintf("%d s", int(d.Seconds()))
}

// spans serves /api/cameras/{camera}/spans?from=&to= (default: all).
func (s *Server) spans(w http.ResponseWriter, r *http.Request) {
	id, ok := s.camera(w, r)
	if !ok {
		return
	}
	from, to, ok := timeRange(w, r, time.Unix(0, 0), time.Now(), 0)
	if !ok {
		return
	}
	sp := s.o.Recordings.Spans(id, from, to)
	if sp == nil {
		sp = []Span{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"camera": id, "spans": sp})
}

// timeRange reads from and to (T as in replay), checked in that order;
// a zero default makes the parameter required. maxLen > 0 caps to-from.
// ok false means the error was written.
func timeRange(w http.ResponseWriter, r *http.Request, defFrom, defTo time.Time, maxLen time.Duration) (from, to time.Time, ok bool) {
	q := r.URL.Query()
	now := time.Now()
	from, to = defFrom, defTo
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		name, dst := p.name, p.dst
		v := q.Get(name)
		if v == "" {
			if dst.IsZero() {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q is required", name))
				return from, to, false
			}
			continue
		}
		t, err := parseTime(name, v, now)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return from, to, false
		}
		*dst = t
	}
	if !from.Before(to) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q: %s is not before %q %s", "from", from.Format(time.RFC3339Nano), "to", to.Format(time.RFC3339Nano)))
		return from, to, false
	}
	if maxLen > 0 && to.Sub(from) > maxLen {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q: %s after from is longer than the export limit %s (recording.max_export)", "to", to.Sub(from), maxLen))
		return from, to, false
	}
	return from, to, true
}

// export serves /api/cameras/{camera}/export?from=&to=.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	id, ok := s.camera(w, r)
	if !ok {
		return
	}
	from, to, ok := timeRange(w, r, time.Time{}, time.Time{}, s.o.MaxExport)
	if !ok {
		return
	}
	s.sendExport(w, r, id, from, to, id+"-"+from.UTC().Format("20060102T150405Z")+".mp4")
}

// eventClip serves /api/events/{id}/clip.mp4: the event with the
// recording's pre- and post-roll.
func (s *Server) eventClip(w http.ResponseWriter, r *http.Request) {
	e, ok := s.event(w, r)
	if !ok {
		return
	}
	end := time.Now()
	if e.End != nil {
		end = *e.End
	}
	from, to := e.Start.Add(-s.o.ClipPreRoll), end.Add(s.o.ClipPostRoll)
	if to.Sub(from) > s.o.MaxExport {
		to = from.Add(s.o.MaxExport)
	}
	s.sendExport(w, r, e.Camera, from, to, "event-"+e.ID+".mp4")
}

// sendExport encodes and sends an export, within the concurrency cap. A
// HEAD is answered from the request alone: encoding minutes of video to
// throw the body away would waste an export slot.
func (s *Server) sendExport(w http.ResponseWriter, r *http.Request, camera string, from, to time.Time, name string) {
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "video/mp4")
		w.WriteHeader(http.StatusOK)
		return
	}
	// One cap for the whole server, not per address: exports are few
	// and each holds an encoder.
	release, ok := s.exports.admitOr429(w, "")
	if !ok {
		return
	}
	defer release()
	// Encoding takes a while: the response is written once it is done.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(10 * time.Minute))
	mp4, err := s.o.Recordings.Export(r.Context(), camera, from, to)
	switch {
	case errors.Is(err, ErrNothingRecorded):
		writeError(w, http.StatusNotFound, fmt.Sprintf("camera %q: nothing recorded between %s and %s", camera, from.Format(time.RFC3339), to.Format(time.RFC3339)))
		return
	case errors.Is(err, ErrExportUnsupported):
		writeError(w, http.StatusNotImplemented, err.Error())
		return
	case err != nil:
		if r.Context().Err() != nil {
			return
		}
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("export of camera %q: %v", camera, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Content-Disposition", `inline; filename="`+name+`"`)
	noCache(h)
	// ServeContent answers Range requests: without them, browsers treat
	// the video as not seekable (they ask "bytes=0-" and keep what comes).
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(mp4))
}

// MaxExportCameras is the most cameras one ZIP export takes.
const MaxExportCameras = 16

// exportZip serves /api/export?cameras=a,b&from=T&to=T: the same window
// of several cameras, one MP4 each (named <camera>-<from>.mp4), in one ZIP
// (stored, not compressed: MP4 does not compress). It shares the export
// caps and errors: one export slot for the whole ZIP (the cameras are
// encoded one after another), recording.max_export for the window, 400
// for a bad window or list, 403 or 404 for a camera the principal may not
// watch or nobody knows, 404 when none of the cameras recorded anything
// then, 501 without OpenCV. A camera that recorded nothing then (or whose
// export failed) is left out and named in the ZIP's README.txt and in the
// X-Export-Missing header when it is known before the first MP4 is sent.
func (s *Server) exportZip(w http.ResponseWriter, r *http.Request) {
	ids, ok := s.watchableCameras(w, r, r.URL.Query().Get("cameras"), MaxExportCameras)
	if !ok {
		return
	}
	from, to, ok := timeRange(w, r, time.Time{}, time.Time{}, s.o.MaxExport)
	if !ok {
		return
	}
	stamp := from.UTC().Format("20060102T150405Z")
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "application/zip")
		w.WriteHeader(http.StatusOK)
		return
	}
	release, ok := s.exports.admitOr429(w, "")
	if !ok {
		return
	}
	defer release()
	rc := http.NewResponseController(w)
	var zw *zip.Writer
	var missing []string
	nothing := 0
	for _, id := range ids {
		// Encoding takes a while; the response is written camera by
		// camera.
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Minute))
		mp4, err := s.o.Recordings.Export(r.Context(), id, from, to)
		switch {
		case errors.Is(err, ErrExportUnsupported):
			if zw == nil {
				writeError(w, http.StatusNotImplemented, err.Error())
				return
			}
			missing = append(missing, id+": "+err.Error())
			continue
		case errors.Is(err, ErrNothingRecorded):
			nothing++
			missing = append(missing, id+": nothing recorded in that time")
			continue
		case err != nil:
			if r.Context().Err() != nil {
				return
			}
			missing = append(missing, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		if zw == nil {
			h := w.Header()
			h.Set("Content-Type", "application/zip")
			h.Set("Content-Disposition", `attachment; filename="streamd-`+stamp+`.zip"`)
			if len(missing) > 0 {
				h.Set("X-Export-Missing", strings.Join(missing, "; "))
			}
			noCache(h)
			w.WriteHeader(http.StatusOK)
			zw = zip.NewWriter(w)
		}
		f, err := zw.CreateHeader(&zip.FileHeader{Name: id + "-" + stamp + ".mp4", Method: zip.Store, Modified: from.UTC()})
		if err != nil {
			return
		}
		if _, err := f.Write(mp4); err != nil {
			return
		}
	}
	if zw == nil {
		if nothing == len(ids) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("cameras %s: nothing recorded between %s and %s", strings.Join(ids, ", "), from.Format(time.RFC3339), to.Format(time.RFC3339)))
			return
		}
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "export: "+strings.Join(missing, "; "))
		return
	}
	if len(missing) > 0 {
		if f, err := zw.Create("README.txt"); err == nil {
			fmt.Fprintf(f, "streamd export of %s to %s.\r\nNot in this archive:\r\n", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
			for _, m := range missing {
				fmt.Fprintf(f, "  %s\r\n", m)
			}
		}
	}
	_ = zw.Close()
}
