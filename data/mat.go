package data

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/qmulgpu/qmulgpu/internal/clip"
)

// MAT level-5 data types.
const (
	miINT8       = 1
	miUINT8      = 2
	miINT16      = 3
	miUINT16     = 4
	miINT32      = 5
	miUINT32     = 6
	miSINGLE     = 7
	miDOUBLE     = 9
	miINT64      = 12
	miUINT64     = 13
	miMATRIX     = 14
	miCOMPRESSED = 15
)

// miSize is the byte size of each numeric MAT data type.
var miSize = map[uint32]int{
	miINT8: 1, miUINT8: 1, miINT16: 2, miUINT16: 2, miINT32: 4, miUINT32: 4,
	miSINGLE: 4, miDOUBLE: 8, miINT64: 8, miUINT64: 8,
}

// mxClasses names the MATLAB array classes by number. Classes 6 and up
// are numeric and supported; the others are refused.
var mxClasses = map[byte]string{
	1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse",
	6: "double", 7: "single", 8: "int8", 9: "uint8", 10: "int16",
	11: "uint16", 12: "int32", 13: "uint32", 14: "int64", 15: "uint64",
}

const (
	mxDOUBLE = 6
	mxUINT8  = 9
	mxUINT64 = 15
)

// matComplex is the array flag bit of complex arrays.
const matComplex = 0x08

// matHeaderSize is the size of the MAT file header.
const matHeaderSize = 128

// matTrailingLimit is how many bytes may follow the matrix inside a
// compressed element before the element is refused.
const matTrailingLimit = 4096

// MatArray is a numeric variable read from a MAT file. Its elements are in
// MATLAB's column-major order: for Dims [d0 d1 d2 ...], element (i0, i1,
// i2, ...) is at index i0 + d0*(i1 + d1*(i2 + ...)).
type MatArray struct {
	// Name is the variable's name.
	Name string
	// Class is the MATLAB class: "double", "single", "int8", "uint8",
	// "int16", "uint16", "int32", "uint32", "int64" or "uint64". Logical
	// arrays are reported as "uint8".
	Class string
	// Dims holds the dimensions, at least two.
	Dims []int
	// Uint8 holds the elements of a uint8 array; it is nil for other
	// classes.
	Uint8 []uint8
	// Float64 holds the elements of any other class, converted to float64
	// (exactly, except for 64-bit integers beyond 2^53); it is nil for
	// uint8 arrays.
	Float64 []float64
}

// Len returns the number of elements of a.
func (a *MatArray) Len() int {
	if a.Class == "uint8" {
		return len(a.Uint8)
	}
	return len(a.Float64)
}

// Value returns element i of a as a float64, whatever the class.
func (a *MatArray) Value(i int) float64 {
	if a.Class == "uint8" {
		return float64(a.Uint8[i])
	}
	return a.Float64[i]
}

// ParseMAT parses a little-endian MATLAB level-5 MAT file (as written by
// MATLAB's -v6 and -v7 options and by scipy.io.savemat), compressed or
// not, and returns its variables by name. Only real, full, numeric arrays
// are supported: a file holding a complex, sparse, char, cell, struct or
// object variable is refused, as are big-endian and HDF5-based (-v7.3)
// files.
//
// A uint8 variable must be stored as bytes; other classes may be stored as
// any numeric type, which is converted to the class. Every length is
// checked against the bytes present; a compressed element is inflated only
// as far as its declared size (under 4 GiB) and memory grows only as
// inflated data arrives.
func ParseMAT(b []byte) (map[string]*MatArray, error) {
	if len(b) < matHeaderSize {
		return nil, fmt.Errorf("truncated header: %d bytes, want %d", len(b), matHeaderSize)
	}
	switch string(b[126:128]) {
	case "IM":
	case "MI":
		return nil, errors.New("big-endian MAT files are not supported")
	default:
		return nil, fmt.Errorf("not a MATLAB 5 MAT file: bad endian indicator %q", b[126:128])
	}
	switch v := binary.LittleEndian.Uint16(b[124:]); v {
	case 0x0100:
	case 0x0200:
		return nil, errors.New("MATLAB 7.3 (HDF5) MAT files are not supported: save with -v7")
	default:
		return nil, fmt.Errorf("unsupported MAT file version 0x%04x", v)
	}
	vars := make(map[string]*MatArray)
	for rest := b[matHeaderSize:]; len(rest) > 0; {
		off := len(b) - len(rest)
		typ, data, next, err := matElement(rest, true)
		if err != nil {
			return nil, fmt.Errorf("element at byte %d: %w", off, err)
		}
		rest = next
		var a *MatArray
		switch typ {
		case miMATRIX:
			a, err = parseMatrix(data)
		case miCOMPRESSED:
			a, err = parseCompressed(data)
		default:
			err = fmt.Errorf("unexpected data type %d (want miMATRIX or miCOMPRESSED)", typ)
		}
		if err != nil {
			return nil, fmt.Errorf("element at byte %d: %w", off, err)
		}
		if _, dup := vars[a.Name]; dup {
			return nil, fmt.Errorf("element at byte %d: duplicate variable %s", off, clip.Quote(a.Name))
		}
		vars[a.Name] = a
	}
	return vars, nil
}

// matElement splits the data element at the start of b into its type, its
// data and the bytes after it. Elements are padded to a multiple of 8
// bytes, except compressed ones at the top level; padding missing at the
// very end of b is tolerated.
func matElement(b []byte, top bool) (typ uint32, data, rest []byte, err error) {
	if len(b) < 8 {
		return 0, nil, nil, fmt.Errorf("truncated element tag: %d bytes left", len(b))
	}
	w := binary.LittleEndian.Uint32(b)
	if w>>16 != 0 { // small element: size, type and data in 8 bytes
		n := w >> 16
		if n > 4 {
			return 0, nil, nil, fmt.Errorf("bad small element size %d", n)
		}
		return w & 0xffff, b[4 : 4+n], b[8:], nil
	}
	n := int(binary.LittleEndian.Uint32(b[4:]))
	if n > len(b)-8 {
		return 0, nil, nil, fmt.Errorf("truncated element of type %d: %d bytes declared, %d left", w, n, len(b)-8)
	}
	end := 8 + n
	if !top || w != miCOMPRESSED {
		end = min(8+(n+7)&^7, len(b))
	}
	return w, b[8 : 8+n], b[end:], nil
}

// parseCompressed inflates a miCOMPRESSED element, which must hold one
// miMATRIX element, and parses the matrix.
func parseCompressed(data []byte) (*MatArray, error) {
	z, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, readError("compressed element", err)
	}
	var tag [8]byte
	if _, err := io.ReadFull(z, tag[:]); err != nil {
		return nil, readError("compressed element", err)
	}
	if typ := binary.LittleEndian.Uint32(tag[:]); typ != miMATRIX {
		return nil, fmt.Errorf("compressed element holds data type %d, want miMATRIX (14)", typ)
	}
	n := int(binary.LittleEndian.Uint32(tag[4:]))
	body, err := readFull(z, n, maxInflateRatio*len(data))
	if err != nil {
		return nil, readError(fmt.Sprintf("compressed element (declares %d bytes)", n), err)
	}
	// Read to the end of the stream, which verifies its checksum, allowing
	// for a little padding after the matrix.
	extra, err := io.CopyN(io.Discard, z, matTrailingLimit)
	if err == nil {
		return nil, fmt.Errorf("compressed element: %d or more bytes after the matrix", extra)
	}
	if err != io.EOF {
		return nil, readError("compressed element", err)
	}
	return parseMatrix(body)
}

// parseMatrix parses the data of a miMATRIX element: array flags,
// dimensions, name and real part.
func parseMatrix(b []byte) (*MatArray, error) {
	typ, flags, b, err := matElement(b, false)
	if err != nil {
		return nil, fmt.Errorf("array flags: %w", err)
	}
	if typ != miUINT32 || len(flags) != 8 {
		return nil, fmt.Errorf("bad array flags: data type %d, %d bytes (want miUINT32, 8 bytes)", typ, len(flags))
	}
	class, flagBits := flags[0], flags[1]

	typ, rawDims, b, err := matElement(b, false)
	if err != nil {
		return nil, fmt.Errorf("dimensions: %w", err)
	}
	if typ != miINT32 || len(rawDims)%4 != 0 || len(rawDims) < 8 {
		return nil, fmt.Errorf("bad dimensions: data type %d, %d bytes (want miINT32, 2 or more)", typ, len(rawDims))
	}

	typ, name, b, err := matElement(b, false)
	if err != nil {
		return nil, fmt.Errorf("array name: %w", err)
	}
	if typ != miINT8 {
		return nil, fmt.Errorf("bad array name: data type %d (want miINT8)", typ)
	}
	a := &MatArray{Name: string(name), Dims: make([]int, len(rawDims)/4)}

	cls, ok := mxClasses[class]
	if !ok {
		return nil, fmt.Errorf("variable %s: unknown array class %d", clip.Quote(a.Name), class)
	}
	if class < mxDOUBLE || class > mxUINT64 {
		return nil, fmt.Errorf("variable %s: %s arrays are not supported", clip.Quote(a.Name), cls)
	}
	if flagBits&matComplex != 0 {
		return nil, fmt.Errorf("variable %s: complex arrays are not supported", clip.Quote(a.Name))
	}
	a.Class = cls

	// Each element takes at least a byte, which bounds the count by len(b)
	// and keeps the product from overflowing.
	count := 1
	for i := range a.Dims {
		d := int(int32(binary.LittleEndian.Uint32(rawDims[4*i:])))
		if d < 0 {
			return nil, fmt.Errorf("variable %s: wrong shape: negative dimension %d", clip.Quote(a.Name), d)
		}
		a.Dims[i] = d
		if d != 0 && count > len(b)/d {
			return nil, fmt.Errorf("variable %s: wrong shape: dimensions %s need more than the %d bytes left", clip.Quote(a.Name), clip.Shape(a.Dims[:i+1]), len(b))
		}
		count *= d
	}

	typ, re, _, err := matElement(b, false)
	if err != nil {
		return nil, fmt.Errorf("variable %s: real part: %w", clip.Quote(a.Name), err)
	}
	size, ok := miSize[typ]
	if !ok {
		return nil, fmt.Errorf("variable %s: real part has unsupported data type %d", clip.Quote(a.Name), typ)
	}
	if len(re) != count*size {
		return nil, fmt.Errorf("variable %s: wrong shape: real part has %d bytes, dimensions %s need %d of %d bytes each", clip.Quote(a.Name), len(re), clip.Shape(a.Dims), count, size)
	}
	if class == mxUINT8 {
		if typ != miUINT8 {
			return nil, fmt.Errorf("variable %s: uint8 array stored as data type %d", clip.Quote(a.Name), typ)
		}
		a.Uint8 = bytes.Clone(re)
		return a, nil
	}
	a.Float64 = decodeFloat64(typ, re, count)
	return a, nil
}

// decodeFloat64 converts count little-endian elements of the numeric data
// type typ to float64.
func decodeFloat64(typ uint32, b []byte, count int) []float64 {
	f := make([]float64, count)
	le := binary.LittleEndian
	switch typ {
	case miINT8:
		for i := range f {
			f[i] = float64(int8(b[i]))
		}
	case miUINT8:
		for i := range f {
			f[i] = float64(b[i])
		}
	case miINT16:
		for i := range f {
			f[i] = float64(int16(le.Uint16(b[2*i:])))
		}
	case miUINT16:
		for i := range f {
			f[i] = float64(le.Uint16(b[2*i:]))
		}
	case miINT32:
		for i := range f {
			f[i] = float64(int32(le.Uint32(b[4*i:])))
		}
	case miUINT32:
		for i := range f {
			f[i] = float64(le.Uint32(b[4*i:]))
		}
	case miSINGLE:
		for i := range f {
			f[i] = float64(math.Float32frombits(le.Uint32(b[4*i:])))
		}
	case miDOUBLE:
		for i := range f {
			f[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
	case miINT64:
		for i := range f {
			f[i] = float64(int64(le.Uint64(b[8*i:])))
		}
	case miUINT64:
		for i := range f {
			f[i] = float64(le.Uint64(b[8*i:]))
		}
	}
	return f
}
