package nn

import "github.com/qmulgpu/qmulgpu/engine"

// Quantizer fake-quantizes a tensor: the forward pass maps it onto a
// low-bit grid, the backward pass lets the gradient through (the
// straight-through estimator) and accumulates the quantizer's own parameter
// gradients. Package qat provides the implementations; Conv2d and Linear use
// one for their weights and one for their inputs.
type Quantizer interface {
	// Forward returns the quantized x, a tensor the quantizer owns until
	// its Backward or Release.
	Forward(c *Ctx, x *engine.Tensor) *engine.Tensor
	// Backward maps the gradient dq with respect to the quantized tensor to
	// the gradient with respect to x, written into dx (which may alias dq)
	// or added to it when accumulate is set.
	Backward(c *Ctx, dq, dx *engine.Tensor, accumulate bool)
	// Params lists the quantizer's trainable parameters (step sizes, clip
	// levels), with local names.
	Params() []*Param
	// States lists the quantizer's non-trainable state (observers).
	States() []*State
	// Release frees what Forward kept.
	Release(c *Ctx)
}
