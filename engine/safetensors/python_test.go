package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// The tests in this file check the package against an independent
// implementation of the format written in Python with numpy. They are
// skipped where no python3 with numpy is installed.

// pythonWithNumpy returns the path of a Python interpreter that can import
// numpy, or "" if there is none. The python3 first in PATH may be a virtual
// environment without numpy while the system one has it.
var pythonWithNumpy = sync.OnceValue(func() string {
	for _, name := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(name)
		if err == nil && exec.Command(path, "-c", "import numpy").Run() == nil {
			return path
		}
	}
	return ""
})

// runPython runs script with the given arguments and returns its standard
// output.
func runPython(t *testing.T, script string, args ...string) []byte {
	t.Helper()
	py := pythonWithNumpy()
	if py == "" {
		t.Skip("no python3 with numpy")
	}
	path := filepath.Join(t.TempDir(), "script.py")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, append([]string{path}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.Bytes())
	}
	return out
}

// pythonWriter writes the safetensors file named by its argument by hand,
// laying the data out in an order different from the header's.
const pythonWriter = `
import json, struct, sys
import numpy as np

NAMES = {"bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "uint16": "U16",
         "float16": "F16", "int32": "I32", "uint32": "U32", "float32": "F32",
         "float64": "F64", "int64": "I64", "uint64": "U64"}
tensors = {
    "conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4) / np.float32(7),
    "nan": np.array([0x7fc00001, 0x80000000, 0x00000001, 0xff800000], dtype="<u4").view("<f4"),
    "steps": np.array(123456789012, dtype=np.int64),
    "empty": np.zeros((0, 3), dtype=np.float64),
    "mask": np.array([True, False, True]),
    "half": np.array([1.5, -0.0, 65504], dtype=np.float16),
    "idx": np.array([[-1, 2], [3, -4]], dtype=np.int32),
    "codes": np.array([0, 255, 7], dtype=np.uint8),
    "f64": np.array([np.pi, 5e-324]),
    "u64": np.array([2**64 - 1], dtype=np.uint64),
}
header = {"__metadata__": {"format": "np", "note": "\u00e9"}}
data = b""
for name in reversed(list(tensors)):
    arr = tensors[name]
    raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes(order="C")
    header[name] = {"dtype": NAMES[arr.dtype.name], "shape": list(arr.shape),
                    "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
text = json.dumps(header).encode("utf-8")
text += b" " * (-len(text) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + data)
`

func TestPythonWritesGoReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "py.safetensors")
	runPython(t, pythonWriter, path)
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	var names []string
	for _, tensor := range f.Tensors {
		names = append(names, tensor.Name)
	}
	wantNames := []string{"u64", "f64", "codes", "idx", "half", "mask", "empty", "steps", "nan", "conv.weight"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("tensors in order %q, want %q", names, wantNames)
	}
	wantMeta := map[string]string{"format": "np", "note": "é"}
	if d := diffFiles(&File{Metadata: wantMeta}, &File{Metadata: f.Metadata}); d != "" {
		t.Error(d)
	}

	weights := make([]float32, 24)
	for i := range weights {
		weights[i] = float32(i) / 7
	}
	nans := []uint32{0x7fc00001, 0x80000000, 0x00000001, 0xff800000}
	nanData := binary.LittleEndian.AppendUint32(nil, nans[0])
	for _, b := range nans[1:] {
		nanData = binary.LittleEndian.AppendUint32(nanData, b)
	}
	want := &File{Metadata: wantMeta, Tensors: []Tensor{
		{Name: "conv.weight", DType: "F32", Shape: []int{2, 3, 4}, Data: FromFloat32s(weights)},
		{Name: "nan", DType: "F32", Shape: []int{4}, Data: nanData},
		{Name: "steps", DType: "I64", Shape: []int{}, Data: FromInt64s([]int64{123456789012})},
		{Name: "empty", DType: "F64", Shape: []int{0, 3}, Data: []byte{}},
		{Name: "mask", DType: "BOOL", Shape: []int{3}, Data: []byte{1, 0, 1}},
		{Name: "half", DType: "F16", Shape: []int{3}, Data: []byte{0x00, 0x3e, 0x00, 0x80, 0xff, 0x7b}},
		{Name: "idx", DType: "I32", Shape: []int{2, 2}, Data: FromInt32s([]int32{-1, 2, 3, -4})},
		{Name: "codes", DType: "U8", Shape: []int{3}, Data: []byte{0, 255, 7}},
		{Name: "f64", DType: "F64", Shape: []int{2}, Data: FromFloat64s([]float64{math.Pi, 5e-324})},
		{Name: "u64", DType: "U64", Shape: []int{1}, Data: bytes.Repeat([]byte{0xff}, 8)},
	}}
	if d := diffFiles(want, f); d != "" {
		t.Error(d)
	}
}

// pythonReader reads the safetensors file named by its argument by hand,
// checks its layout, and prints each tensor's shape, the bit patterns of its
// elements and their values as Python formats them: floats with float.hex,
// integers and booleans with str.
const pythonReader = `
import json, struct, sys
import numpy as np

DTYPES = {"BOOL": "?", "U8": "u1", "I8": "i1", "I16": "<i2", "U16": "<u2", "F16": "<f2",
          "BF16": "<u2", "I32": "<i4", "U32": "<u4", "F32": "<f4", "F64": "<f8",
          "I64": "<i8", "U64": "<u8"}
UINTS = {1: "u1", 2: "<u2", 4: "<u4", 8: "<u8"}

def unique(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), keys
    return dict(pairs)

with open(sys.argv[1], "rb") as f:
    raw = f.read()
(n,) = struct.unpack("<Q", raw[:8])
assert n % 8 == 0, "header length %d is not a multiple of 8" % n
text = raw[8:8 + n].decode("utf-8")
assert text.startswith("{") and text.rstrip(" ").endswith("}"), text
assert len(text) - len(text.rstrip(" ")) < 8, "too much padding"
header = json.loads(text, object_pairs_hook=unique)
buf = raw[8 + n:]
out = {"metadata": header.pop("__metadata__", {}), "tensors": {}}
pos = 0
for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
    assert sorted(info) == ["data_offsets", "dtype", "shape"], info
    begin, end = info["data_offsets"]
    assert begin == pos, "tensor %s begins at %d, want %d" % (name, begin, pos)
    pos = end
    dt = np.dtype(DTYPES[info["dtype"]])
    arr = np.frombuffer(buf[begin:end], dtype=dt).reshape(info["shape"])
    flat = arr.reshape(-1)
    if info["dtype"] == "BF16":
        values = []  # numpy has no bfloat16
    elif dt.kind == "f":
        values = [float(x).hex() for x in flat.tolist()]
    else:
        values = [str(x) for x in flat.tolist()]
    out["tensors"][name] = {"shape": list(arr.shape), "values": values,
                            "bits": flat.view(UINTS[dt.itemsize]).tolist()}
assert pos == len(buf), "data buffer has %d bytes, tensors cover %d" % (len(buf), pos)
json.dump(out, sys.stdout)
`

func TestGoWritesPythonReads(t *testing.T) {
	f32 := make([]float32, len(float32Bits))
	for i, b := range float32Bits {
		f32[i] = math.Float32frombits(b)
	}
	f64 := make([]float64, len(float64Bits))
	for i, b := range float64Bits {
		f64[i] = math.Float64frombits(b)
	}
	type pyTensor struct {
		tensor Tensor
		// Exactly one of floats and values is set: the expected values of
		// a floating-point tensor, or of another tensor as Python prints
		// them.
		floats []float64
		values []string
	}
	tensors := []pyTensor{
		{tensor: Tensor{Name: "f32", DType: "F32", Shape: []int{len(f32)}, Data: FromFloat32s(f32)},
			floats: widen(f32)},
		{tensor: Tensor{Name: "f64", DType: "F64", Shape: []int{len(f64)}, Data: FromFloat64s(f64)},
			floats: f64},
		{tensor: Tensor{Name: "matrix", DType: "F32", Shape: []int{2, 3}, Data: FromFloat32s([]float32{1, 2, 3, 4, 5, 6})},
			floats: []float64{1, 2, 3, 4, 5, 6}},
		{tensor: Tensor{Name: "half", DType: "F16", Shape: []int{3}, Data: []byte{0x00, 0x3e, 0x00, 0x80, 0x01, 0x00}},
			floats: []float64{1.5, math.Copysign(0, -1), 0x1p-24}},
		{tensor: Tensor{Name: "bf16", DType: "BF16", Shape: []int{1}, Data: []byte{0x80, 0x3f}},
			values: []string{}},
		{tensor: Tensor{Name: "scalar", DType: "I64", Shape: []int{}, Data: FromInt64s([]int64{math.MinInt64})},
			values: []string{"-9223372036854775808"}},
		{tensor: Tensor{Name: "empty", DType: "I32", Shape: []int{4, 0}},
			values: []string{}},
		{tensor: Tensor{Name: "i32", DType: "I32", Shape: []int{2, 2}, Data: FromInt32s([]int32{-1, 2, math.MaxInt32, math.MinInt32})},
			values: []string{"-1", "2", "2147483647", "-2147483648"}},
		{tensor: Tensor{Name: "u8", DType: "U8", Shape: []int{3}, Data: FromUint8s([]uint8{0, 128, 255})},
			values: []string{"0", "128", "255"}},
		{tensor: Tensor{Name: "i8", DType: "I8", Shape: []int{2}, Data: []byte{0x80, 0x7f}},
			values: []string{"-128", "127"}},
		{tensor: Tensor{Name: "i16", DType: "I16", Shape: []int{1}, Data: []byte{0xfe, 0xff}},
			values: []string{"-2"}},
		{tensor: Tensor{Name: "u16", DType: "U16", Shape: []int{1}, Data: []byte{0xfe, 0xff}},
			values: []string{"65534"}},
		{tensor: Tensor{Name: "u32", DType: "U32", Shape: []int{1}, Data: []byte{1, 0, 0, 0x80}},
			values: []string{"2147483649"}},
		{tensor: Tensor{Name: "u64", DType: "U64", Shape: []int{1}, Data: bytes.Repeat([]byte{0xff}, 8)},
			values: []string{"18446744073709551615"}},
		{tensor: Tensor{Name: "bool", DType: "BOOL", Shape: []int{2}, Data: []byte{1, 0}},
			values: []string{"True", "False"}},
	}
	f := &File{Metadata: map[string]string{"epoch": "7", "note": "é \" <>"}}
	for _, pt := range tensors {
		f.Tensors = append(f.Tensors, pt.tensor)
	}
	path := filepath.Join(t.TempDir(), "go.safetensors")
	if err := WriteFile(path, f); err != nil {
		t.Fatal(err)
	}

	var got struct {
		Metadata map[string]string
		Tensors  map[string]struct {
			Shape  []int
			Values []string
			Bits   []uint64
		}
	}
	if err := json.Unmarshal(runPython(t, pythonReader, path), &got); err != nil {
		t.Fatal(err)
	}
	if d := diffFiles(f, &File{Metadata: got.Metadata, Tensors: f.Tensors}); d != "" {
		t.Error(d)
	}
	if len(got.Tensors) != len(tensors) {
		t.Errorf("python read %d tensors, want %d", len(got.Tensors), len(tensors))
	}
	for _, pt := range tensors {
		name := pt.tensor.Name
		g, ok := got.Tensors[name]
		if !ok {
			t.Errorf("python did not read tensor %q", name)
			continue
		}
		if !slices.Equal(g.Shape, pt.tensor.Shape) {
			t.Errorf("tensor %q: python read shape %v, want %v", name, g.Shape, pt.tensor.Shape)
		}
		if want := elementBits(pt.tensor); !slices.Equal(g.Bits, want) {
			t.Errorf("tensor %q: python read bits %#x, want %#x", name, g.Bits, want)
		}
		if pt.floats == nil {
			if !slices.Equal(g.Values, pt.values) {
				t.Errorf("tensor %q: python read %q, want %q", name, g.Values, pt.values)
			}
			continue
		}
		if len(g.Values) != len(pt.floats) {
			t.Errorf("tensor %q: python read %d values, want %d", name, len(g.Values), len(pt.floats))
			continue
		}
		for i, s := range g.Values {
			v, err := strconv.ParseFloat(s, 64)
			want := pt.floats[i]
			if err != nil || !(math.Float64bits(v) == math.Float64bits(want) || math.IsNaN(v) && math.IsNaN(want)) {
				t.Errorf("tensor %q: python read element %d as %s, want %v", name, i, s, want)
			}
		}
	}
}

// widen converts float32 values to float64 exactly.
func widen(v []float32) []float64 {
	w := make([]float64, len(v))
	for i, x := range v {
		w[i] = float64(x)
	}
	return w
}

// elementBits returns t's elements as unsigned little-endian integers.
func elementBits(t Tensor) []uint64 {
	size, _ := DTypeSize(t.DType)
	bits := []uint64{}
	for b := t.Data; len(b) > 0; b = b[size:] {
		var buf [8]byte
		copy(buf[:], b[:size])
		bits = append(bits, binary.LittleEndian.Uint64(buf[:]))
	}
	return bits
}
