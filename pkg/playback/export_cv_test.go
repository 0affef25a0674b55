//go:build !nocv

package playback

import "testing"

func TestClampFPS(t *testing.T) {
	for in, want := range map[float64]float64{0.2: 1, 1: 1, 9.6: 10, 24.4: 24, 29.97: 30, 60: 30} {
		if got := clampFPS(in); got != want {
			t.Errorf("clampFPS(%g) = %g, want %g", in, got, want)
		}
	}
}
