// Package visiontest generates video clips with known ground truth for the
// tests of the analyzer and of anything fed by it: sequences of JPEG frames,
// each with the boxes of what a detector should find in it, made from the
// sample images Debian's opencv-doc package ships. WriteVideo turns a clip
// into a video file a producer can read, so an end-to-end test knows what
// the analyzer downstream must report.
//
// Clips are deterministic for a given Options (the sensor noise comes from a
// seeded Go generator). Every function returns an error rather than failing
// a test, so a demo can also generate a clip at start-up.
package visiontest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"

	"gocv.io/x/gocv"

	"github.com/streamd/streamd/pkg/vision"
)

// DataDir holds the sample media of Debian's opencv-doc package.
const DataDir = "/usr/share/doc/opencv-doc/examples/data"

// Sample files used by the clips, in DataDir.
const (
	// BackgroundImage is a quiet street (Leuven's beguinage): the still
	// scene of every clip, cropped to the clip's aspect ratio.
	BackgroundImage = "leuvenA.jpg"
	// ObjectImage gives the moving object: the middle of a baboon's face,
	// colourful and contrasted against the street.
	ObjectImage = "baboon.jpg"
	// FaceImage holds one detectable frontal face, at FaceRect.
	FaceImage = "messi5.jpg"
	// PeopleVideo shows people walking across a hall (768x576, 10 fps).
	PeopleVideo = "vtest.avi"
	// FaceVideo is a clip of the animated film Megamind (720x528, 24 fps,
	// 270 frames): two characters talking at a table, frontal faces on most
	// frames. OpenCV's Haar frontal face cascade finds them (see
	// TestFacesMegamind in package vision).
	FaceVideo = "Megamind.avi"
)

// FaceRect is the face in FaceImage, in its pixels: the box OpenCV's Haar
// frontal face cascade reports for it.
var FaceRect = image.Rect(227, 94, 227+37, 94+37)

// Defaults of Options, used for every zero field.
const (
	DefaultWidth   = 1280
	DefaultHeight  = 720
	DefaultQuality = 80
	// DefaultNoise is the standard deviation of the Gaussian sensor noise
	// added to every pixel and channel of every frame, in gray levels: a
	// clean daylight camera. Indoor and night footage is noisier (8-15).
	DefaultNoise = 3.0
	// DefaultWarmup is how many frames of the still scene the moving clips
	// start with, for a detector to learn the background.
	DefaultWarmup = 10
)

// Options shape a clip. Zero fields take the defaults.
type Options struct {
	Width, Height int     // frame size (DefaultWidth x DefaultHeight)
	Frames        int     // clip length; 0: the clip's own default, given with each clip
	Quality       int     // JPEG quality 1-100 (DefaultQuality)
	Noise         float64 // sensor noise σ in gray levels (DefaultNoise); negative: none
	Warmup        int     // still frames before anything moves (DefaultWarmup); negative: none
	Seed          uint64  // noise seed (0 is a seed like any other)
}

func (o Options) withDefaults(frames int) Options {
	if o.Width == 0 {
		o.Width = DefaultWidth
	}
	if o.Height == 0 {
		o.Height = DefaultHeight
	}
	if o.Frames == 0 {
		o.Frames = frames
	}
	if o.Quality == 0 {
		o.Quality = DefaultQuality
	}
	if o.Noise == 0 {
		o.Noise = DefaultNoise
	}
	if o.Warmup == 0 {
		o.Warmup = DefaultWarmup
	}
	o.Warmup = max(o.Warmup, 0)
	return o
}

// Frame is one frame of a clip.
type Frame struct {
	JPEG []byte
	// Truth holds what a detector should find, normalized to the frame:
	// the moving object or the face, one box while it is in view, none
	// otherwise.
	Truth []vision.Box
}

// Still returns a still scene with sensor noise and nothing moving (default
// 300 frames: a minute at 5 fps). No frame should give motion.
func Still(o Options) ([]Frame, error) {
	o = o.withDefaults(300)
	g, err := newGen(o)
	if err != nil {
		return nil, fmt.Errorf("still clip: %w", err)
	}
	defer g.close()
	out := make([]Frame, o.Frames)
	for i := range out {
		if out[i].JPEG, err = g.frame(i, g.bg); err != nil {
			return nil, fmt.Errorf("still clip: %w", err)
		}
	}
	return out, nil
}

// MovingObject returns the still scene where, after Warmup frames, an object
// (a patch of ObjectImage, a third of the frame high and two ninths wide)
// crosses from the left edge to the right edge while sinking from a third to
// the middle of the frame, at constant speed (default 120 frames: 110 of
// motion, about 9 pixels of a 720p frame per frame). Truth is the patch.
func MovingObject(o Options) ([]Frame, error) {
	o = o.withDefaults(120)
	g, err := newGen(o)
	if err != nil {
		return nil, fmt.Errorf("moving object clip: %w", err)
	}
	defer g.close()
	ph := o.Height / 3
	pw := o.Height * 2 / 9
	patch, err := loadPatch(ObjectImage, image.Rect(128, 40, 384, 424), image.Pt(pw, ph))
	if err != nil {
		return nil, fmt.Errorf("moving object clip: %w", err)
	}
	defer patch.Close()
	frames, err := g.crossing(patch, func(t float64) image.Point {
		margin := o.Width / 40
		x := margin + int(t*float64(o.Width-2*margin-pw))
		y := o.Height/3 - ph/2 + int(t*float64(o.Height/6))
		return image.Pt(x, y)
	}, image.Rect(0, 0, pw, ph))
	if err != nil {
		return nil, fmt.Errorf("moving object clip: %w", err)
	}
	return frames, nil
}

// The scripted-motion clip of ScriptedMotion: what the recording tests
// loop as a camera.
const (
	// ScriptedMotionFPS is the clip's frame rate.
	ScriptedMotionFPS = 30
	// ScriptedMotionFrames is the clip's length: 10 s.
	ScriptedMotionFrames = 300
	// ScriptedMotionStill is how many frames the scene is still before
	// the object enters: 5 s.
	ScriptedMotionStill = 150
)

// ScriptedMotion returns the clip the recording tests loop as a camera:
// ScriptedMotionFrames frames of width x height meant to be played at
// ScriptedMotionFPS, a still scene for ScriptedMotionStill frames (5 s),
// MovingObject crossing it for the next 90 frames (3 s), then still again
// (2 s, with its own noise seed): looped, a motion event every 10 s.
func ScriptedMotion(width, height int) ([]Frame, error) {
	clip, err := MovingObject(Options{Width: width, Height: height, Frames: 240, Warmup: ScriptedMotionStill})
	if err != nil {
		return nil, fmt.Errorf("scripted motion clip: %w", err)
	}
	still, err := Still(Options{Width: width, Height: height, Frames: ScriptedMotionFrames - len(clip), Seed: 7})
	if err != nil {
		return nil, fmt.Errorf("scripted motion clip: %w", err)
	}
	return append(clip, still...), nil
}

// WriteScriptedMotion writes ScriptedMotion(width, height) to path as a
// Motion JPEG .avi at ScriptedMotionFPS (see WriteVideo).
func WriteScriptedMotion(path string, width, height int) error {
	frames, err := ScriptedMotion(width, height)
	if err != nil {
		return err
	}
	return WriteVideo(path, frames, ScriptedMotionFPS)
}

// MovingFace returns the still scene where, after Warmup frames, a face (a
// square cut from FaceImage around FaceRect, 2.3 times the face's side,
// scaled so that the face is 0.15 of the frame height: 108 pixels of 720)
// crosses from left to right at a third of the height (default 120 frames).
// Truth is the face, not the square.
func MovingFace(o Options) ([]Frame, error) {
	o = o.withDefaults(120)
	g, err := newGen(o)
	if err != nil {
		return nil, fmt.Errorf("moving face clip: %w", err)
	}
	defer g.close()
	side := FaceRect.Dx()
	margin := side * 27 / 40 // of FaceImage pixels, around the face
	cut := FaceRect.Inset(-margin)
	face := int(0.15 * float64(o.Height))
	scale := float64(face) / float64(side)
	ps := int(float64(cut.Dx())*scale + 0.5)
	patch, err := loadPatch(FaceImage, cut, image.Pt(ps, ps))
	if err != nil {
		return nil, fmt.Errorf("moving face clip: %w", err)
	}
	defer patch.Close()
	off := int(float64(margin)*scale + 0.5)
	frames, err := g.crossing(patch, func(t float64) image.Point {
		m := o.Width / 40
		return image.Pt(m+int(t*float64(o.Width-2*m-ps)), o.Height/3-ps/2)
	}, image.Rect(off, off, off+face, off+face))
	if err != nil {
		return nil, fmt.Errorf("moving face clip: %w", err)
	}
	return frames, nil
}

// BrightnessStep returns the still scene whose brightness jumps at frame
// step (half-way; default 60 frames): every pixel becomes 1.3 times itself
// plus 40 gray levels, like lights switched on, and stays so. Nothing moves:
// a detector should report a global change at step and nothing else.
func BrightnessStep(o Options) (frames []Frame, step int, err error) {
	o = o.withDefaults(60)
	g, err := newGen(o)
	if err != nil {
		return nil, 0, fmt.Errorf("brightness clip: %w", err)
	}
	defer g.close()
	bright := gocv.NewMat()
	defer bright.Close()
	g.bg.ConvertToWithParams(&bright, gocv.MatTypeCV8UC3, 1.3, 40)
	step = o.Frames / 2
	frames = make([]Frame, o.Frames)
	for i := range frames {
		scene := g.bg
		if i >= step {
			scene = bright
		}
		if frames[i].JPEG, err = g.frame(i, scene); err != nil {
			return nil, 0, fmt.Errorf("brightness clip: %w", err)
		}
	}
	return frames, step, nil
}

// ReadVideo decodes up to n frames (n <= 0: all) of the video at path,
// resizes them to width x height (0 x 0: as they are) and encodes them as
// JPEG of the given quality (0: DefaultQuality), as a producer would. The
// frames have no Truth.
func ReadVideo(path string, n, width, height, quality int) ([]Frame, error) {
	if quality == 0 {
		quality = DefaultQuality
	}
	// OpenCV only says it failed, after warnings on stderr: stat first.
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("read video: %w", err)
	}
	vc, err := gocv.OpenVideoCapture(path)
	if err != nil {
		return nil, fmt.Errorf("read video %s: %w", path, err)
	}
	defer vc.Close()
	m, small := gocv.NewMat(), gocv.NewMat()
	defer m.Close()
	defer small.Close()
	var out []Frame
	for (n <= 0 || len(out) < n) && vc.Read(&m) && !m.Empty() {
		img := m
		if width > 0 && height > 0 && (m.Cols() != width || m.Rows() != height) {
			gocv.Resize(m, &small, image.Pt(width, height), 0, 0, gocv.InterpolationArea)
			img = small
		}
		b, err := encode(img, quality)
		if err != nil {
			return nil, fmt.Errorf("read video %s: frame %d: %w", path, len(out), err)
		}
		out = append(out, Frame{JPEG: b})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read video %s: no frames", path)
	}
	return out, nil
}

// WriteVideo writes frames to path as Motion JPEG at fps frames per second
// (an .avi file: OpenCV's own muxer, no codec library needed). All frames
// must have the size of the first.
func WriteVideo(path string, frames []Frame, fps float64) error {
	if len(frames) == 0 {
		return fmt.Errorf("write video %s: no frames", path)
	}
	if fps <= 0 {
		return fmt.Errorf("write video %s: fps %g: must be positive", path, fps)
	}
	first, err := gocv.IMDecode(frames[0].JPEG, gocv.IMReadColor)
	if err != nil || first.Empty() {
		first.Close()
		return fmt.Errorf("write video %s: frame 0 does not decode", path)
	}
	w, h := first.Cols(), first.Rows()
	first.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write video %s: %w", path, err)
	}
	vw, err := gocv.VideoWriterFile(path, "MJPG", fps, w, h, true)
	if err != nil {
		return fmt.Errorf("write video %s: %w", path, err)
	}
	if !vw.IsOpened() {
		vw.Close()
		return fmt.Errorf("write video %s: OpenCV cannot open it for writing", path)
	}
	for i, f := range frames {
		m, err := gocv.IMDecode(f.JPEG, gocv.IMReadColor)
		if err != nil || m.Empty() || m.Cols() != w || m.Rows() != h {
			m.Close()
			vw.Close()
			return fmt.Errorf("write video %s: frame %d does not decode to %dx%d", path, i, w, h)
		}
		err = vw.Write(m)
		m.Close()
		if err != nil {
			vw.Close()
			return fmt.Errorf("write video %s: frame %d: %w", path, i, err)
		}
	}
	return vw.Close()
}

// noisePatterns is how many different noise images a clip cycles through:
// enough that no detector can learn them, few enough to make quickly.
const noisePatterns = 8

// gen renders the frames of one clip.
type gen struct {
	o      Options
	bg     gocv.Mat   // the still scene, 8-bit BGR
	noise  []gocv.Mat // 16-bit signed noise images, empty without noise
	canvas gocv.Mat   // scene with the moving patch
	wide   gocv.Mat   // canvas + noise, 16-bit
	out    gocv.Mat   // the frame to encode
}

func newGen(o Options) (*gen, error) {
	if o.Width < 16 || o.Height < 16 || o.Frames < 1 || o.Quality < 1 || o.Quality > 100 {
		return nil, fmt.Errorf("options %+v: need at least 16x16 pixels, 1 frame, quality 1-100", o)
	}
	bg, err := loadScene(o.Width, o.Height)
	if err != nil {
		return nil, err
	}
	g := &gen{o: o, bg: bg, canvas: gocv.NewMat(), wide: gocv.NewMat(), out: gocv.NewMat()}
	if o.Noise > 0 {
		rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
		n := o.Width * o.Height * 3
		buf := make([]byte, 2*n)
		for range noisePatterns {
			for i := range n {
				v := int16(max(-32000, min(32000, rng.NormFloat64()*o.Noise)))
				binary.LittleEndian.PutUint16(buf[2*i:], uint16(v))
			}
			m, err := gocv.NewMatFromBytes(o.Height, o.Width, gocv.MatTypeCV16SC3, buf)
			if err != nil {
				g.close()
				return nil, fmt.Errorf("noise: %w", err)
			}
			// NewMatFromBytes may share buf: keep a copy of our own.
			g.noise = append(g.noise, m.Clone())
			m.Close()
		}
	}
	return g, nil
}

func (g *gen) close() {
	g.bg.Close()
	for _, m := range g.noise {
		m.Close()
	}
	g.canvas.Close()
	g.wide.Close()
	g.out.Close()
}

// frame adds frame i's noise to scene and encodes it.
func (g *gen) frame(i int, scene gocv.Mat) ([]byte, error) {
	img := scene
	if len(g.noise) > 0 {
		scene.ConvertTo(&g.wide, gocv.MatTypeCV16SC3)
		gocv.Add(g.wide, g.noise[i%len(g.noise)], &g.wide)
		g.wide.ConvertTo(&g.out, gocv.MatTypeCV8UC3) // saturates at 0 and 255
		img = g.out
	}
	return encode(img, g.o.Quality)
}

// crossing renders Warmup frames of the still scene, then patch at at(t) for
// t going evenly from 0 to 1 over the remaining frames, with truth (in the
// patch's pixels) moved along as the Truth.
func (g *gen) crossing(patch gocv.Mat, at func(t float64) image.Point, truth image.Rectangle) ([]Frame, error) {
	o := g.o
	out := make([]Frame, o.Frames)
	moving := o.Frames - o.Warmup
	for i := range out {
		scene := g.bg
		if i >= o.Warmup {
			t := 0.0
			if moving > 1 {
				t = float64(i-o.Warmup) / float64(moving-1)
			}
			p := at(t)
			r := image.Rectangle{Min: p, Max: p.Add(image.Pt(patch.Cols(), patch.Rows()))}
			if !r.In(image.Rect(0, 0, o.Width, o.Height)) {
				return nil, fmt.Errorf("frame %d: patch at %v leaves the %dx%d frame", i, r, o.Width, o.Height)
			}
			g.bg.CopyTo(&g.canvas)
			roi := g.canvas.Region(r)
			patch.CopyTo(&roi)
			roi.Close()
			scene = g.canvas
			tr := truth.Add(p)
			out[i].Truth = []vision.Box{{
				X: float64(tr.Min.X) / float64(o.Width), Y: float64(tr.Min.Y) / float64(o.Height),
				W: float64(tr.Dx()) / float64(o.Width), H: float64(tr.Dy()) / float64(o.Height),
			}}
		}
		var err error
		if out[i].JPEG, err = g.frame(i, scene); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// loadScene returns BackgroundImage cropped to the aspect ratio of w x h
// (keeping the street, in its lower part) and resized to w x h.
func loadScene(w, h int) (gocv.Mat, error) {
	src, err := load(BackgroundImage)
	if err != nil {
		return src, err
	}
	defer src.Close()
	sw, sh := src.Cols(), src.Rows()
	var crop image.Rectangle
	if sw*h > sh*w { // source wider: cut the sides
		cw := sh * w / h
		crop = image.Rect((sw-cw)/2, 0, (sw-cw)/2+cw, sh)
	} else { // source taller: cut more sky than street
		ch := sw * h / w
		y := (sh - ch) * 2 / 3
		crop = image.Rect(0, y, sw, y+ch)
	}
	roi := src.Region(crop)
	defer roi.Close()
	out := gocv.NewMat()
	gocv.Resize(roi, &out, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
	return out, nil
}

// loadPatch cuts r out of the sample image name and resizes it to size.
func loadPatch(name string, r image.Rectangle, size image.Point) (gocv.Mat, error) {
	src, err := load(name)
	if err != nil {
		return src, err
	}
	defer src.Close()
	if !r.In(image.Rect(0, 0, src.Cols(), src.Rows())) {
		return gocv.Mat{}, fmt.Errorf("%s: %v is outside the %dx%d image", name, r, src.Cols(), src.Rows())
	}
	roi := src.Region(r)
	defer roi.Close()
	out := gocv.NewMat()
	gocv.Resize(roi, &out, size, 0, 0, gocv.InterpolationCubic)
	return out, nil
}

// load reads a sample image from DataDir in colour.
func load(name string) (gocv.Mat, error) {
	path := filepath.Join(DataDir, name)
	if _, err := os.Stat(path); err != nil {
		return gocv.Mat{}, fmt.Errorf("sample image (Debian package opencv-doc): %w", err)
	}
	m := gocv.IMRead(path, gocv.IMReadColor)
	if m.Empty() {
		m.Close()
		return gocv.Mat{}, fmt.Errorf("sample image %s: OpenCV cannot read it", path)
	}
	return m, nil
}

// encode returns img as a JPEG of the given quality, in Go memory.
func encode(img gocv.Mat, quality int) ([]byte, error) {
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, []int{gocv.IMWriteJpegQuality, quality})
	if err != nil {
		return nil, err
	}
	defer buf.Close()
	b := append([]byte(nil), buf.GetBytes()...)
	if len(b) == 0 {
		return nil, errors.New("JPEG encoder gave nothing")
	}
	return b, nil
}
