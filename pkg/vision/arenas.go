package vision

/*
int streamd_arenas(void);
int streamd_arenas_in_use(void);
void streamd_churn(int n, int size);
*/
import "C"

// glibc gives a thread that allocates while another holds the heap's lock
// an arena of its own, up to eight per core, and an arena keeps what was
// freed in it for reuse rather than giving it back. OpenCV, FFmpeg and
// libjpeg allocate and free frame-sized buffers from whichever of Go's
// threads runs the call, so a streamd process collected arenas full of
// freed frames: on the shipped demo they held about 95 MB of its 476 MB
// RSS (docs/performance.md). arenas.c limits them to Arenas when the
// program loads, before Go starts its threads; MALLOC_ARENA_MAX in the
// environment overrides it. The C calls are short, so two arenas are
// hardly ever contended.

// Arenas is the most malloc arenas the process's C heap uses (unless
// MALLOC_ARENA_MAX says otherwise).
func Arenas() int { return int(C.streamd_arenas()) }

// ArenasInUse counts the malloc arenas the C heap has made; -1 if glibc
// cannot tell.
func ArenasInUse() int { return int(C.streamd_arenas_in_use()) }

// churnC allocates and frees n blocks of size bytes on the C heap, as a
// decoder does with its frames (for the arena test).
func churnC(n, size int) { C.streamd_churn(C.int(n), C.int(size)) }
