//go:build e2e

package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/testutil"
)

// TestGridOfSixteenCamerasFirefox is TestGridOfSixteenCameras in Firefox
// ESR, driven through Marionette (Firefox's own remote protocol; there is no
// geckodriver here): every one of 16 tiles paints frames from the one
// multiplexed fetch() stream, the API answers while they stream, the page
// holds at most 3 connections to the server, and a hidden tab streams
// nothing.
func TestGridOfSixteenCamerasFirefox(t *testing.T) {
	p := startGrid(t, "grid-firefox")

	ff := startFirefox(t)
	ff.do(t, "WebDriver:NewSession", map[string]any{})
	// Every tile in view: a window as large as Chromium's in the other test.
	ff.do(t, "WebDriver:SetWindowRect", map[string]any{"width": 1700, "height": 2600})
	ff.do(t, "WebDriver:Navigate", map[string]any{"url": p.url("/")})
	t.Logf("Firefox viewport: %s", ff.script(t, `return window.innerWidth + "x" + window.innerHeight`))

	const allPainted = `const s = window.streamd; if (!s) return false;
		for (let i = 0; i < 16; i++) { if (!(s.painted["cam" + String(i).padStart(2, "0")] >= 10)) return false; }
		return true;`
	deadline := time.Now().Add(60 * time.Second)
	for {
		var ok bool
		ff.scriptInto(t, &ok, allPainted)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			var state string
			ff.scriptInto(t, &state, `return JSON.stringify(window.streamd) + " tiles in view: " +
				[...document.querySelectorAll(".tile")].filter((el) => { const r = el.getBoundingClientRect(); return r.top < innerHeight && r.bottom > 0; }).length`)
			ff.screenshot(t, "/tmp/streamd-grid-firefox.png")
			t.Fatalf("not every tile painted 10 frames within 60s: %s", state)
		}
		time.Sleep(250 * time.Millisecond)
	}

	// The stats and the API answer while the 16 cameras stream.
	var stats string
	ff.asyncScriptInto(t, &stats, `const done = arguments[arguments.length - 1];
		(async () => {
			const t0 = performance.now();
			const r = await fetch("/api/cameras"); const cams = await r.json();
			const e = await fetch("/api/events");
			return cams.length + " " + e.status + " " + Math.round(performance.now() - t0);
		})().then(done, (err) => done("error: " + err));`)
	var n, code, ms int
	if _, err := fmt.Sscan(stats, &n, &code, &ms); err != nil || n != 16 || code != 200 || ms > 3000 {
		t.Fatalf("API while streaming: %q", stats)
	}
	// Connections: the page's, plus this test's own metrics scrape.
	conns := p.metric(t, "streamd_http_connections")
	if conns > 4 {
		t.Fatalf("%v connections open with the 16-camera page in Firefox (want at most 3 for the page and 1 for this scrape)", conns)
	}
	var lat, opened string
	ff.scriptInto(t, &lat, `return JSON.stringify(Object.fromEntries(Object.entries(window.streamd.latency).map(([k, v]) => [k, Math.round(v)])))`)
	ff.scriptInto(t, &opened, `return String(window.streamd.opened)`)
	t.Logf("16 tiles painting in Firefox; API answered in %d ms; %v server connections including this scrape; stream opened %s time(s); capture→paint latency per tile (ms): %s", ms, conns, opened, lat)
	ff.screenshot(t, "/tmp/streamd-grid-firefox.png")

	// A hidden tab streams nothing: the multiplexed stream closes.
	ff.script(t, `Object.defineProperty(document, "hidden", {value: true, configurable: true}); document.dispatchEvent(new Event("visibilitychange")); return true`)
	deadline = time.Now().Add(10 * time.Second)
	for viewers, _ := p.metrics(t).sum("streamd_camera_viewers"); viewers > 0; viewers, _ = p.metrics(t).sum("streamd_camera_viewers") {
		if time.Now().After(deadline) {
			t.Fatal("the hidden tab still streams")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// firefox is a headless Firefox ESR and a Marionette connection to it.
type firefox struct {
	cmd  *exec.Cmd
	done chan struct{}
	logs *testutil.Buffer
	conn net.Conn
	r    *bufio.Reader
	id   int
}

// firefoxPrefs keep a fresh profile quiet: no first-run pages, updates,
// telemetry or other background network access, and Marionette on a port
// of the system's choosing (written to MarionetteActivePort in the profile).
const firefoxPrefs = `user_pref("marionette.port", 0);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.startup.page", 0);
user_pref("browser.startup.homepage", "about:blank");
user_pref("browser.newtabpage.enabled", false);
user_pref("browser.aboutwelcome.enabled", false);
user_pref("startup.homepage_welcome_url", "about:blank");
user_pref("startup.homepage_welcome_url.additional", "");
user_pref("app.update.enabled", false);
user_pref("app.update.auto", false);
user_pref("app.update.checkInstallTime", false);
user_pref("app.normandy.enabled", false);
user_pref("extensions.update.enabled", false);
user_pref("extensions.getAddons.cache.enabled", false);
user_pref("media.gmp-manager.updateEnabled", false);
user_pref("browser.search.update", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("toolkit.telemetry.unified", false);
user_pref("toolkit.telemetry.server", "");
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("network.dns.disablePrefetch", true);
user_pref("network.prefetch-next", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.safebrowsing.downloads.enabled", false);
user_pref("browser.safebrowsing.blockedURIs.enabled", false);
user_pref("browser.safebrowsing.update.enabled", false);
user_pref("services.settings.server", "data:,#remote-settings-dummy/v1");
user_pref("toolkit.startup.max_resumed_crashes", -1);
`

// startFirefox runs firefox-esr headless with Marionette in a fresh profile
// and connects to it. At cleanup it asks Firefox to quit and kills what is
// left of it.
func startFirefox(t *testing.T) *firefox {
	t.Helper()
	exe := requireTool(t, "firefox-esr")
	profile, home := t.TempDir(), t.TempDir() // removed after Firefox is gone (cleanups run last-in first-out)
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(firefoxPrefs), 0o644); err != nil {
		t.Fatal(err)
	}
	ff := &firefox{done: make(chan struct{}), logs: &testutil.Buffer{}}
	ff.cmd = exec.Command(exe, "--headless", "--marionette", "--no-remote", "--profile", profile)
	ff.cmd.Env = append(os.Environ(), "HOME="+home, "MOZ_HEADLESS=1", "MOZ_CRASHREPORTER_DISABLE=1")
	ff.cmd.Stdout, ff.cmd.Stderr = ff.logs, ff.logs
	// Its own process group, so that the content processes go with it.
	ff.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := ff.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = ff.cmd.Wait(); close(ff.done) }()
	t.Cleanup(func() {
		ff.quit()
		if t.Failed() {
			t.Logf("firefox logs:\n%s", ff.logs)
		}
	})

	// Marionette listens once the browser is up and names its port in the
	// profile; connect with retries until it answers with its hello.
	deadline := time.Now().Add(90 * time.Second)
	portFile := filepath.Join(profile, "MarionetteActivePort")
	var lastErr error
	for {
		select {
		case <-ff.done:
			t.Fatalf("firefox exited before Marionette listened: %v", ff.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Marionette connection to firefox within 90s: %v", lastErr)
		}
		if b, err := os.ReadFile(portFile); err != nil {
			lastErr = err
		} else if port, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || port <= 0 {
			lastErr = fmt.Errorf("%s holds %q", portFile, b)
		} else if err := ff.connect(port); err != nil {
			lastErr = err
		} else {
			return ff
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// connect dials Marionette and reads its hello.
func (ff *firefox) connect(port int) error {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		return err
	}
	ff.conn, ff.r = conn, bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	hello, err := ff.read()
	if err == nil {
		var h struct {
			ApplicationType    string `json:"applicationType"`
			MarionetteProtocol int    `json:"marionetteProtocol"`
		}
		if err = json.Unmarshal(hello, &h); err == nil && (h.ApplicationType != "gecko" || h.MarionetteProtocol < 3) {
			err = fmt.Errorf("unexpected Marionette hello %s", hello)
		}
	}
	if err != nil {
		conn.Close()
		ff.conn, ff.r = nil, nil
		return fmt.Errorf("marionette hello: %w", err)
	}
	return nil
}

// read reads one LEN:JSON message.
func (ff *firefox) read() (json.RawMessage, error) {
	head, err := ff.r.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(head, ":"))
	if err != nil || n < 0 || n > 256<<20 {
		return nil, fmt.Errorf("bad Marionette message length %q", head)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(ff.r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// marionetteError is the error part of a Marionette response.
type marionetteError struct {
	Error      string `json:"error"`
	Message    string `json:"message"`
	Stacktrace string `json:"stacktrace"`
}

// call sends a command and waits for its response: [1, id, error, result].
func (ff *firefox) call(name string, params any, timeout time.Duration) (json.RawMessage, error) {
	if ff.conn == nil {
		return nil, errors.New("no Marionette connection")
	}
	ff.id++
	id := ff.id
	msg, err := json.Marshal([]any{0, id, name, params})
	if err != nil {
		return nil, err
	}
	_ = ff.conn.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(ff.conn, "%d:%s", len(msg), msg); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for {
		b, err := ff.read()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		var resp []json.RawMessage
		if err := json.Unmarshal(b, &resp); err != nil || len(resp) != 4 {
			return nil, fmt.Errorf("%s: malformed response %.200s", name, b)
		}
		var typ, rid int
		if json.Unmarshal(resp[0], &typ) != nil || json.Unmarshal(resp[1], &rid) != nil || typ != 1 || rid != id {
			continue // not ours (a stale response)
		}
		if string(resp[2]) != "null" {
			var e marionetteError
			_ = json.Unmarshal(resp[2], &e)
			return nil, fmt.Errorf("%s: %s: %s", name, e.Error, e.Message)
		}
		return resp[3], nil
	}
}

// do runs a command, failing the test on an error.
func (ff *firefox) do(t *testing.T, name string, params any) json.RawMessage {
	t.Helper()
	res, err := ff.call(name, params, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// script runs a synchronous script (a function body: it returns its value)
// in the page and returns the value as JSON.
func (ff *firefox) script(t *testing.T, js string) json.RawMessage {
	t.Helper()
	return ff.value(t, ff.do(t, "WebDriver:ExecuteScript", map[string]any{"script": js, "args": []any{}}))
}

func (ff *firefox) scriptInto(t *testing.T, v any, js string) {
	t.Helper()
	if err := json.Unmarshal(ff.script(t, js), v); err != nil {
		t.Fatalf("script result: %v", err)
	}
}

// asyncScriptInto runs a script that passes its result to the callback
// arguments[arguments.length-1], and decodes that result into v.
func (ff *firefox) asyncScriptInto(t *testing.T, v any, js string) {
	t.Helper()
	res := ff.value(t, ff.do(t, "WebDriver:ExecuteAsyncScript", map[string]any{"script": js, "args": []any{}}))
	if err := json.Unmarshal(res, v); err != nil {
		t.Fatalf("async script result %s: %v", res, err)
	}
}

// value unwraps a {"value": …} result.
func (ff *firefox) value(t *testing.T, res json.RawMessage) json.RawMessage {
	t.Helper()
	var r struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatalf("result %.200s: %v", res, err)
	}
	return r.Value
}

// screenshot saves a PNG of the whole page.
func (ff *firefox) screenshot(t *testing.T, path string) {
	t.Helper()
	ff.screenshotOf(t, path, true)
}

// screenshotOf saves a PNG of the whole page (full) or of the window.
func (ff *firefox) screenshotOf(t *testing.T, path string, full bool) {
	t.Helper()
	res, err := ff.call("WebDriver:TakeScreenshot", map[string]any{"full": full}, 60*time.Second)
	if err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	var b64 string
	if err := json.Unmarshal(ff.value(t, res), &b64); err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Logf("screenshot: %v", err)
	}
}

// quit asks Firefox to quit through Marionette, and kills its process group
// if it is still there after 20 s (or anything of it is left after it quit).
func (ff *firefox) quit() {
	if ff.conn != nil {
		_, _ = ff.call("Marionette:Quit", map[string]any{}, 10*time.Second)
		ff.conn.Close()
	}
	select {
	case <-ff.done:
	case <-time.After(20 * time.Second):
	}
	_ = syscall.Kill(-ff.cmd.Process.Pid, syscall.SIGKILL)
	<-ff.done
}
