package torchimport

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/qmulgpu/qmulgpu/bench/pytorchtest"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
)

// halves returns a tensor of every 16-bit pattern as dtype (F16 or BF16).
func halves(dtype string) *Tensor {
	data := make([]byte, 2<<16)
	for i := range 1 << 16 {
		binary.LittleEndian.PutUint16(data[2*i:], uint16(i))
	}
	return &Tensor{DType: dtype, Shape: []int{1 << 16}, data: data, stride: []int64{1}}
}

// TestHalfConversionsExact: every float16 and bfloat16 value converts to
// the float32 of the same value (NaNs to NaNs), computed here from the
// formats' definitions.
func TestHalfConversionsExact(t *testing.T) {
	for _, dtype := range []string{"F16", "BF16"} {
		got, err := halves(dtype).Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			want := halfValue(dtype, uint16(i))
			if math.IsNaN(want) != math.IsNaN(float64(v)) || !math.IsNaN(want) && float64(v) != want {
				t.Fatalf("%s 0x%04x: %v, want %v", dtype, i, v, want)
			}
		}
	}
}

// halfValue is the value of a float16 or bfloat16 bit pattern: sign,
// exponent (5 bits, bias 15; or 8 bits, bias 127) and fraction (10 or 7
// bits), with subnormals, infinities and NaNs.
func halfValue(dtype string, h uint16) float64 {
	expBits, fracBits := 5, 10
	if dtype == "BF16" {
		expBits, fracBits = 8, 7
	}
	bias := 1<<(expBits-1) - 1
	sign := 1.0
	if h>>15 != 0 {
		sign = -1
	}
	exp := int(h>>fracBits) & (1<<expBits - 1)
	frac := float64(int(h) & (1<<fracBits - 1))
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, 1-bias-fracBits)
	case 1<<expBits - 1:
		if frac != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1+frac/float64(int(1)<<fracBits), exp-bias)
}

// TestFloat64Conversion: float64 values round to the nearest float32 (ties
// to even); finite values beyond float32's range are refused, as
// infinities and NaNs pass on to the finiteness check.
func TestFloat64Conversion(t *testing.T) {
	cases := []struct {
		in   float64
		want float32
		err  string
	}{
		{0.1, 0.1, ""},
		{1 + 0x1p-24, 1, ""}, // a tie, to even
		{1 + 0x1p-24 + 0x1p-40, 1 + 0x1p-23, ""},
		{-3.4028235e38, -math.MaxFloat32, ""}, // past MaxFloat32, short of the halfway point to 2^128
		{3.4028235677973366e38, 0, "holds 3.4028235677973366e+38 at element 0, beyond float32's range"}, // halfway: rounds to even, 2^128
		{1e-50, 0, ""},
		{math.Inf(-1), float32(math.Inf(-1)), ""},
		{3.5e38, 0, "holds 3.5e+38 at element 0, beyond float32's range"},
	}
	for _, c := range cases {
		tn := &Tensor{DType: "F64", Shape: []int{1}, data: safetensors.FromFloat64s([]float64{c.in}), stride: []int64{1}}
		got, err := tn.Float32s()
		switch {
		case c.err != "" && (err == nil || err.Error() != c.err):
			t.Errorf("%v: error %v, want %q", c.in, err, c.err)
		case c.err == "" && (err != nil || got[0] != c.want):
			t.Errorf("%v: %v (%v), want %v", c.in, got, err, c.want)
		}
	}
}

// TestHalfConversionsMatchPyTorch: every float16 and bfloat16 pattern
// converts to the float32 bits PyTorch's .float() gives.
func TestHalfConversionsMatchPyTorch(t *testing.T) {
	py := pytorchtest.Python(t)
	dir := t.TempDir()
	script := `import sys, torch
bits = torch.arange(65536, dtype=torch.int32).to(torch.int16)
for name, dt in (("F16", torch.float16), ("BF16", torch.bfloat16)):
    bits.view(dt).float().numpy().tofile(sys.argv[1] + "/" + name)
`
	if out, err := exec.Command(py, "-c", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, dtype := range []string{"F16", "BF16"} {
		raw, err := os.ReadFile(filepath.Join(dir, dtype))
		if err != nil {
			t.Fatal(err)
		}
		got, err := halves(dtype).Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			theirs := binary.LittleEndian.Uint32(raw[4*i:])
			if math.Float32bits(v) != theirs && !(math.IsNaN(float64(v)) && math.IsNaN(float64(math.Float32frombits(theirs)))) {
				t.Fatalf("%s 0x%04x: 0x%08x, PyTorch 0x%08x", dtype, i, math.Float32bits(v), theirs)
			}
		}
	}
}
