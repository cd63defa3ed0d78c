package nn

import "github.com/qmulgpu/qmulgpu/engine"

// Pool is max or average pooling with a square window.
type Pool struct {
	Kind                engine.PoolKind
	Kernel, Stride, Pad int
	g                   engine.PoolGeom
	y, argmax           *engine.Tensor
}

// NewMaxPool makes a max pooling layer.
func NewMaxPool(kernel, stride, pad int) *Pool {
	return &Pool{Kind: engine.MaxPool, Kernel: kernel, Stride: stride, Pad: pad}
}

// NewAvgPool makes an average pooling layer (padding counted, as PyTorch's
// default).
func NewAvgPool(kernel, stride, pad int) *Pool {
	return &Pool{Kind: engine.AvgPool, Kernel: kernel, Stride: stride, Pad: pad}
}

// Forward implements Layer.
func (p *Pool) Forward(c *Ctx, x *engine.Tensor) *engine.Tensor {
	p.Release(c)
	p.g = engine.PoolGeom{N: x.Shape[0], H: x.Shape[1], W: x.Shape[2], C: x.Shape[3],
		Kernel: p.Kernel, Stride: p.Stride, Pad: p.Pad}
	shape := []int{p.g.N, p.g.OutH(), p.g.OutW(), p.g.C}
	p.y = c.B.Alloc(x.DType, shape...)
	if p.Kind == engine.MaxPool {
		p.argmax = c.B.Alloc(engine.Int32, shape...)
	}
	c.B.Pool2d(p.Kind, x, p.y, p.argmax, p.g)
	return p.y
}

// Backward implements Layer.
func (p *Pool) Backward(c *Ctx, dy *engine.Tensor) *engine.Tensor {
	dx := c.B.Alloc(dy.DType, p.g.N, p.g.H, p.g.W, p.g.C)
	c.B.Pool2dBackward(p.Kind, dy, p.argmax, dx, p.g)
	p.Release(c)
	return dx
}

// Release implements Layer.
func (p *Pool) Release(c *Ctx) {
	freeOut(c, &p.y)
	freeOut(c, &p.argmax)
}

// Params implements Layer.
func (p *Pool) Params() []*Param { return nil }

// States implements Layer.
func (p *Pool) States() []*State { return nil }

// GlobalAvgPool averages each channel over the spatial dimensions:
// [N,H,W,C] → [N,C].
type GlobalAvgPool struct {
	inShape []int
	y       *engine.Tensor
}

// Forward implements Layer.
func (p *GlobalAvgPool) Forward(c *Ctx, x *engine.Tensor) *engine.Tensor {
	p.Release(c)
	p.inShape = x.Shape
	p.y = c.B.Alloc(x.DType, x.Shape[0], x.Shape[3])
	c.B.GlobalAvgPool(x, p.y)
	return p.y
}

// Backward implements Layer.
func (p *GlobalAvgPool) Backward(c *Ctx, dy *engine.Tensor) *engine.Tensor {
	dx := c.B.Alloc(dy.DType, p.inShape...)
	c.B.GlobalAvgPoolBackward(dy, dx)
	p.Release(c)
	return dx
}

// Release implements Layer.
func (p *GlobalAvgPool) Release(c *Ctx) { freeOut(c, &p.y) }

// Params implements Layer.
func (p *GlobalAvgPool) Params() []*Param { return nil }

// States implements Layer.
func (p *GlobalAvgPool) States() []*State { return nil }
