//go:build !nocv

package analysis

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/streamd/streamd/pkg/analyzer"
	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/vision"
)

// snapshotQuality is the JPEG quality of event snapshots.
const snapshotQuality = 85

// detectors makes each camera's OpenCV detectors from its settings.
// The camera list is a snapshot that Reload replaces: analysis goroutines
// read it while SIGHUP installs a new one.
type detectors struct {
	o       Options
	cameras *atomic.Pointer[[]Camera]
	// objects is the pool of object detectors, which the analyzer owns
	// once New hands it over; empty with object detection off.
	objects []analyzer.ObjectDetector
}

// reload installs the cameras of a new configuration; cameras analyzed
// already keep their detectors (and settings) until a restart.
func (d detectors) reload(cams []Camera) { d.cameras.Store(&cams) }

// newDetectors checks that the face cascade loads, so that a bad one
// stops start-up instead of every camera's analysis.
func newDetectors(o Options) (detectors, error) {
	if o.Faces {
		fd, err := vision.NewFaceDetector(vision.FaceOptions{Cascade: o.FaceCascade})
		if err != nil {
			return detectors{}, &SettingError{Key: "analyzer.faces.cascade", Err: err}
		}
		_ = fd.Close()
	}
	d := detectors{o: o, cameras: &atomic.Pointer[[]Camera]{}}
	d.reload(o.Cameras)
	if o.Objects {
		objs, err := newObjectDetectors(o)
		if err != nil {
			return detectors{}, err
		}
		d.objects = objs
	}
	return d, nil
}

// newObjectDetectors loads the model once per worker; none, with a
// warning, when the default model is not installed.
func newObjectDetectors(o Options) ([]analyzer.ObjectDetector, error) {
	model := o.ObjectModel
	if model == "" {
		model = vision.DefaultModel
	}
	if _, err := os.Stat(model); err != nil && o.ObjectModelOptional {
		o.Logger.Warn("object detection off: the model is not installed (make install puts it there)", "model", model, "err", err)
		return nil, nil
	}
	for _, label := range o.Analyzer.Objects.Labels {
		if !slices.Contains(vision.COCOLabels[:], label) {
			return nil, &SettingError{Key: "analyzer.objects.track", Err: fmt.Errorf("%q is not a label of the model (its 80 COCO labels: person, car, dog, ...)", label)}
		}
	}
	// One thread per OpenCV operation, for the whole process: an
	// inference's wall time is then its CPU time, which is what the
	// analyzer's budget (analyzer.objects.max_cpu) counts, and the
	// analyzer parallelizes over cameras and workers itself.
	vision.SetThreads(1)
	var out []analyzer.ObjectDetector
	for range max(o.ObjectWorkers, 1) {
		od, err := vision.NewObjectDetector(vision.ObjectOptions{Model: model, Size: o.ObjectSize})
		if err != nil {
			for _, d := range out {
				_ = d.Close()
			}
			return nil, &SettingError{Key: "analyzer.objects.model", Err: err}
		}
		out = append(out, objectDetector{od})
	}
	return out, nil
}

// camera returns a camera's detectors: its motion settings over the
// analyzer's, its masks. A camera the config does not name (another
// producer's) is analyzed with the analyzer's settings.
func (d detectors) camera(id string) (analyzer.Camera, bool, error) {
	m := d.o.Motion
	mo := vision.MotionOptions{Threshold: m.Threshold, MinArea: m.MinArea, GlobalFraction: m.GlobalFraction}
	var fps float64
	noObjects := false
	var zones []events.Zone
	for _, cc := range *d.cameras.Load() {
		if cc.ID != id {
			continue
		}
		if cc.Off {
			return analyzer.Camera{}, false, nil
		}
		noObjects, zones = cc.NoObjects, cc.Zones
		if cc.Threshold > 0 {
			mo.Threshold = cc.Threshold
		}
		if cc.MinArea > 0 {
			mo.MinArea = cc.MinArea
		}
		fps = cc.FPS
		for _, poly := range cc.Masks {
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
	c := analyzer.Camera{FPS: fps, Motion: motionDetector{md}, Objects: len(d.objects) > 0 && !noObjects, Zones: zones}
	if d.o.Faces {
		fd, err := vision.NewFaceDetector(vision.FaceOptions{Cascade: d.o.FaceCascade})
		if err != nil {
			_ = md.Close()
			return analyzer.Camera{}, false, fmt.Errorf("camera %q face detector: %w", id, err)
		}
		c.Faces = faceDetector{fd}
	}
	return c, true, nil
}

// annotate draws an event's boxes on its snapshot: motion in amber, faces
// in green, an object in blue with its label and score.
func (d detectors) annotate(jpeg []byte, e events.Event) ([]byte, error) {
	switch e.Type {
	case events.TypeObject:
		text := e.Label
		if e.Score != nil {
			text = fmt.Sprintf("%s %.2f", e.Label, *e.Score)
		}
		var objs []vision.Labeled
		for _, b := range toVision(e.Boxes) {
			objs = append(objs, vision.Labeled{Box: b, Text: text})
		}
		return vision.AnnotateObjects(jpeg, objs, snapshotQuality)
	case events.TypeFace:
		return vision.Annotate(jpeg, nil, toVision(e.Boxes), snapshotQuality)
	}
	return vision.Annotate(jpeg, toVision(e.Boxes), nil, snapshotQuality)
}

// motionDetector adapts vision's detector to the analyzer's interface.
type motionDetector struct{ d *vision.MotionDetector }

// Detect finds motion in a frame (analyzer.MotionDetector).
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

// Close releases the detector.
func (m motionDetector) Close() error { return m.d.Close() }

// faceDetector adapts vision's face detector to the analyzer's interface.
type faceDetector struct{ d *vision.FaceDetector }

// Detect finds faces in a frame, in region if set (analyzer.FaceDetector).
func (f faceDetector) Detect(jpeg []byte, region *events.Box) ([]events.Box, error) {
	boxes, err := f.d.Detect(jpeg, visionRegion(region))
	return toEvents(boxes), err
}

// Close releases the detector.
func (f faceDetector) Close() error { return f.d.Close() }

// objectDetector adapts vision's object detector to the analyzer's
// interface.
type objectDetector struct{ d *vision.ObjectDetector }

// Detect finds objects in a frame, around region if set
// (analyzer.ObjectDetector).
func (o objectDetector) Detect(jpeg []byte, region *events.Box) ([]events.ObjectDetection, error) {
	objs, err := o.d.Detect(jpeg, visionRegion(region))
	if errors.Is(err, vision.ErrBadImage) {
		err = fmt.Errorf("%w: %w", analyzer.ErrBadFrame, err)
	}
	out := make([]events.ObjectDetection, len(objs))
	for i, ob := range objs {
		out[i] = events.ObjectDetection{Label: ob.Label, Score: ob.Score, Box: events.Box{X: ob.Box.X, Y: ob.Box.Y, W: ob.Box.W, H: ob.Box.H}}
	}
	return out, err
}

// Close releases the detector.
func (o objectDetector) Close() error { return o.d.Close() }

// visionRegion converts a search region (nil: the whole frame).
func visionRegion(region *events.Box) *vision.Box {
	if region == nil {
		return nil
	}
	return &vision.Box{X: region.X, Y: region.Y, W: region.W, H: region.H}
}

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
