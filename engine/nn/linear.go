package nn

import (
	"math"
	"math/rand/v2"

	"github.com/qmulgpu/qmulgpu/engine"
)

// Linear is a fully connected layer y = x·Wᵀ + b over [N, in] inputs (a
// higher-rank input is flattened per sample), with optional quantizers.
type Linear struct {
	In, Out      int
	Weight, Bias *Param
	// WeightQuant and InputQuant fake-quantize the weight and the input.
	WeightQuant, InputQuant Quantizer
	// SkipInputGrad makes Backward skip the input gradient.
	SkipInputGrad bool

	x, xq, wq, y *engine.Tensor
	inShape      []int
}

// NewLinear makes a linear layer with a bias.
func NewLinear(b engine.Backend, dt engine.DType, in, out int) *Linear {
	return &Linear{In: in, Out: out,
		Weight: newParam(b, dt, "weight", out, in),
		Bias:   newParam(b, dt, "bias", out)}
}

// FlattenedFrom records that the input is a flattened NHWC map of the given
// size, so that checkpoints store the weight in PyTorch's (c, h, w) order.
func (l *Linear) FlattenedFrom(h, w, c int) {
	l.Weight.Layout = Layout{Kind: LinearHWC, Dims: [3]int{h, w, c}}
}

// Init draws PyTorch's default: U(±1/sqrt(in)) for weight and bias.
func (l *Linear) Init(b engine.Backend, r *rand.Rand) {
	bound := 1 / math.Sqrt(float64(l.In))
	uniform(b, l.Weight.Value, r, bound)
	uniform(b, l.Bias.Value, r, bound)
}

// Forward implements Layer.
func (l *Linear) Forward(c *Ctx, x *engine.Tensor) *engine.Tensor {
	l.Release(c)
	l.inShape = x.Shape
	x = x.Reshape(x.Rows(), x.Cols())
	l.x = x
	xq, wq := x, l.Weight.Value
	if l.InputQuant != nil {
		xq = l.InputQuant.Forward(c, x)
	}
	if l.WeightQuant != nil {
		wq = l.WeightQuant.Forward(c, wq)
	}
	l.xq, l.wq = xq, wq
	n := x.Rows()
	l.y = c.B.Alloc(x.DType, n, l.Out)
	c.B.Gemm(false, true, n, l.Out, l.In, 1, xq, wq, 0, l.y)
	c.B.AddBias(l.y, l.Bias.Value)
	return l.y
}

// Backward implements Layer.
func (l *Linear) Backward(c *Ctx, dy *engine.Tensor) *engine.Tensor {
	b := c.B
	n := dy.Rows()
	b.BiasGrad(dy, l.Bias.Grad)
	if l.WeightQuant != nil {
		dw := b.Alloc(dy.DType, l.Out, l.In)
		b.Gemm(true, false, l.Out, l.In, n, 1, dy, l.xq, 0, dw)
		l.WeightQuant.Backward(c, dw, l.Weight.Grad, true)
		b.Free(dw)
	} else {
		b.Gemm(true, false, l.Out, l.In, n, 1, dy, l.xq, 1, l.Weight.Grad)
	}
	if c.PerSample != nil {
		sq := b.Alloc(engine.Float32, n)
		b.ConvPerSampleSqNorm(l.xq, dy, sq, engine.ConvGeom{N: n, H: 1, W: 1, C: l.In, K: l.Out, R: 1, S: 1, Stride: 1, Groups: 1})
		c.addPerSample(sq)
		b.RowSqNorm(dy, sq)
		c.addPerSample(sq)
		b.Free(sq)
	}
	var dx *engine.Tensor
	if !l.SkipInputGrad {
		dx = b.Alloc(dy.DType, l.inShape...)
		b.Gemm(false, false, n, l.In, l.Out, 1, dy, l.wq, 0, dx)
		if l.InputQuant != nil {
			l.InputQuant.Backward(c, dx, dx, false)
		}
	}
	l.Release(c)
	return dx
}

// Release implements Layer.
func (l *Linear) Release(c *Ctx) {
	freeOut(c, &l.y)
	if l.InputQuant != nil {
		l.InputQuant.Release(c)
	}
	if l.WeightQuant != nil {
		l.WeightQuant.Release(c)
	}
	l.x, l.xq, l.wq = nil, nil, nil
}

func (l *Linear) ownParams() []*Param { return []*Param{l.Weight, l.Bias} }
func (l *Linear) ownStates() []*State { return nil }

// Children implements Container: the quantizers.
func (l *Linear) Children() []Child { return quantChildren(l.WeightQuant, l.InputQuant) }

// Params implements Layer.
func (l *Linear) Params() []*Param { return append(l.ownParams(), collectParams(l.Children())...) }

// States implements Layer.
func (l *Linear) States() []*State { return collectStates(l.Children()) }
