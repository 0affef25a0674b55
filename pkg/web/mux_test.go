package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/hub"
	"github.com/streamd/streamd/pkg/mjpeg"
)

// One multiplexed stream carries several cameras' frames, each part naming
// its camera; the hub's shared parts and frames without them both work.
func TestMuxStreamCarriesEveryCamera(t *testing.T) {
	for _, encoded := range []bool{true, false} {
		var opts []hub.Option
		if encoded {
			opts = append(opts, hub.WithEncoder(EncodePart))
		}
		h := hub.New(opts...)
		for _, id := range []string{"a", "b", "c"} {
			h.Register(id)
		}
		s := start(t, h)
		resp, err := http.Get("http://" + s.Addr() + "/api/live?cameras=a,b")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != mjpeg.ContentType {
			t.Fatalf("mux: %d %v", resp.StatusCode, resp.Header)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for seq := uint64(0); ctx.Err() == nil; seq++ {
				for _, id := range []string{"a", "b", "c"} {
					f := img(seq)
					f.Camera = id
					h.Publish(f)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		r := mjpeg.NewReader(resp.Body, mjpeg.Boundary)
		got := map[string]int{}
		for range 20 {
			p, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Data) != 64<<10 || p.Timestamp.IsZero() {
				t.Fatalf("part %+v", p.Camera)
			}
			got[p.Camera]++
		}
		cancel()
		resp.Body.Close()
		if got["a"] == 0 || got["b"] == 0 || got["c"] != 0 || len(got) != 2 {
			t.Fatalf("encoded %v: parts per camera %v", encoded, got)
		}
	}
}

func TestMuxStreamErrors(t *testing.T) {
	h := hub.New()
	h.Register("a")
	s := start(t, h)
	base := "http://" + s.Addr()
	for path, want := range map[string]string{
		"/api/live":                        `name 1 to 64 cameras`,
		"/api/live?cameras=a,nope":         `unknown camera \"nope\"`,
		"/api/live?cameras=a%20b":          `parameter \"cameras\"`,
		"/api/live?cameras=a&rendition=4k": `parameter \"rendition\"`,
		"/api/live?cameras=" + manyIDs(70): `name 1 to 64`,
	} {
		code, body, _ := get(t, base+path)
		if code/100 != 4 || !strings.Contains(body, want) {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
}

func manyIDs(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "c" + strconv.Itoa(i)
	}
	return strings.Join(ids, ",")
}

// A tile watches its camera's substream: /api/cameras counts it among the
// camera's viewers, with those of the main stream, and lists no substream.
func TestViewersIncludeSubstreams(t *testing.T) {
	h := hub.New(hub.WithEncoder(EncodePart))
	h.Register("a")
	h.Register("a~sub")
	h.Register("b")
	s := start(t, h)
	base := "http://" + s.Addr()
	viewers := func() map[string]int64 {
		t.Helper()
		_, body, _ := get(t, base+"/api/cameras")
		var cams []hub.Stats
		if err := json.Unmarshal([]byte(body), &cams); err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, c := range cams {
			out[c.ID] = c.Viewers
		}
		return out
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func(path string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	open("/api/live?cameras=a,b&rendition=sub") // a's substream, b's main stream (it has no substream)
	open("/stream/a")
	deadline := time.Now().Add(5 * time.Second)
	for v := viewers(); v["a"] != 2 || v["b"] != 1 || len(v) != 2; v = viewers() {
		if time.Now().After(deadline) {
			t.Fatalf("viewers %v, want a: 2 (substream and main), b: 1, and no substream listed", v)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
