package qat

import (
	"encoding/json"
	"fmt"
	"math"
	"sync"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
	"github.com/qmulgpu/qmulgpu/internal/clip"
	"github.com/qmulgpu/qmulgpu/internal/jsonerr"
)

// LoadInt builds a model that runs an integer export on the CPU: each
// quantized layer quantizes its input to integer codes, accumulates
// code × weight-code products in int32 and rescales the sums to float;
// float layers and BatchNorm run as usual.
func LoadInt(f *safetensors.File, b *cpu.Backend) (*models.Model, error) {
	cfg, err := checkpoint.ModelConfig(f)
	if err != nil {
		return nil, err
	}
	if f.Metadata[checkpoint.KeyFormat] != checkpoint.FormatInt {
		return nil, fmt.Errorf("not an integer export (format %s)", clip.Quote(f.Metadata[checkpoint.KeyFormat]))
	}
	var layers []IntLayer
	if err := json.Unmarshal([]byte(f.Metadata[metaLayers]), &layers); err != nil {
		return nil, fmt.Errorf("bad %q metadata: %s", metaLayers, jsonerr.Describe(err))
	}
	if err := checkInt(f, layers); err != nil {
		return nil, err
	}
	m, err := models.New(b, engine.Float32, cfg, 0)
	if err != nil {
		return nil, err
	}
	byName := map[string]*safetensors.Tensor{}
	for i := range f.Tensors {
		byName[f.Tensors[i].Name] = &f.Tensors[i]
	}
	used := map[string]bool{}
	sites := map[string]models.Site{}
	for _, s := range m.Sites {
		sites[s.Name] = s
	}
	for _, il := range layers {
		s, ok := sites[il.Name]
		if !ok {
			return nil, fmt.Errorf("integer layer %s is not part of model %s", clip.Quote(il.Name), cfg.Arch)
		}
		layer, err := newIntLayer(b, il, s, byName, used)
		if err != nil {
			return nil, fmt.Errorf("integer layer %s: %w", clip.Quote(il.Name), err)
		}
		var old nn.Layer = s.Linear
		if s.Conv != nil {
			old = s.Conv
		}
		if !nn.Replace(m.Net, old, layer) {
			return nil, fmt.Errorf("integer layer %s: not found in the network", clip.Quote(il.Name))
		}
	}
	for _, p := range m.Params() {
		t, ok := byName[p.Name]
		if !ok {
			return nil, fmt.Errorf("tensor %q is missing", p.Name)
		}
		used[p.Name] = true
		if err := checkpoint.LoadFloat(b, t, p.Value, p.Layout); err != nil {
			return nil, err
		}
	}
	for _, s := range m.States() {
		t, ok := byName[s.Name]
		if !ok {
			return nil, fmt.Errorf("tensor %q is missing", s.Name)
		}
		used[s.Name] = true
		if s.Count != nil {
			continue
		}
		if err := checkpoint.LoadFloat(b, t, s.Value, nn.Layout{}); err != nil {
			return nil, err
		}
	}
	for name := range byName {
		if !used[name] {
			return nil, fmt.Errorf("tensor %s is not part of the integer model", clip.Quote(name))
		}
	}
	return m, nil
}

// intLayer is a convolution or linear layer on integer codes.
type intLayer struct {
	g       engine.ConvGeom // a linear layer is a 1×1 convolution on [N,1,1,in]
	linear  bool
	weights []int32 // [K, R, S, C/groups], zero point subtracted
	scale   []float32
	bias    []float32
	in      IntLayer
	threads int
	y       *engine.Tensor
	inShape []int
}

func newIntLayer(b *cpu.Backend, il IntLayer, s models.Site, byName map[string]*safetensors.Tensor, used map[string]bool) (*intLayer, error) {
	take := func(suffix string) (*safetensors.Tensor, error) {
		t, ok := byName[il.Name+suffix]
		if !ok {
			return nil, fmt.Errorf("tensor %q is missing", il.Name+suffix)
		}
		used[il.Name+suffix] = true
		return t, nil
	}
	ct, err := take(suffixCodes)
	if err != nil {
		return nil, err
	}
	st, err := take(suffixScale)
	if err != nil {
		return nil, err
	}
	zt, err := take(suffixZero)
	if err != nil {
		return nil, err
	}
	l := &intLayer{in: il, threads: b.Threads(), linear: s.Conv == nil}
	var w *nn.Param
	if s.Conv != nil {
		w = s.Conv.Weight
		c := s.Conv
		l.g = engine.ConvGeom{C: c.InC, K: c.OutC, R: c.Kernel, S: c.Kernel, Stride: c.Stride, Pad: c.Pad, Groups: c.Groups}
	} else {
		w = s.Linear.Weight
		l.g = engine.ConvGeom{C: s.Linear.In, K: s.Linear.Out, R: 1, S: 1, Stride: 1, Groups: 1}
		bias, ok := byName[s.Linear.Bias.Name]
		if !ok {
			return nil, fmt.Errorf("tensor %q is missing", s.Linear.Bias.Name)
		}
		used[s.Linear.Bias.Name] = true
		if l.bias, err = safetensors.Float32s(bias.Data); err != nil || len(l.bias) != l.g.K {
			return nil, fmt.Errorf("bias %q: want F32[%d]", s.Linear.Bias.Name, l.g.K)
		}
	}
	n := w.Value.Numel()
	codes, err := readCodes(il, ct, n)
	if err != nil {
		return nil, err
	}
	if l.scale, err = safetensors.Float32s(st.Data); err != nil || (len(l.scale) != 1 && len(l.scale) != l.g.K) {
		return nil, fmt.Errorf("weight scales: want F32[1] or F32[%d]", l.g.K)
	}
	zp, err := safetensors.Int32s(zt.Data)
	if err != nil || len(zp) != len(l.scale) {
		return nil, fmt.Errorf("weight zero points: want I32[%d]", len(l.scale))
	}
	// Back to the internal layout, through the float path that checkpoints use.
	asFloat := make([]float32, n)
	for i, c := range codes {
		asFloat[i] = float32(c)
	}
	pt := safetensors.Tensor{Name: il.Name, DType: "F32", Shape: il.Shape, Data: safetensors.FromFloat32s(asFloat)}
	tmp := b.Alloc(engine.Float32, w.Value.Shape...)
	defer b.Free(tmp)
	if err := checkpoint.LoadFloat(b, &pt, tmp, w.Layout); err != nil {
		return nil, err
	}
	per := n / len(l.scale)
	l.weights = make([]int32, n)
	for i, v := range cpu.F32(tmp) {
		l.weights[i] = int32(v) - zp[i/per]
	}
	if len(l.scale) == 1 {
		s := l.scale[0]
		l.scale = make([]float32, l.g.K)
		for i := range l.scale {
			l.scale[i] = s
		}
	}
	return l, nil
}

// readCodes decodes a layer's n weight codes from ct (4-bit packed in
// U8, or one I8 each) and checks each lies in the layer's bit range.
func readCodes(il IntLayer, ct *safetensors.Tensor, n int) ([]int32, error) {
	var codes []int32
	switch {
	case il.Packed && ct.DType == "U8" && len(ct.Data) == (n+1)/2 && il.Bits <= 4:
		codes = unpack4(ct.Data, n, il.Signed)
	case !il.Packed && ct.DType == "I8" && len(ct.Data) == n && il.Bits <= 8:
		codes = make([]int32, n)
		for i, v := range ct.Data {
			codes[i] = int32(int8(v))
		}
	default:
		return nil, fmt.Errorf("weight codes %s[%d] do not match %d %d-bit codes (packed %v)", ct.DType, len(ct.Data), n, il.Bits, il.Packed)
	}
	lo, hi := int32(0), int32(1)<<il.Bits-1
	if il.Signed {
		lo, hi = -(int32(1) << (il.Bits - 1)), int32(1)<<(il.Bits-1)-1
	}
	for _, c := range codes {
		if c < lo || c > hi {
			return nil, fmt.Errorf("weight code %d outside the %d-bit range [%d, %d]", c, il.Bits, lo, hi)
		}
	}
	return codes, nil
}

// Forward implements nn.Layer.
func (l *intLayer) Forward(c *nn.Ctx, x *engine.Tensor) *engine.Tensor {
	l.Release(c)
	l.inShape = x.Shape
	g := l.g
	g.N = x.Rows()
	if l.linear {
		g.H, g.W = 1, 1
	} else {
		g.H, g.W = x.Shape[1], x.Shape[2]
	}
	oh, ow := g.OutH(), g.OutW()
	if l.linear {
		l.y = c.B.Alloc(engine.Float32, g.N, g.K)
	} else {
		l.y = c.B.Alloc(engine.Float32, g.N, oh, ow, g.K)
	}
	xs, ys := cpu.F32(x), cpu.F32(l.y)
	in := l.in
	cg, kg := g.C/g.Groups, g.K/g.Groups
	rsc := g.R * g.S * cg
	var wg sync.WaitGroup
	workers := min(l.threads, g.N)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			img := make([]int32, g.H*g.W*g.C)
			win := make([]int32, rsc)
			for n := lo; n < hi; n++ {
				// Input codes, with the fake quantizer's float32 arithmetic.
				for i, v := range xs[n*g.H*g.W*g.C : (n+1)*g.H*g.W*g.C] {
					q := float32(math.RoundToEven(float64(v/in.InputScale + float32(in.InputZeroPoint))))
					img[i] = int32(min(max(q, float32(in.InputLo)), float32(in.InputHi))) - in.InputZeroPoint
				}
				for oy := 0; oy < oh; oy++ {
					for ox := 0; ox < ow; ox++ {
						out := ys[((n*oh+oy)*ow+ox)*g.K:][:g.K]
						for grp := 0; grp < g.Groups; grp++ {
							gatherWindow(img, win, g, oy, ox, grp)
							for k := grp * kg; k < (grp+1)*kg; k++ {
								wk := l.weights[k*rsc : (k+1)*rsc]
								var acc int32
								for j, a := range win {
									acc += a * wk[j]
								}
								v := float32(acc) * (in.InputScale * l.scale[k])
								if l.bias != nil {
									v += l.bias[k]
								}
								out[k] = v
							}
						}
					}
				}
			}
		}(w*g.N/workers, (w+1)*g.N/workers)
	}
	wg.Wait()
	return l.y
}

// gatherWindow copies one output pixel's input window (zero codes outside
// the image) in (r, s, c) order.
func gatherWindow(img, win []int32, g engine.ConvGeom, oy, ox, grp int) {
	cg := g.C / g.Groups
	for r := 0; r < g.R; r++ {
		iy := oy*g.Stride - g.Pad + r
		for s := 0; s < g.S; s++ {
			ix := ox*g.Stride - g.Pad + s
			d := win[(r*g.S+s)*cg : (r*g.S+s+1)*cg]
			if iy < 0 || iy >= g.H || ix < 0 || ix >= g.W {
				clear(d)
				continue
			}
			copy(d, img[(iy*g.W+ix)*g.C+grp*cg:])
		}
	}
}

// Backward implements nn.Layer; integer models are for inference only.
func (l *intLayer) Backward(*nn.Ctx, *engine.Tensor) *engine.Tensor {
	panic("qat: integer layers are inference-only")
}

// Release implements nn.Layer.
func (l *intLayer) Release(c *nn.Ctx) {
	if l.y != nil {
		c.B.Free(l.y)
		l.y = nil
	}
}

// Params implements nn.Layer.
func (l *intLayer) Params() []*nn.Param { return nil }

// States implements nn.Layer.
func (l *intLayer) States() []*nn.State { return nil }
