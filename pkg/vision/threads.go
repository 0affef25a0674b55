package vision

/*
#cgo pkg-config: opencv4
#cgo CXXFLAGS: --std=c++11
#include "threads.h"
*/
import "C"

// SetThreads sets how many threads OpenCV spreads one operation over (a
// DNN inference, a cascade search), for the whole process; 0 is OpenCV's
// default (every core). One thread makes an inference's wall time its CPU
// time, so a budget counted in wall time is a budget of cores: the
// analyzer parallelizes over cameras itself. OpenCV's own setting, not
// streamd's: call it once, at start.
func SetThreads(n int) {
	if n <= 0 {
		n = -1 // OpenCV: back to its default
	}
	C.streamd_cv_set_threads(C.int(n))
}

// Threads returns how many threads OpenCV uses per operation.
func Threads() int { return int(C.streamd_cv_threads()) }
