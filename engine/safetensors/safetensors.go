// Package safetensors reads and writes the safetensors file format used by
// Hugging Face to store tensors.
//
// A file is an 8-byte little-endian header length N, then N bytes of UTF-8
// JSON, then the data buffer. The JSON header is an object mapping each
// tensor name to its dtype, shape and the [begin, end) byte range of its data
// in the buffer, plus an optional "__metadata__" object of string keys and
// string values. Tensor data is stored little-endian in row-major order.
//
// Parse validates a file as strictly as the reference implementation: the
// tensors must tile the data buffer exactly, with no gaps and no overlaps.
// Encode produces deterministic output: the same File always encodes to the
// same bytes.
package safetensors

import (
	"fmt"
	"math"

	"github.com/qmulgpu/qmulgpu/internal/clip"
)

const (
	// MaxHeaderSize is the largest JSON header, in bytes, that Parse
	// accepts and that Encode produces. It matches the limit of the
	// reference implementation.
	MaxHeaderSize = 100_000_000

	// MaxFileSize is the largest file, in bytes, that ReadFile reads.
	// Larger files are refused before any of their contents are read.
	MaxFileSize int64 = 16 << 30

	// MaxDims is the most dimensions a tensor may have in a file Parse
	// accepts (a model's tensors have at most 4).
	MaxDims = 64
)

// metadataKey is the header key that holds the file's metadata rather than
// a tensor.
const metadataKey = "__metadata__"

// dtypeSizes maps each dtype name to the size of one element in bytes.
var dtypeSizes = map[string]int{
	"BOOL": 1,
	"U8":   1,
	"I8":   1,
	"I16":  2,
	"U16":  2,
	"F16":  2,
	"BF16": 2,
	"I32":  4,
	"U32":  4,
	"F32":  4,
	"F64":  8,
	"I64":  8,
	"U64":  8,
}

// DTypeSize returns the size in bytes of one element of dtype, such as 4 for
// "F32". It reports false if dtype is not a dtype of the format. Names are
// case-sensitive.
func DTypeSize(dtype string) (int, bool) {
	n, ok := dtypeSizes[dtype]
	return n, ok
}

// A Tensor is a named n-dimensional array stored in a File.
type Tensor struct {
	// Name identifies the tensor within its file. It is never empty.
	Name string
	// DType is the element type, one of BOOL, U8, I8, I16, U16, F16,
	// BF16, I32, U32, F32, F64, I64 or U64.
	DType string
	// Shape holds the size of each dimension. An empty shape denotes a
	// scalar (one element); a zero dimension denotes an empty tensor.
	Shape []int
	// Data holds the elements, little-endian, in row-major order. Its
	// length is the product of Shape times the size of DType.
	Data []byte
}

// A File is the contents of a safetensors file.
type File struct {
	// Metadata holds free-form string pairs stored in the header under
	// "__metadata__". It may be nil.
	Metadata map[string]string
	// Tensors lists the tensors in the order of their data in the file.
	// Encode lays them out in this order; Parse returns them sorted by
	// offset.
	Tensors []Tensor
}

// Get returns the tensor named name, or false if f has none. The returned
// pointer refers to the element of f.Tensors.
func (f *File) Get(name string) (*Tensor, bool) {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

// numBytes returns the size in bytes of a tensor of the given dtype size and
// shape. Like the reference implementation it multiplies the dimensions in
// order and fails if any partial product overflows, even when a later
// dimension is zero.
func numBytes(size int, shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %s has a negative dimension", clip.Shape(shape))
		}
		if d != 0 && n > math.MaxInt/d {
			return 0, fmt.Errorf("shape %s overflows", clip.Shape(shape))
		}
		n *= d
	}
	if n > math.MaxInt/size {
		return 0, fmt.Errorf("shape %s overflows", clip.Shape(shape))
	}
	return n * size, nil
}
