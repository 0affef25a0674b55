package vision

import (
	"cmp"
	"fmt"
	"image"
	"image/color"
	"slices"

	"gocv.io/x/gocv"
)

// Defaults of MotionOptions, used for every zero field. They follow Frigate's
// motion detector (see the field notes), adjusted for a slightly larger
// analysis image and for reporting boxes rather than only "motion or not".
const (
	// DefaultMotionHeight is the analysis height in pixels: 320x180 for a
	// 16:9 camera. A person at the far end of a typical scene is still
	// several pixels wide, and all the steps after the decode take 0.2-0.3
	// ms together at this size. A 720p JPEG decodes at 1/4 scale to exactly
	// this size; 1080p decodes at 1/4 (270 rows) and is resized.
	DefaultMotionHeight = 180

	// DefaultBlur is the side of the Gaussian blur kernel in analysis
	// pixels. Together with the reduced decode (which keeps only the low
	// frequencies of each 8x8 block) it removes sensor and compression
	// noise.
	DefaultBlur = 5

	// DefaultThreshold is the gray-level difference (0-255) from the
	// background that counts as changed. Frigate uses 30 and Motion's
	// noise_level is 32; 25 is a little more sensitive (dark clothes on
	// dark ground), and the reduced decode and the blur keep even sensor
	// noise of σ 8 (a dim indoor camera) well below it.
	DefaultThreshold = 25

	// DefaultAlpha is the weight of each new frame in the running-average
	// background: a change that stays is absorbed after roughly
	// ln(threshold/contrast)/ln(1-alpha) frames (about 70 for a contrast of
	// 100), so slow light changes follow and a parked car stops being
	// motion after a while. Frigate uses 0.01 at 5 fps.
	DefaultAlpha = 0.02

	// DefaultSettleFrames is how many consecutive frames a pixel must have
	// been in motion before the background learns it again: a change that
	// stays (a parked car, a moved chair, the spot a car left) becomes
	// background after about SettleFrames plus the Alpha time, 100 frames.
	// Until then the background learns only the still pixels, so a moving
	// object leaves no trail: a 160-pixel object crossing a 720p frame at 10
	// pixels a frame covers each pixel for 16 frames. Frigate instead stops
	// all learning for 10 frames of motion anywhere, then learns every
	// pixel; with a rule like that the object of the MovingObject clip
	// dragged a trail that widened its box up to twice (IoU ≥ 0.5 on 72 of
	// 110 frames, mean 0.60, 15 stray boxes; per pixel: 110 of 110, mean
	// 0.81, none). This is frames, not time: 1 s at 30 fps, 6 s at 5 fps.
	DefaultSettleFrames = 30

	// DefaultMinArea is the smallest changed blob reported, as a fraction of
	// the frame's area: 0.001 is 58 pixels (about 8x8) at 320x180, or a
	// 40x23 patch of a 720p frame. Frigate's default is 10 pixels at height
	// 100 (0.00056 of 178x100); ours is a little larger because our
	// threshold is lower.
	DefaultMinArea = 0.001

	// DefaultMergeGap merges boxes closer to each other than this fraction
	// of the frame height (0.03: 5 pixels at 180 rows), so that one person
	// whose clothes match the background in places gives one box, not
	// three.
	DefaultMergeGap = 0.03

	// DefaultGlobalFraction is the fraction of the unmasked frame whose
	// change is taken for a global one (lights switched on or off, auto
	// exposure, the camera moved) rather than motion: the background is
	// reset to the current frame and no boxes are reported. Frigate uses
	// 0.8 after stretching the contrast of every frame; without that step
	// an exposure change leaves dark areas below the threshold, so ours is
	// lower. Someone right in front of the lens can still cover more than
	// this: they are reported as motion again from the next frame, against
	// the reset background, as soon as they move.
	DefaultGlobalFraction = 0.6

	// DefaultWarmupFrames is how many first frames only build the
	// background (their average), with no motion reported.
	DefaultWarmupFrames = 5
)

// Point is a position in normalized frame coordinates, 0..1 from the left
// and from the top.
type Point struct {
	X, Y float64
}

// Polygon is a closed polygon of at least 3 points in normalized frame
// coordinates.
type Polygon []Point

// MotionOptions configure a MotionDetector. Zero fields take the Default*
// values above.
type MotionOptions struct {
	Height         int     // analysis height in pixels (DefaultMotionHeight)
	Blur           int     // odd Gaussian kernel side in analysis pixels (DefaultBlur)
	Threshold      int     // gray-level change that counts, 1-254 (DefaultThreshold)
	Alpha          float64 // background learning rate per frame, (0, 1] (DefaultAlpha)
	SettleFrames   int     // frames a pixel is in motion before it is learnt (DefaultSettleFrames)
	MinArea        float64 // smallest blob, fraction of the frame (DefaultMinArea)
	MergeGap       float64 // merge boxes this close, fraction of the height (DefaultMergeGap); negative: only overlapping ones
	GlobalFraction float64 // changed fraction taken as a global change, (0, 1]; 1: never (DefaultGlobalFraction)
	WarmupFrames   int     // first frames that only build the background (DefaultWarmupFrames)

	// Masks are areas where changes are ignored (a busy road, a tree, a
	// timestamp overlay). They are applied to the difference from the
	// background, so changes inside them count neither as motion nor
	// towards GlobalFraction, which is a fraction of the unmasked area.
	Masks []Polygon
}

func (o MotionOptions) withDefaults() MotionOptions {
	if o.Height == 0 {
		o.Height = DefaultMotionHeight
	}
	if o.Blur == 0 {
		o.Blur = DefaultBlur
	}
	if o.Threshold == 0 {
		o.Threshold = DefaultThreshold
	}
	if o.Alpha == 0 {
		o.Alpha = DefaultAlpha
	}
	if o.SettleFrames == 0 {
		o.SettleFrames = DefaultSettleFrames
	}
	if o.MinArea == 0 {
		o.MinArea = DefaultMinArea
	}
	if o.MergeGap == 0 {
		o.MergeGap = DefaultMergeGap
	}
	if o.GlobalFraction == 0 {
		o.GlobalFraction = DefaultGlobalFraction
	}
	if o.WarmupFrames == 0 {
		o.WarmupFrames = DefaultWarmupFrames
	}
	return o
}

func (o MotionOptions) validate() error {
	switch {
	case o.Height < 16:
		return fmt.Errorf("height %d: at least 16 pixels", o.Height)
	case o.Blur < 1 || o.Blur%2 == 0:
		return fmt.Errorf("blur %d: a positive odd number of pixels", o.Blur)
	case o.Threshold < 1 || o.Threshold > 254:
		return fmt.Errorf("threshold %d: 1-254", o.Threshold)
	case o.Alpha < 0 || o.Alpha > 1:
		return fmt.Errorf("alpha %g: 0-1", o.Alpha)
	case o.SettleFrames < 0 || o.SettleFrames > 254:
		return fmt.Errorf("settle frames %d: 1-254 (ages are counted in 8 bits)", o.SettleFrames)
	case o.MinArea < 0 || o.MinArea >= 1:
		return fmt.Errorf("min area %g: a fraction of the frame, 0-1", o.MinArea)
	case o.GlobalFraction < 0 || o.GlobalFraction > 1:
		return fmt.Errorf("global fraction %g: 0-1", o.GlobalFraction)
	case o.WarmupFrames < 0:
		return fmt.Errorf("warmup frames %d: not negative", o.WarmupFrames)
	}
	for i, p := range o.Masks {
		if len(p) < 3 {
			return fmt.Errorf("mask %d: %d points, a polygon needs at least 3", i, len(p))
		}
		for j, pt := range p {
			if pt.X < 0 || pt.X > 1 || pt.Y < 0 || pt.Y > 1 {
				return fmt.Errorf("mask %d point %d (%g, %g): coordinates are fractions of the frame, 0-1", i, j, pt.X, pt.Y)
			}
		}
	}
	return nil
}

// Motion is what a MotionDetector found in one frame.
type Motion struct {
	// Boxes are the places that changed, largest first, merged where they
	// touch or nearly do; nil when nothing changed, during warm-up and on a
	// global change. They are slightly larger than the moving object (blur
	// and dilation add a few analysis pixels on every side).
	Boxes []Box
	// Area is the fraction of the unmasked frame that differs from the
	// background (before boxes are filtered by size).
	Area float64
	// Global reports a change of more than GlobalFraction of the frame: the
	// background was reset to this frame and no boxes are reported.
	Global bool
	// Width and Height are the dimensions of the encoded source frame.
	Width, Height int
}

// MotionDetector finds what moves in one camera's frames, against a
// background it learns from them. It is not safe for concurrent use: use one
// per camera, feed it that camera's frames in order, and Close it.
//
// Per frame it decodes the JPEG small and gray, resizes it to the analysis
// height, blurs it, takes its absolute difference from the running-average
// background, thresholds and masks that, dilates it, finds the outer
// contours of what is left and keeps those of at least MinArea as boxes,
// merging nearby ones. When more than GlobalFraction changed at once the
// background is reset instead. Otherwise the background learns the frame
// (by Alpha) in every pixel that is still, or has been in motion for
// SettleFrames frames in a row: a moving object leaves no trail, and an
// object that stops, like a parked car, eventually becomes background.
//
// The matrices are reused from frame to frame; the analysis size follows the
// frames (a camera that changes resolution restarts the background). What
// still allocates per frame: in C, gocv's IMDecode returns a new matrix (its
// 57 kB of pixels for 720p are freed before Detect returns) and
// FindContours its contour vectors (freed at once); in Go, only the Boxes
// slice of a frame with motion (TestMotionAllocations).
//
// Cost per 720p JPEG (BenchmarkMotion720p, this machine): 1.6-2.2 ms, of
// which the decode is 1.4-1.9 ms: one core keeps up with 15-20 cameras at
// 30 fps, or about 100 sampled at 5 fps.
type MotionDetector struct {
	opt MotionOptions

	w, h     int // analysis size, 0 before the first frame
	frames   int // frames since the background (re)started
	unmasked int // pixels outside the masks at the analysis size

	small     gocv.Mat // decoded frame resized to the analysis size
	blurred   gocv.Mat // blurred analysis frame (8-bit)
	bg        gocv.Mat // running-average background (32-bit float)
	bg8       gocv.Mat // background rounded to 8 bits
	diff      gocv.Mat // |frame - background| > threshold, masked
	dilated   gocv.Mat // diff dilated: where there is motion
	age       gocv.Mat // per pixel: consecutive frames in motion, saturating at 255
	one       gocv.Mat // 1 everywhere, to count age
	settled   gocv.Mat // age > SettleFrames
	learnable gocv.Mat // still or settled: where the background learns
	hierarchy gocv.Mat // FindContours' by-product, kept to avoid allocating it
	mask      gocv.Mat // 255 where changes count, 0 in masks; empty without masks
	kernel    gocv.Mat // dilation kernel

	rects  []image.Rectangle // reused per frame
	closed bool
}

// NewMotionDetector returns a MotionDetector with the given options (zero
// fields take the defaults), or an error naming an invalid option.
func NewMotionDetector(opt MotionOptions) (*MotionDetector, error) {
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, fmt.Errorf("motion detector: %w", err)
	}
	return &MotionDetector{
		opt:       opt,
		small:     gocv.NewMat(),
		blurred:   gocv.NewMat(),
		bg:        gocv.NewMat(),
		bg8:       gocv.NewMat(),
		diff:      gocv.NewMat(),
		dilated:   gocv.NewMat(),
		age:       gocv.NewMat(),
		one:       gocv.NewMat(),
		settled:   gocv.NewMat(),
		learnable: gocv.NewMat(),
		hierarchy: gocv.NewMat(),
		mask:      gocv.NewMat(),
		// A 5x5 rectangle: two pixels on every side, like two iterations
		// of the usual 3x3 (Frigate dilates with 2 iterations).
		kernel: gocv.GetStructuringElement(gocv.MorphRect, image.Pt(5, 5)),
		rects:  make([]image.Rectangle, 0, 16),
	}, nil
}

// Options returns the options in effect, defaults filled in.
func (d *MotionDetector) Options() MotionOptions { return d.opt }

// Detect analyses the next frame of the camera, a JPEG (or PNG) as stored in
// Kafka. A frame that cannot be decoded returns an error wrapping
// ErrBadImage and leaves the background as it was.
func (d *MotionDetector) Detect(img []byte) (Motion, error) {
	if d.closed {
		return Motion{}, fmt.Errorf("motion: %w", ErrClosed)
	}
	dec, sw, sh, err := decodeGray(img, d.opt.Height)
	if err != nil {
		return Motion{}, fmt.Errorf("motion: decode %d bytes: %w", len(img), err)
	}
	defer dec.Close()

	// A source smaller than the analysis height is analysed at its own.
	h := min(d.opt.Height, dec.Rows())
	w := scaledWidth(dec.Cols(), dec.Rows(), h)
	src := dec
	if dec.Rows() != h || dec.Cols() != w {
		gocv.Resize(dec, &d.small, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
		src = d.small
	}
	if w != d.w || h != d.h {
		d.restart(w, h)
	}
	gocv.GaussianBlur(src, &d.blurred, image.Pt(d.opt.Blur, d.opt.Blur), 0, 0, gocv.BorderDefault)

	res := Motion{Width: sw, Height: sh}
	if d.frames < d.opt.WarmupFrames {
		// The background is the plain average of the warm-up frames.
		d.learn(1/float64(d.frames+1), false)
		d.frames++
		return res, nil
	}
	d.frames++

	d.bg.ConvertTo(&d.bg8, gocv.MatTypeCV8U)
	gocv.AbsDiff(d.blurred, d.bg8, &d.diff)
	gocv.Threshold(d.diff, &d.diff, float32(d.opt.Threshold), 255, gocv.ThresholdBinary)
	if !d.mask.Empty() {
		gocv.BitwiseAnd(d.diff, d.mask, &d.diff)
	}
	if d.unmasked > 0 {
		res.Area = float64(gocv.CountNonZero(d.diff)) / float64(d.unmasked)
	}
	if res.Area > d.opt.GlobalFraction {
		res.Global = true
		d.learn(1, false)
		d.age.SetTo(gocv.Scalar{})
		return res, nil
	}

	gocv.Dilate(d.diff, &d.dilated, d.kernel)
	contours := gocv.FindContoursWithParams(d.dilated, &d.hierarchy, gocv.RetrievalExternal, gocv.ChainApproxSimple)
	minArea := d.opt.MinArea * float64(w*h)
	d.rects = d.rects[:0]
	for i := range contours.Size() {
		c := contours.At(i)
		if gocv.ContourArea(c) >= minArea {
			d.rects = append(d.rects, gocv.BoundingRect(c))
		}
	}
	contours.Close()
	d.rects = mergeRects(d.rects, int(d.opt.MergeGap*float64(h)+0.5))

	// Age the pixels in motion (255 is 8-bit saturation), forget the rest.
	gocv.Add(d.age, d.one, &d.age)
	gocv.BitwiseAnd(d.age, d.dilated, &d.age)
	if len(d.rects) == 0 {
		d.learn(d.opt.Alpha, false)
		return res, nil
	}
	d.learn(d.opt.Alpha, true)
	slices.SortFunc(d.rects, func(a, b image.Rectangle) int {
		return cmp.Compare(b.Dx()*b.Dy(), a.Dx()*a.Dy())
	})
	res.Boxes = make([]Box, len(d.rects))
	for i, r := range d.rects {
		res.Boxes[i] = normalize(r, w, h)
	}
	return res, nil
}

// learn takes the blurred frame into the background with weight alpha (1:
// the background becomes the frame); if selective, only in the pixels that
// are still or have been in motion for more than SettleFrames frames.
func (d *MotionDetector) learn(alpha float64, selective bool) {
	switch {
	case alpha >= 1:
		d.blurred.ConvertTo(&d.bg, gocv.MatTypeCV32F)
	case selective:
		gocv.Threshold(d.age, &d.settled, float32(d.opt.SettleFrames), 255, gocv.ThresholdBinary)
		gocv.BitwiseNot(d.dilated, &d.learnable)
		gocv.BitwiseOr(d.learnable, d.settled, &d.learnable)
		gocv.AccumulatedWeightedWithMask(d.blurred, &d.bg, alpha, d.learnable)
	default:
		gocv.AccumulatedWeighted(d.blurred, &d.bg, alpha)
	}
}

// restart forgets the background and prepares the masks for a w x h
// analysis size.
func (d *MotionDetector) restart(w, h int) {
	d.w, d.h = w, h
	d.frames = 0
	d.unmasked = w * h
	d.age.Close()
	d.age = gocv.NewMatWithSize(h, w, gocv.MatTypeCV8U)
	d.age.SetTo(gocv.Scalar{})
	d.one.Close()
	d.one = gocv.NewMatWithSizeFromScalar(gocv.NewScalar(1, 0, 0, 0), h, w, gocv.MatTypeCV8U)
	if len(d.opt.Masks) == 0 {
		return
	}
	d.mask.Close()
	d.mask = gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 0, 0, 0), h, w, gocv.MatTypeCV8U)
	polys := make([][]image.Point, len(d.opt.Masks))
	for i, p := range d.opt.Masks {
		polys[i] = make([]image.Point, len(p))
		for j, pt := range p {
			polys[i][j] = image.Pt(int(pt.X*float64(w)+0.5), int(pt.Y*float64(h)+0.5))
		}
	}
	pv := gocv.NewPointsVectorFromPoints(polys)
	gocv.FillPoly(&d.mask, pv, color.RGBA{})
	pv.Close()
	d.unmasked = gocv.CountNonZero(d.mask)
}

// mergeRects merges, in place, rectangles that overlap or are less than gap
// pixels apart, until no two are.
func mergeRects(rs []image.Rectangle, gap int) []image.Rectangle {
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(rs); i++ {
			grown := rs[i].Inset(-max(gap, 0))
			for j := i + 1; j < len(rs); j++ {
				if !grown.Overlaps(rs[j]) {
					continue
				}
				rs[i] = rs[i].Union(rs[j])
				grown = rs[i].Inset(-max(gap, 0))
				rs[j] = rs[len(rs)-1]
				rs = rs[:len(rs)-1]
				j = i // rescan the rest: the grown rectangle may reach ones passed
				merged = true
			}
		}
	}
	return rs
}

// Close frees the detector's OpenCV memory. It is idempotent; Detect after
// Close returns an error.
func (d *MotionDetector) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	for _, m := range []*gocv.Mat{&d.small, &d.blurred, &d.bg, &d.bg8, &d.diff, &d.dilated, &d.age, &d.one, &d.settled, &d.learnable, &d.hierarchy, &d.mask, &d.kernel} {
		m.Close()
	}
	return nil
}
