package torchimport

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
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
			return nil, fmt.Errorf("storage %q: %d bytes for %d elements of %s", key, len(data[key]), s.numel, s.dtype)
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
	for i, k := range sd.keys {
		name, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("the state_dict has a key %s that is not a string", describe(k))
		}
		ref, ok := sd.values[i].(*tensorRef)
		if !ok {
			if c.Key == "" {
				return nil, fmt.Errorf("no state_dict found: the checkpoint dict's entry %q is %s, and it has no %s entry",
					name, describe(sd.values[i]), strings.Join(StateDictKeys, ", "))
			}
			return nil, fmt.Errorf("state_dict entry %q is %s, not a tensor", name, describe(sd.values[i]))
		}
		t, err := newTensor(ref, data[ref.storage.key])
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if _, dup := c.Tensors[name]; !dup {
			c.Names = append(c.Names, name)
		}
		c.Tensors[name] = t
	}
	return c, nil
}

// newTensor checks that a view lies inside its storage.
func newTensor(ref *tensorRef, data []byte) (*Tensor, error) {
	numel := ref.storage.numel
	t := &Tensor{DType: ref.storage.dtype, Shape: make([]int, len(ref.size)), data: data, offset: ref.offset, stride: ref.stride}
	if ref.offset > maxElements {
		return nil, fmt.Errorf("storage offset %d is too large", ref.offset)
	}
	elems, last := int64(1), ref.offset
	for i, n := range ref.size {
		if n > maxElements || (n > 0 && elems > maxElements/n) {
			return nil, fmt.Errorf("shape %v is too large", ref.size)
		}
		elems *= n
		t.Shape[i] = int(n)
		if n > 0 && ref.stride[i] > 0 {
			if ref.stride[i] > maxElements/n {
				return nil, fmt.Errorf("stride %v is too large", ref.stride)
			}
			if last += (n - 1) * ref.stride[i]; last > maxElements {
				return nil, fmt.Errorf("view (offset %d, shape %v, stride %v) is too large", ref.offset, ref.size, ref.stride)
			}
		}
	}
	if elems > 0 && last >= numel {
		return nil, fmt.Errorf("view (offset %d, shape %v, stride %v) reaches past its storage of %d elements", ref.offset, ref.size, ref.stride, numel)
	}
	return t, nil
}

// Numel is the tensor's element count.
func (t *Tensor) Numel() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// elements returns the storage indices of the tensor's elements in
// row-major order.
func (t *Tensor) elements() []int64 {
	idx := make([]int64, t.Numel())
	if len(idx) == 0 {
		return idx
	}
	pos := make([]int, len(t.Shape))
	at := t.offset
	for i := range idx {
		idx[i] = at
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
	return idx
}

// Float32s returns the tensor's values in row-major order as float32.
func (t *Tensor) Float32s() []float32 {
	idx := t.elements()
	out := make([]float32, len(idx))
	for i, e := range idx {
		out[i] = float32(t.value(e))
	}
	return out
}

// Int64s returns the tensor's values in row-major order as int64; floats
// are truncated.
func (t *Tensor) Int64s() []int64 {
	idx := t.elements()
	out := make([]int64, len(idx))
	for i, e := range idx {
		switch t.DType {
		case "I64":
			out[i] = int64(binary.LittleEndian.Uint64(t.data[8*e:]))
		default:
			out[i] = int64(t.value(e))
		}
	}
	return out
}

// value decodes element e of the storage.
func (t *Tensor) value(e int64) float64 {
	b := t.data
	switch t.DType {
	case "F32":
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*e:])))
	case "F64":
		return math.Float64frombits(binary.LittleEndian.Uint64(b[8*e:]))
	case "F16":
		return float64(halfToFloat(binary.LittleEndian.Uint16(b[2*e:])))
	case "BF16":
		return float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*e:])) << 16))
	case "I64":
		return float64(int64(binary.LittleEndian.Uint64(b[8*e:])))
	case "I32":
		return float64(int32(binary.LittleEndian.Uint32(b[4*e:])))
	case "I16":
		return float64(int16(binary.LittleEndian.Uint16(b[2*e:])))
	case "I8":
		return float64(int8(b[e]))
	default: // U8, BOOL
		return float64(b[e])
	}
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
