package tfjs

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestFloat16(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want float32
	}{
		{0x0000, 0}, {0x3c00, 1}, {0xc000, -2}, {0x3555, 0.33325195}, {0x7bff, 65504},
		{0x0001, 5.9604645e-08}, {0x03ff, 6.097555e-05}, {0x0400, 6.1035156e-05},
	} {
		if got := Float16(c.h); got != c.want {
			t.Errorf("Float16(%#04x) = %g, want %g", c.h, got, c.want)
		}
	}
	if !math.IsInf(float64(Float16(0x7c00)), 1) || !math.IsNaN(float64(Float16(0x7e00))) {
		t.Errorf("infinity or NaN wrong: %g %g", Float16(0x7c00), Float16(0x7e00))
	}
	if got := Float16(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("Float16(0x8000) = %g, want -0", got)
	}
}

// tiny writes a small TF.js graph model shaped like the detector's: an
// input, a fused convolution with BiasAdd and Relu, a fused depthwise one
// with BiasAdd only, a resize to a constant size, a concat on a constant
// axis, a sigmoid output and a TopKV2 tail that must be cut.
func tiny(t *testing.T, edit func(m map[string]any, bin []byte) []byte) string {
	t.Helper()
	f16 := func(vs ...uint16) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint16(b, v)
		}
		return b
	}
	i32 := func(vs ...int32) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		}
		return b
	}
	s := func(v string) map[string]any {
		return map[string]any{"s": base64.StdEncoding.EncodeToString([]byte(v))}
	}
	ty := map[string]any{"type": "DT_FLOAT"}
	list := func(vs ...string) map[string]any {
		var enc []string
		for _, v := range vs {
			enc = append(enc, base64.StdEncoding.EncodeToString([]byte(v)))
		}
		return map[string]any{"list": map[string]any{"s": enc}}
	}
	ints := map[string]any{"list": map[string]any{"i": []string{"1", "1", "1", "1"}}}
	konst := func(name, dt string, dims ...int) map[string]any {
		var d []map[string]any
		for _, x := range dims {
			d = append(d, map[string]any{"size": strconv.Itoa(x)})
		}
		return map[string]any{"name": name, "op": "Const", "attr": map[string]any{
			"value": map[string]any{"tensor": map[string]any{"dtype": dt, "tensorShape": map[string]any{"dim": d}}},
			"dtype": map[string]any{"type": dt}}}
	}
	conv := func(name, op, in, w, b string, fused ...string) map[string]any {
		return map[string]any{"name": name, "op": op, "input": []string{in, w, b}, "attr": map[string]any{
			"T": ty, "strides": ints, "dilations": ints, "padding": s("SAME"), "data_format": s("NHWC"),
			"explicit_paddings": map[string]any{"list": map[string]any{}}, "num_args": map[string]any{"i": "1"},
			"epsilon": map[string]any{"f": 0}, "fused_ops": list(fused...)}}
	}
	m := map[string]any{
		"format": "graph-model",
		"signature": map[string]any{
			"inputs":  map[string]any{"images": map[string]any{}},
			"outputs": map[string]any{"top": map[string]any{}},
		},
		"modelTopology": map[string]any{"node": []any{
			konst("w", "DT_FLOAT", 1, 1, 3, 2),
			konst("b", "DT_FLOAT", 2),
			konst("dw", "DT_FLOAT", 3, 3, 2, 1),
			konst("db", "DT_FLOAT", 2),
			konst("size", "DT_INT32", 2),
			konst("axis", "DT_INT32"),
			konst("k", "DT_INT32"),
			map[string]any{"name": "images", "op": "Placeholder", "attr": map[string]any{
				"dtype": ty, "shape": map[string]any{"shape": map[string]any{"dim": []any{
					map[string]any{"size": "1"}, map[string]any{"size": "64"}, map[string]any{"size": "64"}, map[string]any{"size": "3"}}}}}},
			conv("c1", "_FusedConv2D", "images", "w", "b", "BiasAdd", "Relu"),
			conv("c2", "FusedDepthwiseConv2dNative", "c1", "dw", "db", "BiasAdd"),
			map[string]any{"name": "up", "op": "ResizeBilinear", "input": []string{"c2", "size"}, "attr": map[string]any{
				"T": ty, "align_corners": map[string]any{"b": false}, "half_pixel_centers": map[string]any{"b": false}}},
			map[string]any{"name": "cat", "op": "ConcatV2", "input": []string{"up", "up", "axis"}, "attr": map[string]any{
				"T": ty, "N": map[string]any{"i": "2"}, "Tidx": map[string]any{"type": "DT_INT32"}}},
			map[string]any{"name": "heat", "op": "Sigmoid", "input": []string{"cat"}, "attr": map[string]any{"T": ty}},
			map[string]any{"name": "top", "op": "TopKV2", "input": []string{"heat", "k"}, "attr": map[string]any{"T": ty}},
		}},
		"weightsManifest": []any{map[string]any{"paths": []string{"tiny.bin"}, "weights": []any{
			map[string]any{"name": "w", "shape": []int{1, 1, 3, 2}, "dtype": "float32", "quantization": map[string]any{"dtype": "float16", "original_dtype": "float32"}},
			map[string]any{"name": "b", "shape": []int{2}, "dtype": "float32", "quantization": map[string]any{"dtype": "float16", "original_dtype": "float32"}},
			map[string]any{"name": "dw", "shape": []int{3, 3, 2, 1}, "dtype": "float32"},
			map[string]any{"name": "db", "shape": []int{2}, "dtype": "float32"},
			map[string]any{"name": "size", "shape": []int{2}, "dtype": "int32"},
			map[string]any{"name": "axis", "shape": []int{}, "dtype": "int32"},
			map[string]any{"name": "k", "shape": []int{}, "dtype": "int32"},
		}}},
	}
	var bin []byte
	bin = append(bin, f16(0x3c00, 0xc000, 0x3800, 0, 0x3c00, 0x3c00)...) // w: 1 -2 0.5 0 1 1
	bin = append(bin, f16(0x3555, 0x8000)...)                            // b: 0.333 -0
	for i := range 18 {
		bin = binary.LittleEndian.AppendUint32(bin, math.Float32bits(float32(i)/8))
	}
	bin = binary.LittleEndian.AppendUint32(bin, math.Float32bits(0.25))
	bin = binary.LittleEndian.AppendUint32(bin, math.Float32bits(-0.25))
	bin = append(bin, i32(16, 16, -1, 10)...) // size 16x16, axis -1, k 10
	if edit != nil {
		bin = edit(m, bin)
	}
	dir := t.TempDir()
	js, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tiny.json")
	if err := os.WriteFile(path, js, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tiny.bin"), bin, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// field is one decoded protocol buffer field.
type field struct {
	num   int
	wire  int
	value uint64
	bytes []byte
}

// fields decodes one protocol buffer message, failing on malformed input.
func fields(t *testing.T, b []byte) []field {
	t.Helper()
	var out []field
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			t.Fatalf("bad tag at %d", len(b))
		}
		b = b[n:]
		f := field{num: int(key >> 3), wire: int(key & 7)}
		switch f.wire {
		case 0:
			f.value, n = binary.Uvarint(b)
			if n <= 0 {
				t.Fatal("bad varint")
			}
			b = b[n:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				t.Fatal("bad length")
			}
			f.bytes = b[n : n+int(l)]
			b = b[n+int(l):]
		case 5:
			f.value = uint64(binary.LittleEndian.Uint32(b))
			b = b[4:]
		default:
			t.Fatalf("wire type %d", f.wire)
		}
		out = append(out, f)
	}
	return out
}

// node is a decoded NodeDef: its name, op, inputs and attributes.
type node struct {
	name, op string
	input    []string
	attr     map[string][]field // AttrValue fields
}

func decodeGraph(t *testing.T, g []byte) (nodes []node, versions []field) {
	t.Helper()
	for _, f := range fields(t, g) {
		switch f.num {
		case 1:
			n := node{attr: map[string][]field{}}
			for _, nf := range fields(t, f.bytes) {
				switch nf.num {
				case 1:
					n.name = string(nf.bytes)
				case 2:
					n.op = string(nf.bytes)
				case 3:
					n.input = append(n.input, string(nf.bytes))
				case 5:
					var key string
					var val []field
					for _, e := range fields(t, nf.bytes) {
						if e.num == 1 {
							key = string(e.bytes)
						} else {
							val = fields(t, e.bytes)
						}
					}
					n.attr[key] = val
				}
			}
			nodes = append(nodes, n)
		case 4:
			versions = fields(t, f.bytes)
		default:
			t.Errorf("GraphDef field %d", f.num)
		}
	}
	return nodes, versions
}

// tensor returns a Const node's TensorProto fields by number.
func tensor(t *testing.T, n node) map[int]field {
	t.Helper()
	v := n.attr["value"]
	if len(v) != 1 || v[0].num != 8 {
		t.Fatalf("%s: value is not a tensor: %v", n.name, v)
	}
	out := map[int]field{}
	for _, f := range fields(t, v[0].bytes) {
		out[f.num] = f
	}
	return out
}

func TestGraphDef(t *testing.T) {
	m, err := Read(tiny(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := m.Const("w"); !slices.Equal(w.Float32, []float32{1, -2, 0.5, 0, 1, 1}) {
		t.Errorf("w = %v: float16 not expanded", w.Float32)
	}
	g, err := m.GraphDef(GraphOptions{Outputs: []string{"heat"}, InputSize: 96})
	if err != nil {
		t.Fatal(err)
	}
	nodes, versions := decodeGraph(t, g)
	if len(versions) != 1 || versions[0].num != 1 || versions[0].value == 0 {
		t.Errorf("versions = %v, want a producer", versions)
	}
	byName := map[string]node{}
	var names []string
	for _, n := range nodes {
		byName[n.name] = n
		names = append(names, n.name+"="+n.op+"("+strings.Join(n.input, ",")+")")
	}
	want := []string{
		"w=Const()", "b=Const()", "dw=Const()", "db=Const()", "size=Const()", "axis=Const()",
		"images=Placeholder()",
		"c1/split_conv=Conv2D(images,w)", "c1/split_bias=BiasAdd(c1/split_conv,b)", "c1=Relu(c1/split_bias)",
		"c2/split_conv=DepthwiseConv2dNative(c1,dw)", "c2=BiasAdd(c2/split_conv,db)",
		"up=ResizeBilinear(c2,size)", "cat=ConcatV2(up,up,axis)", "heat=Sigmoid(cat)",
	}
	if !slices.Equal(names, want) {
		t.Errorf("nodes:\n got %v\nwant %v\n(the TopKV2 tail and its k must be cut, fused ops split)", names, want)
	}
	// Weights: float32 bytes in tensor_content (4), float16 expanded.
	w := tensor(t, byName["w"])
	if w[1].value != 1 || len(w[4].bytes) != 24 {
		t.Fatalf("w: dtype %d, %d content bytes; want DT_FLOAT, 24", w[1].value, len(w[4].bytes))
	}
	if got := math.Float32frombits(binary.LittleEndian.Uint32(w[4].bytes[4:])); got != -2 {
		t.Errorf("w[1] = %g, want -2", got)
	}
	// int32 constants in int_val (7), never tensor_content.
	for name, wantVals := range map[string][]int64{"size": {24, 24}, "axis": {-1}} {
		c := tensor(t, byName[name])
		if c[1].value != 3 || c[4].bytes != nil {
			t.Errorf("%s: dtype %d, content %v; want DT_INT32 in int_val", name, c[1].value, c[4].bytes)
		}
		var vals []int64
		for b := c[7].bytes; len(b) > 0; {
			v, n := binary.Uvarint(b)
			vals = append(vals, int64(v))
			b = b[n:]
		}
		if !slices.Equal(vals, wantVals) {
			t.Errorf("%s = %v, want %v (the resize target scaled 96/64)", name, vals, wantVals)
		}
	}
	// The input's shape is rewritten to 1x96x96x3.
	shape := byName["images"].attr["shape"]
	var dims []uint64
	for _, d := range fields(t, shape[0].bytes) {
		dims = append(dims, fields(t, d.bytes)[0].value)
	}
	if !slices.Equal(dims, []uint64{1, 96, 96, 3}) {
		t.Errorf("input shape %v, want [1 96 96 3]", dims)
	}
	// The conv keeps its strings and lists, loses the fusion's own.
	conv := byName["c1/split_conv"].attr
	if string(conv["padding"][0].bytes) != "SAME" || conv["fused_ops"] != nil || conv["num_args"] != nil || conv["explicit_paddings"] != nil {
		t.Errorf("conv attrs %v", conv)
	}
	if got := fields(t, conv["strides"][0].bytes); len(got) != 1 || len(got[0].bytes) != 4 {
		t.Errorf("strides: %v, want 4 packed ints", got)
	}
	// An N of 2 and a false bool are written, not left out.
	if n := byName["cat"].attr["N"]; len(n) != 1 || n[0].num != 3 || n[0].value != 2 {
		t.Errorf("N = %v", n)
	}
	if b := byName["up"].attr["align_corners"]; len(b) != 1 || b[0].num != 5 || b[0].value != 0 {
		t.Errorf("align_corners = %v", b)
	}

	// Without InputSize nothing is rescaled; the signature's output keeps
	// TopKV2, which OpenCV is not given.
	if _, err := m.GraphDef(GraphOptions{}); err == nil || !strings.Contains(err.Error(), "TopKV2") {
		t.Errorf("signature outputs: %v, want an error naming TopKV2", err)
	}
	g, err = m.GraphDef(GraphOptions{Outputs: []string{"heat"}})
	if err != nil {
		t.Fatal(err)
	}
	nodes, _ = decodeGraph(t, g)
	for _, n := range nodes {
		if n.name == "size" {
			if v, _ := binary.Uvarint(tensor(t, n)[7].bytes); v != 16 {
				t.Errorf("size %d, want 16 unchanged", v)
			}
		}
	}
}

func TestBadModels(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(m map[string]any, bin []byte) []byte
		want string
	}{
		{"short weights", func(m map[string]any, bin []byte) []byte { return bin[:len(bin)-3] }, "weight k: the weight files end"},
		{"long weights", func(m map[string]any, bin []byte) []byte { return append(bin, 0, 0, 0, 0) }, "the manifest describes"},
		{"not a graph model", func(m map[string]any, bin []byte) []byte { m["format"] = "layers-model"; return bin }, `format "layers-model"`},
		{"uint8 quantization", func(m map[string]any, bin []byte) []byte {
			w := m["weightsManifest"].([]any)[0].(map[string]any)["weights"].([]any)[1].(map[string]any)
			w["quantization"] = map[string]any{"dtype": "uint8", "min": 0, "scale": 1}
			return bin
		}, "weight b: quantization uint8"},
		{"weights outside", func(m map[string]any, bin []byte) []byte {
			m["weightsManifest"].([]any)[0].(map[string]any)["paths"] = []string{"../../etc/passwd"}
			return bin
		}, "not a file beside the model"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(tiny(t, c.edit))
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrBadModel) {
				t.Errorf("Read: %v, want ErrBadModel with %q", err, c.want)
			}
		})
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing.json")); err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
	m, err := Read(tiny(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		opt  GraphOptions
		want string
	}{
		{GraphOptions{Outputs: []string{"nope"}}, `output "nope": no such node`},
		{GraphOptions{Outputs: []string{"heat"}, InputSize: 50}, "is not whole"},
		{GraphOptions{Outputs: []string{"heat"}, InputSize: 8}, "input size 8"},
	} {
		if _, err := m.GraphDef(c.opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("GraphDef(%+v): %v, want %q", c.opt, err, c.want)
		}
	}
	// A fused op that is not BiasAdd + activation is refused by name.
	bad, err := Read(tiny(t, func(m map[string]any, bin []byte) []byte {
		n := m["modelTopology"].(map[string]any)["node"].([]any)[8].(map[string]any)
		n["attr"].(map[string]any)["fused_ops"] = map[string]any{"list": map[string]any{"s": []string{
			base64.StdEncoding.EncodeToString([]byte("BiasAdd")), base64.StdEncoding.EncodeToString([]byte("Prelu"))}}}
		return bin
	}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.GraphDef(GraphOptions{Outputs: []string{"heat"}}); err == nil || !strings.Contains(err.Error(), "node c1: fused ops [BiasAdd Prelu]") {
		t.Errorf("Prelu: %v", err)
	}
}
