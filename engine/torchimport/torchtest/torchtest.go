// Package torchtest builds PyTorch checkpoints byte by byte for tests:
// pickles opcode by opcode as torch.save writes them, torch's zip and
// legacy containers, state_dicts of given tensors, and the hostile files
// that `qmulgpu import` must refuse (Hostile).
package torchtest

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"strconv"
)

// Pickle is a pickle under construction.
type Pickle struct{ b []byte }

// NewPickle starts a protocol-2 pickle.
func NewPickle() *Pickle { return &Pickle{b: []byte{0x80, 2}} }

// Op appends raw opcodes and operands.
func (p *Pickle) Op(b ...byte) *Pickle { p.b = append(p.b, b...); return p }

// Str pushes a string (BINUNICODE).
func (p *Pickle) Str(s string) *Pickle {
	p.Op('X')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(s)))
	p.b = append(p.b, s...)
	return p
}

// Int pushes an integer (BININT, or LONG1 of 8 bytes beyond int32).
func (p *Pickle) Int(v int) *Pickle {
	if v != int(int32(v)) {
		p.Op(0x8a, 8)
		p.b = binary.LittleEndian.AppendUint64(p.b, uint64(v))
		return p
	}
	p.Op('J')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(int32(v)))
	return p
}

// Float pushes a float (BINFLOAT).
func (p *Pickle) Float(v float64) *Pickle {
	p.Op('G')
	p.b = binary.BigEndian.AppendUint64(p.b, math.Float64bits(v))
	return p
}

// Global pushes a module-level name (GLOBAL).
func (p *Pickle) Global(module, name string) *Pickle {
	return p.Op('c').Op([]byte(module + "\n" + name + "\n")...)
}

// Ints pushes a tuple of integers.
func (p *Pickle) Ints(v ...int) *Pickle {
	p.Op('(')
	for _, x := range v {
		p.Int(x)
	}
	return p.Op('t')
}

// Tensor pushes torch._utils._rebuild_tensor_v2 of the storage key (of the
// storage class storage, numel elements) with the given view.
func (p *Pickle) Tensor(storage, key string, numel, offset int, size, stride []int) *Pickle {
	p.TensorStart(storage, key, numel)
	p.Int(offset).Ints(size...).Ints(stride...)
	return p.TensorEnd()
}

// TensorStart pushes what precedes a tensor's offset, size and stride:
// the rebuild function, a MARK and the storage's persistent id.
func (p *Pickle) TensorStart(storage, key string, numel int) *Pickle {
	p.Global("torch._utils", "_rebuild_tensor_v2")
	p.Op('(')
	return p.Op('(').Str("storage").Global("torch", storage).Str(key).Str("cpu").Int(numel).Op('t', 'Q')
}

// TensorEnd pushes what follows a tensor's stride: requires_grad, the
// backward hooks and the call.
func (p *Pickle) TensorEnd() *Pickle {
	p.Op(0x89)
	p.Global("collections", "OrderedDict").Op(')', 'R')
	return p.Op('t', 'R')
}

// Bytes returns the pickle so far, without STOP.
func (p *Pickle) Bytes() []byte { return p.b }

// Stop ends the pickle.
func (p *Pickle) Stop() []byte { return append(p.b, '.') }

// Zip packs a data.pkl and storages as torch.save's zip format (entries
// stored, under "archive/").
func Zip(pkl []byte, storages map[string][]byte) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	add := func(name string, data []byte) {
		f, err := w.CreateHeader(&zip.FileHeader{Name: "archive/" + name, Method: zip.Store})
		if err != nil {
			panic(err)
		}
		f.Write(data)
	}
	add("data.pkl", pkl)
	for _, k := range slices.Sorted(maps.Keys(storages)) {
		add("data/"+k, storages[k])
	}
	add("version", []byte("3\n"))
	if err := w.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// LegacyMagic is the magic number of torch's legacy format, as LONG1's
// little-endian bytes.
var LegacyMagic = []byte{0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}

// LegacyHeader is what precedes the object pickle in torch's legacy
// format: the magic number, the protocol version and the system
// information.
func LegacyHeader() []byte {
	b := append([]byte{0x80, 2, 0x8a, byte(len(LegacyMagic))}, LegacyMagic...)
	b = append(b, '.')
	b = append(b, NewPickle().Int(1001).Stop()...)
	return append(b, NewPickle().Op('}').Str("little_endian").Op(0x88, 's').Stop()...)
}

// Legacy packs an object pickle and storages as torch's legacy format;
// sizes gives each storage's element size.
func Legacy(obj []byte, keys []string, storages map[string][]byte, sizes map[string]int) []byte {
	b := append(LegacyHeader(), obj...)
	keyList := NewPickle().Op(']', '(')
	for _, k := range keys {
		keyList.Str(k)
	}
	b = append(b, keyList.Op('e').Stop()...)
	for _, k := range keys {
		b = binary.LittleEndian.AppendUint64(b, uint64(len(storages[k])/sizes[k]))
		b = append(b, storages[k]...)
	}
	return b
}

// Tensor is a contiguous tensor of a state_dict, in safetensors' dtype
// names ("F32", "I64", ...) and little-endian bytes.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
}

// storageClasses maps dtypes to torch's typed storage classes.
var storageClasses = map[string]string{
	"F32": "FloatStorage", "F64": "DoubleStorage", "F16": "HalfStorage", "BF16": "BFloat16Storage",
	"I64": "LongStorage", "I32": "IntStorage", "I16": "ShortStorage", "I8": "CharStorage",
	"U8": "ByteStorage", "BOOL": "BoolStorage",
}

// ElementSize is the byte size of a dtype's elements.
func ElementSize(dtype string) int {
	switch dtype {
	case "F64", "I64":
		return 8
	case "F32", "I32":
		return 4
	case "F16", "BF16", "I16":
		return 2
	}
	return 1
}

// StateDict returns an OrderedDict of the tensors, each with its own
// storage, as a pickle without STOP, and the storages in the order of the
// tensors.
func StateDict(tensors []Tensor) (*Pickle, Storages) {
	p := NewPickle().Global("collections", "OrderedDict").Op(')', 'R', '(')
	s := Storages{Data: map[string][]byte{}, Sizes: map[string]int{}}
	for i, t := range tensors {
		key := strconv.Itoa(i)
		s.Keys = append(s.Keys, key)
		s.Data[key], s.Sizes[key] = t.Data, ElementSize(t.DType)
		p.Str(t.Name).Tensor(storageClasses[t.DType], key, len(t.Data)/ElementSize(t.DType), 0, t.Shape, contiguous(t.Shape))
	}
	return p.Op('u'), s
}

// Storages are a checkpoint's storages: their keys in order, bytes and
// element sizes.
type Storages struct {
	Keys  []string
	Data  map[string][]byte
	Sizes map[string]int
}

// ZipStateDict writes the tensors as a bare state_dict in the zip format.
func ZipStateDict(tensors []Tensor) []byte {
	p, s := StateDict(tensors)
	return Zip(p.Stop(), s.Data)
}

// LegacyStateDict writes the tensors as a bare state_dict in the legacy
// format.
func LegacyStateDict(tensors []Tensor) []byte {
	p, s := StateDict(tensors)
	return Legacy(p.Stop(), s.Keys, s.Data, s.Sizes)
}

// contiguous returns the row-major strides of a shape.
func contiguous(shape []int) []int {
	stride := make([]int, len(shape))
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		stride[i] = s
		s *= shape[i]
	}
	return stride
}
