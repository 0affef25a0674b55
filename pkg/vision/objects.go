package vision

import (
	"cmp"
	"fmt"
	"image"
	"slices"

	"gocv.io/x/gocv"

	"github.com/streamd/streamd/pkg/tfjs"
)

// The object detector's model: MB3-CenterNet (a MobileNetV3 CenterNet
// trained on COCO's 80 classes), as npm's @vladmandic/human@3.3.6 ships it
// in TF.js form (models/centernet.json and centernet.bin). It is rebuilt
// as a TensorFlow GraphDef in memory at start (package tfjs) and run by
// OpenCV's dnn module.
const (
	// DefaultModel is where make install (and make run) put the model.
	DefaultModel = "/usr/local/share/streamd/models/centernet.json"

	// DefaultObjectSize is the model's input, square, in pixels. The
	// model was trained at 512; at 320 it finds the three people of
	// vtest.avi's first frame as well (scores 0.51-0.70) in a third of
	// the time: 59-73 ms per inference here instead of 170-210 ms.
	DefaultObjectSize = 320

	// DefaultObjectMinScore is the lowest heatmap peak reported. It is a
	// floor for the tracker, which applies each label's own min_score
	// and threshold: a true person scores 0.5-0.7 on one frame, while
	// stray labels (skis, fire hydrant) peak at or below 0.36.
	DefaultObjectMinScore = 0.3

	// DefaultObjectNMS is the overlap (IoU) past which the weaker of two
	// boxes of the same label is dropped.
	DefaultObjectNMS = 0.5

	// DefaultObjectRegionPad widens a search region on every side by this
	// fraction of its size, so that a moving limb brings its whole body
	// into the region (Frigate pads its motion regions the same way).
	DefaultObjectRegionPad = 0.5

	// MaxObjects bounds the peaks decoded per inference: the model's own
	// post-processing keeps its top 100.
	MaxObjects = 100
)

// The model's outputs, by node name. Asking OpenCV for any name its
// network does not have (tower_0/keypoints and tower_0/wh, the model's
// signature outputs, are folded away) throws a C++ exception that aborts
// the process, so the detector asks for these only, after checking that
// the network has them.
const (
	outHeatmap = "tower_0/Sigmoid"               // 1 x 80 x S/4 x S/4, class scores
	outSizes   = "tower_0/mul"                   // 1 x 4 x S/4 x S/4, box extents in input pixels
	outPeaks   = "tower_0/max_pooling2d/MaxPool" // the heatmap's 3x3 maxima
)

// COCOLabels are the model's 80 class names, in its class order.
var COCOLabels = [80]string{
	"person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
	"traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
	"horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
	"handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
	"baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
	"wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
	"broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
	"bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
	"microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
	"teddy bear", "hair drier", "toothbrush",
}

// ObjectOptions configure an ObjectDetector; zero fields take the
// Default* values above.
type ObjectOptions struct {
	Model     string  // the model.json (DefaultModel)
	Size      int     // input size in pixels, a multiple of 32 (DefaultObjectSize)
	MinScore  float64 // lowest score reported, 0..1 (DefaultObjectMinScore)
	NMS       float64 // IoU past which same-label boxes merge, 0..1 (DefaultObjectNMS)
	RegionPad float64 // widening of a search region per side (DefaultObjectRegionPad)
}

func (o ObjectOptions) withDefaults() ObjectOptions {
	if o.Model == "" {
		o.Model = DefaultModel
	}
	if o.Size == 0 {
		o.Size = DefaultObjectSize
	}
	if o.MinScore == 0 {
		o.MinScore = DefaultObjectMinScore
	}
	if o.NMS == 0 {
		o.NMS = DefaultObjectNMS
	}
	if o.RegionPad == 0 {
		o.RegionPad = DefaultObjectRegionPad
	}
	return o
}

func (o ObjectOptions) validate() error {
	switch {
	case o.Size < 128 || o.Size > 1024 || o.Size%32 != 0:
		return fmt.Errorf("size %d: a multiple of 32 from 128 to 1024", o.Size)
	case o.MinScore <= 0 || o.MinScore >= 1:
		return fmt.Errorf("min score %g: between 0 and 1", o.MinScore)
	case o.NMS <= 0 || o.NMS > 1:
		return fmt.Errorf("nms %g: more than 0, at most 1", o.NMS)
	case o.RegionPad < 0:
		return fmt.Errorf("region pad %g: not negative", o.RegionPad)
	}
	return nil
}

// Object is one detected object.
type Object struct {
	Label string  // a COCOLabels name
	Score float64 // the heatmap peak, 0..1
	Box   Box     // in the whole frame
}

// ObjectDetector finds COCO objects (people, vehicles, animals, ...) with
// the CenterNet model. It is not safe for concurrent use (neither is an
// OpenCV network): use one per goroutine and Close it. OpenCV spreads one
// inference over every core.
type ObjectDetector struct {
	opt    ObjectOptions
	net    gocv.Net
	closed bool
}

// NewObjectDetector reads and converts the model, loads it into OpenCV and
// runs it once on a blank image to check its outputs. Errors name the
// model file: a missing file, a model that is not this one, a network
// OpenCV refuses.
func NewObjectDetector(opt ObjectOptions) (*ObjectDetector, error) {
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, fmt.Errorf("object detector: %w", err)
	}
	m, err := tfjs.Read(opt.Model)
	if err != nil {
		return nil, fmt.Errorf("object detector: %w", err)
	}
	// The guard: each output must be a node of the model, of the op
	// OpenCV keeps as a layer of that name. (gocv's GetLayerNames cannot
	// be asked: v0.31 returns freed strings.)
	for out, op := range map[string]string{outHeatmap: "Sigmoid", outSizes: "Mul", outPeaks: "MaxPool"} {
		i := slices.IndexFunc(m.Nodes, func(n tfjs.Node) bool { return n.Name == out })
		if i < 0 || m.Nodes[i].Op != op {
			return nil, fmt.Errorf("object detector: model %s: no %s node %s (not the CenterNet model?)", opt.Model, op, out)
		}
	}
	graph, err := m.GraphDef(tfjs.GraphOptions{Outputs: []string{outHeatmap, outSizes, outPeaks}, InputSize: opt.Size})
	if err != nil {
		return nil, fmt.Errorf("object detector: model %s: %w", opt.Model, err)
	}
	net, err := gocv.ReadNetFromTensorflowBytes(graph)
	if err != nil || net.Empty() {
		if err == nil {
			net.Close()
		}
		return nil, fmt.Errorf("object detector: model %s: OpenCV cannot load it: %v", opt.Model, err)
	}
	d := &ObjectDetector{opt: opt, net: net}
	blank := gocv.NewMatWithSize(opt.Size, opt.Size, gocv.MatTypeCV8UC3)
	defer blank.Close()
	if _, err := d.infer(blank, image.Rect(0, 0, opt.Size, opt.Size), opt.Size, opt.Size); err != nil {
		d.Close()
		return nil, fmt.Errorf("object detector: model %s: %w", opt.Model, err)
	}
	return d, nil
}

// Options returns the options in effect, defaults filled in.
func (d *ObjectDetector) Options() ObjectOptions { return d.opt }

// Detect returns the objects in img (a JPEG or PNG), best first, as boxes
// of the whole frame. With a region (normalized, typically the union of
// the motion boxes) it searches a square around it: the region widened by
// RegionPad, at least the model's input size in pixels, kept inside the
// frame, so a small moving person is seen at the model's resolution. A
// region wider than the frame is tall searches the whole frame, stretched.
// A frame that cannot be decoded returns an error wrapping ErrBadImage.
func (d *ObjectDetector) Detect(img []byte, region *Box) ([]Object, error) {
	if d.closed {
		return nil, fmt.Errorf("objects: %w", ErrClosed)
	}
	w, h, err := decodeHeader(img)
	if err != nil {
		return nil, fmt.Errorf("objects: decode %d bytes: %w", len(img), err)
	}
	flag := gocv.IMReadColor
	if w > 0 { // JPEG: decode as small as the search area allows
		a := image.Rect(0, 0, w, h)
		if region != nil {
			a = d.square(*region, w, h)
		}
		need := max(ceilDiv(h*d.opt.Size, max(a.Dy(), 1)), ceilDiv(h*d.opt.Size, max(a.Dx(), 1)))
		flag = reducedColor(h, need)
	}
	frame, err := gocv.IMDecode(img, flag)
	if err != nil {
		return nil, fmt.Errorf("objects: decode %d bytes: %w: %w", len(img), ErrBadImage, err)
	}
	defer frame.Close()
	if frame.Empty() {
		return nil, fmt.Errorf("objects: decode %d bytes: %w: the decoder refused it", len(img), ErrBadImage)
	}
	fw, fh := frame.Cols(), frame.Rows()
	area := image.Rect(0, 0, fw, fh)
	if region != nil {
		area = d.square(*region, fw, fh)
	}
	crop := frame
	if area != image.Rect(0, 0, fw, fh) {
		crop = frame.Region(area)
		defer crop.Close()
	}
	return d.infer(crop, area, fw, fh)
}

// square returns the search area for region in a w x h frame: a square of
// the padded region's longer side (at least the input size, at most the
// frame's shorter side) centred on it and moved inside the frame; or the
// whole frame when the padded region is wider or taller than that.
func (d *ObjectDetector) square(region Box, w, h int) image.Rectangle {
	p := d.opt.RegionPad
	r := Box{X: region.X - p*region.W, Y: region.Y - p*region.H, W: region.W * (1 + 2*p), H: region.H * (1 + 2*p)}.pixels(w, h)
	side := max(r.Dx(), r.Dy(), min(d.opt.Size, w, h))
	if side >= min(w, h) {
		return image.Rect(0, 0, w, h)
	}
	cx, cy := (r.Min.X+r.Max.X)/2, (r.Min.Y+r.Max.Y)/2
	x0 := min(max(cx-side/2, 0), w-side)
	y0 := min(max(cy-side/2, 0), h-side)
	return image.Rect(x0, y0, x0+side, y0+side)
}

// infer runs the network on img, the area of a fw x fh frame, and
// decodes its peaks into objects of the frame.
func (d *ObjectDetector) infer(img gocv.Mat, area image.Rectangle, fw, fh int) ([]Object, error) {
	s := d.opt.Size
	// The model takes RGB 0-255, stretched to its square input.
	blob := gocv.BlobFromImage(img, 1, image.Pt(s, s), gocv.NewScalar(0, 0, 0, 0), true, false)
	defer blob.Close()
	d.net.SetInput(blob, "")
	outs := d.net.ForwardLayers([]string{outHeatmap, outSizes, outPeaks})
	defer func() {
		for _, o := range outs {
			o.Close()
		}
	}()
	g := s / 4 // the output grid
	if len(outs) != 3 ||
		!slices.Equal(outs[0].Size(), []int{1, len(COCOLabels), g, g}) ||
		!slices.Equal(outs[1].Size(), []int{1, 4, g, g}) ||
		!slices.Equal(outs[2].Size(), []int{1, len(COCOLabels), g, g}) {
		var sizes [][]int
		for _, o := range outs {
			sizes = append(sizes, o.Size())
		}
		return nil, fmt.Errorf("objects: outputs of sizes %v, want 1x80x%dx%[2]d, 1x4x%[2]dx%[2]d and 1x80x%[2]dx%[2]d", sizes, g)
	}
	heat, err := outs[0].DataPtrFloat32()
	if err != nil {
		return nil, fmt.Errorf("objects: heatmap: %w", err)
	}
	sizes, err := outs[1].DataPtrFloat32()
	if err != nil {
		return nil, fmt.Errorf("objects: sizes: %w", err)
	}
	peaks, err := outs[2].DataPtrFloat32()
	if err != nil {
		return nil, fmt.Errorf("objects: peaks: %w", err)
	}
	return decodePeaks(heat, sizes, peaks, g, s, area, fw, fh, d.opt.MinScore, d.opt.NMS), nil
}

// decodePeaks turns the model's outputs (grid g x g, input s pixels) into
// objects of a fw x fh frame whose area the input showed. A peak is a cell
// that is its 3x3 maximum and at least minScore; its box is (4x - w0,
// 4y - w1, 4x + w2, 4y + w3) in input pixels.
func decodePeaks(heat, sizes, peaks []float32, g, s int, area image.Rectangle, fw, fh int, minScore, nms float64) []Object {
	cells := g * g
	type peak struct {
		class, cell int
		score       float32
	}
	var found []peak
	for c := range len(COCOLabels) {
		for i := range cells {
			v := heat[c*cells+i]
			if float64(v) >= minScore && v == peaks[c*cells+i] {
				found = append(found, peak{c, i, v})
			}
		}
	}
	slices.SortFunc(found, func(a, b peak) int { return cmp.Compare(b.score, a.score) })
	found = found[:min(len(found), MaxObjects)]
	sx := float64(area.Dx()) / float64(s)
	sy := float64(area.Dy()) / float64(s)
	var objs []Object
	for _, p := range found {
		x, y := float64(4*(p.cell%g)), float64(4*(p.cell/g))
		x0 := x - float64(sizes[p.cell])
		y0 := y - float64(sizes[cells+p.cell])
		x1 := x + float64(sizes[2*cells+p.cell])
		y1 := y + float64(sizes[3*cells+p.cell])
		b := Box{
			X: (float64(area.Min.X) + x0*sx) / float64(fw), Y: (float64(area.Min.Y) + y0*sy) / float64(fh),
			W: (x1 - x0) * sx / float64(fw), H: (y1 - y0) * sy / float64(fh),
		}
		b = clip(b)
		if b.W <= 0 || b.H <= 0 {
			continue
		}
		o := Object{Label: COCOLabels[p.class], Score: float64(p.score), Box: b}
		if slices.ContainsFunc(objs, func(k Object) bool { return k.Label == o.Label && IoU(k.Box, o.Box) > nms }) {
			continue // a stronger box of the same label covers it
		}
		objs = append(objs, o)
	}
	return objs
}

// ceilDiv returns a/b rounded up, for positive a and b.
func ceilDiv(a, b int) int { return (a + b - 1) / b }

// clip returns b cut to the frame.
func clip(b Box) Box {
	x0, y0 := max(b.X, 0), max(b.Y, 0)
	x1, y1 := min(b.X+b.W, 1), min(b.Y+b.H, 1)
	return Box{X: x0, Y: y0, W: x1 - x0, H: y1 - y0}
}

// reducedColor returns the IMRead flag that decodes a JPEG height pixels
// high in colour at the smallest scale still at least minHeight high.
func reducedColor(height, minHeight int) gocv.IMReadFlag {
	for _, s := range []struct {
		div  int
		flag gocv.IMReadFlag
	}{{8, gocv.IMReadReducedColor8}, {4, gocv.IMReadReducedColor4}, {2, gocv.IMReadReducedColor2}} {
		if (height+s.div-1)/s.div >= minHeight {
			return s.flag
		}
	}
	return gocv.IMReadColor
}

// Close frees the network and the detector's matrices. It is idempotent;
// Detect after Close returns an error.
func (d *ObjectDetector) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	return d.net.Close()
}
