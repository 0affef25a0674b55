package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/auth"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/hub"
)

// fakeRecordings is Recordings with canned storage and spans; Export is
// the test's.
type fakeRecordings struct {
	storage []Storage
	spans   []Span
	export  func(ctx context.Context, camera string, from, to time.Time) ([]byte, error)
	exports atomic.Int64 // Export calls
	// reduced is the reduced tier: a frame a second of every camera.
	reduced []*frame.Frame
}

func (f *fakeRecordings) ReducedFrames(_ context.Context, camera string, from, to time.Time, n int) ([]*frame.Frame, error) {
	var out []*frame.Frame
	step := to.Sub(from) / time.Duration(n)
	next := from
	for _, fr := range f.reduced {
		if fr.Camera != camera || fr.CapturedAt.Before(next) || fr.CapturedAt.After(to) || len(out) == n {
			continue
		}
		out = append(out, fr)
		for !next.After(fr.CapturedAt) {
			next = next.Add(step)
		}
	}
	if len(out) == 0 {
		return nil, ErrNothingRecorded
	}
	return out, nil
}

func (f *fakeRecordings) Storage() []Storage { return f.storage }

func (f *fakeRecordings) Spans(camera string, from, to time.Time) []Span {
	var out []Span
	for _, s := range f.spans {
		if s.End.After(from) && s.Start.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeRecordings) Export(ctx context.Context, camera string, from, to time.Time) ([]byte, error) {
	f.exports.Add(1)
	return f.export(ctx, camera, from, to)
}

func startRecordings(t *testing.T, rec Recordings, o Options) string {
	t.Helper()
	h := hub.New()
	h.Register("lobby")
	h.Register("yard")
	o.Live, o.Recordings = HubLive(h), rec
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return "http://" + s.Addr()
}

func do(t *testing.T, method, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func errorOf(t *testing.T, body string) string {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Error
}

func TestRecordingRoutes(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	mp4 := []byte("\x00\x00\x00\x18ftypisom-not-really-a-video-but-bytes")
	rec := &fakeRecordings{
		storage: []Storage{
			{Camera: "lobby", Oldest: now.Add(-26 * time.Hour), Newest: now, Tiers: []TierStorage{{Tier: "full", Bytes: 1000, Frames: 10}}},
			{Camera: "yard"},
		},
		spans: []Span{{Tier: "full", Start: now.Add(-time.Hour), End: now.Add(-30 * time.Minute)}},
	}
	var exportErr atomic.Pointer[error]
	rec.export = func(_ context.Context, camera string, from, to time.Time) ([]byte, error) {
		if e := exportErr.Load(); e != nil {
			return nil, *e
		}
		return mp4, nil
	}
	setErr := func(err error) { exportErr.Store(&err) }
	base := startRecordings(t, rec, Options{MaxExport: time.Hour})
	export := base + "/api/cameras/lobby/export?from=-10m&to=-5m"

	t.Run("storage", func(t *testing.T) {
		resp, body := do(t, http.MethodGet, base+"/api/storage", nil)
		var got struct {
			Cameras []struct {
				Camera      string
				HeldSeconds float64 `json:"held_seconds"`
				Held        string
				Tiers       []TierStorage
			}
		}
		if err := json.Unmarshal([]byte(body), &got); resp.StatusCode != 200 || err != nil {
			t.Fatalf("storage: %d %v %s", resp.StatusCode, err, body)
		}
		if len(got.Cameras) != 2 || got.Cameras[0].Camera != "lobby" || got.Cameras[0].Held != "1 d 2 h" ||
			got.Cameras[0].HeldSeconds < 26*3600 || len(got.Cameras[0].Tiers) != 1 {
			t.Fatalf("storage: %s", body)
		}
		if c := got.Cameras[1]; c.Camera != "yard" || c.Tiers == nil || len(c.Tiers) != 0 || c.Held != "" {
			t.Fatalf("a camera with nothing held: %s", body)
		}
	})
	t.Run("spans", func(t *testing.T) {
		resp, body := do(t, http.MethodGet, base+"/api/cameras/lobby/spans", nil)
		var got struct {
			Camera string
			Spans  []Span
		}
		if err := json.Unmarshal([]byte(body), &got); resp.StatusCode != 200 || err != nil || got.Camera != "lobby" || len(got.Spans) != 1 {
			t.Fatalf("spans: %d %v %s", resp.StatusCode, err, body)
		}
		if resp, body := do(t, http.MethodGet, base+"/api/cameras/lobby/spans?from=-10m", nil); resp.StatusCode != 200 || !strings.Contains(body, `"spans":[]`) {
			t.Fatalf("spans outside the recording: %d %s", resp.StatusCode, body)
		}
		if resp, _ := do(t, http.MethodGet, base+"/api/cameras/nope/spans", nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("spans of an unknown camera: %d", resp.StatusCode)
		}
	})
	t.Run("export", func(t *testing.T) {
		resp, body := do(t, http.MethodGet, export, nil)
		if resp.StatusCode != 200 || body != string(mp4) || resp.Header.Get("Content-Type") != "video/mp4" ||
			!strings.HasPrefix(resp.Header.Get("Content-Disposition"), `inline; filename="lobby-`) || resp.Header.Get("Pragma") != "no-cache" {
			t.Fatalf("export: %d %q %v", resp.StatusCode, body, resp.Header)
		}
		resp, body = do(t, http.MethodGet, export, map[string]string{"Range": "bytes=4-7"})
		if resp.StatusCode != http.StatusPartialContent || body != "ftyp" {
			t.Fatalf("export range: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("head", func(t *testing.T) {
		before := rec.exports.Load()
		resp, body := do(t, http.MethodHead, export, nil)
		if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Type") != "video/mp4" {
			t.Fatalf("HEAD export: %d %q %v", resp.StatusCode, body, resp.Header)
		}
		if n := rec.exports.Load() - before; n != 0 {
			t.Fatalf("HEAD export encoded %d times", n)
		}
	})
	t.Run("parameters", func(t *testing.T) {
		for _, tc := range []struct{ query, want string }{
			{"to=-5m", `parameter "from" is required`},
			{"from=-10m", `parameter "to" is required`},
			{"from=-5m&to=-10m", `parameter "from"`},
			{"from=-3h&to=-1h", "longer than the export limit 1h0m0s"},
			{"from=yesterday&to=-1h", `parameter "from"`},
		} {
			resp, body := do(t, http.MethodGet, base+"/api/cameras/lobby/export?"+tc.query, nil)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(errorOf(t, body), tc.want) {
				t.Errorf("export?%s: %d %s, want 400 with %q", tc.query, resp.StatusCode, body, tc.want)
			}
		}
	})
	// The error cases run last: they change what the fake returns.
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			err        error
			code       int
			retryAfter string
			want       string
		}{
			{ErrNothingRecorded, http.StatusNotFound, "", `camera "lobby": nothing recorded between`},
			{ErrExportUnsupported, http.StatusNotImplemented, "", ErrExportUnsupported.Error()},
			{errors.New("brokers down"), http.StatusServiceUnavailable, "5", `export of camera "lobby": brokers down`},
		} {
			setErr(tc.err)
			resp, body := do(t, http.MethodGet, export, nil)
			if resp.StatusCode != tc.code || resp.Header.Get("Retry-After") != tc.retryAfter || !strings.Contains(errorOf(t, body), tc.want) {
				t.Errorf("export failing with %v: %d, Retry-After %q, %s; want %d, %q, %q", tc.err, resp.StatusCode, resp.Header.Get("Retry-After"), body, tc.code, tc.retryAfter, tc.want)
			}
		}
	})
}

// MaxExports caps the exports encoding at once: past it, 429 with
// Retry-After; the place comes back when an export ends.
func TestExportCap(t *testing.T) {
	entered := make(chan struct{}, 4)
	unblock := make(chan struct{})
	rec := &fakeRecordings{export: func(ctx context.Context, _ string, _, _ time.Time) ([]byte, error) {
		entered <- struct{}{}
		select {
		case <-unblock:
			return []byte("mp4"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}
	base := startRecordings(t, rec, Options{MaxExport: time.Hour, MaxExports: 1})
	export := base + "/api/cameras/lobby/export?from=-10m&to=-5m"

	first := make(chan int, 1)
	go func() {
		resp, err := http.Get(export)
		if err != nil {
			first <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first export never started")
	}
	resp, body := do(t, http.MethodGet, export, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "5" ||
		errorOf(t, body) != "server at its export limit (1, recording.max_exports)" {
		t.Fatalf("second export at a cap of 1: %d, Retry-After %q, %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// A HEAD takes no place, so it is answered even at the cap.
	if resp, _ := do(t, http.MethodHead, export, nil); resp.StatusCode != 200 {
		t.Fatalf("HEAD at the cap: %d", resp.StatusCode)
	}
	close(unblock)
	if code := <-first; code != 200 {
		t.Fatalf("first export: %d", code)
	}
	if resp, body := do(t, http.MethodGet, export, nil); resp.StatusCode != 200 || body != "mp4" {
		t.Fatalf("export after the first ended: %d %q", resp.StatusCode, body)
	}
	if n := rec.exports.Load(); n != 2 {
		t.Fatalf("%d exports encoded, want 2", n)
	}
}

// A principal limited to some cameras sees only those in /api/storage and
// gets 403 for the others' spans and exports.
func TestRecordingsObeyCameraAllowList(t *testing.T) {
	a, err := auth.New([]auth.Token{{Name: "lobby-screen", Secret: lobbySecret, Cameras: []string{"lobby"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &fakeRecordings{
		storage: []Storage{{Camera: "lobby"}, {Camera: "yard"}},
		export:  func(context.Context, string, time.Time, time.Time) ([]byte, error) { return []byte("mp4"), nil },
	}
	base := startRecordings(t, rec, Options{MaxExport: time.Hour, Auth: a})
	bearer := map[string]string{"Authorization": "Bearer " + lobbySecret}
	resp, body := do(t, http.MethodGet, base+"/api/storage", bearer)
	if resp.StatusCode != 200 || !strings.Contains(body, `"lobby"`) || strings.Contains(body, `"yard"`) {
		t.Fatalf("storage for lobby-screen: %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{"/api/cameras/yard/spans", "/api/cameras/yard/export?from=-10m&to=-5m"} {
		if resp, _ := do(t, http.MethodGet, base+path, bearer); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s for lobby-screen: %d, want 403", path, resp.StatusCode)
		}
	}
	if resp, _ := do(t, http.MethodGet, base+"/api/storage", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("storage without credentials: %d", resp.StatusCode)
	}
	if n := rec.exports.Load(); n != 0 {
		t.Fatalf("%d exports encoded for a camera not allowed", n)
	}
}
