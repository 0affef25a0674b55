package web

import (
	"math"
	"net/http"
	"time"

	"github.com/streamd/streamd/pkg/events"
)

// Activity is what the server needs of the analyzer's activity per camera
// and minute (the events feed holds it).
type Activity interface {
	// Activity returns camera's minutes that start in [from, to), in
	// order; minutes nobody analyzed are absent.
	Activity(camera string, from, to time.Time) []events.Activity
}

// maxActivitySpan bounds one activity request: eight days of minutes
// (11,520, about a megabyte of JSON).
const maxActivitySpan = 8 * 24 * time.Hour

// activityMinute is a minute as /api/cameras/{camera}/activity writes it.
type activityMinute struct {
	T      time.Time `json:"t"`      // the minute's start
	Area   float64   `json:"area"`   // mean fraction of the frame that moved
	Moving float64   `json:"moving"` // fraction of the analyzed frames with motion
	Peak   float64   `json:"peak"`   // largest fraction of one frame
	Frames int       `json:"frames"` // frames analyzed
}

// activity serves /api/cameras/{camera}/activity?from=T&to=T (default the
// last 24 hours, at most eight days): how much of the frame moved, minute
// by minute.
func (s *Server) activity(w http.ResponseWriter, r *http.Request) {
	id, ok := s.camera(w, r)
	if !ok {
		return
	}
	now := time.Now()
	from, to, ok := timeRange(w, r, now.Add(-24*time.Hour), now, 0)
	if !ok {
		return
	}
	if to.Sub(from) > maxActivitySpan {
		writeError(w, http.StatusBadRequest, "parameters \"from\" and \"to\": at most 8 days apart")
		return
	}
	list := s.o.Activity.Activity(id, from, to)
	out := make([]activityMinute, len(list))
	for i, a := range list {
		out[i] = activityMinute{T: a.Minute, Area: a.Area, Moving: math.Round(a.MovingShare()*1e4) / 1e4, Peak: a.Peak, Frames: a.Frames}
	}
	writeJSON(w, http.StatusOK, map[string]any{"camera": id, "from": from, "to": to, "minutes": out})
}
