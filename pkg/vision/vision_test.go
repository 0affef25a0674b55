package vision_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/streamd/streamd/pkg/vision"
	"github.com/streamd/streamd/pkg/vision/visiontest"
)

// Clips are generated once per test binary: a 720p clip takes a second or
// two to render and encode.
var (
	clipOnce              sync.Once
	stillClip, objectClip []visiontest.Frame
	faceClip, brightClip  []visiontest.Frame
	brightStep            int
	clipErr               error
)

func clips(t testing.TB) {
	t.Helper()
	clipOnce.Do(func() {
		var errs [4]error
		stillClip, errs[0] = visiontest.Still(visiontest.Options{})
		objectClip, errs[1] = visiontest.MovingObject(visiontest.Options{})
		faceClip, errs[2] = visiontest.MovingFace(visiontest.Options{})
		brightClip, brightStep, errs[3] = visiontest.BrightnessStep(visiontest.Options{})
		clipErr = errors.Join(errs[:]...)
	})
	if clipErr != nil {
		t.Fatal(clipErr)
	}
}

func newMotion(t testing.TB, o vision.MotionOptions) *vision.MotionDetector {
	t.Helper()
	d, err := vision.NewMotionDetector(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func newFaces(t testing.TB, o vision.FaceOptions) *vision.FaceDetector {
	t.Helper()
	d, err := vision.NewFaceDetector(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// bestIoU returns the best IoU of any box with truth.
func bestIoU(boxes []vision.Box, truth vision.Box) float64 {
	best := 0.0
	for _, b := range boxes {
		best = max(best, vision.IoU(b, truth))
	}
	return best
}

func TestIoU(t *testing.T) {
	a := vision.Box{X: 0.1, Y: 0.1, W: 0.2, H: 0.2}
	for _, c := range []struct {
		b    vision.Box
		want float64
	}{
		{a, 1},
		{vision.Box{X: 0.5, Y: 0.5, W: 0.1, H: 0.1}, 0},
		{vision.Box{X: 0.3, Y: 0.1, W: 0.2, H: 0.2}, 0}, // touching
		{vision.Box{X: 0.2, Y: 0.1, W: 0.2, H: 0.2}, 1.0 / 3},
		{vision.Box{X: 0.15, Y: 0.15, W: 0.1, H: 0.1}, 0.25},
		{vision.Box{}, 0},
	} {
		if got := vision.IoU(a, c.b); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("IoU(%v, %v) = %v, want %v", a, c.b, got, c.want)
		}
		if got, rev := vision.IoU(a, c.b), vision.IoU(c.b, a); got != rev {
			t.Errorf("IoU not symmetric: %v, %v", got, rev)
		}
	}
	u := vision.Union([]vision.Box{{X: 0.1, Y: 0.2, W: 0.1, H: 0.1}, {X: 0.5, Y: 0.1, W: 0.2, H: 0.05}})
	if want := (vision.Box{X: 0.1, Y: 0.1, W: 0.6, H: 0.2}); math.Abs(u.X-want.X)+math.Abs(u.Y-want.Y)+math.Abs(u.W-want.W)+math.Abs(u.H-want.H) > 1e-9 {
		t.Errorf("Union = %v, want %v", u, want)
	}
	if u := vision.Union(nil); u != (vision.Box{}) {
		t.Errorf("Union(nil) = %v", u)
	}
}

// TestMotionStillNoise: a minute of a still scene with sensor noise at 5 fps
// gives no motion at all.
func TestMotionStillNoise(t *testing.T) {
	clips(t)
	d := newMotion(t, vision.MotionOptions{})
	maxArea := 0.0
	for i, f := range stillClip {
		m, err := d.Detect(f.JPEG)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if len(m.Boxes) > 0 || m.Global {
			t.Errorf("frame %d: motion in a still scene: %+v", i, m)
		}
		if m.Width != visiontest.DefaultWidth || m.Height != visiontest.DefaultHeight {
			t.Fatalf("frame %d: source %dx%d, want %dx%d", i, m.Width, m.Height, visiontest.DefaultWidth, visiontest.DefaultHeight)
		}
		maxArea = max(maxArea, m.Area)
	}
	t.Logf("%d frames, largest changed area %.5f of the frame", len(stillClip), maxArea)
}

// TestMotionNoisierScene: noise σ 8 (indoor, dim) gives no motion either.
func TestMotionNoisierScene(t *testing.T) {
	frames, err := visiontest.Still(visiontest.Options{Noise: 8, Frames: 100, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	d := newMotion(t, vision.MotionOptions{})
	for i, f := range frames {
		m, err := d.Detect(f.JPEG)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Boxes) > 0 || m.Global {
			t.Errorf("frame %d: motion in a still scene (noise σ 8): %+v", i, m)
		}
	}
}

// TestMotionMovingObject: the object crossing the scene is found, with IoU
// at least 0.5, in at least 90 % of the frames it is in, at 720p and at
// sizes that decode at other scales (1080p: 1/4 then resized; 640x480: 1/2
// then resized) or are analysed at their own size (240x160).
func TestMotionMovingObject(t *testing.T) {
	clips(t)
	for _, c := range []struct {
		name string
		o    visiontest.Options
	}{
		{"1280x720", visiontest.Options{}},
		{"1920x1080", visiontest.Options{Width: 1920, Height: 1080, Frames: 60, Seed: 3}},
		{"640x480", visiontest.Options{Width: 640, Height: 480, Frames: 60, Seed: 4}},
		{"240x160", visiontest.Options{Width: 240, Height: 160, Frames: 60, Seed: 5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			frames := objectClip
			if c.o.Width != 0 {
				var err error
				if frames, err = visiontest.MovingObject(c.o); err != nil {
					t.Fatal(err)
				}
			}
			d := newMotion(t, vision.MotionOptions{})
			var seen, hit, extra int
			sum := 0.0
			for i, f := range frames {
				m, err := d.Detect(f.JPEG)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if m.Global {
					t.Errorf("frame %d: global change reported", i)
				}
				if len(f.Truth) == 0 {
					if len(m.Boxes) > 0 {
						t.Errorf("frame %d: motion before anything moves: %v", i, m.Boxes)
					}
					continue
				}
				seen++
				iou := bestIoU(m.Boxes, f.Truth[0])
				sum += iou
				if iou >= 0.5 {
					hit++
				} else {
					t.Logf("frame %d: best IoU %.2f, boxes %v, truth %v", i, iou, m.Boxes, f.Truth[0])
				}
				extra += max(len(m.Boxes)-1, 0)
			}
			t.Logf("object found (IoU ≥ 0.5) in %d of %d frames, mean best IoU %.2f, %d extra boxes", hit, seen, sum/float64(seen), extra)
			if hit < seen*9/10 {
				t.Errorf("object found in %d of %d frames, want ≥ 90 %%", hit, seen)
			}
			if extra > seen/10 {
				t.Errorf("%d boxes besides the object's in %d frames", extra, seen)
			}
		})
	}
}

// TestMotionMask: a mask over the band the object crosses hides it.
func TestMotionMask(t *testing.T) {
	clips(t)
	// The object's path: x 0.025-0.975, top from 0.167 to 0.333, a third of
	// the frame high; the mask covers it with a margin of a few pixels.
	band := vision.Polygon{{X: 0, Y: 0.13}, {X: 1, Y: 0.13}, {X: 1, Y: 0.70}, {X: 0, Y: 0.70}}
	d := newMotion(t, vision.MotionOptions{Masks: []vision.Polygon{band}})
	for i, f := range objectClip {
		m, err := d.Detect(f.JPEG)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if len(m.Boxes) > 0 || m.Global || m.Area > 0 {
			t.Errorf("frame %d: motion behind the mask: %+v", i, m)
		}
	}
	// A mask beside the path hides nothing.
	aside := vision.Polygon{{X: 0, Y: 0.8}, {X: 1, Y: 0.8}, {X: 0.5, Y: 1}}
	d = newMotion(t, vision.MotionOptions{Masks: []vision.Polygon{aside}})
	found := 0
	for _, f := range objectClip {
		m, err := d.Detect(f.JPEG)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Truth) > 0 && bestIoU(m.Boxes, f.Truth[0]) >= 0.5 {
			found++
		}
	}
	if found < len(objectClip)*8/10 {
		t.Errorf("with a mask beside its path the object was found in %d of %d frames", found, len(objectClip))
	}
}

// TestMotionGlobalChange: a brightness step is one global change, with no
// boxes, then nothing.
func TestMotionGlobalChange(t *testing.T) {
	clips(t)
	d := newMotion(t, vision.MotionOptions{})
	for i, f := range brightClip {
		m, err := d.Detect(f.JPEG)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if i == brightStep {
			t.Logf("frame %d (the step): %.2f of the frame changed", i, m.Area)
			if !m.Global || len(m.Boxes) > 0 {
				t.Errorf("frame %d (the step): %+v, want Global and no boxes", i, m)
			}
			continue
		}
		if m.Global || len(m.Boxes) > 0 {
			t.Errorf("frame %d: %+v, want nothing", i, m)
		}
	}
}

// TestMotionPeopleWalking: vtest.avi, people walking across a hall, gives
// motion on nearly every frame.
func TestMotionPeopleWalking(t *testing.T) {
	frames, err := visiontest.ReadVideo(filepath.Join(visiontest.DataDir, visiontest.PeopleVideo), 200, 0, 0, 80)
	if err != nil {
		t.Fatal(err)
	}
	d := newMotion(t, vision.MotionOptions{})
	warm := d.Options().WarmupFrames
	with, boxes := 0, 0
	for i, f := range frames {
		m, err := d.Detect(f.JPEG)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if i >= warm && len(m.Boxes) > 0 {
			with++
			boxes += len(m.Boxes)
		}
	}
	n := len(frames) - warm
	t.Logf("motion on %d of %d frames, %.1f boxes per frame with motion", with, n, float64(boxes)/float64(max(with, 1)))
	if with < n*9/10 {
		t.Errorf("motion on %d of %d frames of people walking, want ≥ 90 %%", with, n)
	}
}

// TestMotionResolutionChange: frames of another size restart the
// background instead of failing or reporting a global change.
func TestMotionResolutionChange(t *testing.T) {
	small, err := visiontest.Still(visiontest.Options{Width: 640, Height: 480, Frames: 20})
	if err != nil {
		t.Fatal(err)
	}
	clips(t)
	d := newMotion(t, vision.MotionOptions{})
	for i, f := range append(append(stillClip[:20:20], small...), stillClip[:20]...) {
		m, err := d.Detect(f.JPEG)
		if err != nil {
			t.Fatal(err)
		}
		if m.Global || len(m.Boxes) > 0 {
			t.Errorf("frame %d: %+v", i, m)
		}
	}
}

// TestBadImages: undecodable frames give errors wrapping ErrBadImage, never
// a panic, and leave the detectors working.
func TestBadImages(t *testing.T) {
	clips(t)
	good := stillClip[0].JPEG
	random := make([]byte, 5000)
	for i := range random {
		random[i] = byte(rand.IntN(256))
	}
	corrupt := bytes.Clone(good)
	for i := 600; i < len(corrupt)-2; i += 7 {
		corrupt[i] = 0xFF // markers everywhere in the entropy-coded data
	}
	// A frame header claiming 65000x65000: OpenCV would throw (and the
	// process abort) on a full-size decode.
	forged := bytes.Clone(good)
	if i := bytes.Index(forged, []byte{0xFF, 0xC0}); i > 0 {
		forged[i+5], forged[i+6], forged[i+7], forged[i+8] = 0xFD, 0xE8, 0xFD, 0xE8
	} else {
		t.Fatal("no SOF0 in the test JPEG")
	}
	cases := map[string][]byte{
		"empty":             nil,
		"random":            random,
		"text":              []byte("hello, not an image"),
		"truncated":         good[:len(good)/2],
		"header only":       good[:300],
		"jpeg magic only":   {0xFF, 0xD8, 0xFF},
		"no frame header":   {0xFF, 0xD8, 0xFF, 0xD9},
		"png magic only":    []byte("\x89PNG\r\n\x1a\n0123456789"),
		"corrupt (markers)": corrupt,
		"forged size":       forged,
	}
	md := newMotion(t, vision.MotionOptions{})
	fd := newFaces(t, vision.FaceOptions{})
	for _, f := range stillClip[:10] {
		if _, err := md.Detect(f.JPEG); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range cases {
		if m, err := md.Detect(b); err == nil {
			// libjpeg decodes some corrupt data with a warning; then it
			// is an image like any other and must at least not crash.
			if name != "corrupt (markers)" {
				t.Errorf("%s: motion: no error (%+v)", name, m)
			}
		} else if !errors.Is(err, vision.ErrBadImage) || !strings.HasPrefix(err.Error(), "motion: decode") {
			t.Errorf("%s: motion: error %q does not wrap ErrBadImage or name the operation", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
		if _, err := fd.Detect(b, nil); err == nil && name != "corrupt (markers)" {
			t.Errorf("%s: faces: no error", name)
		} else if err != nil && !errors.Is(err, vision.ErrBadImage) {
			t.Errorf("%s: faces: %v does not wrap ErrBadImage", name, err)
		}
		if _, err := vision.Annotate(b, nil, nil, 0); err == nil && name != "corrupt (markers)" {
			t.Errorf("%s: annotate: no error", name)
		}
	}
	// The detector goes on as before (the corrupt frame may count as a
	// global change: it was reset, so the next good frame may be one too).
	for i, f := range stillClip[10:40] {
		m, err := md.Detect(f.JPEG)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Boxes) > 0 && i > 1 {
			t.Errorf("frame %d after the bad images: %+v", i, m)
		}
	}
}

// TestPNG: PNG frames (other producers' records) are analysed too.
func TestPNG(t *testing.T) {
	clips(t)
	d := newMotion(t, vision.MotionOptions{})
	for i, f := range objectClip[:30] {
		m, err := gocv.IMDecode(f.JPEG, gocv.IMReadColor)
		if err != nil {
			t.Fatal(err)
		}
		buf, err := gocv.IMEncode(gocv.PNGFileExt, m)
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		png := bytes.Clone(buf.GetBytes())
		buf.Close()
		mo, err := d.Detect(png)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if mo.Width != visiontest.DefaultWidth || mo.Height != visiontest.DefaultHeight {
			t.Fatalf("PNG source %dx%d", mo.Width, mo.Height)
		}
		if len(f.Truth) > 0 && i > 12 && bestIoU(mo.Boxes, f.Truth[0]) < 0.5 {
			t.Errorf("frame %d (PNG): object not found: %v vs %v", i, mo.Boxes, f.Truth[0])
		}
	}
}

func TestMotionOptions(t *testing.T) {
	for _, o := range []vision.MotionOptions{
		{Blur: 4},
		{Threshold: 300},
		{Alpha: 2},
		{Height: 8},
		{GlobalFraction: -1},
		{MinArea: 1},
		{Masks: []vision.Polygon{{{X: 0, Y: 0}, {X: 1, Y: 0}}}},
		{Masks: []vision.Polygon{{{X: 0, Y: 0}, {X: 1.5, Y: 0}, {X: 1, Y: 1}}}},
	} {
		if d, err := vision.NewMotionDetector(o); err == nil {
			d.Close()
			t.Errorf("%+v: no error", o)
		} else if !strings.HasPrefix(err.Error(), "motion detector: ") {
			t.Errorf("%+v: error %q does not name the operation", o, err)
		}
	}
	d := newMotion(t, vision.MotionOptions{Threshold: 40})
	o := d.Options()
	if o.Threshold != 40 || o.Height != vision.DefaultMotionHeight || o.Alpha != vision.DefaultAlpha || o.GlobalFraction != vision.DefaultGlobalFraction {
		t.Errorf("options in effect: %+v", o)
	}
	d.Close()
	if _, err := d.Detect(nil); !errors.Is(err, vision.ErrClosed) {
		t.Errorf("Detect after Close: %v", err)
	}
	d.Close()
}

// TestFacesMovingFace: the face crossing the scene is found, with IoU at
// least 0.5, in at least 80 % of the frames it is in: searching the whole
// frame, and searching only where motion was found (the analyzer's way).
func TestFacesMovingFace(t *testing.T) {
	clips(t)
	for _, c := range []struct {
		name    string
		cascade string
		region  bool
		every   int // search every n-th frame (the whole frame is slow)
	}{
		{"haar/frame", vision.HaarFrontalFace, false, 2},
		{"haar/motion-region", vision.HaarFrontalFace, true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			fd := newFaces(t, vision.FaceOptions{Cascade: c.cascade})
			md := newMotion(t, vision.MotionOptions{})
			var seen, hit, falseFaces int
			for i, f := range faceClip {
				m, err := md.Detect(f.JPEG)
				if err != nil {
					t.Fatal(err)
				}
				if i%c.every != 0 {
					continue
				}
				var region *vision.Box
				if c.region {
					if len(m.Boxes) == 0 {
						if len(f.Truth) > 0 {
							seen++
						}
						continue
					}
					u := vision.Union(m.Boxes)
					region = &u
				}
				faces, err := fd.Detect(f.JPEG, region)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if len(f.Truth) == 0 {
					falseFaces += len(faces)
					continue
				}
				seen++
				iou := bestIoU(faces, f.Truth[0])
				if iou >= 0.5 {
					hit++
				} else {
					t.Logf("frame %d: best IoU %.2f, faces %v, truth %v", i, iou, faces, f.Truth[0])
				}
				for _, b := range faces {
					if vision.IoU(b, f.Truth[0]) < 0.5 {
						falseFaces++
					}
				}
			}
			t.Logf("face found in %d of %d frames, %d false faces", hit, seen, falseFaces)
			if hit < seen*8/10 {
				t.Errorf("face found in %d of %d frames, want ≥ 80 %%", hit, seen)
			}
			if falseFaces > seen/10 {
				t.Errorf("%d false faces in %d frames", falseFaces, seen)
			}
		})
	}
}

// TestFacesNone: the still scene has no face.
func TestFacesNone(t *testing.T) {
	clips(t)
	fd := newFaces(t, vision.FaceOptions{})
	for i := 0; i < len(stillClip); i += 30 {
		faces, err := fd.Detect(stillClip[i].JPEG, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(faces) > 0 {
			t.Errorf("frame %d: faces in an empty street: %v", i, faces)
		}
	}
	// A region too small for a face gives none, without searching.
	faces, err := fd.Detect(faceClip[50].JPEG, &vision.Box{X: 0.5, Y: 0.5, W: 0.01, H: 0.01})
	if err != nil || faces != nil {
		t.Errorf("tiny region: %v, %v", faces, err)
	}
}

// TestFaceCascadeErrors: a missing or invalid cascade is an error naming
// the file.
func TestFaceCascadeErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-cascade.xml")
	_, err := vision.NewFaceDetector(vision.FaceOptions{Cascade: missing})
	if err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing cascade: %v, want an error naming %s", err, missing)
	}
	// OpenCV would abort the process on every one of these (an uncaught
	// C++ exception): they must be refused before it sees them.
	haar, err := os.ReadFile(vision.HaarFrontalFace)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty.xml":      "",
		"garbage.xml":    "garbage \x00\x01 not xml",
		"passwd":         "root:x:0:0:root:/root:/bin/bash\n",
		"nocascade.xml":  "<?xml version=\"1.0\"?>\n<opencv_storage><x>1</x></opencv_storage>\n",
		"truncated.xml":  string(haar[:len(haar)/2]),
		"other-root.xml": "<?xml version=\"1.0\"?>\n<svg><cascade type_id=\"opencv-cascade-classifier\"/></svg>\n",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := vision.NewFaceDetector(vision.FaceOptions{Cascade: path})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want an error naming %s", name, err, path)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, err := vision.NewFaceDetector(vision.FaceOptions{ScaleFactor: 1}); err == nil {
		t.Error("scale factor 1: no error")
	}
	// Every cascade Debian ships passes the check, old format or new.
	stock, _ := filepath.Glob("/usr/share/opencv4/*cascades/*.xml")
	if len(stock) < 2 {
		t.Fatalf("stock cascades: %v", stock)
	}
	for _, c := range stock {
		d, err := vision.NewFaceDetector(vision.FaceOptions{Cascade: c})
		if err != nil {
			t.Errorf("stock cascade: %v", err)
			continue
		}
		d.Close()
		d.Close()
	}
}

// TestAnnotate: the snapshot is a full-size JPEG with the boxes drawn in
// their colours.
// decodeAnnotated returns a function that takes Annotate's results and
// decodes the snapshot, failing the test on an error.
func decodeAnnotated(t *testing.T) func([]byte, error) gocv.Mat {
	return func(out []byte, err error) gocv.Mat {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		m, err := gocv.IMDecode(out, gocv.IMReadColor)
		if err != nil || m.Empty() {
			t.Fatalf("annotated snapshot does not decode: %v", err)
		}
		return m
	}
}

// TestAnnotateObjects: the box in ObjectColor and a filled caption tag
// above it, and one at the top of the frame gets its tag below.
func TestAnnotateObjects(t *testing.T) {
	clips(t)
	f := faceClip[60]
	objs := []vision.Labeled{
		{Box: vision.Box{X: 0.4, Y: 0.4, W: 0.2, H: 0.4}, Text: "person 0.64"},
		{Box: vision.Box{X: 0.05, Y: 0, W: 0.2, H: 0.2}, Text: "car 0.71"},
	}
	m := decodeAnnotated(t)(vision.AnnotateObjects(f.JPEG, objs, 90))
	defer m.Close()
	oc := vision.ObjectColor
	near := func(x, y int) bool {
		v := m.GetVecbAt(y, x)
		return absDiff(v[0], oc.B) < 40 && absDiff(v[1], oc.G) < 40 && absDiff(v[2], oc.R) < 40
	}
	W, H := m.Cols(), m.Rows()
	if x, y := int(0.5*float64(W)), int(0.8*float64(H))-1; !near(x, y) {
		t.Errorf("no object colour on the bottom edge at (%d,%d): %v", x, y, m.GetVecbAt(y, x))
	}
	// The tag: object colour above the box's top left corner, with dark
	// text inside it.
	tagColour, dark := 0, 0
	for y := int(0.4*float64(H)) - 25; y < int(0.4*float64(H))-3; y++ {
		for x := int(0.4 * float64(W)); x < int(0.4*float64(W))+120; x++ {
			if near(x, y) {
				tagColour++
			} else if v := m.GetVecbAt(y, x); int(v[0])+int(v[1])+int(v[2]) < 120 {
				dark++
			}
		}
	}
	if tagColour < 500 || dark < 50 {
		t.Errorf("caption tag above the person: %d pixels of the tag colour, %d dark (text), want a filled tag with text", tagColour, dark)
	}
	// The car touches the top: its tag hangs below its box.
	tagColour = 0
	for y := int(0.2*float64(H)) + 3; y < int(0.2*float64(H))+20; y++ {
		for x := int(0.05 * float64(W)); x < int(0.05*float64(W))+80; x++ {
			if near(x, y) {
				tagColour++
			}
		}
	}
	if tagColour < 300 {
		t.Errorf("caption tag below the car's box: %d pixels of the tag colour", tagColour)
	}
}

func TestAnnotate(t *testing.T) {
	clips(t)
	f := faceClip[60]
	motion := []vision.Box{{X: 0.1, Y: 0.5, W: 0.3, H: 0.3}}
	m := decodeAnnotated(t)(vision.Annotate(f.JPEG, motion, f.Truth, 90))
	defer m.Close()
	if m.Cols() != visiontest.DefaultWidth || m.Rows() != visiontest.DefaultHeight {
		t.Fatalf("snapshot %dx%d", m.Cols(), m.Rows())
	}
	near := func(x, y int, c [3]uint8) bool { // BGR within JPEG error
		v := m.GetVecbAt(y, x)
		return absDiff(v[0], c[0]) < 40 && absDiff(v[1], c[1]) < 40 && absDiff(v[2], c[2]) < 40
	}
	mc, fc := vision.MotionColor, vision.FaceColor
	x, y := int(0.25*1280), int(0.5*720)+1 // top edge of the motion box
	if !near(x, y, [3]uint8{mc.B, mc.G, mc.R}) {
		t.Errorf("no motion colour at (%d,%d): %v", x, y, m.GetVecbAt(y, x))
	}
	tr := f.Truth[0]
	x, y = int((tr.X+tr.W/2)*1280), int(tr.Y*720)+1
	if !near(x, y, [3]uint8{fc.B, fc.G, fc.R}) {
		t.Errorf("no face colour at (%d,%d): %v", x, y, m.GetVecbAt(y, x))
	}
	if _, err := vision.Annotate(f.JPEG, nil, nil, 101); err == nil {
		t.Error("quality 101: no error")
	}
}

func absDiff(a, b uint8) uint8 {
	if a > b {
		return a - b
	}
	return b - a
}

// TestWriteVideo: a clip written as a video reads back with every frame.
func TestWriteVideo(t *testing.T) {
	clips(t)
	path := filepath.Join(t.TempDir(), "face.avi")
	if err := visiontest.WriteVideo(path, faceClip, 10); err != nil {
		t.Fatal(err)
	}
	back, err := visiontest.ReadVideo(path, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(faceClip) {
		t.Fatalf("read back %d frames of %d", len(back), len(faceClip))
	}
	// The re-encoded frames still show the face where the truth says.
	fd := newFaces(t, vision.FaceOptions{})
	faces, err := fd.Detect(back[60].JPEG, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bestIoU(faces, faceClip[60].Truth[0]) < 0.5 {
		t.Errorf("face in the video's frame 60: %v, truth %v", faces, faceClip[60].Truth[0])
	}
	if err := visiontest.WriteVideo(path, nil, 10); err == nil {
		t.Error("no frames: no error")
	}
}

// TestMotionAllocations: the motion hot path allocates no Go memory on a
// still frame and only the Boxes slice on a frame with motion (see
// MotionDetector for what OpenCV allocates in C).
func TestMotionAllocations(t *testing.T) {
	clips(t)
	d := newMotion(t, vision.MotionOptions{})
	for _, f := range stillClip[:20] {
		if _, err := d.Detect(f.JPEG); err != nil {
			t.Fatal(err)
		}
	}
	i := 20
	still := testing.AllocsPerRun(100, func() {
		if _, err := d.Detect(stillClip[i].JPEG); err != nil {
			t.Fatal(err)
		}
		i++
	})
	d2 := newMotion(t, vision.MotionOptions{})
	for _, f := range objectClip[:40] {
		if _, err := d2.Detect(f.JPEG); err != nil {
			t.Fatal(err)
		}
	}
	j := 40
	moving := testing.AllocsPerRun(50, func() {
		m, err := d2.Detect(objectClip[j].JPEG)
		if err != nil || len(m.Boxes) == 0 {
			t.Fatalf("frame %d: %v %v", j, m, err)
		}
		j++
	})
	t.Logf("Go allocations per frame: still %.1f, with motion %.1f", still, moving)
	if still > 0 || moving > 1 {
		t.Errorf("Go allocations per frame: still %.1f (want 0), with motion %.1f (want ≤ 1)", still, moving)
	}
}

// TestFacesMegamind: opencv-doc's Megamind.avi (an animated film clip, two
// characters at a table) gives face detections on most frames, stable from
// one frame to the next. The all-in-one demo relies on it for face events.
func TestFacesMegamind(t *testing.T) {
	frames, err := visiontest.ReadVideo(filepath.Join(visiontest.DataDir, visiontest.FaceVideo), 0, 0, 0, 80)
	if err != nil {
		t.Fatal(err)
	}
	fd := newFaces(t, vision.FaceOptions{})
	var n, with, stable int
	var prev []vision.Box
	for i := 0; i < len(frames); i += 2 { // every other frame: 12 fps
		faces, err := fd.Detect(frames[i].JPEG, nil)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if len(faces) > 0 {
			with++
		}
		for _, b := range faces {
			if bestIoU(prev, b) >= 0.5 {
				stable++
				break
			}
		}
		prev = faces
	}
	t.Logf("faces on %d of %d frames, %d also near one of the frame before", with, n, stable)
	if with < n*7/10 || stable < n*6/10 {
		t.Errorf("faces on %d of %d frames, %d stable: want ≥ 70 %% and ≥ 60 %%", with, n, stable)
	}
}

// cpuTime returns the CPU time the process has used so far, every thread
// (OpenCV's included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs op b.N times (b.Loop) and reports the CPU time per op besides
// the wall time: what an op costs a machine whose cores are all busy, since
// OpenCV may spread one op over several cores.
func loop(b *testing.B, op func(i int)) {
	start := cpuTime()
	n := 0
	for ; b.Loop(); n++ {
		op(n)
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(max(n, 1)), "cpu-ms/op")
}

// frames720p returns up to n frames of people walking (vtest.avi) resized
// to 1280x720 and encoded at quality 80, like a camera's records.
func frames720p(b *testing.B, n int) [][]byte {
	b.Helper()
	fs, err := visiontest.ReadVideo(filepath.Join(visiontest.DataDir, visiontest.PeopleVideo), n, 1280, 720, 80)
	if err != nil {
		b.Fatal(err)
	}
	out := make([][]byte, len(fs))
	for i, f := range fs {
		out[i] = f.JPEG
	}
	return out
}

// BenchmarkMotion720p measures motion detection on 720p JPEGs of people
// walking: "decode" is the reduced (1/4, gray) decode alone, "detect" the
// whole of Detect (decode included), so motion analysis alone is their
// difference. "decode-full" is a full-size gray decode, for comparison.
func BenchmarkMotion720p(b *testing.B) {
	frames := frames720p(b, 100)
	b.Run("decode-full", func(b *testing.B) {
		loop(b, func(i int) {
			m, err := gocv.IMDecode(frames[i%len(frames)], gocv.IMReadGrayScale)
			if err != nil || m.Empty() {
				b.Fatal(err)
			}
			m.Close()
		})
	})
	b.Run("decode", func(b *testing.B) {
		loop(b, func(i int) {
			m, err := gocv.IMDecode(frames[i%len(frames)], gocv.IMReadReducedGrayscale4)
			if err != nil || m.Rows() != 180 {
				b.Fatal(err)
			}
			m.Close()
		})
	})
	detect := func(frames [][]byte) func(b *testing.B) {
		return func(b *testing.B) {
			size := 0
			for _, f := range frames {
				size += len(f)
			}
			d := newMotion(b, vision.MotionOptions{})
			for _, f := range frames[:10] {
				if _, err := d.Detect(f); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			loop(b, func(i int) {
				if _, err := d.Detect(frames[i%len(frames)]); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(float64(size)/float64(len(frames))/1000, "kB/frame")
		}
	}
	b.Run("detect", detect(frames))
	// The street of the test clips with sensor noise: busier JPEGs.
	clips(b)
	street := make([][]byte, len(objectClip))
	for i, f := range objectClip {
		street[i] = f.JPEG
	}
	b.Run("detect-noisy-street", detect(street))
}

// BenchmarkFaces720p measures face detection on 720p JPEGs of the moving
// face clip, decode included: over the whole frame with each stock
// cascade, and (the analyzer's way) only in a motion region the size of a
// person's upper body.
func BenchmarkFaces720p(b *testing.B) {
	clips(b)
	frames := faceClip[visiontest.DefaultWarmup:]
	for _, c := range []struct {
		name    string
		cascade string
		region  bool
	}{
		{"haar-frame", vision.HaarFrontalFace, false},
		{"haar-region", vision.HaarFrontalFace, true},
		{"lbp-frame", vision.LBPFrontalFace, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			d := newFaces(b, vision.FaceOptions{Cascade: c.cascade})
			loop(b, func(i int) {
				f := frames[i%len(frames)]
				var region *vision.Box
				if c.region {
					tr := f.Truth[0] // a box twice the face's size, as motion would give
					region = &vision.Box{X: tr.X - tr.W/2, Y: tr.Y - tr.H/2, W: 2 * tr.W, H: 2 * tr.H}
				}
				if _, err := d.Detect(f.JPEG, region); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkAnnotate720p measures drawing an event snapshot: a full-size
// decode, two boxes and a JPEG encode.
func BenchmarkAnnotate720p(b *testing.B) {
	clips(b)
	f := faceClip[60]
	motion := []vision.Box{{X: 0.1, Y: 0.5, W: 0.3, H: 0.3}}
	loop(b, func(int) {
		if _, err := vision.Annotate(f.JPEG, motion, f.Truth, 0); err != nil {
			b.Fatal(err)
		}
	})
}
