package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/mjpeg"
	"github.com/streamd/streamd/pkg/replay"
)

// Replays plays back what Kafka holds for a camera.
type Replays interface {
	// Open starts a replay of camera from the first frame captured at or
	// after at, at speed.
	Open(ctx context.Context, camera string, at time.Time, speed float64) (Replay, error)
	// FrameAt returns the camera's first frame captured at or after at.
	FrameAt(ctx context.Context, camera string, at time.Time) (*frame.Frame, error)
	// Range returns the capture times of the oldest and newest frames
	// Kafka holds for camera.
	Range(ctx context.Context, camera string) (oldest, newest time.Time, err error)
}

// Replay is an opened replay.
type Replay struct {
	Reader
	First   *frame.Frame // its first frame, already read (Next returns it)
	Clamped bool         // at was older than the oldest frame held
}

// ErrNothingRecorded is returned by Replays for a camera with no frame
// held at or after the time asked.
var ErrNothingRecorded = errors.New("nothing recorded")

// Speeds a replay may play at.
const (
	minSpeed = replay.MinSpeed
	maxSpeed = float64(replay.MaxSpeed)
)

// replayParams reads at and speed; ok false means the error was written.
func replayParams(w http.ResponseWriter, r *http.Request) (at time.Time, speed float64, ok bool) {
	q := r.URL.Query()
	now := time.Now()
	at = now
	if v := q.Get("at"); v != "" {
		t, err := parseTime("at", v, now)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return at, 0, false
		}
		if t.After(now.Add(time.Second)) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q: %s is in the future", "at", t.Format(time.RFC3339Nano)))
			return at, 0, false
		}
		at = t
	}
	speed = 1
	if v := q.Get("speed"); v != "" {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || !(s >= minSpeed && s <= maxSpeed) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q: must be a number from %g to %g, got %q", "speed", minSpeed, maxSpeed, v))
			return at, 0, false
		}
		speed = s
	}
	return at, speed, true
}

// replayStream serves /stream/{camera}?at=T[&speed=S].
func (s *Server) replayStream(w http.ResponseWriter, r *http.Request, id string) {
	at, speed, ok := replayParams(w, r)
	if !ok {
		return
	}
	ip := s.clientIP(r)
	release, ok := s.replays.admitOr429(w, ip)
	if !ok {
		return
	}
	defer release()
	open, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	rp, err := s.o.Replays.Open(open, id, at, speed)
	cancel()
	if err != nil {
		s.replayError(w, id, err)
		return
	}
	defer rp.Close()
	h := w.Header()
	h.Set("X-Replay-From", string(mjpeg.AppendTimestamp(nil, rp.First.CapturedAt)))
	if rp.Clamped {
		h.Set("X-Replay-Clamped", "oldest frame held")
	}
	log := s.log.With("camera", id, "client", ip, "principal", principal(r).Name, "at", at, "speed", speed)
	log.Debug("replay started")
	sent := s.serveMJPEG(w, r, rp, func(time.Duration) {}, log)
	log.Debug("replay ended", "frames", sent, "skipped", rp.Dropped())
}

func (s *Server) replayError(w http.ResponseWriter, id string, err error) {
	switch {
	case errors.Is(err, ErrNothingRecorded):
		writeError(w, http.StatusNotFound, fmt.Sprintf("camera %q: %v", id, err))
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("replay of camera %q: %v", id, err))
	}
}

// snapshotAt serves /snapshot/{camera}?at=T.
func (s *Server) snapshotAt(w http.ResponseWriter, r *http.Request, id string) {
	at, _, ok := replayParams(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	f, err := s.o.Replays.FrameAt(ctx, id, at)
	if err != nil {
		s.replayError(w, id, err)
		return
	}
	writeFrame(w, f)
}

// cameraRange serves /api/cameras/{camera}/range.
func (s *Server) cameraRange(w http.ResponseWriter, r *http.Request) {
	id, ok := s.camera(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	oldest, newest, err := s.o.Replays.Range(ctx, id)
	if err != nil {
		s.replayError(w, id, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"camera": id, "oldest": oldest, "newest": newest})
}
