package web

import (
	"archive/zip"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/auth"
	"github.com/streamd/streamd/pkg/hub"
)

// exportOf is a fake export: "mp4 of <camera> <from>-<to>", nothing
// recorded for "yard" before the hour, an error for "gate".
func exportOf(_ context.Context, camera string, from, to time.Time) ([]byte, error) {
	switch {
	case camera == "gate":
		return nil, errors.New("brokers down")
	case camera == "yard" && from.Before(time.Now().Add(-time.Hour)):
		return nil, ErrNothingRecorded
	}
	return []byte("mp4 of " + camera + " " + from.UTC().Format(time.RFC3339) + "-" + to.UTC().Format(time.RFC3339)), nil
}

func startZip(t *testing.T, rec Recordings, o Options) string {
	t.Helper()
	h := hub.New()
	for _, id := range []string{"lobby", "yard", "gate", "door"} {
		h.Register(id)
	}
	o.Live, o.Recordings = HubLive(h), rec
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return "http://" + s.Addr()
}

// readZip returns the entries of a ZIP body, name → content.
func readZip(t *testing.T, body string) map[string]string {
	t.Helper()
	zr, err := zip.NewReader(strings.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("not a ZIP: %v", err)
	}
	out := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if strings.HasSuffix(f.Name, ".mp4") && f.Method != zip.Store {
			t.Errorf("%s is compressed (method %d): MP4 does not compress", f.Name, f.Method)
		}
		out[f.Name] = string(b)
	}
	return out
}

func TestExportZip(t *testing.T) {
	rec := &fakeRecordings{export: exportOf}
	base := startZip(t, rec, Options{MaxExport: 10 * time.Minute, MaxExports: 2})
	from := time.Now().Add(-10 * time.Minute).Truncate(time.Second).UTC()
	to := from.Add(5 * time.Minute)
	q := "&from=" + from.Format(time.RFC3339) + "&to=" + to.Format(time.RFC3339)
	stamp := from.Format("20060102T150405Z")

	resp, body := do(t, http.MethodGet, base+"/api/export?cameras=lobby,yard,lobby"+q, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" || !strings.Contains(resp.Header.Get("Content-Disposition"), "streamd-"+stamp+".zip") {
		t.Fatalf("export: %d %v %.200s", resp.StatusCode, resp.Header, body)
	}
	got := readZip(t, body)
	want := map[string]string{
		"lobby-" + stamp + ".mp4": "mp4 of lobby " + from.Format(time.RFC3339) + "-" + to.Format(time.RFC3339),
		"yard-" + stamp + ".mp4":  "mp4 of yard " + from.Format(time.RFC3339) + "-" + to.Format(time.RFC3339),
	}
	if len(got) != len(want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	// One camera failing and one with nothing recorded: the others, and a
	// README naming the missing ones.
	old := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)
	resp, body = do(t, http.MethodGet, base+"/api/export?cameras=yard,gate,door&from="+old.Format(time.RFC3339)+"&to="+old.Add(time.Minute).Format(time.RFC3339), nil)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("X-Export-Missing"), "yard: nothing recorded") {
		t.Fatalf("partial export: %d %v", resp.StatusCode, resp.Header)
	}
	got = readZip(t, body)
	readme := got["README.txt"]
	if len(got) != 2 || got["door-"+old.Format("20060102T150405Z")+".mp4"] == "" || !strings.Contains(readme, "yard: nothing recorded") || !strings.Contains(readme, "gate: brokers down") {
		t.Fatalf("partial export entries %v", got)
	}
	for _, tc := range []struct {
		query string
		code  int
		want  string
	}{
		{"cameras=" + q, 400, "name 1 to 16 cameras"},
		{"cameras=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q" + q, 400, "name 1 to 16 cameras"},
		{"cameras=lobby,a%20b" + q, 400, "invalid camera id"},
		{"cameras=lobby,nope" + q, 404, `unknown camera "nope"`},
		{"cameras=lobby&from=-20m&to=-5m", 400, "longer than the export limit"},
		{"cameras=lobby&from=-5m&to=-10m", 400, `"from"`},
		{"cameras=lobby", 400, `parameter "from" is required`},
		{"cameras=yard&from=-3h&to=-175m", 404, "cameras yard: nothing recorded"},
		{"cameras=gate" + q, 503, "gate: brokers down"},
	} {
		resp, body := do(t, http.MethodGet, base+"/api/export?"+tc.query, nil)
		if resp.StatusCode != tc.code || !strings.Contains(errorOf(t, body), tc.want) {
			t.Errorf("?%s: %d %s, want %d with %q", tc.query, resp.StatusCode, body, tc.code, tc.want)
		}
	}
	// Without OpenCV: 501, as one camera's export.
	rec.export = func(context.Context, string, time.Time, time.Time) ([]byte, error) { return nil, ErrExportUnsupported }
	if resp, body := do(t, http.MethodGet, base+"/api/export?cameras=lobby,yard"+q, nil); resp.StatusCode != 501 {
		t.Errorf("without OpenCV: %d %s", resp.StatusCode, body)
	}
}

// The ZIP takes one export slot (recording.max_exports) for all its
// cameras, and obeys the camera allow-list.
func TestExportZipCapAndAllowList(t *testing.T) {
	entered := make(chan struct{}, 8)
	unblock := make(chan struct{})
	rec := &fakeRecordings{export: func(ctx context.Context, camera string, _, _ time.Time) ([]byte, error) {
		entered <- struct{}{}
		select {
		case <-unblock:
			return []byte("mp4 " + camera), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}
	a, err := auth.New([]auth.Token{{Name: "full", Secret: "full-token-0123456789"}, {Name: "lobby-screen", Secret: "lobby-token-0123456789", Cameras: []string{"lobby"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := startZip(t, rec, Options{MaxExport: time.Hour, MaxExports: 1, Auth: a})
	if resp, body := do(t, http.MethodGet, base+"/api/export?cameras=lobby,yard&from=-10m&to=-5m&token=lobby-token-0123456789", nil); resp.StatusCode != 403 {
		t.Errorf("a camera the token may not watch: %d %s", resp.StatusCode, body)
	}
	export := base + "/api/export?cameras=lobby,yard&from=-10m&to=-5m&token=full-token-0123456789"
	first := make(chan string, 1)
	go func() {
		resp, err := http.Get(export)
		if err != nil {
			first <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		first <- string(b)
	}()
	<-entered
	resp, body := do(t, http.MethodGet, export, nil)
	if resp.StatusCode != http.StatusTooManyRequests || errorOf(t, body) != "server at its export limit (1, recording.max_exports)" {
		t.Fatalf("a second export at a cap of 1: %d %s", resp.StatusCode, body)
	}
	close(unblock)
	got := readZip(t, <-first)
	n := 0
	for k, v := range got {
		if cam, _, _ := strings.Cut(k, "-"); v != "mp4 "+cam || cam != "lobby" && cam != "yard" {
			t.Errorf("entry %s: %q", k, v)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("entries %v, want lobby's and yard's", got)
	}
	// The slot is free again.
	resp, body = do(t, http.MethodGet, export, nil)
	if resp.StatusCode != 200 || len(readZip(t, body)) != 2 {
		t.Fatalf("after the first ended: %d", resp.StatusCode)
	}
}
