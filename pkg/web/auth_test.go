package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/streamd/streamd/pkg/auth"
	"github.com/streamd/streamd/pkg/hub"
	"github.com/streamd/streamd/pkg/testutil"
)

const (
	fullSecret  = "full-secret-0123456789"
	lobbySecret = "lobby-secret-0123456789"
	password    = "correct horse battery"
	// bcrypt (cost 4) of password
	passwordHash = "$2a$04$veWKOf/mZihrvKOZGDvcSO1wrA/jx/ODQ.SH.pRLFk6lqYbO2Ob3e"
)

func TestAuthEveryRoute(t *testing.T) {
	a, err := auth.New(
		[]auth.Token{{Name: "full", Secret: fullSecret}, {Name: "lobby-screen", Secret: lobbySecret, Cameras: []string{"lobby"}}},
		[]auth.User{{Name: "alice", PasswordBcrypt: passwordHash}, {Name: "bob", PasswordBcrypt: passwordHash, Cameras: []string{"yard"}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New()
	h.Publish(img(1))
	for _, id := range []string{"lobby", "yard"} {
		f := img(1)
		f.Camera = id
		h.Publish(f)
	}
	logs := &testutil.Buffer{}
	s, err := Start(Options{Live: HubLive(h), Auth: a, Pprof: true, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "metrics") }),
		Static:  fstest.MapFS{"index.html": {Data: []byte("page")}, "app.js": {Data: []byte("js")}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })

	type cred struct {
		name  string
		apply func(*http.Request)
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	query := func(tok string) func(*http.Request) {
		return func(r *http.Request) { q := r.URL.Query(); q.Set("token", tok); r.URL.RawQuery = q.Encode() }
	}
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	creds := []cred{
		{"none", func(*http.Request) {}},
		{"wrong bearer", bearer("not-the-secret-000000")},
		{"wrong query token", query("not-the-secret-000000")},
		{"wrong password", basic("alice", "wrong")},
		{"unknown user", basic("mallory", password)},
		{"full bearer", bearer(fullSecret)},
		{"full query token", query(fullSecret)},
		{"alice", basic("alice", password)},
		{"lobby token", bearer(lobbySecret)},
		{"bob (yard only)", basic("bob", password)},
	}
	routes := []string{"/", "/static/app.js", "/api/cameras", "/stream/lobby", "/stream/yard", "/snapshot/lobby", "/snapshot/yard", "/metrics", "/debug/pprof/", "/healthz", "/readyz"}
	expect := func(c, route string) int {
		switch {
		case route == "/healthz" || route == "/readyz":
			return 200
		case strings.HasPrefix(c, "none") || strings.HasPrefix(c, "wrong") || strings.HasPrefix(c, "unknown"):
			return 401
		case c == "lobby token" && (strings.HasSuffix(route, "/yard") || route == "/metrics" || route == "/debug/pprof/"):
			return 403
		case c == "bob (yard only)" && (strings.HasSuffix(route, "/lobby") || route == "/metrics" || route == "/debug/pprof/"):
			return 403
		}
		return 200
	}
	for _, c := range creds {
		for _, route := range routes {
			req, _ := http.NewRequest("GET", "http://"+s.Addr()+route, nil)
			c.apply(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if want := expect(c.name, route); resp.StatusCode != want {
				t.Errorf("%s %s: %d, want %d", c.name, route, resp.StatusCode, want)
			}
			if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: 401 without WWW-Authenticate", c.name, route)
			}
			if c.name == "lobby token" && route == "/api/cameras" {
				var cams []struct{ ID string }
				_ = json.NewDecoder(resp.Body).Decode(&cams)
				if len(cams) != 1 || cams[0].ID != "lobby" {
					t.Errorf("lobby token sees cameras %+v, want only lobby", cams)
				}
			}
			resp.Body.Close()
		}
	}
	for _, secret := range []string{fullSecret, lobbySecret, password, "not-the-secret"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("a secret reached the logs:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), `msg="authentication failed"`) {
		t.Fatalf("failed logins are not logged:\n%s", logs.String())
	}
}
