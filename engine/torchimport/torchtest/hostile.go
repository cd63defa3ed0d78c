package torchtest

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
	"github.com/qmulgpu/qmulgpu/qat"
)

// The model the hostile files are state_dicts of: a Fashion-MNIST
// smallcnn with LSQ W4A4 quantizers, imported with
// `--model smallcnn --dataset fashion-mnist --quant lsq --wbits 4 --abits 4`.
var (
	SmallCNN   = models.Config{Arch: "smallcnn", Classes: 10, H: 28, W: 28, C: 1}
	SmallCNNQ  = qat.Config{Scheme: "lsq", WBits: 4, ABits: 4, Float: qat.DefaultFloat()}
	FashionStd = []float32{0.3530}
	// FashionMean is Fashion-MNIST's mean, as data.Stats gives it.
	FashionMean = []float32{0.2860}
)

// SmallCNNTensors returns the state_dict of a SmallCNN with SmallCNNQ's
// quantizers as PyTorch holds it: F32 parameters and states in PyTorch's
// layouts, I64 counters, LSQ steps of 0.05 marked initialised.
func SmallCNNTensors() []Tensor {
	b := cpu.New(1)
	m, err := models.New(b, engine.Float32, SmallCNN, 1)
	if err != nil {
		panic(err)
	}
	if err := qat.Apply(b, m, SmallCNNQ); err != nil {
		panic(err)
	}
	f, err := checkpoint.Encode(b, m, checkpoint.Contents{})
	if err != nil {
		panic(err)
	}
	var out []Tensor
	for _, t := range f.Tensors {
		switch {
		case strings.HasSuffix(t.Name, "_fn.initialized"):
			t.Data = safetensors.FromInt64s([]int64{1})
		case strings.HasSuffix(t.Name, "_fn.s"):
			v := make([]float32, len(t.Data)/4)
			for i := range v {
				v[i] = 0.05
			}
			t.Data = safetensors.FromFloat32s(v)
		}
		out = append(out, Tensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Data: t.Data})
	}
	return out
}

// HostileFile is a crafted checkpoint that importing SmallCNN must refuse
// with one line containing Want.
type HostileFile struct {
	Name, Want string
	File       []byte
}

// Hostile returns the crafted checkpoints: files that crashed the
// importer, made it allocate gigabytes, or imported values that loading
// refuses, and the smaller defects found with them.
func Hostile() []HostileFile {
	return append(hostileStructure(), hostileValues()...)
}

// hostileStructure are files whose pickle or container is malformed.
func hostileStructure() []HostileFile {
	base := SmallCNNTensors()
	legacy := LegacyStateDict(base)
	return []HostileFile{
		{"normalize.mean a zero-stride view of 2^40 elements", "normalize.mean has 1099511627776 elements, but the data set has one channel",
			withNormalize(nil, 1<<40, 0)},
		{"normalize.mean a zero-stride view of 2^28 elements", "normalize.mean has 268435456 elements",
			withNormalize(nil, 1<<28, 0)},
		{"4M nested tuples as a storage offset", "nested more than 64 deep", nestedOffset(4 << 20)},
		{"a 400k-dimension tensor under 2000 names", "has 400000 dimensions, more than the 16 read", manyDims(400000, 2000)},
		{"a list inside itself", "recursive structure", Zip(NewPickle().Op(']', 0x94, 'h', 0, 'a').Stop(), nil)},
		{"a state_dict entry that is a dict", "entry \"conv1.weight\" is a dict of 0 entries",
			Zip(NewPickle().Op('}').Str("conv1.weight").Op('}', 's').Stop(), nil)},
		{"a 1 MB name", "unexpected (1): " + strings.Repeat("x", 20), ZipStateDict(append(base, Tensor{Name: strings.Repeat("x", 1<<20), DType: "F32", Data: make([]byte, 4)}))},
		{"legacy format with trailing bytes", "4 bytes follow the last storage", append(bytes.Clone(legacy), 0, 0, 0, 0)},
		{"legacy format cut short", "the file is truncated", legacy[:len(legacy)-100]},
	}
}

// hostileValues are well-formed files whose values loading refuses.
func hostileValues() []HostileFile {
	f32 := func(v float32) []byte { return safetensors.FromFloat32s([]float32{v}) }
	return []HostileFile{
		{"int8 weights", "not floating-point (1): conv2.weight: int8", edit("conv2.weight", func(t *Tensor) {
			t.DType, t.Data = "I8", make([]byte, len(t.Data)/4)
		})},
		{"a NaN weight", "tensor \"fc.weight\" holds NaN at element 0", setFirst("fc.weight", f32(float32(math.NaN())))},
		{"an infinite weight", "tensor \"conv2.weight\" holds +Inf at element 0", setFirst("conv2.weight", f32(float32(math.Inf(1))))},
		{"a float64 weight beyond float32", "holds 1e+300 at element 0, beyond float32's range", edit("fc.bias", func(t *Tensor) {
			t.DType, t.Data = "F64", safetensors.FromFloat64s(make([]float64, len(t.Data)/4))
			binary.LittleEndian.PutUint64(t.Data, math.Float64bits(1e300))
		})},
		{"a negative running_var", "tensor \"bn3.running_var\" holds -1 at element 0: a BatchNorm variance must not be negative",
			setFirst("bn3.running_var", f32(-1))},
		{"a zero LSQ step", "an LSQ step must not be zero", setFirst("conv2.quan_w_fn.s", f32(0))},
		{"num_batches_tracked NaN", "tensor \"bn1.num_batches_tracked\" holds NaN, not a count", edit("bn1.num_batches_tracked", func(t *Tensor) {
			t.DType, t.Data = "F32", f32(float32(math.NaN()))
		})},
		{"num_batches_tracked 1e30", "holds 1e+30, not a count", edit("bn1.num_batches_tracked", func(t *Tensor) {
			t.DType, t.Data = "F32", f32(1e30)
		})},
		{"num_batches_tracked negative", "holds -3, but a count cannot be negative", edit("bn2.num_batches_tracked", func(t *Tensor) {
			t.Data = safetensors.FromInt64s([]int64{-3})
		})},
		{"a NaN normalize.mean", "the model normalises its input with mean [NaN]", withNormalizeValue(float32(math.NaN()))},
	}
}

// edit returns SmallCNN's state_dict in the zip format after changing one
// tensor.
func edit(name string, change func(*Tensor)) []byte {
	ts := SmallCNNTensors()
	for i := range ts {
		if ts[i].Name == name {
			change(&ts[i])
		}
	}
	return ZipStateDict(ts)
}

// setFirst sets the first element of a tensor.
func setFirst(name string, v []byte) []byte {
	return edit(name, func(t *Tensor) { copy(t.Data, v) })
}

// withNormalize adds the reference models' normalisation buffers, the mean
// a view of one storage element with the given size and stride.
func withNormalize(ts []Tensor, size, stride int) []byte {
	p, s := StateDict(ts)
	p.Op('(')
	p.Str("module.normalize.mean").Tensor("FloatStorage", "mean", 1, 0, []int{size}, []int{stride})
	p.Str("normalize.std").Tensor("FloatStorage", "std", 1, 0, []int{1}, []int{1})
	p.Op('u')
	s.Data["mean"] = safetensors.FromFloat32s(FashionMean)
	s.Data["std"] = safetensors.FromFloat32s(FashionStd)
	return Zip(p.Stop(), s.Data)
}

// withNormalizeValue adds normalisation buffers whose mean is v.
func withNormalizeValue(v float32) []byte {
	ts := append(SmallCNNTensors(),
		Tensor{Name: "normalize.mean", DType: "F32", Shape: []int{1}, Data: safetensors.FromFloat32s([]float32{v})},
		Tensor{Name: "normalize.std", DType: "F32", Shape: []int{1}, Data: safetensors.FromFloat32s(FashionStd)})
	return ZipStateDict(ts)
}

// nestedOffset gives a tensor a storage offset of depth nested
// one-element tuples (one byte each).
func nestedOffset(depth int) []byte {
	p := NewPickle().Op('}').Str("w").TensorStart("FloatStorage", "0", 1)
	p.Op(')')
	p.Op(bytes.Repeat([]byte{0x85}, depth)...)
	p.Ints(1).Ints(1).TensorEnd().Op('s')
	return Zip(p.Stop(), map[string][]byte{"0": make([]byte, 4)})
}

// manyDims gives a zero-element tensor of ndim dimensions, memoised and
// stored under names distinct keys.
func manyDims(ndim, names int) []byte {
	p := NewPickle().Op('}', '(')
	p.Str("t0").TensorStart("FloatStorage", "0", 0)
	p.Int(0).Op('(')
	for range ndim {
		p.Op('K', 0)
	}
	p.Op('t', 0x94, 'h', 0) // the size tuple, memo entry 0, is also the stride
	p.TensorEnd().Op(0x94)  // the tensor is memo entry 1
	for i := 1; i < names; i++ {
		p.Str("t"+strconv.Itoa(i)).Op('h', 1)
	}
	p.Op('u')
	return Zip(p.Stop(), map[string][]byte{"0": nil})
}
