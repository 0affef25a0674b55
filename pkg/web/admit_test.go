package web

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

func TestLimiterCapsAndReleases(t *testing.T) {
	l := newLimiter(3, 2, "server at its viewer limit (%d)", "too many streams from %s (limit %d)")
	a1, r := l.acquire("a")
	if a1 == nil || r != "" {
		t.Fatalf("first from a refused: %q", r)
	}
	a2, _ := l.acquire("a")
	if a2 == nil {
		t.Fatal("second from a refused")
	}
	if rel, r := l.acquire("a"); rel != nil || r != "too many streams from a (limit 2)" {
		t.Fatalf("third from a: admitted %v, refusal %q", rel != nil, r)
	}
	b1, _ := l.acquire("b")
	if b1 == nil {
		t.Fatal("first from b refused while a is at its own limit")
	}
	if rel, r := l.acquire("c"); rel != nil || r != "server at its viewer limit (3)" {
		t.Fatalf("fourth in all: admitted %v, refusal %q", rel != nil, r)
	}
	if all, fromA := l.inUse("a"); all != 3 || fromA != 2 {
		t.Fatalf("in use %d, from a %d; want 3, 2", all, fromA)
	}
	a1()
	if all, fromA := l.inUse("a"); all != 2 || fromA != 1 {
		t.Fatalf("after a release: in use %d, from a %d; want 2, 1", all, fromA)
	}
	c1, r := l.acquire("c")
	if c1 == nil {
		t.Fatalf("c refused after a release: %q", r)
	}
	a2()
	b1()
	c1()
	if all, _ := l.inUse(""); all != 0 || len(l.byAddr) != 0 {
		t.Fatalf("after every release: in use %d, %d addresses kept", all, len(l.byAddr))
	}
}

func TestLimiterZeroIsUnlimited(t *testing.T) {
	l := newLimiter(0, 0, "full %d", "addr full %s %d")
	var rels []func()
	for range 1000 {
		rel, r := l.acquire("a")
		if rel == nil {
			t.Fatalf("refused without limits: %q", r)
		}
		rels = append(rels, rel)
	}
	if all, _ := l.inUse("a"); all != 1000 {
		t.Fatalf("in use %d, want 1000", all)
	}
	for _, rel := range rels {
		rel()
	}
	if all, _ := l.inUse("a"); all != 0 {
		t.Fatalf("in use %d after releases, want 0", all)
	}
}

// Many goroutines racing for a cap of 5 (2 per address) never get more
// than that at once, and every place comes back.
func TestLimiterConcurrent(t *testing.T) {
	const maxAll, maxPerAddr = 5, 2
	l := newLimiter(maxAll, maxPerAddr, "full %d", "addr full %s %d")
	addrs := []string{"a", "b", "c", "d"}
	var mu sync.Mutex
	held := map[string]int{}
	total, peak := 0, 0
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			addr := addrs[g%len(addrs)]
			for range 500 {
				rel, _ := l.acquire(addr)
				if rel == nil {
					continue
				}
				mu.Lock()
				held[addr]++
				total++
				if held[addr] > maxPerAddr || total > maxAll {
					t.Errorf("%d held from %s, %d in all: over %d, %d", held[addr], addr, total, maxPerAddr, maxAll)
				}
				peak = max(peak, total)
				held[addr]--
				total--
				mu.Unlock()
				rel()
			}
		})
	}
	wg.Wait()
	if all, _ := l.inUse(""); all != 0 || len(l.byAddr) != 0 {
		t.Fatalf("after the race: in use %d, %d addresses kept", all, len(l.byAddr))
	}
	if peak == 0 {
		t.Fatal("nothing was ever admitted")
	}
}

func TestLimiterAdmitOr429(t *testing.T) {
	l := newLimiter(1, 0, "server at its export limit (%d, recording.max_exports)", "")
	rel, ok := l.admitOr429(httptest.NewRecorder(), "")
	if !ok {
		t.Fatal("first refused")
	}
	defer rel()
	w := httptest.NewRecorder()
	if _, ok := l.admitOr429(w, ""); ok {
		t.Fatal("second admitted past a cap of 1")
	}
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "5" ||
		w.Body.String() != `{"error":"server at its export limit (1, recording.max_exports)"}`+"\n" {
		t.Fatalf("refusal: %d, Retry-After %q, body %q", w.Code, w.Header().Get("Retry-After"), w.Body.String())
	}
}

// The limiter is on the path of every stream, replay and export request.
func BenchmarkLimiterAcquireRelease(b *testing.B) {
	l := newLimiter(5000, 50, "server at its viewer limit (%d)", "too many streams from %s (limit %d)")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rel, _ := l.acquire("192.0.2.1")
			if rel == nil {
				b.Fatal("refused")
			}
			rel()
		}
	})
}
