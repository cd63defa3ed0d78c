package qat

import (
	"encoding/json"
	"fmt"
	"math"
	"os"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
	"github.com/qmulgpu/qmulgpu/internal/clip"
)

// IntLayer describes one quantized layer of an integer export (the
// "int_layers" metadata). Its weight is value = Scale[k]·(code − ZeroPoint[k])
// with codes stored in PyTorch's weight layout; its input is quantized to
// code = clamp(round(x/InputScale) + InputZeroPoint, InputLo, InputHi).
type IntLayer struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
	// Bits is the width of the weight codes, Signed whether they are
	// two's-complement; Packed codes (Bits ≤ 4) sit two per byte, low
	// nibble first, in tensor NAME.weight_codes (U8); wider ones are I8.
	Bits   int  `json:"bits"`
	Signed bool `json:"signed"`
	Packed bool `json:"packed"`
	// Channels is the number of weight scales (1 or the output channels).
	Channels       int     `json:"channels"`
	InputScale     float32 `json:"input_scale"`
	InputZeroPoint int32   `json:"input_zero_point"`
	InputLo        int32   `json:"input_lo"`
	InputHi        int32   `json:"input_hi"`
}

// Tensor name suffixes of a quantized layer in an integer export.
const (
	suffixCodes = ".weight_codes"
	suffixScale = ".weight_scale"
	suffixZero  = ".weight_zero_point"
	metaLayers  = "int_layers"
)

// Export turns a quantization-aware trained model into integer weights: the
// quantized layers' weights as codes with scales and zero points, their
// input quantizers' parameters, and everything else (float layers,
// BatchNorm) as float tensors under their PyTorch names.
func Export(b engine.Storage, m *models.Model, cfg Config, meta map[string]string) (*safetensors.File, error) {
	if !cfg.Enabled() {
		return nil, fmt.Errorf("export: the model is not quantized")
	}
	f, err := checkpoint.Encode(b, m, checkpoint.Contents{Meta: meta})
	if err != nil {
		return nil, err
	}
	f.Metadata[checkpoint.KeyFormat] = checkpoint.FormatInt
	f.Metadata[MetaKey] = cfg.Meta()
	drop := map[string]bool{}
	var layers []IntLayer
	var extra []safetensors.Tensor
	for _, s := range m.Sites {
		w, wq, aq := siteQuant(s)
		if wq == nil {
			continue
		}
		il, tensors, err := exportSite(b, s.Name, w, wq, aq)
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", s.Name, err)
		}
		layers = append(layers, il)
		extra = append(extra, tensors...)
		drop[w.Name] = true
		for _, q := range []nn.Quantizer{wq, aq} {
			for _, p := range q.Params() {
				drop[p.Name] = true
			}
			for _, st := range q.States() {
				drop[st.Name] = true
			}
		}
	}
	kept := f.Tensors[:0]
	for _, t := range f.Tensors {
		if !drop[t.Name] {
			kept = append(kept, t)
		}
	}
	f.Tensors = append(kept, extra...)
	lj, err := json.Marshal(layers)
	if err != nil {
		return nil, err
	}
	f.Metadata[metaLayers] = string(lj)
	if err := checkInt(f, layers); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return f, nil
}

// checkInt checks an integer export's scales and float values: finite,
// and scales not zero. Export checks what it is about to write; LoadInt
// what it reads.
func checkInt(f *safetensors.File, layers []IntLayer) error {
	if err := checkpoint.CheckValues(f); err != nil {
		return err
	}
	for _, il := range layers {
		if s := float64(il.InputScale); math.IsNaN(s) || math.IsInf(s, 0) || s == 0 {
			return fmt.Errorf("layer %s: input scale %v: must be a finite number other than 0 (was the quantizer ever initialised?)", clip.Quote(il.Name), il.InputScale)
		}
		if il.Bits < 1 || il.Bits > 8 {
			return fmt.Errorf("layer %s: %d-bit weight codes (1 to 8 bits)", clip.Quote(il.Name), il.Bits)
		}
		if il.InputLo > il.InputHi {
			return fmt.Errorf("layer %s: input range [%d, %d] is empty", clip.Quote(il.Name), il.InputLo, il.InputHi)
		}
	}
	return nil
}

// siteQuant returns a site's weight parameter and quantizers.
func siteQuant(s models.Site) (*nn.Param, nn.Quantizer, nn.Quantizer) {
	if s.Conv != nil {
		return s.Conv.Weight, s.Conv.WeightQuant, s.Conv.InputQuant
	}
	return s.Linear.Weight, s.Linear.WeightQuant, s.Linear.InputQuant
}

// exportSite computes one layer's integer weights.
func exportSite(b engine.Storage, name string, w *nn.Param, wq, aq nn.Quantizer) (IntLayer, []safetensors.Tensor, error) {
	vals := make([]float32, w.Value.Numel())
	b.Download(w.Value, vals)
	k := w.Value.Shape[0]
	codes, scale, zp, bits, signed, err := weightCodes(b, wq, vals, k)
	if err != nil {
		return IntLayer{}, nil, err
	}
	il := IntLayer{Name: name, Bits: bits, Signed: signed, Packed: bits <= 4, Channels: len(scale)}
	il.InputScale, il.InputZeroPoint, il.InputLo, il.InputHi, err = inputParams(b, aq)
	if err != nil {
		return il, nil, err
	}
	// Codes in PyTorch's layout, like the float weights of a checkpoint.
	asFloat := make([]float32, len(codes))
	for i, c := range codes {
		asFloat[i] = float32(c)
	}
	ct := b.Alloc(engine.Float32, w.Value.Shape...)
	b.Upload(ct, asFloat)
	laid := checkpoint.FloatTensor(b, name, ct, w.Layout)
	b.Free(ct)
	il.Shape = laid.Shape
	ordered, _ := safetensors.Float32s(laid.Data)
	codes = codes[:0]
	for _, v := range ordered {
		codes = append(codes, int32(v))
	}
	var ctensor safetensors.Tensor
	if il.Packed {
		ctensor = safetensors.Tensor{Name: name + suffixCodes, DType: "U8", Shape: []int{(len(codes) + 1) / 2}, Data: pack4(codes)}
	} else {
		raw := make([]byte, len(codes))
		for i, c := range codes {
			raw[i] = byte(int8(c))
		}
		ctensor = safetensors.Tensor{Name: name + suffixCodes, DType: "I8", Shape: []int{len(codes)}, Data: raw}
	}
	return il, []safetensors.Tensor{ctensor,
		{Name: name + suffixScale, DType: "F32", Shape: []int{len(scale)}, Data: safetensors.FromFloat32s(scale)},
		{Name: name + suffixZero, DType: "I32", Shape: []int{len(zp)}, Data: safetensors.FromInt32s(zp)},
	}, nil
}

// weightCodes reproduces each weight quantizer's forward pass in integers,
// with the same float32 arithmetic as the backend's fake quantization.
func weightCodes(b engine.Storage, q nn.Quantizer, w []float32, k int) (codes []int32, scale []float32, zp []int32, bits int, signed bool, err error) {
	codes = make([]int32, len(w))
	switch q := q.(type) {
	case *LSQ:
		scale = download32(b, q.Step.Value)
		bits, signed = q.Bits, true
		uniformCodes(w, codes, scale, float32(q.lo), float32(q.hi))
	case *MinMax:
		scale = make([]float32, k)
		per := len(w) / k
		for c := range scale {
			var mn, mx float32
			for _, v := range w[c*per : (c+1)*per] {
				mn, mx = min(mn, v), max(mx, v)
			}
			scale[c] = max(max(-mn, mx)/float32(q.hi), 1e-8)
		}
		bits, signed = q.Bits, true
		uniformCodes(w, codes, scale, float32(q.lo), float32(q.hi))
	case *DoReFaWeights:
		// Levels q ∈ [0, n] map to 2q/n − 1 = (2q − n)/n: odd codes in
		// [−n, n], which need one bit more than the levels.
		n := float64(int(1)<<q.Bits - 1)
		m := 0.0
		for _, v := range w {
			m = math.Max(m, math.Abs(math.Tanh(float64(v))))
		}
		m = math.Max(m, 1e-12)
		for i, v := range w {
			lv := math.RoundToEven(n * (math.Tanh(float64(v))/(2*m) + 0.5))
			codes[i] = int32(2*lv - n)
		}
		scale = []float32{float32(1 / n)}
		bits, signed = q.Bits+1, true
	default:
		return nil, nil, nil, 0, false, fmt.Errorf("weight quantizer %T cannot be exported", q)
	}
	zp = make([]int32, len(scale))
	return codes, scale, zp, bits, signed, nil
}

// uniformCodes computes clamp(round(w/s), lo, hi) per leading channel.
func uniformCodes(w []float32, codes []int32, scale []float32, lo, hi float32) {
	per := len(w) / len(scale)
	for i, v := range w {
		s := scale[i/per]
		codes[i] = int32(min(max(float32(math.RoundToEven(float64(v/s))), lo), hi))
	}
}

// inputParams returns an input quantizer's grid in integer form.
func inputParams(b engine.Storage, q nn.Quantizer) (scale float32, zp, lo, hi int32, err error) {
	switch q := q.(type) {
	case *LSQ:
		return download32(b, q.Step.Value)[0], 0, int32(q.lo), int32(q.hi), nil
	case *PACT:
		return float32(1/float64(q.hi)) * download32(b, q.Alpha.Value)[0], 0, int32(q.lo), int32(q.hi), nil
	case *ClipQuant:
		return download32(b, q.scale)[0], 0, int32(q.lo), int32(q.hi), nil
	case *MinMax:
		mn, mx := download32(b, q.Min.Value)[0], download32(b, q.Max.Value)[0]
		s := max((mx-mn)/float32(q.hi-q.lo), 1e-8)
		z := min(max(float32(q.lo)-float32(math.RoundToEven(float64(mn/s))), float32(q.lo)), float32(q.hi))
		return s, int32(z), int32(q.lo), int32(q.hi), nil
	}
	return 0, 0, 0, 0, fmt.Errorf("input quantizer %T cannot be exported", q)
}

func download32(b engine.Storage, t *engine.Tensor) []float32 {
	v := make([]float32, t.Numel())
	b.Download(t, v)
	return v
}

// pack4 stores 4-bit two's-complement codes two per byte, low nibble first.
func pack4(codes []int32) []byte {
	out := make([]byte, (len(codes)+1)/2)
	for i, c := range codes {
		out[i/2] |= byte(c&0xf) << (4 * (i % 2))
	}
	return out
}

// unpack4 reverses pack4 for n codes, sign-extending when signed.
func unpack4(b []byte, n int, signed bool) []int32 {
	out := make([]int32, n)
	for i := range out {
		v := int32(b[i/2]>>(4*(i%2))) & 0xf
		if signed && v >= 8 {
			v -= 16
		}
		out[i] = v
	}
	return out
}

// ExportJob is `qmulgpu export`: read a quantization-aware trained
// checkpoint, write its integer export.
type ExportJob struct {
	Checkpoint, Out string
	// Command is recorded in the export's metadata.
	Command string
}

// Run exports the checkpoint and returns its quantization. It refuses an
// output that is the checkpoint itself (by any path: the files are
// compared, not the names).
func (j ExportJob) Run() (Config, error) {
	if same, err := sameFile(j.Checkpoint, j.Out); err != nil || same {
		if err == nil {
			err = fmt.Errorf("--out %s is the checkpoint itself: the export would replace it; choose another file", j.Out)
		}
		return Config{}, err
	}
	b := cpu.New(0)
	o, err := Open(j.Checkpoint, b, Config{})
	if err != nil {
		return Config{}, err
	}
	meta := map[string]string{"exported_from": j.Checkpoint, "command": j.Command}
	for _, k := range []string{"dataset", "val_frac", "split_seed", "seed"} {
		if v, ok := o.File.Metadata[k]; ok {
			meta[k] = v
		}
	}
	g, err := Export(b, o.Model, o.Quant, meta)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", j.Checkpoint, err)
	}
	return o.Quant, safetensors.WriteFile(j.Out, g)
}

// sameFile reports whether two paths name one existing file.
func sameFile(a, b string) (bool, error) {
	ia, err := os.Stat(a)
	if err != nil {
		return false, fmt.Errorf("checkpoint: %w", err)
	}
	ib, err := os.Stat(b)
	if err != nil {
		return false, nil
	}
	return os.SameFile(ia, ib), nil
}
