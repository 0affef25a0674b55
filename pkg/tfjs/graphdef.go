package tfjs

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// GraphOptions choose what GraphDef builds.
type GraphOptions struct {
	// Outputs are the nodes the graph must compute; every node none of
	// them needs is left out. Empty: the model's signature outputs.
	Outputs []string
	// InputSize, when not zero, is a new square input size in pixels for
	// the model's one NHWC input: its shape becomes 1 x InputSize x
	// InputSize x C, and each constant resize target is scaled by
	// InputSize over the old size (which must come out whole).
	InputSize int
}

// supported are the ops GraphDef passes through, as OpenCV 4.6's
// TensorFlow importer reads them; anything else is refused by name.
var supported = []string{
	"Placeholder", "Const", "Identity", "Conv2D", "DepthwiseConv2dNative", "BiasAdd",
	"Add", "AddV2", "Sub", "Mul", "RealDiv", "Relu", "Relu6", "Sigmoid", "Tanh", "Mean",
	"MaxPool", "AvgPool", "ConcatV2", "ResizeBilinear", "ResizeNearestNeighbor", "Reshape",
}

// activations are the fused activations GraphDef splits out.
var activations = []string{"Relu", "Relu6", "Sigmoid", "Tanh", "Elu"}

// GraphDef returns the model as a binary TensorFlow GraphDef (see the
// package comment for what is rewritten), or an error naming the node
// that cannot be converted.
func (m *Model) GraphDef(opt GraphOptions) ([]byte, error) {
	outs := opt.Outputs
	if len(outs) == 0 {
		outs = m.Outputs
	}
	byName := make(map[string]*Node, len(m.Nodes))
	for i := range m.Nodes {
		byName[m.Nodes[i].Name] = &m.Nodes[i]
	}
	// Keep what the outputs need, in file order (TF.js writes producers
	// before consumers, which OpenCV's importer expects).
	keep := map[string]bool{}
	stack := []string{}
	for _, o := range outs {
		if byName[o] == nil {
			return nil, fmt.Errorf("graphdef: output %q: no such node", o)
		}
		stack = append(stack, o)
	}
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if keep[name] {
			continue
		}
		keep[name] = true
		for _, in := range byName[name].Input {
			in = inputNode(in)
			if byName[in] == nil {
				return nil, fmt.Errorf("graphdef: node %s: input %q: no such node", name, in)
			}
			stack = append(stack, in)
		}
	}

	scale := [2]int{1, 1} // numerator, denominator of the resize scaling
	resizeTargets := map[string]bool{}
	inputs := map[string]Node{} // the rewritten placeholders
	if opt.InputSize != 0 {
		if opt.InputSize < 32 || opt.InputSize > 4096 {
			return nil, fmt.Errorf("graphdef: input size %d: 32-4096", opt.InputSize)
		}
		for _, n := range m.Nodes {
			switch {
			case !keep[n.Name]:
			case n.Op == "ResizeBilinear" || n.Op == "ResizeNearestNeighbor":
				if len(n.Input) == 2 {
					resizeTargets[inputNode(n.Input[1])] = true
				}
			case n.Op == "Placeholder":
				if len(inputs) > 0 {
					return nil, fmt.Errorf("graphdef: input size: the model has more than one input")
				}
				old, err := resizeInput(&n, opt.InputSize)
				if err != nil {
					return nil, fmt.Errorf("graphdef: input %s: %w", n.Name, err)
				}
				scale = [2]int{opt.InputSize, old}
				inputs[n.Name] = n
			}
		}
		if len(inputs) == 0 {
			return nil, fmt.Errorf("graphdef: input size: the outputs need no input")
		}
	}

	var g pbuf
	for _, n := range m.Nodes {
		if !keep[n.Name] {
			continue
		}
		var err error
		switch n.Op {
		case "_FusedConv2D", "FusedDepthwiseConv2dNative":
			err = writeFused(&g, n)
		case "Placeholder":
			if r, ok := inputs[n.Name]; ok {
				n = r
			}
			err = writeNode(&g, n.Name, n.Op, n.Input, n.Attr, nil)
		case "Const":
			t := m.consts[n.Name]
			if resizeTargets[n.Name] {
				t, err = scaleSizes(t, scale)
				if err != nil {
					return nil, fmt.Errorf("graphdef: resize target %s: %w", n.Name, err)
				}
			}
			err = writeNode(&g, n.Name, n.Op, nil, n.Attr, &t)
		default:
			if !slices.Contains(supported, n.Op) {
				return nil, fmt.Errorf("graphdef: node %s: op %s is not one OpenCV's importer is given", n.Name, n.Op)
			}
			err = writeNode(&g, n.Name, n.Op, n.Input, n.Attr, nil)
		}
		if err != nil {
			return nil, err
		}
	}
	// versions { producer: 27 }: any GraphDef version OpenCV reads.
	var v pbuf
	v.varint(1, 27)
	g.bytes(4, v.b)
	return g.b, nil
}

// inputNode strips an input's control marker (^) and output index (:1).
func inputNode(in string) string {
	in = strings.TrimPrefix(in, "^")
	if i := strings.LastIndexByte(in, ':'); i >= 0 {
		in = in[:i]
	}
	return in
}

// resizeInput sets a Placeholder's NHWC shape to size x size, returning
// the old size.
func resizeInput(n *Node, size int) (int, error) {
	a, ok := n.Attr["shape"]
	if !ok || a.Shape == nil {
		return 0, fmt.Errorf("no shape")
	}
	dims, err := a.Shape.dims()
	if err != nil {
		return 0, err
	}
	if len(dims) != 4 || dims[1] != dims[2] || dims[1] <= 0 {
		return 0, fmt.Errorf("shape %v is not a square NHWC image", dims)
	}
	shape := *a.Shape
	shape.Dim = slices.Clone(shape.Dim)
	shape.Dim[1].Size = strconv.Itoa(size)
	shape.Dim[2].Size = strconv.Itoa(size)
	attr := make(map[string]Attr, len(n.Attr))
	for k, v := range n.Attr {
		attr[k] = v
	}
	attr["shape"] = Attr{Shape: &shape}
	n.Attr = attr
	return dims[1], nil
}

// scaleSizes scales an int32 [height, width] constant by s[0]/s[1].
func scaleSizes(t Tensor, s [2]int) (Tensor, error) {
	if t.DType != "DT_INT32" || len(t.Int32) != 2 {
		return t, fmt.Errorf("not an int32 [height, width]")
	}
	out := Tensor{DType: t.DType, Shape: t.Shape, Int32: make([]int32, 2)}
	for i, v := range t.Int32 {
		if int(v)*s[0]%s[1] != 0 {
			return t, fmt.Errorf("%d x %d/%d is not whole: choose an input size that divides evenly", v, s[0], s[1])
		}
		out.Int32[i] = int32(int(v) * s[0] / s[1])
	}
	return out, nil
}

// writeFused writes a fused convolution as convolution, BiasAdd and
// activation. The last of them takes the fused node's name, so its
// consumers are unchanged.
func writeFused(g *pbuf, n Node) error {
	fo := n.Attr["fused_ops"].List
	if fo == nil {
		return fmt.Errorf("graphdef: node %s: no fused_ops", n.Name)
	}
	var ops []string
	for _, s := range fo.S {
		op, err := decodeS(s)
		if err != nil {
			return fmt.Errorf("graphdef: node %s: fused_ops: %w", n.Name, err)
		}
		ops = append(ops, op)
	}
	if len(ops) == 0 || ops[0] != "BiasAdd" || len(ops) > 2 || (len(ops) == 2 && !slices.Contains(activations, ops[1])) {
		return fmt.Errorf("graphdef: node %s: fused ops %v (BiasAdd and at most one of %v are split)", n.Name, ops, activations)
	}
	if len(n.Input) != 3 {
		return fmt.Errorf("graphdef: node %s: %d inputs, want input, filter and bias", n.Name, len(n.Input))
	}
	conv := "Conv2D"
	if n.Op == "FusedDepthwiseConv2dNative" {
		conv = "DepthwiseConv2dNative"
	}
	convAttr := map[string]Attr{}
	for _, k := range []string{"T", "strides", "padding", "data_format", "dilations", "use_cudnn_on_gpu"} {
		if a, ok := n.Attr[k]; ok {
			convAttr[k] = a
		}
	}
	if a, ok := n.Attr["explicit_paddings"]; ok && a.List != nil && len(a.List.I) > 0 {
		convAttr["explicit_paddings"] = a
	}
	biasAttr := map[string]Attr{"T": n.Attr["T"]}
	if a, ok := n.Attr["data_format"]; ok {
		biasAttr["data_format"] = a
	}
	convName, biasName := n.Name+"/split_conv", n.Name
	if len(ops) == 2 {
		biasName = n.Name + "/split_bias"
	}
	if err := writeNode(g, convName, conv, n.Input[:2], convAttr, nil); err != nil {
		return err
	}
	if err := writeNode(g, biasName, "BiasAdd", []string{convName, n.Input[2]}, biasAttr, nil); err != nil {
		return err
	}
	if len(ops) == 2 {
		return writeNode(g, n.Name, ops[1], []string{biasName}, map[string]Attr{"T": n.Attr["T"]}, nil)
	}
	return nil
}

// TensorFlow's DataType numbers.
var dataTypes = map[string]uint64{
	"DT_FLOAT": 1, "DT_DOUBLE": 2, "DT_INT32": 3, "DT_UINT8": 4, "DT_INT16": 5, "DT_INT8": 6,
	"DT_STRING": 7, "DT_INT64": 9, "DT_BOOL": 10, "DT_HALF": 19,
}

// writeNode appends a NodeDef (GraphDef field 1). A Const's value is t.
func writeNode(g *pbuf, name, op string, inputs []string, attr map[string]Attr, t *Tensor) error {
	var n pbuf
	n.str(1, name)
	n.str(2, op)
	for _, in := range inputs {
		n.str(3, in)
	}
	keys := make([]string, 0, len(attr))
	for k := range attr {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var v pbuf
		var err error
		if k == "value" && t != nil {
			err = writeTensor(&v, *t)
		} else {
			err = writeAttr(&v, attr[k])
		}
		if err != nil {
			return fmt.Errorf("graphdef: node %s: attr %s: %w", name, k, err)
		}
		var e pbuf // map entry: key 1, value 2
		e.str(1, k)
		e.bytes(2, v.b)
		n.bytes(5, e.b)
	}
	g.bytes(1, n.b)
	return nil
}

// writeTensor writes AttrValue.tensor: float data as tensor_content, int32
// data in int_val, where OpenCV reads constant axes and sizes.
func writeTensor(v *pbuf, t Tensor) error {
	var tp pbuf
	tp.varint(1, dataTypes[t.DType])
	var sh pbuf
	for _, d := range t.Shape {
		var dim pbuf
		dim.varint(1, uint64(d))
		sh.bytes(2, dim.b)
	}
	tp.bytes(2, sh.b)
	switch t.DType {
	case "DT_FLOAT":
		raw := make([]byte, 4*len(t.Float32))
		for i, f := range t.Float32 {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
		}
		tp.bytes(4, raw)
	case "DT_INT32":
		var packed pbuf
		for _, x := range t.Int32 {
			packed.rawVarint(uint64(int64(x)))
		}
		tp.bytes(7, packed.b)
	default:
		return fmt.Errorf("tensor type %s", t.DType)
	}
	v.bytes(8, tp.b)
	return nil
}

// writeAttr writes an AttrValue from its JSON form.
func writeAttr(v *pbuf, a Attr) error {
	switch {
	case a.S != nil:
		s, err := decodeS(*a.S)
		if err != nil {
			return err
		}
		v.str(2, s)
	case a.I != nil:
		i, err := strconv.ParseInt(*a.I, 10, 64)
		if err != nil {
			return err
		}
		v.forceVarint(3, uint64(i))
	case a.F != nil:
		v.fixed32(4, math.Float32bits(float32(*a.F)))
	case a.B != nil:
		b := uint64(0)
		if *a.B {
			b = 1
		}
		v.forceVarint(5, b)
	case a.Type != nil:
		dt, ok := dataTypes[*a.Type]
		if !ok {
			return fmt.Errorf("type %s", *a.Type)
		}
		v.forceVarint(6, dt)
	case a.Shape != nil:
		dims, err := a.Shape.dims()
		if err != nil {
			return err
		}
		var sh pbuf
		for _, d := range dims {
			var dim pbuf
			dim.forceVarint(1, uint64(int64(d)))
			sh.bytes(2, dim.b)
		}
		if a.Shape.UnknownRank {
			sh.forceVarint(3, 1)
		}
		v.bytes(7, sh.b)
	case a.List != nil:
		var l pbuf
		for _, s := range a.List.S {
			b, err := decodeS(s)
			if err != nil {
				return err
			}
			l.str(2, b)
		}
		if len(a.List.I) > 0 {
			var packed pbuf
			for _, s := range a.List.I {
				i, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return err
				}
				packed.rawVarint(uint64(i))
			}
			l.bytes(3, packed.b)
		}
		if len(a.List.F) > 0 {
			var packed pbuf
			for _, f := range a.List.F {
				packed.b = binary.LittleEndian.AppendUint32(packed.b, math.Float32bits(float32(f)))
			}
			l.bytes(4, packed.b)
		}
		if len(a.List.B) > 0 {
			var packed pbuf
			for _, b := range a.List.B {
				x := uint64(0)
				if b {
					x = 1
				}
				packed.rawVarint(x)
			}
			l.bytes(5, packed.b)
		}
		if len(a.List.Type) > 0 {
			var packed pbuf
			for _, s := range a.List.Type {
				dt, ok := dataTypes[s]
				if !ok {
					return fmt.Errorf("type %s", s)
				}
				packed.rawVarint(dt)
			}
			l.bytes(6, packed.b)
		}
		v.bytes(1, l.b)
	case a.Tensor != nil:
		return fmt.Errorf("a tensor attribute outside a Const")
	default:
		return fmt.Errorf("an attribute kind this does not write")
	}
	return nil
}

// pbuf appends protocol buffer fields (wire format), just the kinds a
// GraphDef needs.
type pbuf struct{ b []byte }

func (p *pbuf) rawVarint(x uint64) { p.b = binary.AppendUvarint(p.b, x) }

func (p *pbuf) tag(field, wire int) { p.rawVarint(uint64(field)<<3 | uint64(wire)) }

// varint writes a varint field, leaving out zero (proto3's default).
func (p *pbuf) varint(field int, x uint64) {
	if x != 0 {
		p.forceVarint(field, x)
	}
}

// forceVarint writes a varint field even when zero: a oneof member must
// be present to say which member is set.
func (p *pbuf) forceVarint(field int, x uint64) {
	p.tag(field, 0)
	p.rawVarint(x)
}

func (p *pbuf) fixed32(field int, x uint32) {
	p.tag(field, 5)
	p.b = binary.LittleEndian.AppendUint32(p.b, x)
}

func (p *pbuf) bytes(field int, b []byte) {
	p.tag(field, 2)
	p.rawVarint(uint64(len(b)))
	p.b = append(p.b, b...)
}

func (p *pbuf) str(field int, s string) {
	p.tag(field, 2)
	p.rawVarint(uint64(len(s)))
	p.b = append(p.b, s...)
}
