// Package tfjs reads a TensorFlow.js graph model (a model.json and the
// weight files it names) and rebuilds it as a frozen TensorFlow GraphDef,
// the format OpenCV's dnn module reads (readNetFromTensorflow). It is pure
// Go: the analyzer converts at start-up, in memory, so the installed model
// stays the published files and nothing converted is kept on disk.
//
// Why a rebuild and not a copy: TF.js graph models are GraphDefs written
// as JSON, but with the weights moved out (often as float16), and with
// TensorFlow's grappler fusions (_FusedConv2D, FusedDepthwiseConv2dNative)
// that OpenCV 4.6 does not know. GraphDef therefore
//   - expands float16 weights to float32 (OpenCV reads float32);
//   - splits each fused convolution into the convolution, a BiasAdd and
//     its activation, named so that every consumer still finds its input;
//   - writes int32 constants into int_val, where OpenCV reads axes and
//     sizes (it dereferences int_val directly for ConcatV2's axis, and a
//     tensor_content there crashes it);
//   - keeps only the nodes the requested outputs need, which cuts off
//     post-processing (TopKV2, gathers) that OpenCV cannot run;
//   - can set another square input size, rewriting the input's shape and
//     every constant resize target in proportion.
//
// Unknown ops, quantizations and attribute kinds are refused with an error
// naming the node: OpenCV aborts the process on a graph it cannot import,
// so nothing doubtful may reach it.
package tfjs

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// MaxModelBytes bounds a model.json and the sum of its weight files: the
// models this is for are a few MB; a file far larger is not one of them.
const MaxModelBytes = 256 << 20

// ErrBadModel is wrapped by every error about a model's contents.
var ErrBadModel = errors.New("not a TF.js graph model this reads")

// Model is a TF.js graph model: its nodes and its weights, decoded.
type Model struct {
	// Path is the model.json read.
	Path string
	// Nodes are the graph's nodes in file order.
	Nodes []Node
	// Inputs and Outputs are the model's signature, by node name.
	Inputs, Outputs []string

	consts map[string]Tensor // the weights, by node name
}

// Node is one node of a graph.
type Node struct {
	Name  string
	Op    string
	Input []string
	Attr  map[string]Attr
}

// Attr is an attribute value as TF.js writes it (the JSON form of
// TensorFlow's AttrValue); exactly one field is set.
type Attr struct {
	S      *string     `json:"s,omitempty"` // base64 bytes
	I      *string     `json:"i,omitempty"` // an int64 as a string
	F      *float64    `json:"f,omitempty"`
	B      *bool       `json:"b,omitempty"`
	Type   *string     `json:"type,omitempty"` // "DT_FLOAT", ...
	Shape  *Shape      `json:"shape,omitempty"`
	Tensor *TensorJSON `json:"tensor,omitempty"`
	List   *List       `json:"list,omitempty"`
}

// List is a list attribute.
type List struct {
	S    []string  `json:"s,omitempty"`
	I    []string  `json:"i,omitempty"`
	F    []float64 `json:"f,omitempty"`
	B    []bool    `json:"b,omitempty"`
	Type []string  `json:"type,omitempty"`
}

// Shape is a tensor shape; a size of -1 is unknown.
type Shape struct {
	Dim []struct {
		Size string `json:"size"`
	} `json:"dim"`
	UnknownRank bool `json:"unknownRank,omitempty"`
}

// TensorJSON is a Const node's value as TF.js writes it: its type and
// shape, the data being in the weight files.
type TensorJSON struct {
	DType       string `json:"dtype"`
	TensorShape *Shape `json:"tensorShape"`
}

// Tensor is a constant's data: Float32 for DT_FLOAT, Int32 for DT_INT32.
type Tensor struct {
	DType   string
	Shape   []int
	Float32 []float32
	Int32   []int32
}

// dims returns the shape's sizes.
func (s *Shape) dims() ([]int, error) {
	if s == nil {
		return nil, nil
	}
	out := make([]int, len(s.Dim))
	for i, d := range s.Dim {
		n, err := strconv.Atoi(d.Size)
		if err != nil {
			return nil, fmt.Errorf("shape dim %q: %w", d.Size, err)
		}
		out[i] = n
	}
	return out, nil
}

type modelJSON struct {
	Format    string `json:"format"`
	Signature struct {
		Inputs  map[string]json.RawMessage `json:"inputs"`
		Outputs map[string]json.RawMessage `json:"outputs"`
	} `json:"signature"`
	Topology struct {
		Node []struct {
			Name  string          `json:"name"`
			Op    string          `json:"op"`
			Input []string        `json:"input"`
			Attr  map[string]Attr `json:"attr"`
		} `json:"node"`
	} `json:"modelTopology"`
	Manifest []struct {
		Paths   []string `json:"paths"`
		Weights []struct {
			Name         string `json:"name"`
			Shape        []int  `json:"shape"`
			DType        string `json:"dtype"`
			Quantization *struct {
				DType         string `json:"dtype"`
				OriginalDType string `json:"original_dtype"`
			} `json:"quantization"`
		} `json:"weights"`
	} `json:"weightsManifest"`
}

// Read reads the model.json at path and the weight files it names (paths
// relative to its directory, as TF.js loads them), and checks that the
// weights are exactly as long as the manifest says and that every Const
// node has its data.
func Read(path string) (*Model, error) {
	js, err := readLimited(path, MaxModelBytes)
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	var mj modelJSON
	if err := json.Unmarshal(js, &mj); err != nil {
		return nil, fmt.Errorf("read model %s: %w: %w", path, ErrBadModel, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("read model %s: %w: "+format, append([]any{path, ErrBadModel}, args...)...)
	}
	if mj.Format != "graph-model" {
		return nil, bad("format %q, want graph-model", mj.Format)
	}
	if len(mj.Topology.Node) == 0 {
		return nil, bad("no nodes")
	}
	m := &Model{Path: path, consts: map[string]Tensor{}}
	for name := range mj.Signature.Inputs {
		m.Inputs = append(m.Inputs, name)
	}
	for name := range mj.Signature.Outputs {
		m.Outputs = append(m.Outputs, name)
	}
	for _, n := range mj.Topology.Node {
		m.Nodes = append(m.Nodes, Node{Name: n.Name, Op: n.Op, Input: n.Input, Attr: n.Attr})
	}
	total := len(js)
	for _, group := range mj.Manifest {
		var data []byte
		for _, p := range group.Paths {
			if filepath.IsAbs(p) || filepath.Clean(p) != filepath.Base(p) {
				return nil, bad("weight path %q: not a file beside the model", p)
			}
			b, err := readLimited(filepath.Join(filepath.Dir(path), p), MaxModelBytes-total)
			if err != nil {
				return nil, fmt.Errorf("read model %s: weights: %w", path, err)
			}
			total += len(b)
			data = append(data, b...)
		}
		off := 0
		for _, w := range group.Weights {
			count := 1
			for _, d := range w.Shape {
				if d < 0 || (d > 0 && count > math.MaxInt32/d) {
					return nil, bad("weight %s: shape %v", w.Name, w.Shape)
				}
				count *= d
			}
			size, stored := 4, w.DType
			if w.Quantization != nil {
				stored = w.Quantization.DType
				if stored != "float16" || w.DType != "float32" {
					return nil, bad("weight %s: quantization %s of %s (only float16 of float32 is read)", w.Name, stored, w.DType)
				}
				size = 2
			}
			if off+count*size > len(data) {
				return nil, bad("weight %s: the weight files end at byte %d, before its data (%d bytes at %d)", w.Name, len(data), count*size, off)
			}
			raw := data[off : off+count*size]
			off += count * size
			t := Tensor{Shape: w.Shape}
			switch stored {
			case "float16":
				t.DType = "DT_FLOAT"
				t.Float32 = make([]float32, count)
				for i := range t.Float32 {
					t.Float32[i] = Float16(binary.LittleEndian.Uint16(raw[2*i:]))
				}
			case "float32":
				t.DType = "DT_FLOAT"
				t.Float32 = make([]float32, count)
				for i := range t.Float32 {
					t.Float32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
				}
			case "int32":
				t.DType = "DT_INT32"
				t.Int32 = make([]int32, count)
				for i := range t.Int32 {
					t.Int32[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
				}
			default:
				return nil, bad("weight %s: dtype %s (float32 and int32 are read)", w.Name, w.DType)
			}
			m.consts[w.Name] = t
		}
		if off != len(data) {
			return nil, bad("weight files %v: %d bytes, the manifest describes %d", group.Paths, len(data), off)
		}
	}
	for _, n := range m.Nodes {
		if n.Op != "Const" {
			continue
		}
		t, ok := m.consts[n.Name]
		if !ok {
			return nil, bad("const %s: no weights", n.Name)
		}
		if v := n.Attr["value"].Tensor; v != nil && v.DType != t.DType {
			return nil, bad("const %s: node says %s, its weights are %s", n.Name, v.DType, t.DType)
		}
	}
	return m, nil
}

// Const returns the data of the Const node name.
func (m *Model) Const(name string) (Tensor, bool) {
	t, ok := m.consts[name]
	return t, ok
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}

// Float16 returns the float32 of an IEEE 754 half-precision number.
func Float16(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // infinity, NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0 && frac == 0: // zero
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: normalize
		e := uint32(127 - 15 + 1)
		for frac&0x400 == 0 {
			frac <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (frac&0x3ff)<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

// decodeS returns a base64 string attribute's bytes.
func decodeS(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	return string(b), err
}
