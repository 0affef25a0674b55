package web

import (
	"context"
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
