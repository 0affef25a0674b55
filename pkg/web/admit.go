package web

import (
	"fmt"
	"net/http"
	"sync"
)

// limiter bounds how many responses of one kind are open at once: live
// streams (and the other long-lived responses that share their limit),
// replays, MP4 exports. It caps them in all and, optionally, per client
// address. The zero limits mean unlimited. It is safe for concurrent use.
type limiter struct {
	max, perAddr int
	// full and addrFull are the refusals: full is formatted with max,
	// addrFull with the address and perAddr.
	full, addrFull string

	mu     sync.Mutex
	open   int
	byAddr map[string]int // only kept when perAddr > 0
}

// newLimiter returns a limiter of max responses in all and perAddr per
// client address (0: unlimited). full is the refusal past max, a format
// taking max (%d); addrFull the refusal past perAddr, a format taking the
// address (%s) and perAddr (%d).
func newLimiter(max, perAddr int, full, addrFull string) *limiter {
	l := &limiter{max: max, perAddr: perAddr, full: full, addrFull: addrFull}
	if perAddr > 0 {
		l.byAddr = map[string]int{}
	}
	return l
}

// acquire counts a new response from addr, or says why it cannot be
// opened. release, called once when the response ends, frees its place.
func (l *limiter) acquire(addr string) (release func(), refusal string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.open >= l.max {
		return nil, fmt.Sprintf(l.full, l.max)
	}
	if l.perAddr > 0 && l.byAddr[addr] >= l.perAddr {
		return nil, fmt.Sprintf(l.addrFull, addr, l.perAddr)
	}
	l.open++
	if l.perAddr > 0 {
		l.byAddr[addr]++
	}
	return func() { l.release(addr) }, ""
}

func (l *limiter) release(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.perAddr > 0 {
		if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
			delete(l.byAddr, addr)
		}
	}
}

// admitOr429 is acquire that answers a refusal itself: 429 with the
// reason and Retry-After: 5. ok false means the response was written.
func (l *limiter) admitOr429(w http.ResponseWriter, addr string) (release func(), ok bool) {
	release, refusal := l.acquire(addr)
	if release == nil {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, refusal)
		return nil, false
	}
	return release, true
}

// inUse returns the responses open now, in all and from addr.
func (l *limiter) inUse(addr string) (all, fromAddr int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.byAddr[addr]
}
