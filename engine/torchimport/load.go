package torchimport

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
	"github.com/qmulgpu/qmulgpu/internal/clip"
)

// Name conventions of the PyTorch code bases this reads.
const (
	// dataParallelPrefix is what nn.DataParallel and DistributedDataParallel
	// put before every name.
	dataParallelPrefix = "module."
	// normalizePrefix names the input-normalisation module of the SalUn /
	// Unlearn-Sparse models (buffers mean and std), which qmulgpu applies
	// in its data pipeline instead.
	normalizePrefix = "normalize."
	// normTolerance is how far the module's constants may be from the data
	// set's (they are 4-digit decimals stored as float32).
	normTolerance = 1e-4
)

// Report says how a checkpoint's names were mapped onto the model.
type Report struct {
	// Format and Key are the checkpoint's (see Checkpoint).
	Format, Key string
	// Tensors is the number of file tensors loaded into the model.
	Tensors int
	// Unwrapped counts names that lost a DataParallel "module." prefix.
	Unwrapped int
	// Normalize is set when the file's normalisation module was checked
	// against the data set's constants and left to the data pipeline.
	Normalize bool
	// Filled lists model states the file lacks that were given their
	// meaning: num_batches_tracked 0, an LSQ "initialized" flag 1 when the
	// file has the quantizer's step.
	Filled []string
}

// Normalization is the per-channel input normalisation qmulgpu applies to
// the data set, in [0,1] pixel units.
type Normalization struct{ Mean, Std []float32 }

// slot is one tensor the model expects.
type slot struct {
	name  string
	shape []int // PyTorch's shape
	count bool  // an int64 scalar counter
}

// expected lists the model's parameters and states with PyTorch's shapes.
func expected(m *models.Model) []slot {
	var out []slot
	for _, p := range m.Params() {
		shape := append([]int(nil), p.Value.Shape...)
		if p.Layout.Kind == nn.ConvKRSC {
			shape = []int{p.Value.Shape[0], p.Layout.Dims[2], p.Layout.Dims[0], p.Layout.Dims[1]}
		}
		out = append(out, slot{name: p.Name, shape: shape})
	}
	for _, s := range m.States() {
		if s.Count != nil {
			out = append(out, slot{name: s.Name, count: true})
			continue
		}
		out = append(out, slot{name: s.Name, shape: append([]int(nil), s.Value.Shape...)})
	}
	return out
}

// Load maps a checkpoint's state_dict onto m (built with its quantizers)
// and copies it in. Every model tensor must be in the file (or be a state
// the file may omit, see Report.Filled) with PyTorch's shape, and the file
// may hold nothing else; otherwise the error lists all missing, unexpected
// and mis-shaped names on one line, as load_state_dict(strict=True) does.
// Parameters and float states must come from float tensors, counters from
// whole numbers; a tensor is decoded only once its shape is known to be the
// model's. The values then pass the checks of loading a checkpoint
// (checkpoint.CheckValues: finite, in their domains) before m is changed.
func Load(c *Checkpoint, b engine.Storage, m *models.Model, norm Normalization) (*Report, error) {
	r := &Report{Format: c.Format, Key: c.Key}
	file, err := unwrap(c, r)
	if err != nil {
		return nil, err
	}
	if err := checkNormalization(file, norm, r); err != nil {
		return nil, err
	}
	pairs, err := match(file, expected(m), m.Config.Arch, r)
	if err != nil {
		return nil, err
	}
	st := &safetensors.File{}
	for _, p := range pairs {
		t, err := p.convert()
		if err != nil {
			return nil, err
		}
		st.Tensors = append(st.Tensors, t)
	}
	if err := checkpoint.CheckValues(st); err != nil {
		return nil, err
	}
	if _, err := checkpoint.Restore(st, b, m); err != nil {
		return nil, err
	}
	return r, nil
}

// pair is a model slot and the file tensor for it (nil: filled with fill).
type pair struct {
	slot slot
	file *Tensor
	fill int64
}

// match pairs every slot with a file tensor of the right shape and kind,
// without decoding any, or lists on one line everything that does not fit.
func match(file map[string]*Tensor, slots []slot, arch string, r *Report) ([]pair, error) {
	var pairs []pair
	var missing, mismatched, wrongType []string
	used := map[string]bool{}
	for _, s := range slots {
		t, ok := file[s.name]
		if !ok {
			if v, ok := fill(s, file); ok {
				r.Filled = append(r.Filled, s.name)
				pairs = append(pairs, pair{slot: s, fill: v})
				continue
			}
			missing = append(missing, s.name)
			continue
		}
		used[s.name] = true
		switch {
		case s.count && t.Numel() != 1:
			mismatched = append(mismatched, fmt.Sprintf("%s: file %s, model a scalar", s.name, clip.Shape(t.Shape)))
		case s.count:
		case !slices.Equal(t.Shape, s.shape) && !(isStep(s.name) && t.Numel() == numel(s.shape)):
			mismatched = append(mismatched, fmt.Sprintf("%s: file %s, model %s", s.name, clip.Shape(t.Shape), clip.Shape(s.shape)))
		case !t.IsFloat():
			wrongType = append(wrongType, fmt.Sprintf("%s: %s", s.name, dtypeName(t.DType)))
		}
		pairs = append(pairs, pair{slot: s, file: t})
	}
	var unexpected []string
	for name := range file {
		if !used[name] {
			unexpected = append(unexpected, name)
		}
	}
	slices.Sort(unexpected)
	if len(missing)+len(unexpected)+len(mismatched)+len(wrongType) > 0 {
		return nil, strictError(arch, missing, unexpected, mismatched, wrongType)
	}
	r.Tensors = len(used)
	return pairs, nil
}

// convert decodes a pair into the tensor the model takes: an I64 scalar
// for a counter, F32 in PyTorch's shape otherwise.
func (p pair) convert() (safetensors.Tensor, error) {
	s := p.slot
	if p.file == nil {
		return countTensor(s.name, p.fill), nil
	}
	if s.count {
		v, err := p.file.Count()
		if err != nil {
			return safetensors.Tensor{}, fmt.Errorf("tensor %s %w", describe(s.name), err)
		}
		return countTensor(s.name, v), nil
	}
	v, err := p.file.Float32s()
	if err != nil {
		return safetensors.Tensor{}, fmt.Errorf("tensor %s %w", describe(s.name), err)
	}
	return safetensors.Tensor{Name: s.name, DType: "F32", Shape: s.shape, Data: safetensors.FromFloat32s(v)}, nil
}

// unwrap strips DataParallel prefixes.
func unwrap(c *Checkpoint, r *Report) (map[string]*Tensor, error) {
	file := map[string]*Tensor{}
	for _, name := range c.Names {
		ours := name
		for strings.HasPrefix(ours, dataParallelPrefix) {
			ours = strings.TrimPrefix(ours, dataParallelPrefix)
		}
		if ours != name {
			r.Unwrapped++
		}
		if _, dup := file[ours]; dup {
			return nil, fmt.Errorf("two tensors of the file are both %s without their %q prefixes", describe(ours), dataParallelPrefix)
		}
		file[ours] = c.Tensors[name]
	}
	return file, nil
}

// checkNormalization removes the reference models' normalisation module
// after checking it normalises as qmulgpu's data pipeline does.
func checkNormalization(file map[string]*Tensor, norm Normalization, r *Report) error {
	mean, okm := file[normalizePrefix+"mean"]
	std, oks := file[normalizePrefix+"std"]
	if !okm && !oks {
		return nil
	}
	if !okm || !oks {
		return fmt.Errorf("the file has only one of %smean and %sstd", normalizePrefix, normalizePrefix)
	}
	for _, c := range []struct {
		what     string
		file     *Tensor
		datapipe []float32
	}{{"mean", mean, norm.Mean}, {"std", std, norm.Std}} {
		if n := c.file.Numel(); n != len(c.datapipe) {
			channels := fmt.Sprintf("%d channels", len(c.datapipe))
			if len(c.datapipe) == 1 {
				channels = "one channel"
			}
			return fmt.Errorf("%s%s has %d elements, but the data set has %s", normalizePrefix, c.what, n, channels)
		}
		got, err := c.file.Float32s()
		if err != nil {
			return fmt.Errorf("%s%s %w", normalizePrefix, c.what, err)
		}
		for i := range got {
			// Written so that NaN fails too.
			if !(math.Abs(float64(got[i]-c.datapipe[i])) <= normTolerance) {
				return fmt.Errorf("the model normalises its input with %s %v, but qmulgpu's data pipeline uses %v for this data set: the model would see different inputs",
					c.what, got, c.datapipe)
			}
		}
	}
	delete(file, normalizePrefix+"mean")
	delete(file, normalizePrefix+"std")
	r.Normalize = true
	return nil
}

// fill gives a missing counter the value its absence means.
func fill(s slot, file map[string]*Tensor) (int64, bool) {
	if !s.count {
		return 0, false
	}
	if strings.HasSuffix(s.name, ".num_batches_tracked") {
		return 0, true
	}
	if q, ok := strings.CutSuffix(s.name, ".initialized"); ok {
		if _, ok := file[q+".s"]; ok {
			return 1, true
		}
	}
	return 0, false
}

// isStep says whether a name is an LSQ step size, which PyTorch code bases
// shape variously ([1], [], [K], [K,1,1,1]).
func isStep(name string) bool {
	return strings.HasSuffix(name, "_fn.s")
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func countTensor(name string, v int64) safetensors.Tensor {
	return safetensors.Tensor{Name: name, DType: "I64", Shape: []int{}, Data: safetensors.FromInt64s([]int64{v})}
}

// strictError lists what did not match on one line: each kind with its
// count and as many of its names as fit in about 70 characters, in a
// message of at most maxMessage characters.
func strictError(arch string, missing, unexpected, mismatched, wrongType []string) error {
	var parts []string
	for _, p := range []struct {
		what  string
		names []string
	}{{"missing", missing}, {"unexpected", unexpected}, {"size mismatch", mismatched}, {"not floating-point", wrongType}} {
		if len(p.names) == 0 {
			continue
		}
		var shown []string
		width := 0
		for _, n := range p.names {
			n = clip.String(n, 70)
			if len(shown) > 0 && width+len(n) > 70 {
				break
			}
			shown = append(shown, n)
			width += len(n) + 2
		}
		more := ""
		if len(shown) < len(p.names) {
			more = fmt.Sprintf(" and %d more", len(p.names)-len(shown))
		}
		parts = append(parts, fmt.Sprintf("%s (%d): %s%s", p.what, len(p.names), strings.Join(shown, ", "), more))
	}
	msg := fmt.Sprintf("the state_dict does not fit model %s: %s", arch, strings.Join(parts, "; "))
	return errors.New(clip.String(msg, maxMessage))
}

// maxMessage bounds the length of an error about the file's contents.
const maxMessage = 300
