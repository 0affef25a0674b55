package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/mjpeg"
)

// Reviews is what the server needs of the reviewed marks: which events a
// person has marked as seen. Package review keeps them in a compacted
// Kafka topic keyed by event id, which every web node reads, so a mark
// made on one node shows on all of them and survives restarts.
type Reviews interface {
	// Marked returns the mark of an event; ok is false when it has none.
	Marked(id string) (m Mark, ok bool)
	// Mark stores marks; it returns once they are stored.
	Mark(ctx context.Context, marks []Mark) error
	// Unmark removes the mark of an event of camera.
	Unmark(ctx context.Context, id, camera string) error
}

// Mark says an event was reviewed: by whom and when.
type Mark struct {
	ID     string    `json:"id"`
	Camera string    `json:"camera"`
	By     string    `json:"by"` // the principal's name ("anonymous" without auth)
	At     time.Time `json:"at"`
}

// Kinds of review items: an object event's severity, or motion (motion
// and face events of a camera without object detection).
const (
	KindAlert     = "alert"
	KindDetection = "detection"
	KindMotion    = "motion"
)

// Review limits.
const (
	// MaxMarksPerRequest bounds the ids one POST marks (a page marks an
	// hour's items at once; 100 ids fit in the 4 KiB body limit).
	MaxMarksPerRequest = 100
	defaultReviewItems = 2000
	maxReviewItems     = 10000
	// Previews: how many frames a thumbnail flips through.
	defaultPreviewFrames = 10
	maxPreviewFrames     = 30
)

// ReviewItem is an event as the review page shows it.
type ReviewItem struct {
	events.Event
	// Kind is alert, detection or motion.
	Kind string `json:"kind"`
	// What is the object's label, "face", or "motion".
	What string `json:"what"`
	// Reviewed is the item's mark, null while nobody reviewed it.
	Reviewed *Mark `json:"reviewed"`
}

// ReviewCounts counts the review items of a window by kind, and those
// without a mark.
type ReviewCounts struct {
	Alert      int `json:"alert"`
	Detection  int `json:"detection"`
	Motion     int `json:"motion"`
	Unreviewed int `json:"unreviewed"`
}

// routeReview adds the review routes (inside the protected group).
func (s *Server) routeReview(r chi.Router) {
	r.Get("/review", func(w http.ResponseWriter, r *http.Request) { s.renderPage(w, r, s.reviewPage) })
	r.Get("/api/review", s.review)
	r.Get("/api/review/summary", s.reviewSummary)
	if s.o.Reviews != nil {
		r.Post("/api/review/marks", s.markReviewed)
		r.Delete("/api/review/marks/{id}", s.unmarkReviewed)
	}
	if s.o.Recordings != nil {
		r.Get("/api/events/{id}/preview", s.eventPreview)
	}
}

// reviewItems classifies the events held between since and until that
// the principal may see into review items, oldest camera first: object
// events by their severity; motion and face events only for cameras
// without object detection, motion as motion, faces as alerts. A camera
// has object detection when it has object events in the window, or when
// the analyzer's activity of the window says it runs it (whatever this
// node's own configuration says: the analyzer may be another process).
func (s *Server) reviewItems(r *http.Request, since, until time.Time) []ReviewItem {
	evs := s.o.Events.Query(events.Filter{Since: since, Until: until, Allow: principal(r).Allowed})
	objects := map[string]bool{}
	for _, e := range evs {
		if e.Type == events.TypeObject {
			objects[e.Camera] = true
		}
	}
	detects := func(camera string) bool {
		if s.o.Activity == nil {
			return false
		}
		for _, m := range s.o.Activity.Activity(camera, since.Truncate(time.Minute), until) {
			if m.Objects {
				return true
			}
		}
		return false
	}
	motionCams := map[string]bool{} // decided once a camera per request
	motion := func(camera string) bool {
		v, ok := motionCams[camera]
		if !ok {
			v = !objects[camera] && !detects(camera)
			motionCams[camera] = v
		}
		return v
	}
	out := make([]ReviewItem, 0, len(evs))
	for _, e := range evs {
		it := ReviewItem{Event: e}
		switch {
		case e.Type == events.TypeObject:
			it.Kind, it.What = KindDetection, e.Label
			if e.Severity == events.SeverityAlert {
				it.Kind = KindAlert
			}
		case e.Type == events.TypeFace && motion(e.Camera):
			it.Kind, it.What = KindAlert, "face"
		case e.Type == events.TypeMotion && motion(e.Camera):
			it.Kind, it.What = KindMotion, "motion"
		default:
			continue
		}
		if s.o.Reviews != nil {
			if m, ok := s.o.Reviews.Marked(e.ID); ok {
				it.Reviewed = &m
			}
		}
		out = append(out, it)
	}
	// Newest first.
	slices.SortFunc(out, func(a, b ReviewItem) int {
		return cmp.Or(b.Start.Compare(a.Start), strings.Compare(b.ID, a.ID))
	})
	return out
}

func (c *ReviewCounts) add(it ReviewItem) {
	switch it.Kind {
	case KindAlert:
		c.Alert++
	case KindDetection:
		c.Detection++
	case KindMotion:
		c.Motion++
	}
	if it.Reviewed == nil {
		c.Unreviewed++
	}
}

// review serves /api/review: the review items of a window (since, until;
// default the last 24 hours), newest first, filtered by camera, kind
// (alert, detection, motion; comma-separated), what (a label, face or
// motion), zone and reviewed (true or false), with the counts of the
// window (after the camera filter only) and the cameras, labels and zones
// in it, for the page's filters.
func (s *Server) review(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := time.Now()
	since, until := now.Add(-24*time.Hour), now
	for name, dst := range map[string]*time.Time{"since": &since, "until": &until} {
		if v := q.Get(name); v != "" {
			t, err := parseTime(name, v, now)
			if err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			*dst = t
		}
	}
	if until.Before(since) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q is before %q", "until", "since"))
		return
	}
	camera, what, zone := q.Get("camera"), q.Get("what"), q.Get("zone")
	for name, v := range map[string]string{"camera": camera, "what": what, "zone": zone} {
		if len(v) > events.MaxLabelLen {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q: longer than %d characters", name, events.MaxLabelLen))
			return
		}
	}
	kinds := map[string]bool{}
	if v := q.Get("kind"); v != "" {
		for _, k := range strings.Split(v, ",") {
			switch k {
			case KindAlert, KindDetection, KindMotion:
				kinds[k] = true
			default:
				writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q: %q is not alert, detection or motion", "kind", k))
				return
			}
		}
	}
	reviewed := q.Get("reviewed")
	if reviewed != "" && reviewed != "true" && reviewed != "false" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q: %q is not true or false", "reviewed", reviewed))
		return
	}
	limit := defaultReviewItems
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxReviewItems {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q: must be a whole number from 1 to %d, got %q", "limit", maxReviewItems, v))
			return
		}
		limit = n
	}
	all := s.reviewItems(r, since, until)
	var counts ReviewCounts
	cameras, labels, zones := map[string]bool{}, map[string]bool{}, map[string]bool{}
	items := []ReviewItem{}
	truncated := false
	for _, it := range all {
		cameras[it.Camera] = true
		if camera != "" && it.Camera != camera {
			continue
		}
		counts.add(it)
		labels[it.What] = true
		for _, z := range it.Zones {
			zones[z] = true
		}
		switch {
		case len(kinds) > 0 && !kinds[it.Kind],
			what != "" && it.What != what,
			zone != "" && !slices.Contains(it.Zones, zone),
			reviewed == "true" && it.Reviewed == nil,
			reviewed == "false" && it.Reviewed != nil:
			continue
		}
		if len(items) == limit {
			truncated = true
			continue
		}
		items = append(items, it)
	}
	sorted := func(m map[string]bool) []string {
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	writeJSON(w, http.StatusOK, map[string]any{"since": since, "until": until, "items": items, "counts": counts,
		"cameras": sorted(cameras), "labels": sorted(labels), "zones": sorted(zones), "truncated": truncated})
}

// reviewSummary serves /api/review/summary: the counts of the review
// items since a time (default: the last 24 hours), for the index page's
// "unreviewed" link.
func (s *Server) reviewSummary(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	since := now.Add(-24 * time.Hour)
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := parseTime("since", v, now)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		since = t
	}
	var c ReviewCounts
	for _, it := range s.reviewItems(r, since, now) {
		c.add(it)
	}
	writeJSON(w, http.StatusOK, struct {
		Since time.Time `json:"since"`
		ReviewCounts
	}{since, c})
}

// markReviewed serves POST /api/review/marks with {"ids": [...]}: marks
// those events reviewed by the principal. The body must be JSON (a form
// of another site cannot send that without the browser asking first), at
// most MaxMarksPerRequest ids of events the principal may see; nothing is
// marked when one is not.
func (s *Server) markReviewed(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "send the marks as application/json: {\"ids\": [\"<event id>\", ...]}")
		return
	}
	var body struct {
		IDs []string `json:"ids"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if len(body.IDs) == 0 || len(body.IDs) > MaxMarksPerRequest {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%q: name 1 to %d events", "ids", MaxMarksPerRequest))
		return
	}
	p := principal(r)
	now := time.Now().UTC()
	marks := make([]Mark, 0, len(body.IDs))
	seen := map[string]bool{}
	for _, id := range body.IDs {
		e, ok := s.o.Events.Get(id)
		if !ok || !p.Allowed(e.Camera) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("unknown event %q", id))
			return
		}
		if !seen[id] {
			seen[id] = true
			marks = append(marks, Mark{ID: id, Camera: e.Camera, By: p.Name, At: now})
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := s.o.Reviews.Mark(ctx, marks); err != nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "store marks: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"marked": marks})
}

// unmarkReviewed serves DELETE /api/review/marks/{id}.
func (s *Server) unmarkReviewed(w http.ResponseWriter, r *http.Request) {
	e, ok := s.event(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := s.o.Reviews.Unmark(ctx, e.ID, e.Camera); err != nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "remove mark: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"unmarked": e.ID})
}

// eventPreview serves /api/events/{id}/preview[?n=]: up to n (10, at most
// 30) frames of the event from the recording's reduced tier (a JPEG a
// second, as stored: nothing is decoded or encoded), spread over the
// event, as a multipart stream the review page reads with fetch() and
// flips through while the pointer is on the thumbnail. 404 when the tier
// holds nothing of that time (not recorded, or not yet).
func (s *Server) eventPreview(w http.ResponseWriter, r *http.Request) {
	e, ok := s.event(w, r)
	if !ok {
		return
	}
	n := defaultPreviewFrames
	if v := r.URL.Query().Get("n"); v != "" {
		x, err := strconv.Atoi(v)
		if err != nil || x < 1 || x > maxPreviewFrames {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q: must be a whole number from 1 to %d, got %q", "n", maxPreviewFrames, v))
			return
		}
		n = x
	}
	end := time.Now()
	if e.End != nil {
		end = *e.End
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	frames, err := s.o.Recordings.ReducedFrames(ctx, e.Camera, e.Start, end.Add(time.Second), n)
	switch {
	case errors.Is(err, ErrNothingRecorded):
		writeError(w, http.StatusNotFound, fmt.Sprintf("event %q: the recording holds no frames of it (yet, or any more)", e.ID))
		return
	case err != nil:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("preview of event %q: %v", e.ID, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", mjpeg.ContentType)
	if e.End != nil {
		// An ended event's frames do not change.
		h.Set("Cache-Control", "private, max-age=3600")
	} else {
		noCache(h)
	}
	mw := mjpeg.NewWriter(w)
	if _, err := w.Write(mjpeg.Opening); err != nil {
		return
	}
	for _, f := range frames {
		if err := mw.WriteBody(mjpeg.Part{ContentType: f.ContentType, Timestamp: f.CapturedAt, Seq: f.Seq, Data: f.Data}); err != nil {
			return
		}
	}
}
