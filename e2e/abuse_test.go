//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/mjpeg"
)

// malformed returns the i-th bad request of a varied set and the answers
// it may get: the status codes, and whether the body is streamd's JSON
// error (not the Go server's plain text, which answers before any route).
func malformed(i int) (req string, codes []int, jsonError bool) {
	long := strings.Repeat("a", 300)
	switch i % 10 {
	case 0:
		return "GARBAGE\r\n\r\n", []int{400}, false
	case 1:
		return "GET /stream/%00 HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}, true
	case 2:
		return "GET /stream/" + long + " HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}, true
	case 3:
		return "GET / HTTP/9.9\r\nHost: x\r\n\r\n", []int{505}, false
	case 4:
		return "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 20<<10) + "\r\n\r\n", []int{431}, false
	case 5:
		return "GET /snapshot/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", []int{400, 404}, true
	case 6:
		// A body no route takes: refused, not read.
		return "POST /stream/cam HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n" + strings.Repeat("z", 1000), []int{405, 413}, true
	case 7:
		// A TLS hello on the plain port; the client then hangs up its side.
		return "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + strings.Repeat("\x00", 64), []int{400}, false
	case 8:
		// Odd but harmless: an unused over-long token, a bad escape, a
		// Range header. The stream is served (no auth is configured).
		return "GET /stream/cam?token=" + long + "&x=%zz HTTP/1.1\r\nHost: x\r\nRange: bytes=-1\r\n\r\n", []int{200}, false
	default:
		return fmt.Sprintf("DELETE /api/cameras/%d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", i), []int{404, 405}, true
	}
}

// sendMalformed sends the i-th malformed request on a new connection and
// reads and checks the answer.
func sendMalformed(addr string, i int) error {
	req, codes, jsonError := malformed(i)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if i%10 == 7 {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fmt.Errorf("no answer: %w", err)
	}
	defer resp.Body.Close()
	if !slices.Contains(codes, resp.StatusCode) {
		return fmt.Errorf("answered %q, want %v", resp.Status, codes)
	}
	if resp.StatusCode == http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != mjpeg.ContentType {
			return fmt.Errorf("stream answered with content type %q", ct)
		}
		p, err := mjpeg.NewReader(resp.Body, mjpeg.Boundary).Next()
		if err != nil || p.ContentType != "image/jpeg" || len(p.Data) == 0 {
			return fmt.Errorf("stream: first part %q, %d bytes: %v", p.ContentType, len(p.Data), err)
		}
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return fmt.Errorf("%s: reading the body: %w", resp.Status, err)
	}
	if jsonError {
		var e struct {
			Error string `json:"error"`
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" || json.Unmarshal(body, &e) != nil || e.Error == "" {
			return fmt.Errorf("%s: want a JSON error, got %q: %q", resp.Status, ct, body)
		}
	}
	return nil
}

func TestSlowlorisAndMalformedRequests(t *testing.T) {
	p := startStreamd(t, "all", `
embedded:
  listen: 127.0.0.1:0
http:
  listen: 127.0.0.1:0
  read_header_timeout: 1s
  idle_timeout: 2s
cameras:
  - id: cam
    source: testpattern
    width: 320
    height: 240
    fps: 30
`)
	p.waitReady(t)
	// Baseline in steady state: frames flowing (Kafka clients start some
	// goroutines lazily) and no viewer, and the count no longer moving.
	warm := watch(t, p.url("/stream/cam"))
	warm.take(t, 30, 10*time.Second)
	warm.cancel()
	baseline := -1.0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		g := p.metric(t, "go_goroutines")
		if g == baseline {
			break
		}
		baseline = g
	}

	// 200 slowloris connections: headers a byte at a time, never finished.
	var slowClosed atomic.Int32
	var wg sync.WaitGroup
	for range 200 {
		c, err := net.Dial("tcp", p.http)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := io.WriteString(c, "GET /stream/cam HTTP/1.1\r\nHost: x\r\n"); err != nil {
				slowClosed.Add(1)
				return
			}
			for i := 0; i < 40; i++ {
				time.Sleep(250 * time.Millisecond)
				if _, err := io.WriteString(c, "X"); err != nil {
					slowClosed.Add(1) // the server hung up on us
					return
				}
			}
		}()
	}

	// 10,000 malformed requests from 8 workers, each answer read and checked.
	var answered, wrong atomic.Int32
	var next atomic.Int32
	var mwg sync.WaitGroup
	for range 8 {
		mwg.Add(1)
		go func() {
			defer mwg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= 10000 {
					return
				}
				if err := sendMalformed(p.http, i); err != nil {
					if wrong.Add(1) <= 10 {
						t.Errorf("malformed request %d: %v", i, err)
					}
					continue
				}
				answered.Add(1)
			}
		}()
	}
	mwg.Wait()
	wg.Wait()
	if answered.Load() != 10000 || wrong.Load() != 0 {
		t.Fatalf("malformed requests: %d answered as they should be, %d not", answered.Load(), wrong.Load())
	}
	if slowClosed.Load() < 190 {
		t.Fatalf("only %d of 200 slowloris connections were cut off by the header timeout", slowClosed.Load())
	}

	// Real viewers still get the full rate.
	v := watch(t, p.url("/stream/cam"))
	parts := v.take(t, 61, 10*time.Second)
	fps := 60 / parts[60].at.Sub(parts[0].at).Seconds()
	if fps < 25 {
		t.Fatalf("a real viewer gets %.1f fps after the abuse, want about 30", fps)
	}
	v.cancel()

	// Everything the abuse held is freed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		g := p.metric(t, "go_goroutines")
		if g <= baseline+5 {
			t.Logf("goroutines: %v before, %v after; viewer at %.1f fps", baseline, g, fps)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines %v, baseline %v: something the abuse opened is still held", g, baseline)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
