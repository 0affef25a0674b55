package vision

import (
	"os"
	"runtime"
	"sync"
	"testing"
)

// Sixteen threads allocating frame-sized blocks at once make no more than
// Arenas arenas (glibc's default would make one each, up to 16 on this
// machine).
func TestCHeapArenasLimited(t *testing.T) {
	if os.Getenv("MALLOC_ARENA_MAX") != "" {
		t.Skip("MALLOC_ARENA_MAX is set: glibc's own setting wins")
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // a thread of its own, as cgo calls get
			defer runtime.UnlockOSThread()
			churnC(2000, 256<<10)
		}()
	}
	wg.Wait()
	n := ArenasInUse()
	if n < 1 || n > Arenas() {
		t.Fatalf("%d malloc arenas after 16 threads allocated at once, want 1 to %d", n, Arenas())
	}
}
