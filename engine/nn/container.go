package nn

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
)

// Sequential runs named layers one after another.
type Sequential struct {
	Layers []Child
}

// NewSequential makes a Sequential whose children are named "0", "1", ...
// as PyTorch's nn.Sequential names them.
func NewSequential(layers ...Layer) *Sequential {
	s := &Sequential{}
	for i, l := range layers {
		s.Layers = append(s.Layers, Child{fmt.Sprint(i), l})
	}
	return s
}

// Add appends a named layer.
func (s *Sequential) Add(name string, l Layer) *Sequential {
	s.Layers = append(s.Layers, Child{name, l})
	return s
}

// Forward implements Layer.
func (s *Sequential) Forward(c *Ctx, x *engine.Tensor) *engine.Tensor {
	for _, ch := range s.Layers {
		x = ch.Layer.Forward(c, x)
	}
	return x
}

// Backward implements Layer.
func (s *Sequential) Backward(c *Ctx, dy *engine.Tensor) *engine.Tensor {
	in := dy
	for i := len(s.Layers) - 1; i >= 0; i-- {
		dx := s.Layers[i].Layer.Backward(c, dy)
		if !sameMemory(dy, in) && !sameMemory(dy, dx) {
			c.B.Free(dy)
		}
		dy = dx
		if dy == nil {
			break
		}
	}
	return dy
}

// Release implements Layer.
func (s *Sequential) Release(c *Ctx) {
	for _, ch := range s.Layers {
		ch.Layer.Release(c)
	}
}

// Children implements Container.
func (s *Sequential) Children() []Child { return s.Layers }

// Params implements Layer.
func (s *Sequential) Params() []*Param { return collectParams(s.Layers) }

// States implements Layer.
func (s *Sequential) States() []*State { return collectStates(s.Layers) }

// Residual computes post(main(x) + shortcut(x)), with an identity shortcut
// when Shortcut is nil and no post-activation when Post is nil. Its children
// are named by the caller (ResNet's "shortcut", MobileNetV2's "conv").
type Residual struct {
	Main     Child
	Shortcut *Child
	Post     Layer
	sum      *engine.Tensor
}

// Forward implements Layer.
func (r *Residual) Forward(c *Ctx, x *engine.Tensor) *engine.Tensor {
	freeOut(c, &r.sum)
	m := r.Main.Layer.Forward(c, x)
	s := x
	if r.Shortcut != nil {
		s = r.Shortcut.Layer.Forward(c, x)
	}
	r.sum = c.B.Alloc(x.DType, m.Shape...)
	c.B.Add(r.sum, m, s)
	if r.Post != nil {
		return r.Post.Forward(c, r.sum)
	}
	return r.sum
}

// Backward implements Layer.
func (r *Residual) Backward(c *Ctx, dy *engine.Tensor) *engine.Tensor {
	d := dy
	if r.Post != nil {
		d = r.Post.Backward(c, dy)
	}
	dx := r.Main.Layer.Backward(c, d)
	if r.Shortcut != nil {
		ds := r.Shortcut.Layer.Backward(c, d)
		c.B.Add(dx, dx, ds)
		c.B.Free(ds)
	} else {
		c.B.Add(dx, dx, d)
	}
	if !sameMemory(d, dy) {
		c.B.Free(d)
	}
	freeOut(c, &r.sum)
	return dx
}

// Release implements Layer.
func (r *Residual) Release(c *Ctx) {
	for _, ch := range r.Children() {
		ch.Layer.Release(c)
	}
	freeOut(c, &r.sum)
}

// Children implements Container.
func (r *Residual) Children() []Child {
	ch := []Child{r.Main}
	if r.Shortcut != nil {
		ch = append(ch, *r.Shortcut)
	}
	if r.Post != nil {
		ch = append(ch, Child{"post", r.Post})
	}
	return ch
}

// Params implements Layer.
func (r *Residual) Params() []*Param { return collectParams(r.Children()) }

// States implements Layer.
func (r *Residual) States() []*State { return collectStates(r.Children()) }

// Flatten reshapes [N, ...] to [N, rest] without copying.
type Flatten struct{ inShape []int }

// Forward implements Layer.
func (f *Flatten) Forward(c *Ctx, x *engine.Tensor) *engine.Tensor {
	f.inShape = x.Shape
	return x.Reshape(x.Rows(), x.Cols())
}

// Backward implements Layer. The returned view shares dy's memory.
func (f *Flatten) Backward(c *Ctx, dy *engine.Tensor) *engine.Tensor {
	return dy.Reshape(f.inShape...)
}

// Release implements Layer.
func (f *Flatten) Release(*Ctx) {}

// Params implements Layer.
func (f *Flatten) Params() []*Param { return nil }

// States implements Layer.
func (f *Flatten) States() []*State { return nil }

// Replace swaps old for repl wherever the tree rooted at l holds it as a
// child, and reports whether it found it. Names are kept.
func Replace(l Layer, old, repl Layer) bool {
	c, ok := l.(Container)
	if !ok {
		return false
	}
	found := false
	switch t := c.(type) {
	case *Sequential:
		for i := range t.Layers {
			if t.Layers[i].Layer == old {
				t.Layers[i].Layer, found = repl, true
			}
		}
	case *Residual:
		if t.Main.Layer == old {
			t.Main.Layer, found = repl, true
		}
		if t.Shortcut != nil && t.Shortcut.Layer == old {
			t.Shortcut.Layer, found = repl, true
		}
	}
	for _, ch := range c.Children() {
		found = Replace(ch.Layer, old, repl) || found
	}
	return found
}
