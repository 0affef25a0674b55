// Package web serves streamd over HTTP with a chi router: the index page,
// MJPEG streams, snapshots, the camera API and health endpoints, and the
// replay, recording and event routes.
//
// It owns HTTP only: the frames, replays, recordings and events it serves
// come through the interfaces Options takes (Live, Replays, Recordings,
// Events), so it never reaches Kafka, the recorder or the analyzer itself,
// and it does not import pkg/app or pkg/config.
//
// Files by concern: web.go the interfaces and the hub adapter, options.go
// the Options, server.go the server's lifecycle and TLS, routes.go the
// routes and /readyz, auth.go and middleware.go what every request passes
// (credentials, body limit, panics, client address), admit.go the
// admission limits, page.go the HTML pages, cameras.go the camera API and
// snapshots, stream.go the MJPEG loop, sockopt*.go the per-platform
// socket option, respond.go the JSON and cache headers; mux.go, events.go,
// replay.go and record.go the multiplexed stream, events, replays and
// recordings, timeparam.go the time parameters they share.
package web

import (
	"context"
	"strings"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/hub"
)

// Check is a named readiness check: nil when ready, otherwise the reason.
type Check struct {
	Name string
	Fn   func() error
	// Degraded, if set, says what the component cannot do while it is
	// ready ("" when nothing): shown as "degraded: <why>", not failing
	// the check (a webhook receiver that is down does not make streamd
	// unready).
	Degraded func() string
}

// Reader is one viewer's sequence of frames: a live hub viewer, or (next)
// a replay of what Kafka holds. The MJPEG loop is fed by either.
type Reader interface {
	// Next blocks for the next frame. part, if not nil, is the frame's
	// whole MJPEG part, encoded once and shared by every viewer.
	Next(ctx context.Context) (f *frame.Frame, part []byte, err error)
	// Dropped counts the frames this reader skipped to stay current.
	Dropped() uint64
	// Close releases the reader.
	Close()
}

// Live is what the server needs from the live fan-out; HubLive adapts a
// *hub.Hub.
type Live interface {
	// Cameras returns every known camera's state.
	Cameras() []hub.Stats
	// Latest returns a camera's newest frame, nil before its first; ok
	// is false for a camera nobody knows.
	Latest(camera string) (f *frame.Frame, ok bool)
	// Subscribe opens a reader of a camera's live frames; ok is false
	// for a camera nobody knows.
	Subscribe(camera string) (r Reader, ok bool)
}

// HubLive adapts the hub to Live.
func HubLive(h *hub.Hub) Live { return hubLive{h} }

type hubLive struct{ h *hub.Hub }

// Cameras lists the cameras, not their substreams ("<id>~sub"); a
// camera's viewers include its substreams' (the page's tiles watch the
// substream, and a tile is a viewer of its camera).
func (l hubLive) Cameras() []hub.Stats {
	all := l.h.Cameras()
	sub := map[string]int64{}
	for _, c := range all {
		if id, _, ok := strings.Cut(c.ID, "~"); ok {
			sub[id] += c.Viewers
		}
	}
	out := all[:0]
	for _, c := range all {
		if !strings.Contains(c.ID, "~") {
			c.Viewers += sub[c.ID]
			out = append(out, c)
		}
	}
	return out
}

func (l hubLive) Latest(id string) (*frame.Frame, bool) {
	c, ok := l.h.Camera(id)
	if !ok {
		return nil, false
	}
	return c.Latest(), true
}

func (l hubLive) Subscribe(id string) (Reader, bool) {
	c, ok := l.h.Camera(id)
	if !ok {
		return nil, false
	}
	return c.Subscribe(), true
}
