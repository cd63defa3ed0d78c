package torchimport

import (
	"bytes"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
	"github.com/qmulgpu/qmulgpu/engine/torchimport/torchtest"
	"github.com/qmulgpu/qmulgpu/internal/fuzzcheck"
	"github.com/qmulgpu/qmulgpu/qat"
)

// Memory the readers may use: a pickle builds at most one value per opcode,
// about 100 bytes each with the stack's and memo's growth; Parse adds the
// container's index and one Tensor per distinct view. allocBase covers
// fixed costs and Load's model-sized buffers (the fuzz model's tensors take
// 380 kB).
const (
	allocPerByte = 256
	allocBase    = 16 << 20
)

// fuzzModel is what FuzzParseZip and FuzzParseLegacy load parsed files
// onto: the smallest smallcnn with LSQ W4A4 quantizers.
var fuzzModel = sync.OnceValue(func() *models.Model {
	b := cpu.New(1)
	m, err := models.New(b, engine.Float32, fuzzModelConfig, 1)
	if err != nil {
		panic(err)
	}
	if err := qat.Apply(b, m, torchtest.SmallCNNQ); err != nil {
		panic(err)
	}
	return m
})

var fuzzModelConfig = models.Config{Arch: "smallcnn", Classes: 2, H: 8, W: 8, C: 1}

// fuzzModelTensors is fuzzModel's state_dict, as torchtest.SmallCNNTensors.
func fuzzModelTensors() []torchtest.Tensor {
	var out []torchtest.Tensor
	for _, t := range torchtest.SmallCNNTensors() {
		if t.Name == "fc.weight" || t.Name == "fc.bias" {
			// The 8×8 input leaves a 128×2×2 map; 2 classes.
			n := 2 * 128 * 2 * 2
			shape := []int{2, 128 * 2 * 2}
			if t.Name == "fc.bias" {
				n, shape = 2, []int{2}
			}
			t.Shape, t.Data = shape, safetensors.FromFloat32s(make([]float32, n))
		}
		out = append(out, t)
	}
	return out
}

// FuzzUnpickle runs the pickle machine on any bytes: no panic, memory
// bounded by the input, one-line errors; what it builds is a tree (no
// container inside itself) at most maxDepth deep.
func FuzzUnpickle(f *testing.F) {
	f.Add(stateDict("state_dict"))
	f.Add(newPickle().Op(']', '(', 'N', 0x88, 'K', 7, 'e', 0x94, 'h', 0, 0x85, '2', 0x86).Stop())
	f.Add(append([]byte{0x80, 4, 0x95, 9, 0, 0, 0, 0, 0, 0, 0}, torchtest.NewPickle().Str("x").Op(0x8c, 1, 'y', 0x93).Stop()[2:]...))
	f.Add(newPickle().Global("os", "system").Stop())
	f.Add(newPickle().Op(')').Op(bytes.Repeat([]byte{0x85}, maxDepth)...).Stop())
	f.Fuzz(func(t *testing.T, b []byte) {
		refs := storageTable{}
		v, ok := fuzzcheck.Read(t, len(b), allocBase, allocPerByte, func() (any, error) {
			v, _, err := unpickle(b, 0, refs.load)
			return v, err
		})
		if !ok {
			return
		}
		if d := treeDepth(t, v, 0); d > maxDepth {
			t.Fatalf("a value %d deep", d)
		}
	})
}

// treeDepth is how deeply v's containers nest; it fails t when a container
// is reached again below itself or the nesting passes maxDepth+1, and
// checks the depth each container records.
func treeDepth(t *testing.T, v any, above int) int {
	if above > maxDepth+1 {
		t.Fatalf("containers nest more than %d deep", maxDepth+1)
	}
	var items []any
	recorded := 0
	switch x := v.(type) {
	case *pyTuple:
		items, recorded = x.items, x.depth
	case *pyList:
		items, recorded = x.items, x.depth
	case *pyDict:
		items, recorded = append(slices.Clone(x.keys), x.values...), x.depth
	default:
		return 0
	}
	d := 1
	for _, item := range items {
		d = max(d, 1+treeDepth(t, item, above+1))
	}
	if d != recorded {
		t.Fatalf("a container %d deep records %d", d, recorded)
	}
	return d
}

// fuzzSeeds adds files in one format: small state_dicts, one wrapped as
// the reference code wraps them, the small crafted files of
// torchtest.Hostile, and tensors that overlay the fuzz model's state_dict
// with each kind of value Load checks.
func fuzzSeeds(f *testing.F, format string) {
	keys := []string{"0", "1", "2"}
	write := torchtest.LegacyStateDict
	if format == FormatZip {
		write = torchtest.ZipStateDict
		f.Add(torchZip(f, stateDict(""), testStorages))
		f.Add(torchZip(f, stateDict("state_dict"), testStorages))
	} else {
		f.Add(torchLegacy(stateDict(""), keys, testStorages, testSizes))
		f.Add(torchLegacy(stateDict("net"), keys, testStorages, testSizes))
	}
	for _, h := range torchtest.Hostile() {
		if len(h.File) < 4<<10 && bytes.HasPrefix(h.File, []byte("PK")) == (format == FormatZip) {
			f.Add(h.File)
		}
	}
	f32 := func(v ...float32) []byte { return safetensors.FromFloat32s(v) }
	for _, ts := range [][]torchtest.Tensor{
		{{Name: "bn1.running_var", DType: "F16", Shape: []int{32}, Data: make([]byte, 64)}},
		{{Name: "module.bn2.num_batches_tracked", DType: "F64", Shape: []int{}, Data: safetensors.FromFloat64s([]float64{3})},
			{Name: "module.fc.bias", DType: "BF16", Shape: []int{2}, Data: []byte{0x80, 0x3f, 0, 0xc0}}},
		{{Name: "conv1.quan_w_fn.s", DType: "F32", Shape: []int{1, 1, 1, 1}, Data: f32(0.5)},
			{Name: "conv1.quan_w_fn.initialized", DType: "U8", Shape: []int{1}, Data: []byte{1}}},
		{{Name: "normalize.mean", DType: "F32", Shape: []int{1}, Data: f32(torchtest.FashionMean...)},
			{Name: "normalize.std", DType: "F32", Shape: []int{1}, Data: f32(torchtest.FashionStd...)}},
	} {
		f.Add(write(ts))
	}
}

// FuzzParseZip and FuzzParseLegacy run each format's reader on any bytes:
// no panic, memory bounded by the input, one-line errors. A file that
// parses survives a round trip: its tensors, written again as a state_dict
// in both formats, parse to the same names, dtypes, shapes and values.
// Its tensors then replace or join those of the fuzz model's state_dict,
// which is loaded onto the model: it takes them or says in one line why
// not, in memory bounded by the input and the model.
func FuzzParseZip(f *testing.F) {
	fuzzSeeds(f, FormatZip)
	f.Fuzz(func(t *testing.T, b []byte) { checkParse(t, b, parseZip) })
}

func FuzzParseLegacy(f *testing.F) {
	fuzzSeeds(f, FormatLegacy)
	f.Fuzz(func(t *testing.T, b []byte) { checkParse(t, b, parseLegacy) })
}

func checkParse(t *testing.T, b []byte, parse func([]byte) (*Checkpoint, error)) {
	c, ok := fuzzcheck.Read(t, len(b), allocBase, allocPerByte, func() (*Checkpoint, error) { return parse(b) })
	if !ok {
		return
	}
	roundTrip(t, c)
	over := overlay(fuzzModelCheckpoint(), c)
	fuzzcheck.Read(t, len(b), allocBase, allocPerByte, func() (*Report, error) {
		return Load(over, cpu.New(1), fuzzModel(), Normalization{Mean: torchtest.FashionMean, Std: torchtest.FashionStd})
	})
}

// fuzzModelCheckpoint is the fuzz model's state_dict, parsed.
var fuzzModelCheckpoint = sync.OnceValue(func() *Checkpoint {
	c, err := Parse(torchtest.LegacyStateDict(fuzzModelTensors()))
	if err != nil {
		panic(err)
	}
	return c
})

// overlay returns base with the tensors of top replacing or joining its
// own.
func overlay(base, top *Checkpoint) *Checkpoint {
	c := &Checkpoint{Format: top.Format, Key: top.Key, Names: slices.Clone(base.Names), Tensors: maps.Clone(base.Tensors)}
	for _, name := range top.Names {
		if _, ok := c.Tensors[name]; !ok {
			c.Names = append(c.Names, name)
		}
		c.Tensors[name] = top.Tensors[name]
	}
	return c
}

// roundTrip writes the tensors of a parsed checkpoint (those of at most
// 2^16 elements) as a state_dict in both formats and parses them again.
func roundTrip(t *testing.T, c *Checkpoint) {
	var ts []torchtest.Tensor
	for _, name := range c.Names {
		tn := c.Tensors[name]
		if tn.Numel() > 1<<16 {
			return
		}
		ts = append(ts, torchtest.Tensor{Name: name, DType: tn.DType, Shape: tn.Shape, Data: rawBytes(tn)})
	}
	for _, file := range [][]byte{torchtest.ZipStateDict(ts), torchtest.LegacyStateDict(ts)} {
		again, err := Parse(file)
		if err != nil {
			t.Fatalf("written again: %v", err)
		}
		if !slices.Equal(again.Names, c.Names) {
			t.Fatalf("written again: names %q, want %q", again.Names, c.Names)
		}
		for i, name := range c.Names {
			got := again.Tensors[name]
			if got.DType != ts[i].DType || !slices.Equal(got.Shape, ts[i].Shape) || !bytes.Equal(rawBytes(got), ts[i].Data) {
				t.Fatalf("written again, %q is %s%v, want %s%v or other values", name, got.DType, got.Shape, ts[i].DType, ts[i].Shape)
			}
		}
	}
}

// rawBytes returns a tensor's elements' bytes in row-major order.
func rawBytes(t *Tensor) []byte {
	size, _ := dtypeSize(t.DType)
	out := make([]byte, 0, t.Numel()*size)
	t.each(func(_ int, e int64) error {
		out = append(out, t.data[e*int64(size):(e+1)*int64(size)]...)
		return nil
	})
	return out
}
