// Package nn holds the network layers: each has an explicit Forward and
// Backward written against engine.Backend ops, like llm.c's paired
// functions, and no general autodiff graph.
//
// Ownership: a layer's Forward returns a tensor the layer owns and keeps for
// its Backward; the layer frees it at the end of its Backward, or at its next
// Forward in evaluation. Backward returns the input gradient, which the
// caller owns and frees; Backward never frees the dy it is given.
package nn

import (
	"fmt"
	"math/rand/v2"

	"github.com/qmulgpu/qmulgpu/engine"
)

// Ctx carries what a forward or backward pass needs besides its operands.
type Ctx struct {
	// B is the backend every op runs on.
	B engine.Backend
	// Train selects training behaviour: batch statistics in BatchNorm and
	// observer updates in quantizers.
	Train bool
	// FrozenStats, in training mode, keeps BatchNorm running statistics and
	// quantizer observers unchanged (a measuring pass that must not
	// disturb the model).
	FrozenStats bool
	// PerSample, when set (Float32 [N]), receives during Backward each
	// sample's Σ over parameter tensors of the L2 norm of its own gradient,
	// for convolution and linear weights, linear biases and BatchNorm
	// scales and shifts (quantizer parameters and convolution biases are
	// not included; with quantized weights the norm is that of the
	// quantized weight's gradient, before the quantizer's clip mask).
	PerSample *engine.Tensor
}

// addPerSample adds sqrt of a per-sample squared norm into c.PerSample.
func (c *Ctx) addPerSample(sq *engine.Tensor) {
	c.B.AddSqrt(c.PerSample, sq)
}

// Layer is one differentiable stage of a network.
type Layer interface {
	// Forward computes the layer's output for the batch x.
	Forward(c *Ctx, x *engine.Tensor) *engine.Tensor
	// Backward takes the gradient of the loss with respect to the last
	// output, accumulates parameter gradients and returns the gradient with
	// respect to the last input (nil when the layer was told to skip it).
	Backward(c *Ctx, dy *engine.Tensor) *engine.Tensor
	// Params lists the trainable parameters, children's included.
	Params() []*Param
	// States lists the non-trainable state, children's included.
	States() []*State
	// Release frees every tensor kept from the last Forward.
	Release(c *Ctx)
}

// Param is a trainable tensor with its gradient.
type Param struct {
	// Name is the PyTorch state_dict name, set by Name.
	Name string
	// Local is the name within its layer ("weight", "bias", ...).
	Local  string
	Value  *engine.Tensor
	Grad   *engine.Tensor
	Layout Layout
}

// State is a non-trainable tensor (BatchNorm running statistics, quantizer
// observers) or an integer counter.
type State struct {
	Name  string
	Local string
	// Value is the tensor, nil for a counter.
	Value *engine.Tensor
	// Count is the counter (PyTorch's int64 num_batches_tracked), nil for a tensor.
	Count *int64
}

// LayoutKind says how a parameter's storage maps to PyTorch's layout.
type LayoutKind uint8

// Layouts.
const (
	// Plain tensors are stored as PyTorch stores them.
	Plain LayoutKind = iota
	// ConvKRSC is a convolution weight stored [K,R,S,C] and saved [K,C,R,S].
	ConvKRSC
	// LinearHWC is a linear weight [out, H·W·C] whose input is a flattened
	// NHWC map, saved as [out, C·H·W] to match a flattened NCHW map.
	LinearHWC
)

// Layout is a parameter's storage layout; Dims holds R,S,C for ConvKRSC and
// H,W,C for LinearHWC.
type Layout struct {
	Kind LayoutKind
	Dims [3]int
}

// newParam allocates a parameter and its zeroed gradient.
func newParam(b engine.Backend, dt engine.DType, local string, shape ...int) *Param {
	return &Param{Local: local, Value: b.Zeros(dt, shape...), Grad: b.Zeros(dt, shape...)}
}

// Child is a named sub-layer of a container.
type Child struct {
	Name  string
	Layer Layer
}

// Container is a layer made of named sub-layers.
type Container interface {
	Layer
	Children() []Child
}

// ownParams are the parameters a layer holds directly (without children).
type ownParams interface {
	ownParams() []*Param
	ownStates() []*State
}

// Name sets the full PyTorch-style name of every parameter and state in the
// tree rooted at l, joining container child names with dots.
func Name(l Layer, prefix string) {
	if o, ok := l.(ownParams); ok {
		for _, p := range o.ownParams() {
			p.Name = prefix + p.Local
		}
		for _, s := range o.ownStates() {
			s.Name = prefix + s.Local
		}
	}
	if c, ok := l.(Container); ok {
		for _, ch := range c.Children() {
			p := prefix
			if ch.Name != "" {
				p += ch.Name + "."
			}
			Name(ch.Layer, p)
		}
	}
}

// sameMemory reports whether two tensors are views of one allocation.
func sameMemory(a, b *engine.Tensor) bool {
	return a != nil && b != nil && a.Mem == b.Mem
}

// ZeroGrad clears every parameter gradient.
func ZeroGrad(b engine.Backend, ps []*Param) {
	for _, p := range ps {
		b.Fill(p.Grad, 0)
	}
}

// uniform fills t with U(−bound, bound) draws from r.
func uniform(b engine.Backend, t *engine.Tensor, r *rand.Rand, bound float64) {
	n := t.Numel()
	switch t.DType {
	case engine.Float32:
		v := make([]float32, n)
		for i := range v {
			v[i] = float32((2*r.Float64() - 1) * bound)
		}
		b.Upload(t, v)
	case engine.Float64:
		v := make([]float64, n)
		for i := range v {
			v[i] = (2*r.Float64() - 1) * bound
		}
		b.Upload(t, v)
	default:
		panic(fmt.Sprintf("nn: uniform init of %v", t))
	}
}

// fillConst fills a float tensor with v.
func fillConst(b engine.Backend, t *engine.Tensor, v float64) { b.Fill(t, v) }

// freeOut frees *t when set and clears it.
func freeOut(c *Ctx, t **engine.Tensor) {
	if *t != nil {
		c.B.Free(*t)
		*t = nil
	}
}

// Initializer is a layer that draws its initial parameters.
type Initializer interface {
	Init(b engine.Backend, r *rand.Rand)
}

// Init initialises every parameter in the tree rooted at l, in tree order,
// with PyTorch's default distributions, from r.
func Init(b engine.Backend, l Layer, r *rand.Rand) {
	if i, ok := l.(Initializer); ok {
		i.Init(b, r)
	}
	if c, ok := l.(Container); ok {
		for _, ch := range c.Children() {
			Init(b, ch.Layer, r)
		}
	}
}

// collect gathers the params and states of children.
func collectParams(children []Child) []*Param {
	var ps []*Param
	for _, ch := range children {
		ps = append(ps, ch.Layer.Params()...)
	}
	return ps
}

func collectStates(children []Child) []*State {
	var ss []*State
	for _, ch := range children {
		ss = append(ss, ch.Layer.States()...)
	}
	return ss
}
