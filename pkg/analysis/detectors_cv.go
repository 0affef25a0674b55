//go:build !nocv

package analysis

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/streamd/streamd/pkg/analyzer"
	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/vision"
)

// snapshotQuality is the JPEG quality of event snapshots.
const snapshotQuality = 85

// detectors makes each camera's OpenCV detectors from the configuration.
// The camera list is a snapshot that Reload replaces: analysis goroutines
// read it while SIGHUP installs a new one.
type detectors struct {
	cfg     *config.Config
	cameras *atomic.Pointer[[]config.CameraConfig]
}

// reload installs the cameras of a new configuration; cameras analyzed
// already keep their detectors (and settings) until a restart.
func (d detectors) reload(cams []config.CameraConfig) { d.cameras.Store(&cams) }

// newDetectors checks that the face cascade loads, so that a bad one
// stops start-up instead of every camera's analysis.
func newDetectors(cfg *config.Config) (detectors, error) {
	if f := cfg.Analyzer.Faces; f.Enabled {
		fd, err := vision.NewFaceDetector(vision.FaceOptions{Cascade: f.Cascade})
		if err != nil {
			return detectors{}, fmt.Errorf("analyzer.faces.cascade: %w", err)
		}
		_ = fd.Close()
	}
	d := detectors{cfg: cfg, cameras: &atomic.Pointer[[]config.CameraConfig]{}}
	d.reload(cfg.Cameras)
	return d, nil
}

// camera returns a camera's detectors: its motion settings over the
// analyzer's, its masks. A camera the config does not name (another
// producer's) is analyzed with the analyzer's settings.
func (d detectors) camera(id string) (analyzer.Camera, bool, error) {
	a := d.cfg.Analyzer
	mo := vision.MotionOptions{Threshold: a.Motion.Threshold, MinArea: a.Motion.MinArea, GlobalFraction: a.Motion.GlobalFraction}
	var fps float64
	for _, cc := range *d.cameras.Load() {
		if cc.ID != id {
			continue
		}
		if !cc.Analyzed() {
			return analyzer.Camera{}, false, nil
		}
		if cc.Motion.Threshold > 0 {
			mo.Threshold = cc.Motion.Threshold
		}
		if cc.Motion.MinArea > 0 {
			mo.MinArea = cc.Motion.MinArea
		}
		fps = cc.Motion.FPS
		for _, poly := range cc.Motion.Masks {
			var p vision.Polygon
			for _, pt := range poly {
				p = append(p, vision.Point{X: pt[0], Y: pt[1]})
			}
			mo.Masks = append(mo.Masks, p)
		}
	}
	md, err := vision.NewMotionDetector(mo)
	if err != nil {
		return analyzer.Camera{}, false, fmt.Errorf("camera %q motion detector: %w", id, err)
	}
	c := analyzer.Camera{FPS: fps, Motion: motionDetector{md}}
	if a.Faces.Enabled {
		fd, err := vision.NewFaceDetector(vision.FaceOptions{Cascade: a.Faces.Cascade})
		if err != nil {
			_ = md.Close()
			return analyzer.Camera{}, false, fmt.Errorf("camera %q face detector: %w", id, err)
		}
		c.Faces = faceDetector{fd}
	}
	return c, true, nil
}

func (d detectors) annotate(jpeg []byte, motion, faces []events.Box) ([]byte, error) {
	return vision.Annotate(jpeg, toVision(motion), toVision(faces), snapshotQuality)
}

// motionDetector adapts vision's detector to the analyzer's interface.
type motionDetector struct{ d *vision.MotionDetector }

func (m motionDetector) Detect(jpeg []byte) (analyzer.Motion, analyzer.Timing, error) {
	t0 := time.Now()
	r, err := m.d.Detect(jpeg)
	// Decoding (at reduced scale) is inside Detect: the whole is counted
	// as motion. The vision benchmarks split it.
	t := analyzer.Timing{Motion: time.Since(t0)}
	if err != nil {
		return analyzer.Motion{}, t, err
	}
	return analyzer.Motion{Boxes: toEvents(r.Boxes), Area: r.Area, Global: r.Global}, t, nil
}

func (m motionDetector) Close() error { return m.d.Close() }

type faceDetector struct{ d *vision.FaceDetector }

func (f faceDetector) Detect(jpeg []byte, region *events.Box) ([]events.Box, error) {
	var r *vision.Box
	if region != nil {
		r = &vision.Box{X: region.X, Y: region.Y, W: region.W, H: region.H}
	}
	boxes, err := f.d.Detect(jpeg, r)
	return toEvents(boxes), err
}

func (f faceDetector) Close() error { return f.d.Close() }

func toEvents(bs []vision.Box) []events.Box {
	out := make([]events.Box, len(bs))
	for i, b := range bs {
		out[i] = events.Box{X: b.X, Y: b.Y, W: b.W, H: b.H}
	}
	return out
}

func toVision(bs []events.Box) []vision.Box {
	out := make([]vision.Box, len(bs))
	for i, b := range bs {
		out[i] = vision.Box{X: b.X, Y: b.Y, W: b.W, H: b.H}
	}
	return out
}
