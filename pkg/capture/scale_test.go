package capture

import (
	"image"
	"math"
	"testing"

	"gocv.io/x/gocv"
)

// photo returns a photograph of opencv-doc's sample data (graffiti, 800 x
// 640, much fine detail), enlarged to w x h when they are set.
func photo(t testing.TB, w, h int) gocv.Mat {
	t.Helper()
	m := gocv.IMRead("/usr/share/doc/opencv-doc/examples/data/graf1.png", gocv.IMReadColor)
	if m.Empty() {
		t.Fatal("cannot read graf1.png (Debian: apt-get install opencv-doc)")
	}
	if w > 0 {
		big := gocv.NewMat()
		gocv.Resize(m, &big, image.Pt(w, h), 0, 0, gocv.InterpolationCubic)
		m.Close()
		return big
	}
	return m
}

// The scaler's result is the one-step INTER_AREA result within two levels
// on average, at the size asked, shrinking by ratios above and below 2;
// enlarging is INTER_LINEAR's (INTER_AREA enlarges like nearest
// neighbour).
func TestScaleMatchesArea(t *testing.T) {
	sc := newScaler()
	defer sc.Close()
	for _, tc := range []struct{ sw, sh, w, h int }{
		{0, 0, 300, 240}, {0, 0, 500, 400}, {1600, 1280, 480, 384}, {1600, 1280, 600, 480},
		{1601, 1281, 480, 384}, {0, 0, 1600, 1280}, {0, 0, 800, 640},
	} {
		src := photo(t, tc.sw, tc.sh)
		got, want := gocv.NewMat(), gocv.NewMat()
		sc.scale(src, &got, tc.w, tc.h)
		ref := gocv.InterpolationArea
		if tc.w > src.Cols() {
			ref = gocv.InterpolationLinear
		}
		gocv.Resize(src, &want, image.Pt(tc.w, tc.h), 0, 0, ref)
		if got.Cols() != tc.w || got.Rows() != tc.h {
			t.Fatalf("%dx%d to %dx%d: got %dx%d", src.Cols(), src.Rows(), tc.w, tc.h, got.Cols(), got.Rows())
		}
		diff := gocv.NewMat()
		gocv.AbsDiff(got, want, &diff)
		mean := diff.Mean()
		if m := math.Max(mean.Val1, math.Max(mean.Val2, mean.Val3)); m > 2 {
			t.Errorf("%dx%d to %dx%d: mean difference %.2f levels from OpenCV's one step, want at most 2", src.Cols(), src.Rows(), tc.w, tc.h, m)
		}
		for _, m := range []gocv.Mat{src, got, want, diff} {
			m.Close()
		}
	}
}

// BenchmarkScale720pTo480 resizes a 720p frame to the substream's 480x270,
// in one INTER_AREA step and with the scaler.
func BenchmarkScale720pTo480(b *testing.B) {
	src := photo(b, 1280, 720)
	defer src.Close()
	dst := gocv.NewMat()
	defer dst.Close()
	b.Run("area", func(b *testing.B) {
		for range b.N {
			gocv.Resize(src, &dst, image.Pt(480, 270), 0, 0, gocv.InterpolationArea)
		}
	})
	b.Run("scaler", func(b *testing.B) {
		sc := newScaler()
		defer sc.Close()
		for range b.N {
			sc.scale(src, &dst, 480, 270)
		}
	})
}
