package capture

import (
	"image"

	"gocv.io/x/gocv"
)

// scaler resizes frames for the camera's configured size and its
// substream. Shrinking is done in halves with INTER_AREA while the image is
// at least twice the target (OpenCV's fast path for an exact 2x: an average
// of 2x2 blocks), then with INTER_LINEAR for what is left (less than 2x).
// One INTER_AREA step for a ratio like 1280 to 480 takes OpenCV's general
// path: 2.7 ms a frame on one thread, against 0.4 ms in two steps
// (BenchmarkScale720pTo480), for a picture within one or two levels of it
// on average (TestScaleMatchesArea, on a photograph). Enlarging is
// INTER_LINEAR too (INTER_AREA enlarges like nearest neighbour). The scratch images are the scaler's, reused frame after
// frame: one camera goroutine owns a scaler.
type scaler struct{ a, b gocv.Mat }

func newScaler() *scaler { return &scaler{a: gocv.NewMat(), b: gocv.NewMat()} }

// Close frees the scratch images.
func (s *scaler) Close() {
	s.a.Close()
	s.b.Close()
}

// scale resizes src to w x h into dst (which may not be src).
func (s *scaler) scale(src gocv.Mat, dst *gocv.Mat, w, h int) {
	cur := src
	next := &s.a
	for cur.Cols() >= 2*w && cur.Rows() >= 2*h {
		gocv.Resize(cur, next, image.Pt(cur.Cols()/2, cur.Rows()/2), 0, 0, gocv.InterpolationArea)
		cur = *next
		if next == &s.a {
			next = &s.b
		} else {
			next = &s.a
		}
	}
	if cur.Cols() == w && cur.Rows() == h {
		cur.CopyTo(dst)
		return
	}
	gocv.Resize(cur, dst, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
}
