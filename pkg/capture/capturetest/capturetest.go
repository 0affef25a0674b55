// Package capturetest holds test helpers that need OpenCV.
package capturetest

import (
	"testing"

	"gocv.io/x/gocv"
)

// CountFrames decodes the video at path to its end and returns how many
// frames it holds, independently of the code under test.
func CountFrames(t testing.TB, path string) int {
	t.Helper()
	vc, err := gocv.OpenVideoCapture(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer vc.Close()
	m := gocv.NewMat()
	defer m.Close()
	n := 0
	for vc.Read(&m) && !m.Empty() {
		n++
	}
	return n
}
