//go:build !nocv

package analysis

import "testing"

// A camera's own settings override the analyzer's; a camera turned off is
// not analyzed; a camera the settings do not name is, with the defaults;
// a reload makes new settings known.
func TestDetectorsPerCamera(t *testing.T) {
	d, err := newDetectors(Options{Motion: Motion{Threshold: 30}, Cameras: []Camera{{ID: "off", Off: true}, {ID: "slow", FPS: 2, Threshold: 40,
		Masks: [][][]float64{{{0, 0}, {0.5, 0}, {0.5, 0.5}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := d.camera("off"); ok || err != nil {
		t.Errorf("camera off: ok %v, err %v; want not analyzed", ok, err)
	}
	c, ok, err := d.camera("slow")
	if !ok || err != nil || c.FPS != 2 || c.Motion == nil || c.Faces != nil {
		t.Errorf("camera slow = %+v, %v, %v; want FPS 2, motion, no faces", c, ok, err)
	}
	if c.Motion != nil {
		_ = c.Motion.Close()
	}
	other, ok, err := d.camera("other")
	if !ok || err != nil || other.FPS != 0 {
		t.Errorf("unnamed camera = %+v, %v, %v; want analyzed at the analyzer's rate", other, ok, err)
	}
	if other.Motion != nil {
		_ = other.Motion.Close()
	}
	d.reload([]Camera{{ID: "other", Off: true}})
	if _, ok, _ := d.camera("other"); ok {
		t.Error("after reload, camera other is still analyzed")
	}
}
