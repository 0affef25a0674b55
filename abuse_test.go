package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// malformed returns the i-th bad request of a varied set.
func malformed(i int) string {
	long := strings.Repeat("a", 300)
	switch i % 10 {
	case 0:
		return "GARBAGE\r\n\r\n"
	case 1:
		return "GET /stream/%00 HTTP/1.1\r\nHost: x\r\n\r\n"
	case 2:
		return "GET /stream/" + long + " HTTP/1.1\r\nHost: x\r\n\r\n"
	case 3:
		return "GET / HTTP/9.9\r\nHost: x\r\n\r\n"
	case 4:
		return "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 20<<10) + "\r\n\r\n"
	case 5:
		return "GET /snapshot/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"
	case 6:
		return "POST /stream/cam HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n" + strings.Repeat("z", 1000)
	case 7:
		return "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + strings.Repeat("\x00", 64) // a TLS hello
	case 8:
		return "GET /stream/cam?token=" + long + "&x=%zz HTTP/1.1\r\nHost: x\r\nRange: bytes=-1\r\n\r\n"
	default:
		return fmt.Sprintf("DELETE /api/cameras/%d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", i)
	}
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

	// 10,000 malformed requests from 8 workers.
	var served, serverErrors atomic.Int32
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
				c, err := net.Dial("tcp", p.http)
				if err != nil {
					t.Errorf("dial: %v", err)
					return
				}
				_ = c.SetDeadline(time.Now().Add(3 * time.Second))
				_, _ = io.WriteString(c, malformed(i))
				if i%10 == 7 {
					// Binary with no line end: the client hangs up, as a
					// TLS client on a plain port does.
					served.Add(1)
					c.Close()
					continue
				}
				status, _ := bufio.NewReader(c).ReadString('\n')
				// 505 is the right answer to HTTP/9.9; any other 5xx is ours to fix.
				if strings.HasPrefix(status, "HTTP/1.1 5") && !strings.HasPrefix(status, "HTTP/1.1 505") {
					serverErrors.Add(1)
					t.Errorf("request %d answered %q", i, status)
				}
				served.Add(1)
				c.Close()
			}
		}()
	}
	mwg.Wait()
	wg.Wait()
	if served.Load() != 10000 || serverErrors.Load() != 0 {
		t.Fatalf("malformed requests: %d answered, %d with 5xx", served.Load(), serverErrors.Load())
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
