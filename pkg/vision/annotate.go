package vision

import (
	"fmt"
	"image"
	"image/color"

	"gocv.io/x/gocv"
)

// DefaultQuality is the JPEG quality of Annotate when given 0: the same as
// streamd's cameras.
const DefaultQuality = 80

// Colours of the boxes Annotate draws.
var (
	MotionColor = color.RGBA{R: 255, G: 200, A: 255} // amber
	FaceColor   = color.RGBA{R: 40, G: 220, B: 40, A: 255}
	ObjectColor = color.RGBA{R: 60, G: 160, B: 255, A: 255} // sky blue
)

// Annotate decodes img (JPEG or PNG) at full size, draws the motion boxes in
// MotionColor and the faces in FaceColor over it, and returns it as a JPEG of
// the given quality (1-100; 0: DefaultQuality), for event snapshots. Lines
// are about 1/240 of the frame height thick, so they read the same at every
// resolution. It costs a full decode and encode: about 10 ms for 720p
// (BenchmarkAnnotate720p).
func Annotate(img []byte, motion, faces []Box, quality int) ([]byte, error) {
	return annotate(img, quality, func(m *gocv.Mat, w, h, thick int) {
		for _, b := range motion {
			gocv.Rectangle(m, b.pixels(w, h), MotionColor, thick)
		}
		for _, b := range faces {
			gocv.Rectangle(m, b.pixels(w, h), FaceColor, thick)
		}
	})
}

// Labeled is a box with its caption ("person 0.64").
type Labeled struct {
	Box  Box
	Text string
}

// AnnotateObjects is Annotate for object snapshots: each box in ObjectColor
// with its caption on a filled tag above it (below it when the box touches
// the top of the frame), moved left to stay in the frame.
func AnnotateObjects(img []byte, objs []Labeled, quality int) ([]byte, error) {
	return annotate(img, quality, func(m *gocv.Mat, w, h, thick int) {
		scale := float64(h) / 720 * 0.8
		for _, o := range objs {
			r := o.Box.pixels(w, h)
			gocv.Rectangle(m, r, ObjectColor, thick)
			if o.Text == "" {
				continue
			}
			size := gocv.GetTextSize(o.Text, gocv.FontHersheySimplex, scale, thick/2+1)
			pad := thick
			top := r.Min.Y - size.Y - 2*pad
			if top < 0 {
				top = r.Max.Y
			}
			tag := image.Rect(r.Min.X-thick/2, top, r.Min.X+size.X+2*pad, top+size.Y+2*pad)
			if over := tag.Max.X - w; over > 0 { // keep it in the frame
				tag = tag.Sub(image.Pt(min(over, tag.Min.X), 0))
			}
			gocv.Rectangle(m, tag, ObjectColor, -1)
			gocv.PutText(m, o.Text, image.Pt(tag.Min.X+pad, tag.Max.Y-pad), gocv.FontHersheySimplex, scale, color.RGBA{A: 255}, thick/2+1)
		}
	})
}

// annotate decodes img, lets draw draw on it and encodes the result.
func annotate(img []byte, quality int, draw func(m *gocv.Mat, w, h, thick int)) ([]byte, error) {
	if quality == 0 {
		quality = DefaultQuality
	}
	if quality < 1 || quality > 100 {
		return nil, fmt.Errorf("annotate: quality %d: 1-100", quality)
	}
	if _, _, err := decodeHeader(img); err != nil {
		return nil, fmt.Errorf("annotate: decode %d bytes: %w", len(img), err)
	}
	m, err := gocv.IMDecode(img, gocv.IMReadColor)
	if err != nil || m.Empty() {
		m.Close()
		return nil, fmt.Errorf("annotate: decode %d bytes: %w: the decoder refused it", len(img), ErrBadImage)
	}
	defer m.Close()
	w, h := m.Cols(), m.Rows()
	draw(&m, w, h, max(2, h/240))
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, quality})
	if err != nil {
		return nil, fmt.Errorf("annotate: encode JPEG: %w", err)
	}
	defer buf.Close()
	// The buffer's bytes live in C memory freed by Close: copy them.
	out := append([]byte(nil), buf.GetBytes()...)
	if len(out) == 0 {
		return nil, fmt.Errorf("annotate: encode JPEG: no output")
	}
	return out, nil
}
