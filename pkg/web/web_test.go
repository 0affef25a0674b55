package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/hub"
	"github.com/streamd/streamd/pkg/mjpeg"
)

func start(t *testing.T, h *hub.Hub, checks ...Check) *Server {
	t.Helper()
	s, err := Start(Options{Live: HubLive(h), Checks: checks, WriteTimeout: 300 * time.Millisecond,
		Static: fstest.MapFS{"index.html": {Data: []byte("<h1>streamd</h1>")}, "app.js": {Data: []byte("//js")}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func img(seq uint64) *frame.Frame {
	now := time.Now()
	data := make([]byte, 64<<10)
	copy(data, []byte{0xff, 0xd8, 0xff})
	return &frame.Frame{Camera: "cam", Seq: seq, CapturedAt: now, ReceivedAt: now, ContentType: frame.TypeJPEG, Data: data}
}

func TestRoutesAndErrors(t *testing.T) {
	h := hub.New()
	h.Register("cam")
	s := start(t, h)
	base := "http://" + s.Addr()
	for _, tc := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/", 200, "<h1>streamd</h1>"},
		{"GET", "/static/app.js", 200, "//js"},
		{"GET", "/healthz", 200, `{"status":"ok"}`},
		{"GET", "/api/cameras", 200, `"id":"cam"`},
		{"GET", "/snapshot/cam", 503, `{"error":"camera \"cam\" has no frame yet"}`},
		{"GET", "/stream/nope", 404, `{"error":"unknown camera \"nope\""}`},
		{"GET", "/snapshot/a%20b", 400, `invalid camera id`},
		{"GET", "/stream/" + strings.Repeat("x", 65), 400, `invalid camera id: 65 characters, at most 64`},
		{"GET", "/nothing/here", 404, `{"error":"no such page: /nothing/here"}`},
		{"POST", "/api/cameras", 405, `{"error":"method POST not allowed on /api/cameras"}`},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.body) {
			t.Errorf("%s %s: %d %s; want %d containing %s", tc.method, tc.path, resp.StatusCode, b, tc.code, tc.body)
		}
	}
	h.Publish(img(7))
	code, body, hdr := get(t, base+"/snapshot/cam")
	if code != 200 || len(body) != 64<<10 || hdr.Get("X-Sequence") != "7" || hdr.Get("Content-Type") != "image/jpeg" || hdr.Get("X-Timestamp") == "" {
		t.Fatalf("snapshot: %d %d bytes %v", code, len(body), hdr)
	}
}

func TestReadyzReportsEachCheck(t *testing.T) {
	var kafkaErr error = errors.New("kafka dial [k:9092]: connection refused")
	s := start(t, hub.New(), Check{Name: "kafka", Fn: func() error { return kafkaErr }}, Check{Name: "consumer", Fn: func() error { return nil }})
	code, body, _ := get(t, "http://"+s.Addr()+"/readyz")
	var r struct {
		Ready  bool
		Checks map[string]string
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if code != 503 || r.Ready || r.Checks["kafka"] != kafkaErr.Error() || r.Checks["consumer"] != "ok" {
		t.Fatalf("readyz: %d %s", code, body)
	}
	kafkaErr = nil
	if code, body, _ := get(t, "http://"+s.Addr()+"/readyz"); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("readyz when ready: %d %s", code, body)
	}
	// Health stays 200 whatever readiness says.
	if code, _, _ := get(t, "http://"+s.Addr()+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
}

func waitViewers(t *testing.T, c *hub.Camera, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Viewers != n {
		if time.Now().After(deadline) {
			t.Fatalf("viewers %d, want %d", c.Stats().Viewers, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestViewerThatLeavesIsReleased(t *testing.T) {
	h := hub.New()
	c := h.Register("cam")
	s := start(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.Addr()+"/stream/cam", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"Content-Type": mjpeg.ContentType, "X-Accel-Buffering": "no", "Pragma": "no-cache"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if len(resp.TransferEncoding) != 0 || !strings.Contains(resp.Header.Get("Cache-Control"), "no-store") {
		t.Errorf("stream must be an unchunked, uncached body: %v %q", resp.TransferEncoding, resp.Header.Get("Cache-Control"))
	}
	h.Publish(img(1))
	r := mjpeg.NewReader(resp.Body, mjpeg.Boundary)
	if p, err := r.Next(); err != nil || p.Seq != 1 {
		t.Fatalf("first part: %v %+v", err, p.Seq)
	}
	waitViewers(t, c, 1)
	cancel()
	resp.Body.Close()
	// No frame is published: the server must notice the disconnect by itself.
	waitViewers(t, c, 0)
}

func TestStalledViewerIsDroppedOthersContinue(t *testing.T) {
	h := hub.New()
	c := h.Register("cam")
	s := start(t, h)
	// A client that sends a request and never reads.
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10)
	}
	if _, err := io.WriteString(conn, "GET /stream/cam HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitViewers(t, c, 1)
	resp, err := http.Get("http://" + s.Addr() + "/stream/cam")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitViewers(t, c, 2)
	r := mjpeg.NewReader(resp.Body, mjpeg.Boundary)
	got := make(chan uint64, 1000)
	go func() {
		for {
			p, err := r.Next()
			if err != nil {
				close(got)
				return
			}
			got <- p.Seq
		}
	}()
	// Push far more than socket buffers hold; the good viewer keeps up.
	for i := uint64(0); i < 200; i++ {
		h.Publish(img(i))
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("good viewer stalled at frame %d", i)
		}
	}
	// The stalled one hit its write deadline and is gone.
	waitViewers(t, c, 1)
}

func TestShutdownEndsStreams(t *testing.T) {
	h := hub.New()
	h.Register("cam")
	s, err := Start(Options{Live: HubLive(h)})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/stream/cam")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
	if time.Since(start) > 4*time.Second {
		t.Fatal("shutdown waited for its deadline instead of ending the stream")
	}
}

func TestListenErrorNamesAddress(t *testing.T) {
	s := start(t, hub.New())
	_, err := Start(Options{Addr: s.Addr()})
	if err == nil || !strings.Contains(err.Error(), "http listen on "+s.Addr()) {
		t.Fatalf("got %v", err)
	}
}

func TestViewerLimits(t *testing.T) {
	h := hub.New()
	h.Register("cam")
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	s, err := Start(Options{Live: HubLive(h), MaxViewers: 3, MaxViewersPerIP: 2, TrustedProxies: []*net.IPNet{loopback}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	open := func(realIP string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+s.Addr()+"/stream/cam", nil)
		if realIP != "" {
			req.Header.Set("X-Real-IP", realIP)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	expect := func(resp *http.Response, code int, body string) {
		t.Helper()
		if resp.StatusCode != code {
			t.Fatalf("status %d, want %d", resp.StatusCode, code)
		}
		if body != "" {
			b, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(b), body) {
				t.Fatalf("body %s, want %s", b, body)
			}
		}
	}
	a1 := open("192.0.2.1")
	expect(a1, 200, "")
	expect(open("192.0.2.1"), 200, "")
	expect(open("192.0.2.1"), 429, `too many streams from 192.0.2.1 (limit 2)`)
	expect(open("192.0.2.2"), 200, "")
	expect(open("192.0.2.3"), 429, `server at its viewer limit (3)`)
	// A viewer that leaves frees its place.
	a1.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := open("192.0.2.3")
		if resp.StatusCode == 200 {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("place not freed after a viewer left")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBodiesAreRefused(t *testing.T) {
	s := start(t, hub.New())
	resp, err := http.Post("http://"+s.Addr()+"/healthz", "text/plain", strings.NewReader(strings.Repeat("x", 10<<10)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("10 kB body: %d", resp.StatusCode)
	}
}

// A degraded check names its trouble and keeps /readyz at 200.
func TestReadyzShowsDegradedChecks(t *testing.T) {
	why := "webhook.phone: failing since 2026-01-01T00:00:00Z (3 tries): connection refused"
	s := start(t, hub.New(), Check{Name: "notifier", Fn: func() error { return nil }, Degraded: func() string { return why }})
	code, body, _ := get(t, "http://"+s.Addr()+"/readyz")
	var r struct {
		Ready  bool
		Checks map[string]string
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if code != 200 || !r.Ready || r.Checks["notifier"] != "degraded: "+why {
		t.Fatalf("readyz: %d %s", code, body)
	}
}
