package safetensors

import (
	"bytes"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/internal/fuzzcheck"
)

// Parse allocates the tensor list and the shapes (a few words per header
// byte at most: "[0,0,...]" costs 2 bytes a dimension and 8 to hold it)
// and the JSON decoder's tokens; the data buffer is used in place.
const (
	allocPerByte = 64
	allocBase    = 1 << 20
)

// FuzzParse parses any bytes: no panic, memory bounded by the input, and
// either a one-line error or a file whose every tensor holds exactly the
// bytes its dtype and shape call for and that survives a round trip
// (encoded again, it parses to the same metadata and tensors, and its
// encoding is a fixed point).
func FuzzParse(f *testing.F) {
	// Valid files.
	f.Add(encodeBytes(f, &File{
		Metadata: map[string]string{"format": "pt"},
		Tensors: []Tensor{
			{Name: "w", DType: "F32", Shape: []int{2, 1}, Data: FromFloat32s([]float32{1, -0.5})},
			{Name: "s", DType: "I64", Shape: []int{}, Data: FromInt64s([]int64{-3})},
			{Name: "e", DType: "BF16", Shape: []int{0, 2}},
		},
	}))
	f.Add(encodeBytes(f, &File{}))
	f.Add(encodeBytes(f, &File{Metadata: map[string]string{"k": "v"}}))
	f.Add(rawFile(`{"c":`+u8(1, 0, 1)+`,"a":`+u8(2, 1, 3)+`,"z":`+u8(0, 1, 1)+`,"y":`+u8(0, 1, 1)+"}  \n", 1, 2, 3))
	f.Add(rawFile(`{"a":{"dtype":"F16","shape":[],"data_offsets":[0,2]},"__metadata__":{"\u00e9":""}}`, 0, 0x3c))
	// Invalid files.
	f.Add([]byte{})
	f.Add(withLength(0, "{}"))
	f.Add(withLength(MaxHeaderSize+1, "{}"))
	f.Add(rawFile(`{"a":` + u8(1, 0, 1) + `,"a":` + u8(1, 0, 1) + `}`))
	f.Add(rawFile(`{"a":`+u8(3, 0, 3)+`,"b":`+u8(3, 1, 4)+`}`, 1, 2, 3, 4))
	f.Add(rawFile(`{"a":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}`))
	f.Add(rawFile(`{"__metadata__":{"k":1}}`))
	f.Add(rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":0}}`, 1))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 0, 0, 0x80, 0x3f))
	// Long names and values, which errors must not repeat whole.
	long := strings.Repeat("\u00e9x", 200)
	f.Add(rawFile(`{"`+long+`":{"dtype":"`+long+`","shape":[1],"data_offsets":[0,1]}}`, 1))
	f.Add(rawFile(`{"`+long+`":`+u8(1, 0, 1)+`,"`+long+`":`+u8(1, 0, 1)+`}`, 1))

	f.Fuzz(func(t *testing.T, b []byte) {
		file, ok := fuzzcheck.Read(t, len(b), allocBase, allocPerByte, func() (*File, error) { return Parse(b) })
		if !ok {
			return
		}
		for _, tn := range file.Tensors {
			size, _ := DTypeSize(tn.DType)
			if n, err := numBytes(size, tn.Shape); err != nil || n != len(tn.Data) {
				t.Fatalf("tensor %q: %d bytes of data for %s %v", tn.Name, len(tn.Data), tn.DType, tn.Shape)
			}
		}
		enc := encodeBytes(t, file)
		again, err := Parse(enc)
		if err != nil {
			t.Fatalf("Parse of re-encoded file: %v\n%q", err, enc)
		}
		if d := diffFiles(file, again); d != "" {
			t.Fatalf("re-encoded file differs: %s", d)
		}
		for i := range file.Tensors {
			if got, want := again.Tensors[i].Name, file.Tensors[i].Name; got != want {
				t.Fatalf("re-encoded tensor %d is %q, want %q", i, got, want)
			}
		}
		// Parse's order is a fixed point of Encode, so the bytes are too.
		if enc2 := encodeBytes(t, again); !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding is not stable:\n%q\n%q", enc, enc2)
		}
	})
}
