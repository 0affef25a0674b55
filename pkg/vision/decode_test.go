//go:build !nocv

package vision

import (
	"image"
	"math"
	"slices"
	"testing"
)

// decodePeaks on fixed tensors: a 4x4 grid of a 16-pixel input that shows
// the area (100,50)-(260,210) of a 400x300 frame (10 frame pixels to an
// input pixel). Peaks are cells equal to their 3x3 maximum and at least
// the score; boxes are (4x-w0, 4y-w1, 4x+w2, 4y+w3) in input pixels; a
// weaker box of the same label overlapping a stronger one by more than
// the NMS threshold goes, one of another label stays.
func TestDecodePeaksFixedTensors(t *testing.T) {
	const g, s, classes = 4, 16, 80
	cells := g * g
	heat := make([]float32, classes*cells)
	peaks := make([]float32, classes*cells)
	sizes := make([]float32, 4*cells)
	person, car := slices.Index(COCOLabels[:], "person"), slices.Index(COCOLabels[:], "car")
	set := func(class, x, y int, score, max float32, w0, w1, w2, w3 float32) {
		c := y*g + x
		heat[class*cells+c], peaks[class*cells+c] = score, max
		sizes[c], sizes[cells+c], sizes[2*cells+c], sizes[3*cells+c] = w0, w1, w2, w3
	}
	set(person, 1, 1, 0.8, 0.8, 2, 3, 2, 5)  // a person: input box (2,1)-(6,9)
	set(person, 2, 1, 0.6, 0.6, 6, 3, -2, 5) // the same person again, weaker: (2,1)-(6,9) too
	set(car, 2, 2, 0.7, 0.7, 4, 2, 4, 2)     // a car on the same cells: (4,6)-(12,10)
	set(person, 3, 3, 0.9, 0.95, 1, 1, 1, 1) // not its 3x3 maximum: no peak
	set(person, 0, 3, 0.2, 0.2, 1, 1, 1, 1)  // below the score
	objs := decodePeaks(heat, sizes, peaks, g, s, image.Rect(100, 50, 260, 210), 400, 300, 0.3, 0.5)
	want := []Object{
		{Label: "person", Score: 0.8, Box: Box{X: (100 + 20) / 400.0, Y: (50 + 10) / 300.0, W: 40 / 400.0, H: 80 / 300.0}},
		{Label: "car", Score: 0.7, Box: Box{X: (100 + 40) / 400.0, Y: (50 + 60) / 300.0, W: 80 / 400.0, H: 40 / 300.0}},
	}
	if len(objs) != len(want) {
		t.Fatalf("decoded %d objects, want %d: %+v", len(objs), len(want), objs)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	for i, o := range objs {
		w := want[i]
		if o.Label != w.Label || !near(o.Score, w.Score) || !near(o.Box.X, w.Box.X) || !near(o.Box.Y, w.Box.Y) || !near(o.Box.W, w.Box.W) || !near(o.Box.H, w.Box.H) {
			t.Errorf("object %d = %+v, want %+v", i, o, w)
		}
	}
	// With NMS off (a threshold of 1), the weaker person stays.
	if objs := decodePeaks(heat, sizes, peaks, g, s, image.Rect(100, 50, 260, 210), 400, 300, 0.3, 1); len(objs) != 3 {
		t.Errorf("without NMS: %d objects, want 3: %+v", len(objs), objs)
	}
}
