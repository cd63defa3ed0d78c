package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// allDTypes lists every dtype of the format.
var allDTypes = []string{"BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"}

// rawFile builds a file from a header string, which it does not pad, and a
// data buffer.
func rawFile(header string, data ...byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// encodeBytes encodes f and fails the test on error.
func encodeBytes(t testing.TB, f *File) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, f); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return buf.Bytes()
}

// diffFiles describes how got differs from want, or returns "" if they hold
// the same metadata and tensors. Tensors are matched by name; a nil and an
// empty shape or metadata are equal.
func diffFiles(want, got *File) string {
	if !maps.Equal(want.Metadata, got.Metadata) {
		return fmt.Sprintf("metadata = %v, want %v", got.Metadata, want.Metadata)
	}
	if len(got.Tensors) != len(want.Tensors) {
		return fmt.Sprintf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for _, w := range want.Tensors {
		g, ok := got.Get(w.Name)
		switch {
		case !ok:
			return fmt.Sprintf("tensor %q missing", w.Name)
		case g.DType != w.DType:
			return fmt.Sprintf("tensor %q: dtype %s, want %s", w.Name, g.DType, w.DType)
		case !slices.Equal(g.Shape, w.Shape):
			return fmt.Sprintf("tensor %q: shape %v, want %v", w.Name, g.Shape, w.Shape)
		case !bytes.Equal(g.Data, w.Data):
			return fmt.Sprintf("tensor %q: data %x, want %x", w.Name, g.Data, w.Data)
		}
	}
	return ""
}

// testFile returns a File with a tensor of every dtype in several shapes,
// including scalars and empty tensors, filled with random bytes.
func testFile() *File {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][]int{{}, {0}, {3}, {2, 3}, {3, 0, 2}, {1, 2, 1, 2}}
	f := &File{Metadata: map[string]string{"format": "pt", "epoch": "3", "note": `quotes " and <html> & unicode é`}}
	for _, dt := range allDTypes {
		size, _ := DTypeSize(dt)
		for _, shape := range shapes {
			n := size
			for _, d := range shape {
				n *= d
			}
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			name := fmt.Sprintf("%s/%v", strings.ToLower(dt), shape)
			f.Tensors = append(f.Tensors, Tensor{Name: name, DType: dt, Shape: shape, Data: data})
		}
	}
	return f
}

func TestDTypeSize(t *testing.T) {
	want := []int{1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8}
	for i, dt := range allDTypes {
		if got, ok := DTypeSize(dt); !ok || got != want[i] {
			t.Errorf("DTypeSize(%q) = %d, %v, want %d, true", dt, got, ok, want[i])
		}
	}
	for _, dt := range []string{"", "f32", "F8", "C64", "float32"} {
		if got, ok := DTypeSize(dt); ok {
			t.Errorf("DTypeSize(%q) = %d, true, want false", dt, got)
		}
	}
}

func TestGet(t *testing.T) {
	f := &File{Tensors: []Tensor{{Name: "a"}, {Name: "b"}}}
	tensor, ok := f.Get("b")
	if !ok || tensor != &f.Tensors[1] {
		t.Errorf("Get(b) = %p, %v, want %p, true", tensor, ok, &f.Tensors[1])
	}
	if tensor, ok := f.Get("c"); ok || tensor != nil {
		t.Errorf("Get(c) = %v, %v, want nil, false", tensor, ok)
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		file *File
	}{
		{"empty", &File{}},
		{"metadata only", &File{Metadata: map[string]string{"k": "v", "": ""}}},
		{"all dtypes", testFile()},
		{"scalar", &File{Tensors: []Tensor{{Name: "s", DType: "F64", Data: FromFloat64s([]float64{2.5})}}}},
		{"empty tensors at one offset", &File{Tensors: []Tensor{
			{Name: "a", DType: "U8", Shape: []int{1}, Data: []byte{7}},
			{Name: "z", DType: "F32", Shape: []int{0}, Data: []byte{}},
			{Name: "y", DType: "I64", Shape: []int{2, 0}},
			{Name: "b", DType: "U8", Shape: []int{1}, Data: []byte{9}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeBytes(t, tt.file)
			if n := binary.LittleEndian.Uint64(b); n%8 != 0 {
				t.Errorf("header length %d is not a multiple of 8", n)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d := diffFiles(tt.file, got); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestParseOrder(t *testing.T) {
	// Tensors are returned by offset, empty tensors at one offset by name.
	b := rawFile(`{"c":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},`+
		`"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},`+
		`"z":{"dtype":"U8","shape":[0],"data_offsets":[1,1]},`+
		`"y":{"dtype":"U8","shape":[0],"data_offsets":[1,1]}}`, 1, 2, 3)
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tensor := range f.Tensors {
		names = append(names, tensor.Name)
	}
	if want := []string{"c", "y", "z", "a"}; !slices.Equal(names, want) {
		t.Errorf("tensor order %q, want %q", names, want)
	}
	if f.Metadata != nil {
		t.Errorf("Metadata = %v, want nil", f.Metadata)
	}
}

func TestEncodeGolden(t *testing.T) {
	f := &File{
		Metadata: map[string]string{"b": "<&>", "a": "x"},
		Tensors: []Tensor{
			{Name: "w", DType: "F32", Shape: []int{2}, Data: FromFloat32s([]float32{1, -2})},
			{Name: "s", DType: "U8", Data: []byte{5}},
		},
	}
	header := `{"__metadata__":{"a":"x","b":"<&>"},` +
		`"s":{"data_offsets":[8,9],"dtype":"U8","shape":[]},` +
		`"w":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}}`
	header += strings.Repeat(" ", (8-len(header)%8)%8)
	want := rawFile(header, 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 5)
	if got := encodeBytes(t, f); !bytes.Equal(got, want) {
		t.Errorf("Encode =\n%q\nwant\n%q", got, want)
	}
}

func TestEncodeDeterministic(t *testing.T) {
	f := testFile()
	for i := range 50 {
		f.Metadata[fmt.Sprint("key", i)] = fmt.Sprint(i)
	}
	first := encodeBytes(t, f)
	for range 10 {
		if b := encodeBytes(t, f); !bytes.Equal(b, first) {
			t.Fatal("two encodings of one File differ")
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    *File
		wantErr string
	}{
		{"empty name", &File{Tensors: []Tensor{{DType: "U8"}}},
			"tensor name is empty"},
		{"reserved name", &File{Tensors: []Tensor{{Name: "__metadata__", DType: "U8", Data: []byte{1}}}},
			`tensor name "__metadata__" is reserved`},
		{"duplicate name", &File{Tensors: []Tensor{{Name: "a", DType: "U8", Data: []byte{1}}, {Name: "a", DType: "U8", Data: []byte{1}}}},
			`duplicate tensor name "a"`},
		{"invalid UTF-8 name", &File{Tensors: []Tensor{{Name: "a\xff", DType: "U8", Data: []byte{1}}}},
			`tensor name "a\xff" is not valid UTF-8`},
		{"invalid UTF-8 metadata", &File{Metadata: map[string]string{"k": "\xfe"}},
			`metadata "k": "\xfe" is not valid UTF-8`},
		{"unknown dtype", &File{Tensors: []Tensor{{Name: "a", DType: "f32"}}},
			`tensor "a": unknown dtype "f32"`},
		{"negative dimension", &File{Tensors: []Tensor{{Name: "a", DType: "U8", Shape: []int{2, -1}}}},
			`tensor "a": shape [2 -1] has a negative dimension`},
		{"shape overflow", &File{Tensors: []Tensor{{Name: "a", DType: "F32", Shape: []int{1 << 62}}}},
			`tensor "a": shape [4611686018427387904] overflows`},
		{"short data", &File{Tensors: []Tensor{{Name: "a", DType: "F32", Shape: []int{2, 2}, Data: make([]byte, 12)}}},
			`tensor "a": data is 12 bytes, want 16 for F32 [2 2]`},
		{"header too large", &File{Metadata: map[string]string{"k": strings.Repeat("x", MaxHeaderSize)}},
			"header is 100000032 bytes, more than the limit of 100000000"},
		{"data for empty tensor", &File{Tensors: []Tensor{{Name: "a", DType: "F32", Shape: []int{0}, Data: make([]byte, 4)}}},
			`tensor "a": data is 4 bytes, want 0 for F32 [0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Encode(&buf, tt.file)
			if err == nil {
				t.Fatal("Encode succeeded, want error")
			}
			if want := "safetensors: " + tt.wantErr; err.Error() != want {
				t.Errorf("Encode error = %q, want %q", err, want)
			}
			if buf.Len() != 0 {
				t.Errorf("Encode wrote %d bytes before failing, want 0", buf.Len())
			}
		})
	}
}

// failWriter fails every write after the first ok.
type failWriter struct{ ok int }

var errWrite = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if w.ok == 0 {
		return 0, errWrite
	}
	w.ok--
	return len(p), nil
}

func TestEncodeWriteError(t *testing.T) {
	f := &File{Tensors: []Tensor{{Name: "w", DType: "U8", Shape: []int{1}, Data: []byte{1}}}}
	tests := []struct {
		ok      int
		wantErr string
	}{
		{0, "safetensors: write header: disk full"},
		{1, `safetensors: write tensor "w": disk full`},
	}
	for _, tt := range tests {
		err := Encode(&failWriter{ok: tt.ok}, f)
		if !errors.Is(err, errWrite) || err.Error() != tt.wantErr {
			t.Errorf("Encode after %d writes: error %v, want %q", tt.ok, err, tt.wantErr)
		}
	}
}
