package lograte

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := New(time.Hour)
	if ok, n := l.Allow(); !ok || n != 0 {
		t.Fatalf("first: %v %d", ok, n)
	}
	for range 3 {
		if ok, _ := l.Allow(); ok {
			t.Fatal("repeat within the interval let through")
		}
	}
	l.last = time.Now().Add(-2 * time.Hour) // the interval has passed
	if ok, n := l.Allow(); !ok || n != 3 {
		t.Fatalf("after the interval: %v %d, want true 3", ok, n)
	}
}
