// Package vision is the OpenCV analysis behind the analyzer role: it takes
// encoded frames exactly as they come out of Kafka (JPEG from streamd, PNG
// from other producers) and finds motion and faces in them.
//
// Everything is built for many cameras on few cores:
//
//   - Frames are decoded small and gray. libjpeg can scale by 1/2, 1/4 or
//     1/8 while it decodes (a cheaper inverse DCT, no colour conversion), so
//     a 720p JPEG becomes the 320x180 image motion analysis needs directly,
//     with no full-size image in memory. It still reads every coefficient,
//     so the decode remains most of the cost: 1.4 ms instead of 1.7 ms for
//     a full-size gray decode. The factor is chosen from the dimensions in
//     the JPEG's frame header, read in Go before OpenCV is called.
//   - A MotionDetector keeps a running-average background per camera and
//     reuses its OpenCV matrices from frame to frame (see MotionDetector for
//     what still allocates).
//   - A FaceDetector runs a cascade classifier at a modest resolution,
//     optionally only inside the region where motion was found.
//
// Boxes are normalized to 0..1 of the source frame, so they mean the same at
// every resolution the frame is decoded or shown at. Annotate draws them on
// the full-size frame for event snapshots.
//
// Detectors are not safe for concurrent use: give each camera (or each
// goroutine) its own and Close it when done, which frees the C memory Go's
// garbage collector does not see.
package vision

import (
	"errors"
	"fmt"
	"image"
	"math"

	"gocv.io/x/gocv"

	"github.com/streamd/streamd/pkg/frame"
)

// Box is an axis-aligned rectangle in coordinates normalized to the frame:
// X and W are fractions of its width, Y and H of its height, with (0, 0) the
// top-left corner.
type Box struct {
	X, Y, W, H float64
}

// Area returns W*H, the fraction of the frame the box covers.
func (b Box) Area() float64 { return max(b.W, 0) * max(b.H, 0) }

// IoU returns the intersection over union of a and b: 1 for equal boxes, 0
// for disjoint ones (or when both are empty).
func IoU(a, b Box) float64 {
	iw := min(a.X+a.W, b.X+b.W) - max(a.X, b.X)
	ih := min(a.Y+a.H, b.Y+b.H) - max(a.Y, b.Y)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	union := a.Area() + b.Area() - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// Union returns the smallest box holding every box in boxes (the zero Box
// when there is none): the region to search for faces when motion was found
// in several places.
func Union(boxes []Box) Box {
	if len(boxes) == 0 {
		return Box{}
	}
	x0, y0 := boxes[0].X, boxes[0].Y
	x1, y1 := x0+boxes[0].W, y0+boxes[0].H
	for _, b := range boxes[1:] {
		x0, y0 = min(x0, b.X), min(y0, b.Y)
		x1, y1 = max(x1, b.X+b.W), max(y1, b.Y+b.H)
	}
	return Box{X: x0, Y: y0, W: x1 - x0, H: y1 - y0}
}

// pixels returns b in pixels of a w x h image, rounded outwards and clipped
// to the image (possibly empty).
func (b Box) pixels(w, h int) image.Rectangle {
	r := image.Rect(
		int(math.Floor(b.X*float64(w))), int(math.Floor(b.Y*float64(h))),
		int(math.Ceil((b.X+b.W)*float64(w))), int(math.Ceil((b.Y+b.H)*float64(h))),
	)
	return r.Intersect(image.Rect(0, 0, w, h))
}

// normalize turns r, in pixels of a w x h image, into a Box.
func normalize(r image.Rectangle, w, h int) Box {
	fw, fh := float64(w), float64(h)
	return Box{
		X: float64(r.Min.X) / fw, Y: float64(r.Min.Y) / fh,
		W: float64(r.Dx()) / fw, H: float64(r.Dy()) / fh,
	}
}

// ErrBadImage is wrapped by every error about a frame that cannot be
// decoded: not a JPEG or PNG, cut short, or rejected by the decoder.
var ErrBadImage = errors.New("bad image")

// ErrClosed is returned by a detector used after Close.
var ErrClosed = errors.New("detector closed")

// decodeGray decodes the JPEG or PNG b to a gray image at least minHeight
// pixels high (or the image's own height when it is smaller), scaling JPEG
// down while decoding by the largest of 1/8, 1/4, 1/2 that keeps it so. It
// returns the new Mat, which the caller must close, and the dimensions of the
// encoded image.
func decodeGray(b []byte, minHeight int) (m gocv.Mat, width, height int, err error) {
	width, height, err = decodeHeader(b)
	if err != nil {
		return m, 0, 0, err
	}
	flag := gocv.IMReadGrayScale
	if width > 0 { // JPEG: decode small
		flag = reducedGray(height, minHeight)
	}
	m, err = gocv.IMDecode(b, flag)
	if err != nil {
		return m, 0, 0, fmt.Errorf("%w: %w", ErrBadImage, err)
	}
	if m.Empty() {
		m.Close()
		return gocv.Mat{}, 0, 0, fmt.Errorf("%w: the decoder refused it", ErrBadImage)
	}
	if width == 0 { // PNG: decoded at full size
		width, height = m.Cols(), m.Rows()
	}
	return m, width, height, nil
}

// MaxPixels is the largest image decoded, in pixels (width times height):
// twice 8K UHD. Larger frame headers are refused before OpenCV sees them,
// because OpenCV's decoder throws a C++ exception past 2^30 pixels, which
// gocv does not catch: the process would abort on one forged header.
const MaxPixels = 1 << 26

// decodeHeader checks, in Go, that b is a whole JPEG or PNG of at most
// MaxPixels, and returns a JPEG's dimensions from its frame header (zeros
// for a PNG, which is decoded at full size).
//
// A JPEG without its end-of-image marker is refused: libjpeg would decode it
// anyway, filling the missing part with gray, which a motion detector would
// report as a change of half the picture.
func decodeHeader(b []byte) (width, height int, err error) {
	kind := frame.Sniff(b)
	switch kind {
	case frame.TypeJPEG, frame.TypePNG:
	default:
		return 0, 0, fmt.Errorf("%w: neither JPEG nor PNG", ErrBadImage)
	}
	if !frame.Complete(b) {
		return 0, 0, fmt.Errorf("%w: %s truncated (no end marker)", ErrBadImage, kind)
	}
	width, height = frame.Dimensions(b)
	if width <= 0 || height <= 0 {
		return 0, 0, fmt.Errorf("%w: %s without dimensions", ErrBadImage, kind)
	}
	if width*height > MaxPixels {
		return 0, 0, fmt.Errorf("%w: %dx%d is more than %d pixels", ErrBadImage, width, height, MaxPixels)
	}
	if kind == frame.TypePNG {
		return 0, 0, nil
	}
	return width, height, nil
}

// reducedGray returns the IMRead flag that decodes a JPEG height pixels high
// to gray at the smallest scale still at least minHeight high. libjpeg rounds
// scaled dimensions up.
func reducedGray(height, minHeight int) gocv.IMReadFlag {
	for _, s := range reductions {
		if (height+s.div-1)/s.div >= minHeight {
			return s.flag
		}
	}
	return gocv.IMReadGrayScale
}

// reductions are the scales libjpeg decodes gray at, smallest first.
var reductions = []struct {
	div  int
	flag gocv.IMReadFlag
}{
	{8, gocv.IMReadReducedGrayscale8},
	{4, gocv.IMReadReducedGrayscale4},
	{2, gocv.IMReadReducedGrayscale2},
}

// scaledWidth returns the width of a w x h image resized to height nh,
// keeping its aspect ratio (at least 1).
func scaledWidth(w, h, nh int) int {
	return max(1, int(math.Round(float64(w)*float64(nh)/float64(h))))
}
