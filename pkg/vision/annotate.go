package vision

import (
	"fmt"
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
)

// Annotate decodes img (JPEG or PNG) at full size, draws the motion boxes in
// MotionColor and the faces in FaceColor over it, and returns it as a JPEG of
// the given quality (1-100; 0: DefaultQuality), for event snapshots. Lines
// are about 1/240 of the frame height thick, so they read the same at every
// resolution. It costs a full decode and encode: about 10 ms for 720p
// (BenchmarkAnnotate720p).
func Annotate(img []byte, motion, faces []Box, quality int) ([]byte, error) {
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
	thick := max(2, h/240)
	for _, b := range motion {
		gocv.Rectangle(&m, b.pixels(w, h), MotionColor, thick)
	}
	for _, b := range faces {
		gocv.Rectangle(&m, b.pixels(w, h), FaceColor, thick)
	}
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
