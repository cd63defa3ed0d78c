package nn

import (
	"math/rand/v2"

	"github.com/qmulgpu/qmulgpu/engine"
)

// BatchNorm normalises each channel (the last dimension) with batch
// statistics in training and running statistics in evaluation, like
// PyTorch's BatchNorm2d (momentum 0.1, eps 1e-5, unbiased running variance).
// Act fuses a following ReLU or ReLU6 into the same passes over memory.
type BatchNorm struct {
	C                 int
	Momentum, Eps     float64
	Act               engine.Activation
	Gamma, Beta       *Param
	RunMean, RunVar   *State
	BatchesTracked    *State
	batchesTracked    int64
	x, y, mean, invst *engine.Tensor
	train             bool
	momentum          float64
}

// NewBatchNorm makes a batch normalisation layer over c channels.
func NewBatchNorm(b engine.Backend, dt engine.DType, c int) *BatchNorm {
	n := &BatchNorm{C: c, Momentum: 0.1, Eps: 1e-5,
		Gamma:   newParam(b, dt, "weight", c),
		Beta:    newParam(b, dt, "bias", c),
		RunMean: &State{Local: "running_mean", Value: b.Zeros(dt, c)},
		RunVar:  &State{Local: "running_var", Value: b.Zeros(dt, c)},
	}
	n.BatchesTracked = &State{Local: "num_batches_tracked", Count: &n.batchesTracked}
	b.Fill(n.Gamma.Value, 1)
	b.Fill(n.RunVar.Value, 1)
	return n
}

// Init resets to PyTorch's initial state: γ=1, β=0, mean 0, variance 1.
func (n *BatchNorm) Init(b engine.Backend, _ *rand.Rand) {
	b.Fill(n.Gamma.Value, 1)
	b.Fill(n.Beta.Value, 0)
	b.Fill(n.RunMean.Value, 0)
	b.Fill(n.RunVar.Value, 1)
	n.batchesTracked = 0
}

func (n *BatchNorm) args(x *engine.Tensor) engine.BatchNormArgs {
	return engine.BatchNormArgs{X: x, Gamma: n.Gamma.Value, Beta: n.Beta.Value,
		RunMean: n.RunMean.Value, RunVar: n.RunVar.Value, Mean: n.mean, InvStd: n.invst,
		Train: n.train, Momentum: n.momentum, Eps: n.Eps, Act: n.Act, Y: n.y}
}

// Forward implements Layer.
func (n *BatchNorm) Forward(c *Ctx, x *engine.Tensor) *engine.Tensor {
	n.Release(c)
	n.x, n.train, n.momentum = x, c.Train, n.Momentum
	if c.FrozenStats {
		n.momentum = 0
	}
	n.y = c.B.Alloc(x.DType, x.Shape...)
	n.mean = c.B.Alloc(x.DType, n.C)
	n.invst = c.B.Alloc(x.DType, n.C)
	c.B.BatchNorm(n.args(x))
	if c.Train && !c.FrozenStats {
		n.batchesTracked++
	}
	return n.y
}

// Backward implements Layer.
func (n *BatchNorm) Backward(c *Ctx, dy *engine.Tensor) *engine.Tensor {
	a := n.args(n.x)
	a.DY, a.DGamma, a.DBeta = dy, n.Gamma.Grad, n.Beta.Grad
	a.DX = c.B.Alloc(dy.DType, dy.Shape...)
	c.B.BatchNormBackward(a)
	if c.PerSample != nil {
		rows := dy.Rows()
		sg, sb := c.B.Alloc(engine.Float32, rows), c.B.Alloc(engine.Float32, rows)
		c.B.BatchNormPerSampleSqNorm(a, rows, sg, sb)
		c.addPerSample(sg)
		c.addPerSample(sb)
		c.B.Free(sg)
		c.B.Free(sb)
	}
	n.Release(c)
	return a.DX
}

// Release implements Layer.
func (n *BatchNorm) Release(c *Ctx) {
	freeOut(c, &n.y)
	freeOut(c, &n.mean)
	freeOut(c, &n.invst)
	n.x = nil
}

func (n *BatchNorm) ownParams() []*Param { return []*Param{n.Gamma, n.Beta} }
func (n *BatchNorm) ownStates() []*State {
	return []*State{n.RunMean, n.RunVar, n.BatchesTracked}
}

// Params implements Layer.
func (n *BatchNorm) Params() []*Param { return n.ownParams() }

// States implements Layer.
func (n *BatchNorm) States() []*State { return n.ownStates() }

// NewBatchNormReLU makes a BatchNorm followed by a fused activation (ReLU
// or ReLU6).
func NewBatchNormReLU(b engine.Backend, dt engine.DType, c int, act engine.Activation) *BatchNorm {
	n := NewBatchNorm(b, dt, c)
	n.Act = act
	return n
}
