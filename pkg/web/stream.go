package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/mjpeg"
)

// stream serves /stream/{camera}: live, or a replay with ?at= or ?speed=.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	id, ok := s.camera(w, r)
	if !ok {
		return
	}
	if q := r.URL.Query(); (q.Has("at") || q.Has("speed")) && s.o.Replays != nil {
		s.replayStream(w, r, id)
		return
	}
	ip := s.clientIP(r)
	release, ok := s.viewers.admitOr429(w, ip)
	if !ok {
		return
	}
	defer release()
	src, ok := s.o.Live.Subscribe(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown camera %q", id))
		return
	}
	defer src.Close()
	log := s.log.With("camera", id, "client", ip, "principal", principal(r).Name)
	observe := func(time.Duration) {}
	if s.o.Latency != nil {
		observe = s.o.Latency(id)
	}
	log.Debug("viewer joined")
	sent := s.serveMJPEG(w, r, src, observe, log)
	log.Debug("viewer left", "frames", sent, "dropped", src.Dropped())
}

// serveMJPEG writes src's frames to w as an MJPEG stream until src ends,
// the client leaves, or one write stalls past WriteTimeout. It is the one
// streaming loop, whatever feeds it. It returns the frames written.
func (s *Server) serveMJPEG(w http.ResponseWriter, r *http.Request, src Reader, observe func(time.Duration), log *slog.Logger) (sent uint64) {
	h := w.Header()
	streamHeaders(h, mjpeg.ContentType)
	// No chunked encoding: the stream is the body until the connection
	// closes, as MJPEG servers send it, so a part is one write.
	h.Set("Transfer-Encoding", "identity")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return 0
	}
	if s.o.UnsentLimit > 0 {
		if err := setUnsentLimit(r.Context(), s.o.UnsentLimit); err != nil {
			log.Debug("cannot limit unsent bytes", "err", err)
		}
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return 0
	}
	ctx := r.Context()
	// Parts come from the hub already encoded (see EncodePart): one write
	// per part, shared bytes, nothing formatted per viewer. A frame without
	// them (published before anyone watched, or a hub without an encoder)
	// is written piece by piece, to the same bytes.
	mw := mjpeg.NewWriter(w)
	if _, err := w.Write(mjpeg.Opening); err != nil {
		return 0
	}
	for {
		f, wire, err := src.Next(ctx)
		if err != nil {
			return sent
		}
		// A fresh deadline per part: a stalled viewer is dropped after
		// WriteTimeout without affecting anyone else.
		if err := rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout)); err != nil {
			return sent
		}
		if wire != nil {
			_, err = w.Write(wire)
		} else {
			err = mw.WriteBody(mjpeg.Part{ContentType: f.ContentType, Timestamp: f.CapturedAt, Seq: f.Seq, Data: f.Data})
		}
		if err != nil {
			log.Debug("viewer write failed", "err", err)
			return sent
		}
		if err := rc.Flush(); err != nil {
			return sent
		}
		observe(time.Since(f.CapturedAt))
		sent++
	}
}

// EncodePart is the hub encoder for MJPEG streams: the whole part of a
// frame, built once and shared by every viewer.
func EncodePart(f *frame.Frame) []byte {
	p := mjpeg.Part{ContentType: f.ContentType, Timestamp: f.CapturedAt, Seq: f.Seq, Data: f.Data}
	return mjpeg.AppendPart(make([]byte, 0, len(f.Data)+160), p)
}

// streamHeaders sets the headers of a long-lived response: no caching, no
// proxy buffering (nginx), and contentType.
func streamHeaders(h http.Header, contentType string) {
	noCache(h)
	h.Set("Content-Type", contentType)
	h.Set("X-Accel-Buffering", "no")
}
