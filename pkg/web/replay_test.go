package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/hub"
)

// fakeReplays opens replays that send one frame and then wait for the
// viewer to leave; openErr, if set, is what Open returns instead.
type fakeReplays struct {
	openErr error
	open    atomic.Int64 // replays open now
}

type fakeReplay struct {
	f      *frame.Frame
	sent   bool
	closed func()
}

func (r *fakeReplay) Next(ctx context.Context) (*frame.Frame, []byte, error) {
	if !r.sent {
		r.sent = true
		return r.f, nil, nil
	}
	<-ctx.Done()
	return nil, nil, ctx.Err()
}
func (r *fakeReplay) Dropped() uint64 { return 0 }
func (r *fakeReplay) Close()          { r.closed() }

func (f *fakeReplays) Open(_ context.Context, camera string, at time.Time, _ float64) (Replay, error) {
	if f.openErr != nil {
		return Replay{}, f.openErr
	}
	first := img(1)
	first.Camera, first.CapturedAt = camera, at
	f.open.Add(1)
	return Replay{Reader: &fakeReplay{f: first, closed: func() { f.open.Add(-1) }}, First: first}, nil
}

func (f *fakeReplays) FrameAt(context.Context, string, time.Time) (*frame.Frame, error) {
	return nil, ErrNothingRecorded
}

func (f *fakeReplays) Range(context.Context, string) (time.Time, time.Time, error) {
	return time.Time{}, time.Time{}, ErrNothingRecorded
}

func startReplays(t *testing.T, rp Replays, o Options) string {
	t.Helper()
	h := hub.New()
	h.Register("cam")
	h.Publish(img(1))
	o.Live, o.Replays = HubLive(h), rp
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return "http://" + s.Addr()
}

// openReplay opens a replay stream and reads its headers; the stream
// stays open until cancel.
func openReplay(t *testing.T, url string) (resp *http.Response, end func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return resp, func() { cancel(); resp.Body.Close() }
}

func waitOpen(t *testing.T, n *atomic.Int64, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d replays open, want %d", n.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// MaxReplays and MaxReplaysPerIP refuse replays past them with 429 and
// Retry-After, apart from the live viewers' limit; a replay that ends
// gives its place back.
func TestReplayLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"per address", Options{MaxReplays: 5, MaxReplaysPerIP: 1, MaxViewers: 1}, "too many replays from 127.0.0.1 (limit 1)"},
		{"in all", Options{MaxReplays: 1, MaxViewers: 1}, "server at its replay limit (1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rp := &fakeReplays{}
			base := startReplays(t, rp, tc.o)
			replay := base + "/stream/cam?at=-1m"
			resp, closeFirst := openReplay(t, replay)
			if resp.StatusCode != 200 || resp.Header.Get("X-Replay-From") == "" {
				t.Fatalf("first replay: %d %v", resp.StatusCode, resp.Header)
			}
			waitOpen(t, &rp.open, 1)
			r2, body := do(t, http.MethodGet, replay, nil)
			if r2.StatusCode != http.StatusTooManyRequests || r2.Header.Get("Retry-After") != "5" || errorOf(t, body) != tc.want {
				t.Fatalf("second replay: %d, Retry-After %q, %s; want 429 %q", r2.StatusCode, r2.Header.Get("Retry-After"), body, tc.want)
			}
			// Replays do not count against the live viewers' limit.
			live, _ := openReplay(t, base+"/stream/cam")
			if live.StatusCode != 200 {
				t.Fatalf("live stream beside a replay: %d", live.StatusCode)
			}
			closeFirst()
			waitOpen(t, &rp.open, 0)
			deadline := time.Now().Add(5 * time.Second)
			for {
				resp, closeAgain := openReplay(t, replay)
				if resp.StatusCode == 200 {
					closeAgain()
					break
				}
				closeAgain()
				if time.Now().After(deadline) {
					t.Fatalf("replay after the first ended: %d", resp.StatusCode)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestReplayErrors(t *testing.T) {
	for _, tc := range []struct {
		err        error
		code       int
		retryAfter string
		want       string
	}{
		{ErrNothingRecorded, http.StatusNotFound, "", `camera "cam": nothing recorded`},
		{errors.New("brokers down"), http.StatusServiceUnavailable, "1", `replay of camera "cam": brokers down`},
	} {
		base := startReplays(t, &fakeReplays{openErr: tc.err}, Options{})
		resp, body := do(t, http.MethodGet, base+"/stream/cam?at=-1m", nil)
		if resp.StatusCode != tc.code || resp.Header.Get("Retry-After") != tc.retryAfter || !strings.Contains(errorOf(t, body), tc.want) {
			t.Errorf("replay failing with %v: %d, Retry-After %q, %s", tc.err, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	base := startReplays(t, &fakeReplays{}, Options{})
	for _, q := range []string{"at=later", "at=-1m&speed=0", "at=2999-01-01T00:00:00Z"} {
		if resp, _ := do(t, http.MethodGet, base+"/stream/cam?"+q, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("stream?%s: %d, want 400", q, resp.StatusCode)
		}
	}
}
