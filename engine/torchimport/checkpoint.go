package torchimport

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/qmulgpu/qmulgpu/internal/clip"
)

// StateDictKeys are the entries of a checkpoint dict that may hold the
// state_dict, in the order they are tried.
var StateDictKeys = []string{"state_dict", "model", "net"}

// Checkpoint is the state_dict found in a PyTorch checkpoint.
type Checkpoint struct {
	// Format is FormatZip or FormatLegacy.
	Format string
	// Key is the entry of the checkpoint dict that held the state_dict,
	// or "" when the file is a bare state_dict.
	Key string
	// Names lists the state_dict's tensors in file order.
	Names []string
	// Tensors maps each name to its tensor.
	Tensors map[string]*Tensor
}

// Tensor is one tensor of a checkpoint: its dtype (safetensors' names:
// "F32", "I64", ...), its shape, and a strided view of its storage's bytes.
type Tensor struct {
	DType  string
	Shape  []int
	data   []byte
	offset int64
	stride []int64
}

// maxElements bounds a tensor's element count and storage index so that
// the arithmetic below cannot overflow.
const maxElements = 1 << 40

// dtypeSize is the byte size of a storage dtype.
func dtypeSize(dtype string) (int, bool) {
	switch dtype {
	case "F64", "I64":
		return 8, true
	case "F32", "I32":
		return 4, true
	case "F16", "BF16", "I16":
		return 2, true
	case "I8", "U8", "BOOL":
		return 1, true
	}
	return 0, false
}

// newCheckpoint checks the storages' sizes and finds the state_dict in the
// unpickled object.
func newCheckpoint(format string, obj any, refs storageTable, data storages) (*Checkpoint, error) {
	for _, key := range slices.Sorted(maps.Keys(refs)) {
		s := refs[key]
		size, _ := dtypeSize(s.dtype)
		if uint64(len(data[key]))/uint64(size) != uint64(s.numel) || len(data[key])%size != 0 {
			return nil, fmt.Errorf("storage %s: %d bytes for %d elements of %s", describe(key), len(data[key]), s.numel, dtypeName(s.dtype))
		}
	}
	top, ok := obj.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("the checkpoint holds %s, not a dict", describe(obj))
	}
	c := &Checkpoint{Format: format, Tensors: map[string]*Tensor{}}
	sd := top
	for _, k := range StateDictKeys {
		if d, ok := lookup(top, k).(*pyDict); ok {
			sd, c.Key = d, k
			break
		}
	}
	// A tensor shared by several names (through the memo) is one Tensor.
	built := map[*tensorRef]*Tensor{}
	for i, k := range sd.keys {
		name, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("the state_dict has a key that is %s, not a string", describe(k))
		}
		ref, ok := sd.values[i].(*tensorRef)
		if !ok {
			if c.Key == "" {
				return nil, fmt.Errorf("no state_dict found: the checkpoint dict's entry %s is %s, and it has no %s entry",
					describe(name), describe(sd.values[i]), strings.Join(StateDictKeys, ", "))
			}
			return nil, fmt.Errorf("state_dict entry %s is %s, not a tensor", describe(name), describe(sd.values[i]))
		}
		t, ok := built[ref]
		if !ok {
			var err error
			if t, err = newTensor(ref, data[ref.storage.key]); err != nil {
				return nil, fmt.Errorf("tensor %s: %w", describe(name), err)
			}
			built[ref] = t
		}
		if _, dup := c.Tensors[name]; !dup {
			c.Names = append(c.Names, name)
		}
		c.Tensors[name] = t
	}
	return c, nil
}

// newTensor checks that a view lies inside its storage. Nothing is
// decoded: a view may repeat its storage's elements (a stride of 0), so
// its element count is checked against the model before it is read.
func newTensor(ref *tensorRef, data []byte) (*Tensor, error) {
	numel := ref.storage.numel
	t := &Tensor{DType: ref.storage.dtype, Shape: make([]int, len(ref.size)), data: data, offset: ref.offset, stride: ref.stride}
	if ref.offset > maxElements {
		return nil, fmt.Errorf("storage offset %d is too large", ref.offset)
	}
	elems, last := int64(1), ref.offset
	for i, n := range ref.size {
		if n > maxElements || (n > 0 && elems > maxElements/n) {
			return nil, fmt.Errorf("shape %s is too large", clip.Shape(ref.size))
		}
		elems *= n
		t.Shape[i] = int(n)
		if n > 0 && ref.stride[i] > 0 {
			if ref.stride[i] > maxElements/n {
				return nil, fmt.Errorf("stride %s is too large", clip.Shape(ref.stride))
			}
			if last += (n - 1) * ref.stride[i]; last > maxElements {
				return nil, fmt.Errorf("view (offset %d, shape %s, stride %s) is too large", ref.offset, clip.Shape(ref.size), clip.Shape(ref.stride))
			}
		}
	}
	if elems > 0 && last >= numel {
		return nil, fmt.Errorf("view (offset %d, shape %s, stride %s) reaches past its storage of %d elements",
			ref.offset, clip.Shape(ref.size), clip.Shape(ref.stride), numel)
	}
	return t, nil
}

// dtypeNames are the dtypes in torch's words.
var dtypeNames = map[string]string{
	"F32": "float32", "F64": "float64", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
	"I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
}

// dtypeName names a dtype as torch does.
func dtypeName(dtype string) string { return dtypeNames[dtype] }

// IsFloat reports whether the tensor holds floating-point numbers.
func (t *Tensor) IsFloat() bool {
	switch t.DType {
	case "F32", "F64", "F16", "BF16":
		return true
	}
	return false
}

// Numel is the tensor's element count.
func (t *Tensor) Numel() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// each calls f with the storage index of every element of the tensor, in
// row-major order.
func (t *Tensor) each(f func(i int, e int64) error) error {
	n := t.Numel()
	if n == 0 {
		return nil
	}
	pos := make([]int, len(t.Shape))
	at := t.offset
	for i := range n {
		if err := f(i, at); err != nil {
			return err
		}
		for d := len(pos) - 1; d >= 0; d-- {
			pos[d]++
			at += t.stride[d]
			if pos[d] < t.Shape[d] {
				break
			}
			at -= int64(pos[d]) * t.stride[d]
			pos[d] = 0
		}
	}
	return nil
}

// Float32s returns a float tensor's values in row-major order as float32.
// float16 and bfloat16 values convert exactly, float64 ones to the nearest
// float32; a finite float64 value beyond float32's range is an error. Call
// it only once the element count is known to be what the model needs: a
// view with zero strides can have many more elements than its storage.
func (t *Tensor) Float32s() ([]float32, error) {
	if !t.IsFloat() {
		return nil, fmt.Errorf("holds %s, not floating-point numbers", dtypeName(t.DType))
	}
	out := make([]float32, t.Numel())
	err := t.each(func(i int, e int64) error {
		v := t.value(e)
		out[i] = float32(v)
		if math.IsInf(float64(out[i]), 0) && !math.IsInf(v, 0) {
			return fmt.Errorf("holds %s at element %d, beyond float32's range", t.format(v), i)
		}
		return nil
	})
	return out, err
}

// Count returns the value of a one-element tensor that holds a counter
// (num_batches_tracked, an LSQ "initialized" flag): an integer of any
// dtype, or a float holding a whole number. It must not be negative.
func (t *Tensor) Count() (int64, error) {
	if t.Numel() != 1 {
		return 0, fmt.Errorf("has %d elements, not one", t.Numel())
	}
	var v int64
	if t.IsFloat() {
		f := t.value(t.offset)
		// 2^63 is the first float beyond int64.
		if math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || f < 0 || f >= 1<<63 {
			return 0, fmt.Errorf("holds %s, not a count (a whole number from 0 to 2^63)", t.format(f))
		}
		v = int64(f)
	} else {
		v = t.integer(t.offset)
	}
	if v < 0 {
		return 0, fmt.Errorf("holds %d, but a count cannot be negative", v)
	}
	return v, nil
}

// format writes a value decoded from the tensor as briefly as its dtype
// allows.
func (t *Tensor) format(v float64) string {
	bits := 32
	if t.DType == "F64" {
		bits = 64
	}
	return strconv.FormatFloat(v, 'g', -1, bits)
}

// integer decodes element e of an integer storage.
func (t *Tensor) integer(e int64) int64 {
	b := t.data
	switch t.DType {
	case "I64":
		return int64(binary.LittleEndian.Uint64(b[8*e:]))
	case "I32":
		return int64(int32(binary.LittleEndian.Uint32(b[4*e:])))
	case "I16":
		return int64(int16(binary.LittleEndian.Uint16(b[2*e:])))
	case "I8":
		return int64(int8(b[e]))
	}
	return int64(b[e]) // U8, BOOL
}

// value decodes element e of a float storage.
func (t *Tensor) value(e int64) float64 {
	b := t.data
	switch t.DType {
	case "F32":
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*e:])))
	case "F64":
		return math.Float64frombits(binary.LittleEndian.Uint64(b[8*e:]))
	case "F16":
		return float64(halfToFloat(binary.LittleEndian.Uint16(b[2*e:])))
	}
	// BF16: the high half of a float32.
	return float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*e:])) << 16))
}

// halfToFloat converts an IEEE binary16 value.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		v := float32(frac) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}
