package nn

import (
	"math/rand/v2"

	"github.com/qmulgpu/qmulgpu/engine"
)

// Act is an elementwise activation. ReLU and ReLU6 run in place on their
// input (which must then not be needed unchanged by anyone else; a
// BatchNorm's output qualifies); PReLU keeps its input.
type Act struct {
	Kind engine.Activation
	// Alpha is PReLU's slope: one value or one per channel.
	Alpha *Param
	x, y  *engine.Tensor
}

// NewReLU makes an in-place ReLU.
func NewReLU() *Act { return &Act{Kind: engine.ReLU} }

// NewReLU6 makes an in-place ReLU6.
func NewReLU6() *Act { return &Act{Kind: engine.ReLU6} }

// NewPReLU makes a PReLU with n slopes (1 or the channel count), initially
// 0.25 as in PyTorch.
func NewPReLU(b engine.Backend, dt engine.DType, n int) *Act {
	a := &Act{Kind: engine.PReLU, Alpha: newParam(b, dt, "weight", n)}
	b.Fill(a.Alpha.Value, 0.25)
	return a
}

// Init resets PReLU's slope to 0.25.
func (a *Act) Init(b engine.Backend, _ *rand.Rand) {
	if a.Alpha != nil {
		b.Fill(a.Alpha.Value, 0.25)
	}
}

func (a *Act) inPlace() bool { return a.Kind != engine.PReLU }

// Forward implements Layer.
func (a *Act) Forward(c *Ctx, x *engine.Tensor) *engine.Tensor {
	a.Release(c)
	var alpha *engine.Tensor
	if a.Alpha != nil {
		alpha = a.Alpha.Value
	}
	if a.inPlace() {
		c.B.Activate(a.Kind, x, nil, x)
		a.y = x
		return x
	}
	a.x = x
	a.y = c.B.Alloc(x.DType, x.Shape...)
	c.B.Activate(a.Kind, x, alpha, a.y)
	return a.y
}

// Backward implements Layer.
func (a *Act) Backward(c *Ctx, dy *engine.Tensor) *engine.Tensor {
	dx := c.B.Alloc(dy.DType, dy.Shape...)
	if a.inPlace() {
		c.B.ActivateBackward(a.Kind, a.y, nil, dy, dx, nil)
	} else {
		c.B.ActivateBackward(a.Kind, a.x, a.Alpha.Value, dy, dx, a.Alpha.Grad)
	}
	a.Release(c)
	return dx
}

// Release implements Layer.
func (a *Act) Release(c *Ctx) {
	if !a.inPlace() {
		freeOut(c, &a.y)
	}
	a.x, a.y = nil, nil
}

func (a *Act) ownParams() []*Param {
	if a.Alpha != nil {
		return []*Param{a.Alpha}
	}
	return nil
}
func (a *Act) ownStates() []*State { return nil }

// Params implements Layer.
func (a *Act) Params() []*Param { return a.ownParams() }

// States implements Layer.
func (a *Act) States() []*State { return nil }
