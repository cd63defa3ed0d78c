// Package checkpoint saves and restores models as safetensors files with
// PyTorch's state_dict names and layouts, plus string metadata describing
// how the model was made.
package checkpoint

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
	"github.com/qmulgpu/qmulgpu/internal/clip"
)

// Metadata keys written into every checkpoint.
const (
	KeyFormat  = "format"  // FormatModel or FormatResume
	KeyModel   = "model"   // JSON of models.Config
	KeyVersion = "version" // the qmulgpu version that wrote it
)

// Formats of checkpoints.
const (
	FormatModel  = "qmulgpu-model/1"  // parameters and states only
	FormatResume = "qmulgpu-resume/1" // plus optimiser state, to continue training
	FormatInt    = "qmulgpu-int/1"    // integer weights and scales (written by package qat)
)

// momentumPrefix prefixes the momentum buffers in resume checkpoints.
const momentumPrefix = "optimizer.momentum_buffer."

// Contents is what Save writes besides the model itself.
type Contents struct {
	// Meta is extra metadata (dataset, seeds, command line, quantizer
	// configuration, ...); KeyFormat, KeyModel and KeyVersion are filled in.
	Meta map[string]string
	// Momentum, when non-nil, are the optimiser's buffers parallel to the
	// model's parameters; they make the file a resume checkpoint.
	Momentum []*engine.Tensor
}

// Version is written into checkpoints; the CLI sets it at start.
var Version = "dev"

// Encode turns a model into a safetensors file.
func Encode(b engine.Storage, m *models.Model, c Contents) (*safetensors.File, error) {
	meta := map[string]string{}
	for k, v := range c.Meta {
		meta[k] = v
	}
	cfg, err := json.Marshal(m.Config)
	if err != nil {
		return nil, err
	}
	meta[KeyModel] = string(cfg)
	meta[KeyVersion] = Version
	meta[KeyFormat] = FormatModel
	f := &safetensors.File{Metadata: meta}
	params := m.Params()
	for _, p := range params {
		f.Tensors = append(f.Tensors, FloatTensor(b, p.Name, p.Value, p.Layout))
	}
	for _, s := range m.States() {
		if s.Count != nil {
			f.Tensors = append(f.Tensors, safetensors.Tensor{Name: s.Name, DType: "I64", Shape: []int{},
				Data: safetensors.FromInt64s([]int64{*s.Count})})
			continue
		}
		f.Tensors = append(f.Tensors, FloatTensor(b, s.Name, s.Value, nn.Layout{}))
	}
	if c.Momentum != nil {
		if len(c.Momentum) != len(params) {
			return nil, fmt.Errorf("checkpoint: %d momentum buffers for %d parameters", len(c.Momentum), len(params))
		}
		meta[KeyFormat] = FormatResume
		for i, p := range params {
			if c.Momentum[i] != nil {
				f.Tensors = append(f.Tensors, FloatTensor(b, momentumPrefix+p.Name, c.Momentum[i], p.Layout))
			}
		}
	}
	return f, nil
}

// Save writes a model atomically to path.
func Save(path string, b engine.Storage, m *models.Model, c Contents) error {
	f, err := Encode(b, m, c)
	if err != nil {
		return err
	}
	if err := safetensors.WriteFile(path, f); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// Restore copies a file's tensors into a model built with the file's
// configuration, and returns the momentum buffers' contents when the file
// holds them (parallel to the parameters; nil entries for missing ones).
// Every parameter and state must be present with the right type and shape,
// and the file may hold nothing else.
func Restore(f *safetensors.File, b engine.Storage, m *models.Model) (momentum [][]float32, err error) {
	byName := map[string]*safetensors.Tensor{}
	for i := range f.Tensors {
		byName[f.Tensors[i].Name] = &f.Tensors[i]
	}
	used := map[string]bool{}
	take := func(name string) (*safetensors.Tensor, error) {
		t, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("tensor %q is missing", name)
		}
		used[name] = true
		return t, nil
	}
	params := m.Params()
	for _, p := range params {
		t, err := take(p.Name)
		if err != nil {
			return nil, err
		}
		if err := LoadFloat(b, t, p.Value, p.Layout); err != nil {
			return nil, err
		}
	}
	for _, s := range m.States() {
		t, err := take(s.Name)
		if err != nil {
			return nil, err
		}
		if s.Count != nil {
			if t.DType != "I64" || len(t.Shape) != 0 {
				return nil, fmt.Errorf("tensor %q: want an I64 scalar, file has %s%s", t.Name, clip.String(t.DType, 10), clip.Shape(t.Shape))
			}
			v, err := safetensors.Int64s(t.Data)
			if err != nil {
				return nil, err
			}
			*s.Count = v[0]
			continue
		}
		if err := LoadFloat(b, t, s.Value, nn.Layout{}); err != nil {
			return nil, err
		}
	}
	if f.Metadata[KeyFormat] == FormatResume {
		momentum = make([][]float32, len(params))
		for i, p := range params {
			name := momentumPrefix + p.Name
			if _, ok := byName[name]; !ok {
				continue
			}
			t, _ := take(name)
			buf := b.Alloc(p.Value.DType, p.Value.Shape...)
			err := LoadFloat(b, t, buf, p.Layout)
			if err == nil {
				momentum[i] = make([]float32, buf.Numel())
				b.Download(buf, momentum[i])
			}
			b.Free(buf)
			if err != nil {
				return nil, err
			}
		}
	}
	var extra []string
	for name := range byName {
		if !used[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, fmt.Errorf("tensor %s is not part of model %s", clip.Quote(extra[0]), m.Config.Arch)
	}
	return momentum, nil
}

// FloatTensor downloads a float tensor and lays it out as PyTorch does.
func FloatTensor(b engine.Storage, name string, t *engine.Tensor, l nn.Layout) safetensors.Tensor {
	v := make([]float32, t.Numel())
	b.Download(t, v)
	shape := append([]int(nil), t.Shape...)
	switch l.Kind {
	case nn.ConvKRSC:
		v = permute(v, t.Shape[0], l.Dims[0]*l.Dims[1], l.Dims[2])
		shape = []int{t.Shape[0], l.Dims[2], l.Dims[0], l.Dims[1]}
	case nn.LinearHWC:
		v = permute(v, t.Shape[0], l.Dims[0]*l.Dims[1], l.Dims[2])
	}
	return safetensors.Tensor{Name: name, DType: "F32", Shape: shape, Data: safetensors.FromFloat32s(v)}
}

// LoadFloat checks a file tensor against a model tensor and uploads it,
// converting from PyTorch's layout.
func LoadFloat(b engine.Storage, t *safetensors.Tensor, dst *engine.Tensor, l nn.Layout) error {
	want := append([]int(nil), dst.Shape...)
	if l.Kind == nn.ConvKRSC {
		want = []int{dst.Shape[0], l.Dims[2], l.Dims[0], l.Dims[1]}
	}
	if t.DType != "F32" || !engine.SameShape(t.Shape, want) {
		return fmt.Errorf("tensor %q: want F32%v, file has %s%s", t.Name, want, clip.String(t.DType, 10), clip.Shape(t.Shape))
	}
	v, err := safetensors.Float32s(t.Data)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	switch l.Kind {
	case nn.ConvKRSC, nn.LinearHWC:
		v = unpermute(v, dst.Shape[0], l.Dims[0]*l.Dims[1], l.Dims[2])
	}
	if dst.DType == engine.Float32 {
		b.Upload(dst, v)
		return nil
	}
	w := make([]float64, len(v))
	for i, x := range v {
		w[i] = float64(x)
	}
	b.Upload(dst, w)
	return nil
}

// permute maps rows of [n, p, c] (inner order p, c) to [n, c, p].
func permute(v []float32, n, p, c int) []float32 {
	out := make([]float32, len(v))
	for i := 0; i < n; i++ {
		for j := 0; j < p; j++ {
			for k := 0; k < c; k++ {
				out[(i*c+k)*p+j] = v[(i*p+j)*c+k]
			}
		}
	}
	return out
}

// unpermute is the inverse of permute.
func unpermute(v []float32, n, p, c int) []float32 {
	out := make([]float32, len(v))
	for i := 0; i < n; i++ {
		for j := 0; j < p; j++ {
			for k := 0; k < c; k++ {
				out[(i*p+j)*c+k] = v[(i*c+k)*p+j]
			}
		}
	}
	return out
}
