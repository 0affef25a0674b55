package vision

import (
	"cmp"
	"encoding/xml"
	"fmt"
	"image"
	"io"
	"os"
	"slices"

	"gocv.io/x/gocv"
)

// Cascade files of Debian's opencv-data package.
const (
	// HaarFrontalFace is OpenCV's classic frontal face cascade: the most
	// reliable of the stock ones here (at the defaults it finds faces on
	// 84 % of the frames of opencv-doc's Megamind.avi), and the slowest.
	HaarFrontalFace = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"
	// LBPFrontalFace is the improved LBP frontal face cascade: a quarter of
	// HaarFrontalFace's cost and fewer false faces, but it misses more:
	// faces on 57 % of Megamind.avi's frames (none with glasses), and not
	// the face in messi5.jpg.
	LBPFrontalFace = "/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml"
)

// Defaults of FaceOptions, used for every zero field.
const (
	// DefaultCascade is the cascade file loaded.
	DefaultCascade = HaarFrontalFace

	// DefaultFaceHeight is the analysis height in pixels: 640x360 for 16:9.
	// A 720p JPEG decodes at 1/2 scale to exactly this. The cascades' own
	// window is 24 pixels, so at 360 rows the smallest face found is about
	// 1/15 of the frame height (50 pixels of a 720p frame); detecting
	// smaller faces needs a larger Height and costs about its square.
	DefaultFaceHeight = 360

	// DefaultScaleFactor is the step between the cascade's scales. 1.2
	// halves the cost but found faces on 63 % of Megamind.avi's frames
	// instead of 84 %.
	DefaultScaleFactor = 1.1

	// DefaultMinNeighbors is how many overlapping raw detections a face
	// needs. OpenCV's default of 3 let the Haar cascade report a second,
	// false face in messi5.jpg and two to four faces on a third of
	// Megamind.avi's frames. At 5 a second face, often false (in hair),
	// remains on about a fifth of them; 7 halves that and loses 5 % of the
	// true faces.
	DefaultMinNeighbors = 5

	// DefaultMinSizeFraction is the smallest face looked for, as a fraction
	// of the frame height: 0.07 is 25 pixels at 360 rows, just above the
	// cascades' 24-pixel window.
	DefaultMinSizeFraction = 0.07

	// DefaultRegionPad widens a motion region on every side by this
	// fraction of its width and height before searching it: motion boxes
	// of a walking person cut through the head when only the legs moved.
	DefaultRegionPad = 0.25
)

// FaceOptions configure a FaceDetector. Zero fields take the Default*
// values above.
type FaceOptions struct {
	Cascade         string  // cascade XML file (DefaultCascade; LBPFrontalFace is faster)
	ScaleFactor     float64 // step between scales, > 1 (DefaultScaleFactor)
	MinNeighbors    int     // raw detections a face needs (DefaultMinNeighbors)
	MinSizeFraction float64 // smallest face, fraction of the frame height (DefaultMinSizeFraction)
	Height          int     // analysis height in pixels (DefaultFaceHeight)
	RegionPad       float64 // widening of a search region per side, fraction of it (DefaultRegionPad)
}

func (o FaceOptions) withDefaults() FaceOptions {
	if o.Cascade == "" {
		o.Cascade = DefaultCascade
	}
	if o.ScaleFactor == 0 {
		o.ScaleFactor = DefaultScaleFactor
	}
	if o.MinNeighbors == 0 {
		o.MinNeighbors = DefaultMinNeighbors
	}
	if o.MinSizeFraction == 0 {
		o.MinSizeFraction = DefaultMinSizeFraction
	}
	if o.Height == 0 {
		o.Height = DefaultFaceHeight
	}
	if o.RegionPad == 0 {
		o.RegionPad = DefaultRegionPad
	}
	return o
}

func (o FaceOptions) validate() error {
	switch {
	case o.ScaleFactor <= 1:
		return fmt.Errorf("scale factor %g: more than 1", o.ScaleFactor)
	case o.MinNeighbors < 0:
		return fmt.Errorf("min neighbors %d: not negative", o.MinNeighbors)
	case o.MinSizeFraction < 0 || o.MinSizeFraction > 1:
		return fmt.Errorf("min size fraction %g: 0-1", o.MinSizeFraction)
	case o.Height < 24:
		return fmt.Errorf("height %d: at least 24 pixels (the cascade window)", o.Height)
	case o.RegionPad < 0:
		return fmt.Errorf("region pad %g: not negative", o.RegionPad)
	}
	return nil
}

// FaceDetector finds frontal faces with an OpenCV cascade classifier. It is
// not safe for concurrent use (neither is the classifier): use one per
// goroutine and Close it.
//
// Cost per 720p JPEG at the defaults (BenchmarkFaces720p, decode included,
// on this 2-core machine; OpenCV spreads the search over both cores):
// searching the whole frame with the Haar cascade takes 97 ms (182 ms of
// CPU), with LBPFrontalFace 27 ms (49 ms of CPU); searching a motion region
// twice a face's size takes 10 ms (17 ms of CPU). The cost follows the area
// searched, so an analyzer should look for faces only where motion is.
type FaceDetector struct {
	opt     FaceOptions
	cascade gocv.CascadeClassifier
	small   gocv.Mat // frame resized to the analysis height
	eq      gocv.Mat // equalized search area
	closed  bool
}

// NewFaceDetector loads the cascade and returns a FaceDetector, or an error
// naming the cascade file when it is missing or is not a cascade, or naming
// an invalid option. The file is checked in Go first: OpenCV throws an
// uncaught C++ exception, aborting the whole process, on a file that is not
// a cascade.
func NewFaceDetector(opt FaceOptions) (*FaceDetector, error) {
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, fmt.Errorf("face detector: %w", err)
	}
	if err := checkCascade(opt.Cascade); err != nil {
		return nil, fmt.Errorf("face detector: %w", err)
	}
	cc := gocv.NewCascadeClassifier()
	if !cc.Load(opt.Cascade) {
		cc.Close()
		return nil, fmt.Errorf("face detector: cascade %s: not a cascade classifier OpenCV can load", opt.Cascade)
	}
	return &FaceDetector{opt: opt, cascade: cc, small: gocv.NewMat(), eq: gocv.NewMat()}, nil
}

// maxCascadeBytes bounds the cascade files read: the stock ones are 0.05-1 MB.
const maxCascadeBytes = 64 << 20

// checkCascade reports whether path holds an OpenCV cascade classifier in
// XML, the stock files' format: well-formed to its end, an opencv_storage
// whose first node is a cascade (the current format, with its stage and
// feature types, window size and stages, or the old Haar format).
//
// This must be checked in Go: OpenCV's Load throws a C++ exception on
// anything else (a missing file gives false, but a truncated cascade, an
// empty file or /etc/passwd throw), which gocv does not catch, so the whole
// process aborts. A file that passes can still be a damaged cascade with
// bad numbers inside; that is beyond this check.
func checkCascade(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cascade: %w", err)
	}
	defer f.Close()
	bad := func(why string, args ...any) error {
		return fmt.Errorf("cascade %s: not an OpenCV cascade classifier in XML: "+why, append([]any{path}, args...)...)
	}
	dec := xml.NewDecoder(io.LimitReader(f, maxCascadeBytes))
	var (
		depth    int
		root     string
		node     string // the first top-level node
		typeID   string
		children = map[string]bool{} // names of its children
	)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return bad("%v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1:
				root = t.Name.Local
			case depth == 2 && node == "":
				node = t.Name.Local
				for _, a := range t.Attr {
					if a.Name.Local == "type_id" {
						typeID = a.Value
					}
				}
			case depth == 3 && node != "":
				children[t.Name.Local] = true
			}
		case xml.EndElement:
			depth--
		}
	}
	has := func(names ...string) bool {
		for _, n := range names {
			if !children[n] {
				return false
			}
		}
		return true
	}
	switch {
	case root != "opencv_storage":
		return bad("root element %q, want opencv_storage", root)
	case depth != 0:
		return bad("cut short")
	case typeID == "opencv-haar-classifier" && has("size", "stages"):
		return nil
	case (typeID == "opencv-cascade-classifier" || node == "cascade") &&
		has("stageType", "featureType", "height", "width", "stages", "features"):
		return nil
	}
	return bad("first node %q (type_id %q) is not a cascade", node, typeID)
}

// Options returns the options in effect, defaults filled in.
func (d *FaceDetector) Options() FaceOptions { return d.opt }

// Detect returns the faces in img, a JPEG (or PNG), largest first, as boxes
// of the whole frame. With a region (normalized, typically the Union of the
// motion boxes) it searches only that region widened by RegionPad, which is
// faster in proportion; a region too small to hold a face gives none. A
// frame that cannot be decoded returns an error wrapping ErrBadImage.
func (d *FaceDetector) Detect(img []byte, region *Box) ([]Box, error) {
	if d.closed {
		return nil, fmt.Errorf("faces: %w", ErrClosed)
	}
	dec, _, _, err := decodeGray(img, d.opt.Height)
	if err != nil {
		return nil, fmt.Errorf("faces: decode %d bytes: %w", len(img), err)
	}
	defer dec.Close()
	h := min(d.opt.Height, dec.Rows())
	w := scaledWidth(dec.Cols(), dec.Rows(), h)
	src := dec
	if dec.Rows() != h || dec.Cols() != w {
		gocv.Resize(dec, &d.small, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
		src = d.small
	}

	minSize := max(1, int(d.opt.MinSizeFraction*float64(h)+0.5))
	area := image.Rect(0, 0, w, h)
	if region != nil {
		p := d.opt.RegionPad
		area = Box{
			X: region.X - p*region.W, Y: region.Y - p*region.H,
			W: region.W * (1 + 2*p), H: region.H * (1 + 2*p),
		}.pixels(w, h)
		if area.Dx() < minSize || area.Dy() < minSize {
			return nil, nil
		}
	}
	// Equalize only the area searched, so that its own contrast counts
	// (a face in a dark doorway of a bright scene).
	if area == image.Rect(0, 0, w, h) {
		gocv.EqualizeHist(src, &d.eq)
	} else {
		crop := src.Region(area)
		gocv.EqualizeHist(crop, &d.eq)
		crop.Close()
	}
	rects := d.cascade.DetectMultiScaleWithParams(d.eq, d.opt.ScaleFactor, d.opt.MinNeighbors, 0,
		image.Pt(minSize, minSize), image.Point{})
	if len(rects) == 0 {
		return nil, nil
	}
	slices.SortFunc(rects, func(a, b image.Rectangle) int {
		return cmp.Compare(b.Dx()*b.Dy(), a.Dx()*a.Dy())
	})
	faces := make([]Box, len(rects))
	for i, r := range rects {
		faces[i] = normalize(r.Add(area.Min), w, h)
	}
	return faces, nil
}

// Close frees the classifier and the detector's matrices. It is idempotent;
// Detect after Close returns an error.
func (d *FaceDetector) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	d.small.Close()
	d.eq.Close()
	return d.cascade.Close()
}
