package safetensors

import (
	"bytes"
	"math"
	"slices"
	"testing"
)

// float32Bits are the bit patterns of awkward float32 values: zeros, NaNs
// with payloads (quiet and signalling), infinities, subnormals and extremes.
var float32Bits = []uint32{
	0x00000000, 0x80000000, // +0, -0
	0x7fc00000, 0xffc00000, 0x7fc00001, 0x7fa00000, 0x7f800001, 0xffbfffff, // NaNs
	0x7f800000, 0xff800000, // ±Inf
	0x00000001, 0x807fffff, 0x00400000, // subnormals
	0x00800000, 0x7f7fffff, 0x3f800000, 0xbf800000, // smallest normal, max, ±1
}

// float64Bits is float32Bits for float64.
var float64Bits = []uint64{
	0x0000000000000000, 0x8000000000000000,
	0x7ff8000000000000, 0xfff8000000000000, 0x7ff8000000000001, 0x7ff4000000000000, 0x7ff0000000000001, 0xfff7ffffffffffff,
	0x7ff0000000000000, 0xfff0000000000000,
	0x0000000000000001, 0x800fffffffffffff, 0x0008000000000000,
	0x0010000000000000, 0x7fefffffffffffff, 0x3ff0000000000000, 0xbff0000000000000,
}

func TestFloatsBitExact(t *testing.T) {
	f32 := make([]float32, len(float32Bits))
	for i, b := range float32Bits {
		f32[i] = math.Float32frombits(b)
	}
	f64 := make([]float64, len(float64Bits))
	for i, b := range float64Bits {
		f64[i] = math.Float64frombits(b)
	}
	f := &File{Tensors: []Tensor{
		{Name: "f32", DType: "F32", Shape: []int{len(f32)}, Data: FromFloat32s(f32)},
		{Name: "f64", DType: "F64", Shape: []int{len(f64)}, Data: FromFloat64s(f64)},
	}}
	got, err := Parse(encodeBytes(t, f))
	if err != nil {
		t.Fatal(err)
	}
	t32, _ := got.Get("f32")
	g32, err := Float32s(t32.Data)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range g32 {
		if b := math.Float32bits(v); b != float32Bits[i] {
			t.Errorf("f32[%d] = %#08x, want %#08x", i, b, float32Bits[i])
		}
	}
	t64, _ := got.Get("f64")
	g64, err := Float64s(t64.Data)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range g64 {
		if b := math.Float64bits(v); b != float64Bits[i] {
			t.Errorf("f64[%d] = %#016x, want %#016x", i, b, float64Bits[i])
		}
	}
}

func TestConvertLittleEndian(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"float32", FromFloat32s([]float32{1, -2}), []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}},
		{"float64", FromFloat64s([]float64{1}), []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}},
		{"int32", FromInt32s([]int32{1, -2}), []byte{1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff}},
		{"int64", FromInt64s([]int64{0x0102030405060708, -1}), []byte{8, 7, 6, 5, 4, 3, 2, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"uint8", FromUint8s([]uint8{0, 255}), []byte{0, 255}},
		{"empty", FromFloat32s(nil), []byte{}},
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s: got % x, want % x", tt.name, tt.got, tt.want)
		}
	}
}

func TestConvertRoundTrip(t *testing.T) {
	i32 := []int32{0, 1, -1, math.MaxInt32, math.MinInt32}
	if got, err := Int32s(FromInt32s(i32)); err != nil || !slices.Equal(got, i32) {
		t.Errorf("Int32s(FromInt32s(%v)) = %v, %v", i32, got, err)
	}
	i64 := []int64{0, 1, -1, math.MaxInt64, math.MinInt64}
	if got, err := Int64s(FromInt64s(i64)); err != nil || !slices.Equal(got, i64) {
		t.Errorf("Int64s(FromInt64s(%v)) = %v, %v", i64, got, err)
	}
	u8 := []uint8{0, 1, 255}
	data := FromUint8s(u8)
	got := Uint8s(data)
	if !slices.Equal(got, u8) {
		t.Errorf("Uint8s(FromUint8s(%v)) = %v", u8, got)
	}
	// Neither direction aliases its argument.
	data[0], got[1] = 9, 9
	if u8[0] != 0 || data[1] != 1 {
		t.Error("Uint8s or FromUint8s returned its argument rather than a copy")
	}
}

func TestConvertLengthErrors(t *testing.T) {
	odd := make([]byte, 7)
	tests := []struct {
		name    string
		err     error
		wantErr string
	}{
		{"Float32s", second(Float32s(odd)), "safetensors: 7 bytes is not a whole number of 4-byte F32 elements"},
		{"Float64s", second(Float64s(odd)), "safetensors: 7 bytes is not a whole number of 8-byte F64 elements"},
		{"Int32s", second(Int32s(odd)), "safetensors: 7 bytes is not a whole number of 4-byte I32 elements"},
		{"Int64s", second(Int64s(odd)), "safetensors: 7 bytes is not a whole number of 8-byte I64 elements"},
	}
	for _, tt := range tests {
		if tt.err == nil || tt.err.Error() != tt.wantErr {
			t.Errorf("%s: error %v, want %q", tt.name, tt.err, tt.wantErr)
		}
	}
}

// second returns its second argument.
func second[T any](_ T, err error) error { return err }
