package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/streamd/streamd/pkg/events"
)

// Events is what the server needs from the web node's view of the
// analyzer's events: an *events.Store, plus snapshot lookup.
type Events interface {
	Seq() uint64
	Query(f events.Filter) []events.Event
	Get(id string) (events.Event, bool)
	Subscribe(after uint64) *events.Subscription
	// Snapshot returns the JPEG of an event (its frame with the boxes
	// drawn); ErrNoSnapshot when there is none.
	Snapshot(ctx context.Context, id string) ([]byte, error)
}

// ErrNoSnapshot is returned by Events.Snapshot for an event without one.
var ErrNoSnapshot = errors.New("no snapshot")

// Server-sent events: a comment line every heartbeat keeps proxies and
// browsers from timing the connection out, and tells a dead client.
const (
	sseHeartbeat  = 15 * time.Second
	sseRetryMS    = 2000
	defaultLimit  = 100
	maxEventLimit = 1000
)

// routeEvents adds the event routes (inside the protected group).
func (s *Server) routeEvents(r chi.Router) {
	r.Get("/api/events", s.listEvents)
	r.Get("/api/events/live", s.liveEvents)
	r.Get("/api/events/{id}", s.getEvent)
	r.Get("/api/events/{id}/snapshot.jpg", s.eventSnapshot)
}

// eventFilter reads camera, type, label, zone, severity, min_score, since,
// until and limit, and limits the
// result to the cameras the principal may watch.
func (s *Server) eventFilter(r *http.Request) (events.Filter, error) {
	q := r.URL.Query()
	p := principal(r)
	f := events.Filter{Camera: q.Get("camera"), Type: events.Type(q.Get("type")), Label: q.Get("label"), Zone: q.Get("zone"),
		Severity: events.Severity(q.Get("severity")), Limit: defaultLimit, Allow: p.Allowed}
	switch f.Type {
	case "", events.TypeMotion, events.TypeFace, events.TypeObject:
	default:
		return f, fmt.Errorf("parameter %q: %q is not motion, face or object", "type", f.Type)
	}
	if len(f.Label) > events.MaxLabelLen {
		return f, fmt.Errorf("parameter %q: longer than %d characters", "label", events.MaxLabelLen)
	}
	if len(f.Zone) > events.MaxZoneLen {
		return f, fmt.Errorf("parameter %q: longer than %d characters", "zone", events.MaxZoneLen)
	}
	switch f.Severity {
	case "", events.SeverityAlert, events.SeverityDetection:
	default:
		return f, fmt.Errorf("parameter %q: %q is not alert or detection", "severity", f.Severity)
	}
	if v := q.Get("min_score"); v != "" {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || !(x >= 0 && x <= 1) {
			return f, fmt.Errorf("parameter %q: %q is not a score from 0 to 1", "min_score", v)
		}
		f.MinScore = x
	}
	now := time.Now()
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := parseTime(name, v, now)
			if err != nil {
				return f, err
			}
			*dst = t
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return f, fmt.Errorf("parameter %q is before %q", "until", "since")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxEventLimit {
			return f, fmt.Errorf("parameter %q: must be a whole number from 1 to %d, got %q", "limit", maxEventLimit, v)
		}
		f.Limit = n
	}
	return f, nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	f, err := s.eventFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.o.Events.Query(f))
}

// event finds the event named in the path, or writes the error: 404 for
// an unknown one and for one of a camera the principal may not watch (so
// a limited principal learns nothing of other cameras).
func (s *Server) event(w http.ResponseWriter, r *http.Request) (events.Event, bool) {
	id := chi.URLParam(r, "id")
	e, ok := s.o.Events.Get(id)
	if !ok || !principal(r).Allowed(e.Camera) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown event %q", id))
		return events.Event{}, false
	}
	return e, true
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	if e, ok := s.event(w, r); ok {
		writeJSON(w, http.StatusOK, e)
	}
}

func (s *Server) eventSnapshot(w http.ResponseWriter, r *http.Request) {
	e, ok := s.event(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	img, err := s.o.Events.Snapshot(ctx, e.ID)
	switch {
	case errors.Is(err, ErrNoSnapshot):
		writeError(w, http.StatusNotFound, fmt.Sprintf("event %q has no snapshot (yet, or any more)", e.ID))
		return
	case err != nil:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "read snapshot: "+err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("Content-Length", strconv.Itoa(len(img)))
	// An event's snapshot never changes.
	h.Set("Cache-Control", "private, max-age=86400, immutable")
	_, _ = w.Write(img)
}

// liveEvents streams event changes as server-sent events: "id: <seq>",
// "event: <phase>", "data: <event JSON>". A client that reconnects with
// Last-Event-ID gets the changes it missed; if they are no longer held (or
// the id is from before a restart) it first gets an "event: reset", and
// should reload the list.
func (s *Server) liveEvents(w http.ResponseWriter, r *http.Request) {
	f, err := s.eventFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	after := s.o.Events.Seq()
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("last_event_id")
	}
	if lastID != "" {
		n, err := strconv.ParseUint(lastID, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Last-Event-ID %q is not a number", lastID))
			return
		}
		after = n
	}
	ip := s.clientIP(r)
	release, ok := s.viewers.admitOr429(w, ip)
	if !ok {
		return
	}
	defer release()
	sub := s.o.Events.Subscribe(after)
	defer sub.Close()

	h := w.Header()
	streamHeaders(h, "text/event-stream; charset=utf-8")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	rc := http.NewResponseController(w)
	write := func(b []byte) bool {
		if rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout)) != nil {
			return false
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	w.WriteHeader(http.StatusOK)
	if !write([]byte("retry: " + strconv.Itoa(sseRetryMS) + "\n\n")) {
		return
	}
	if lastID != "" && !sub.Filled() {
		if !write([]byte("event: reset\ndata: {}\n\n")) {
			return
		}
	}
	ctx := r.Context()
	var buf []byte
	for {
		wait, cancel := context.WithTimeout(ctx, sseHeartbeat)
		c, err := sub.Next(wait)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				if !write([]byte(": heartbeat\n\n")) {
					return
				}
				continue
			}
			return
		}
		e := c.Event
		if (f.Camera != "" && e.Camera != f.Camera) || (f.Type != "" && e.Type != f.Type) || !f.Matches(e) || !f.Allow(e.Camera) {
			continue
		}
		data, err := events.Marshal(e)
		if err != nil {
			continue
		}
		buf = append(buf[:0], "id: "...)
		buf = strconv.AppendUint(buf, c.Seq, 10)
		buf = append(buf, "\nevent: "...)
		buf = append(buf, e.Phase...)
		buf = append(buf, "\ndata: "...)
		buf = append(buf, strings.TrimSpace(string(data))...)
		buf = append(buf, "\n\n"...)
		if !write(buf) {
			return
		}
	}
}
