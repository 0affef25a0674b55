package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/mjpeg"
)

// MaxMuxCameras is the most cameras one multiplexed stream carries.
const MaxMuxCameras = 64

// muxStream serves /api/live?cameras=a,b,c[&rendition=sub]: the live
// frames of several cameras in ONE multipart stream, each part naming its
// camera in an X-Camera header. A page with a grid of cameras reads it with
// fetch() and draws each part into its tile: one connection for any number
// of tiles, where <img> streams would need one each and stall at the
// browser's six connections per host.
//
// Each camera is read by its own hub viewer (so each skips to its newest
// frame on its own) into a one-frame slot; one writer sends whatever slots
// hold, newest first per camera, so a slow connection costs a camera frames,
// never latency. The hub's shared, pre-encoded part is sent as is after the
// X-Camera line: no image is copied.
func (s *Server) muxStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rendition := q.Get("rendition")
	if rendition != "" && rendition != RenditionSub {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q: %q is not %q", "rendition", rendition, RenditionSub))
		return
	}
	ids, ok := s.watchableCameras(w, r, q.Get("cameras"), MaxMuxCameras)
	if !ok {
		return
	}
	ip := s.clientIP(r)
	release, ok := s.viewers.admitOr429(w, ip)
	if !ok {
		return
	}
	defer release()

	h := w.Header()
	streamHeaders(h, mjpeg.ContentType)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	m := &mux{ready: make(chan struct{}, 1), slots: make([]muxSlot, len(ids)), delim: append([]byte("\r\n"), mjpeg.Opening...)}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i, id := range ids {
		src, ok := s.o.Live.Subscribe(liveKey(id, rendition))
		if !ok {
			src, _ = s.o.Live.Subscribe(id) // no substream: the main one
		}
		m.slots[i].prefix = []byte("X-Camera: " + id + "\r\n")
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer src.Close()
			m.feed(ctx, i, src)
		}()
	}
	if s.o.UnsentLimit > 0 {
		_ = setUnsentLimit(r.Context(), s.o.UnsentLimit)
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(mjpeg.Opening); err != nil || rc.Flush() != nil {
		return
	}
	var hdr []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.ready:
		}
		for i := range m.slots {
			f, part := m.take(i)
			if f == nil {
				continue
			}
			if err := rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout)); err != nil {
				return
			}
			if part == nil {
				p := mjpeg.Part{Camera: ids[i], ContentType: f.ContentType, Timestamp: f.CapturedAt, Seq: f.Seq, Data: f.Data}
				hdr = mjpeg.AppendHeader(hdr[:0], p)
				if _, err := w.Write(hdr); err != nil {
					return
				}
				if _, err := w.Write(f.Data); err != nil {
					return
				}
				part = m.delim
			} else if _, err := w.Write(m.slots[i].prefix); err != nil {
				return
			}
			if _, err := w.Write(part); err != nil {
				return
			}
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// mux holds each camera's newest frame not yet written.
type mux struct {
	mu    sync.Mutex
	ready chan struct{} // a slot was filled
	slots []muxSlot
	delim []byte // ends a part written piece by piece
}

type muxSlot struct {
	prefix []byte // "X-Camera: <id>\r\n"
	f      *frame.Frame
	part   []byte
}

// feed reads camera i's frames into its slot until ctx ends; a frame not
// written yet is replaced by a newer one.
func (m *mux) feed(ctx context.Context, i int, src Reader) {
	for {
		f, part, err := src.Next(ctx)
		if err != nil {
			return
		}
		m.mu.Lock()
		m.slots[i].f, m.slots[i].part = f, part
		m.mu.Unlock()
		select {
		case m.ready <- struct{}{}:
		default:
		}
	}
}

func (m *mux) take(i int) (*frame.Frame, []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, part := m.slots[i].f, m.slots[i].part
	m.slots[i].f, m.slots[i].part = nil, nil
	return f, part
}

// RenditionSub names a camera's low-resolution substream.
const RenditionSub = "sub"

// liveKey is the hub's name for a camera's rendition.
func liveKey(id, rendition string) string {
	if rendition == "" {
		return id
	}
	return id + "~" + rendition
}

// watchableCameras parses the "cameras" parameter list, a comma-separated
// list of up to most camera ids (repeats ignored), and answers 400, 403
// or 404 (returning false) unless every one is a known camera the
// principal may watch.
func (s *Server) watchableCameras(w http.ResponseWriter, r *http.Request, list string, most int) ([]string, bool) {
	var ids []string
	seen := map[string]bool{}
	for _, id := range strings.Split(list, ",") {
		if id = strings.TrimSpace(id); id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 || len(ids) > most {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q: name 1 to %d cameras, comma-separated", "cameras", most))
		return nil, false
	}
	for _, id := range ids {
		if err := frame.ValidateID(id); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q: %v", "cameras", err))
			return nil, false
		}
		if p := principal(r); !p.Allowed(id) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("%s may not watch camera %q", p.Name, id))
			return nil, false
		}
		if _, known := s.o.Live.Latest(id); !known {
			writeError(w, http.StatusNotFound, fmt.Sprintf("unknown camera %q", id))
			return nil, false
		}
	}
	return ids, true
}
