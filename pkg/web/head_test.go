package web

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/hub"
	"github.com/streamd/streamd/pkg/mjpeg"
)

// HEAD is answered wherever GET is, with GET's status and headers and no
// body: uptime checkers use it. A HEAD on a stream returns at once instead
// of streaming into the void.
func TestHeadWhereverGet(t *testing.T) {
	h := hub.New()
	h.Register("cam")
	h.Publish(img(0))
	s, err := Start(Options{Live: HubLive(h), Status: func() any { return map[string]string{"role": "test"} },
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "m 1\n") })})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	base := "http://" + s.Addr()
	client := http.Client{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		path, contentType string
		code              int
	}{
		{"/healthz", "application/json", 200},
		{"/readyz", "application/json", 200},
		{"/metrics", "", 200},
		{"/api/status", "application/json", 200},
		{"/api/cameras", "application/json", 200},
		{"/snapshot/cam", "image/jpeg", 200},
		{"/stream/cam", mjpeg.ContentType, 200},
		{"/stream/nope", "application/json", 404},
		{"/nothing", "application/json", 404},
	} {
		resp, err := client.Head(base + tc.path)
		if err != nil {
			t.Fatalf("HEAD %s: %v", tc.path, err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || n != 0 || (tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType) {
			t.Errorf("HEAD %s: %d, %d body bytes, Content-Type %q; want %d, none, %q", tc.path, resp.StatusCode, n, resp.Header.Get("Content-Type"), tc.code, tc.contentType)
		}
	}
	c, _ := h.Camera("cam")
	if v := c.Stats().Viewers; v != 0 {
		t.Fatalf("HEAD left %d viewers", v)
	}
}
