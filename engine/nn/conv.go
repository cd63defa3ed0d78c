package nn

import (
	"math"
	"math/rand/v2"

	"github.com/qmulgpu/qmulgpu/engine"
)

// Conv2d is a 2-D convolution over NHWC activations, with optional bias and
// optional weight and input quantizers.
type Conv2d struct {
	InC, OutC      int
	Kernel, Stride int
	Pad, Groups    int
	Weight, Bias   *Param
	// WeightQuant and InputQuant fake-quantize the weight and the input
	// (nil: float).
	WeightQuant, InputQuant Quantizer
	// SkipInputGrad makes Backward skip the input gradient (a network's
	// first layer) and return nil.
	SkipInputGrad bool

	x, xq, y *engine.Tensor
	g        engine.ConvGeom
	wq       *engine.Tensor
}

// NewConv2d makes a convolution with a square kernel; its weight is stored
// [out, k, k, in/groups].
func NewConv2d(b engine.Backend, dt engine.DType, in, out, kernel, stride, pad, groups int, bias bool) *Conv2d {
	c := &Conv2d{InC: in, OutC: out, Kernel: kernel, Stride: stride, Pad: pad, Groups: groups}
	c.Weight = newParam(b, dt, "weight", out, kernel, kernel, in/groups)
	c.Weight.Layout = Layout{Kind: ConvKRSC, Dims: [3]int{kernel, kernel, in / groups}}
	if bias {
		c.Bias = newParam(b, dt, "bias", out)
	}
	return c
}

// Geom is the convolution geometry for an input of shape [N,H,W,C].
func (c *Conv2d) Geom(shape []int) engine.ConvGeom {
	return engine.ConvGeom{N: shape[0], H: shape[1], W: shape[2], C: c.InC, K: c.OutC,
		R: c.Kernel, S: c.Kernel, Stride: c.Stride, Pad: c.Pad, Groups: c.Groups}
}

// Init draws PyTorch's default: U(±1/sqrt(fan_in)) for weight and bias.
func (c *Conv2d) Init(b engine.Backend, r *rand.Rand) {
	bound := 1 / math.Sqrt(float64(c.InC/c.Groups*c.Kernel*c.Kernel))
	uniform(b, c.Weight.Value, r, bound)
	if c.Bias != nil {
		uniform(b, c.Bias.Value, r, bound)
	}
}

// Forward implements Layer.
func (c *Conv2d) Forward(ctx *Ctx, x *engine.Tensor) *engine.Tensor {
	c.Release(ctx)
	c.x = x
	c.g = c.Geom(x.Shape)
	xq, wq := x, c.Weight.Value
	if c.InputQuant != nil {
		xq = c.InputQuant.Forward(ctx, x)
	}
	if c.WeightQuant != nil {
		wq = c.WeightQuant.Forward(ctx, wq)
	}
	c.xq, c.wq = xq, wq
	c.y = ctx.B.Alloc(x.DType, c.g.N, c.g.OutH(), c.g.OutW(), c.OutC)
	ctx.B.Conv2d(xq, wq, c.y, c.g)
	if c.Bias != nil {
		ctx.B.AddBias(c.y, c.Bias.Value)
	}
	return c.y
}

// Backward implements Layer.
func (c *Conv2d) Backward(ctx *Ctx, dy *engine.Tensor) *engine.Tensor {
	b := ctx.B
	if c.Bias != nil {
		b.BiasGrad(dy, c.Bias.Grad)
	}
	var dx *engine.Tensor
	if !c.SkipInputGrad {
		dx = b.Alloc(dy.DType, c.x.Shape...)
	}
	dw := c.Weight.Grad
	if c.WeightQuant != nil {
		dw = b.Zeros(dy.DType, c.Weight.Value.Shape...)
	}
	b.Conv2dBackward(c.xq, c.wq, dy, dx, dw, c.g)
	if ctx.PerSample != nil {
		sq := b.Alloc(engine.Float32, c.g.N)
		b.ConvPerSampleSqNorm(c.xq, dy, sq, c.g)
		ctx.addPerSample(sq)
		b.Free(sq)
	}
	if c.WeightQuant != nil {
		c.WeightQuant.Backward(ctx, dw, c.Weight.Grad, true)
		b.Free(dw)
	}
	if dx != nil && c.InputQuant != nil {
		c.InputQuant.Backward(ctx, dx, dx, false)
	}
	c.Release(ctx)
	return dx
}

// Release implements Layer.
func (c *Conv2d) Release(ctx *Ctx) {
	freeOut(ctx, &c.y)
	if c.InputQuant != nil {
		c.InputQuant.Release(ctx)
	}
	if c.WeightQuant != nil {
		c.WeightQuant.Release(ctx)
	}
	c.x, c.xq, c.wq = nil, nil, nil
}

func (c *Conv2d) ownParams() []*Param {
	if c.Bias != nil {
		return []*Param{c.Weight, c.Bias}
	}
	return []*Param{c.Weight}
}

func (c *Conv2d) ownStates() []*State { return nil }

// Children implements Container: the quantizers, named as the LSQ
// reference code names them.
func (c *Conv2d) Children() []Child { return quantChildren(c.WeightQuant, c.InputQuant) }

// Params implements Layer.
func (c *Conv2d) Params() []*Param { return append(c.ownParams(), collectParams(c.Children())...) }

// States implements Layer.
func (c *Conv2d) States() []*State { return collectStates(c.Children()) }

// quantLayer adapts a Quantizer to the Layer interface for naming and
// parameter collection only.
type quantLayer struct{ Quantizer }

func (q quantLayer) Forward(*Ctx, *engine.Tensor) *engine.Tensor  { panic("nn: quantizer as layer") }
func (q quantLayer) Backward(*Ctx, *engine.Tensor) *engine.Tensor { panic("nn: quantizer as layer") }
func (q quantLayer) ownParams() []*Param                          { return q.Quantizer.Params() }
func (q quantLayer) ownStates() []*State                          { return q.Quantizer.States() }

func quantChildren(w, a Quantizer) []Child {
	var ch []Child
	if w != nil {
		ch = append(ch, Child{"quan_w_fn", quantLayer{w}})
	}
	if a != nil {
		ch = append(ch, Child{"quan_a_fn", quantLayer{a}})
	}
	return ch
}
