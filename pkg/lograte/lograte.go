// Package lograte keeps repeated log lines from flooding the log: one line
// per interval goes through, the rest are counted and the count is reported
// with the next line that goes through.
package lograte

import (
	"sync"
	"time"
)

// Limiter lets one event per interval through. The zero value lets every
// event through; use New. It is safe for concurrent use.
type Limiter struct {
	mu         sync.Mutex
	every      time.Duration
	last       time.Time
	suppressed int
}

// New returns a Limiter that lets one event through per interval.
func New(every time.Duration) *Limiter { return &Limiter{every: every} }

// Allow reports whether to log now and, if so, how many events were held
// back since the last one that was let through.
func (l *Limiter) Allow() (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}
