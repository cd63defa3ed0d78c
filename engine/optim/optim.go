// Package optim holds the SGD optimiser and the learning-rate schedules.
package optim

import (
	"fmt"
	"math"
	"strings"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/nn"
)

// SGD is stochastic gradient descent with momentum, Nesterov momentum,
// weight decay (applied to every parameter, as PyTorch's SGD does) and
// optional per-element gradient masks.
type SGD struct {
	Momentum    float64
	WeightDecay float64
	Nesterov    bool

	params []*nn.Param
	bufs   []*engine.Tensor
	masks  []*engine.Tensor
}

// NewSGD makes an optimiser over params; momentum buffers start at zero.
func NewSGD(b engine.Storage, params []*nn.Param, momentum, weightDecay float64, nesterov bool) *SGD {
	o := &SGD{Momentum: momentum, WeightDecay: weightDecay, Nesterov: nesterov, params: params}
	o.bufs = make([]*engine.Tensor, len(params))
	o.masks = make([]*engine.Tensor, len(params))
	if momentum > 0 {
		for i, p := range params {
			o.bufs[i] = b.Zeros(p.Value.DType, p.Value.Shape...)
		}
	}
	return o
}

// Params lists the optimised parameters.
func (o *SGD) Params() []*nn.Param { return o.params }

// Buffers lists the momentum buffers (nil without momentum), parallel to Params.
func (o *SGD) Buffers() []*engine.Tensor { return o.bufs }

// Mask returns parameter i's mask (nil when it has none).
func (o *SGD) Mask(i int) *engine.Tensor { return o.masks[i] }

// SetMask freezes the elements of parameter i where mask is 0: they receive
// no gradient, no weight decay and no momentum. A nil mask clears it.
func (o *SGD) SetMask(i int, mask *engine.Tensor) { o.masks[i] = mask }

// Step applies one update with learning rate lr and leaves the gradients
// untouched.
func (o *SGD) Step(b engine.SGDOps, lr float64) { o.ScaledStep(b, lr, 1) }

// ScaledStep is Step with the gradients multiplied by scale (weight decay
// unscaled), as if the loss had been multiplied by scale.
func (o *SGD) ScaledStep(b engine.SGDOps, lr, scale float64) {
	for i, p := range o.params {
		b.SGD(engine.SGDArgs{Param: p.Value, Grad: p.Grad, Buf: o.bufs[i], Mask: o.masks[i],
			LR: lr, Momentum: o.Momentum, WeightDecay: o.WeightDecay, GradScale: scale, Nesterov: o.Nesterov})
	}
}

// Schedule gives the learning rate of each epoch.
type Schedule struct {
	// Kind is "cosine", "step", "multistep" or "constant".
	Kind string `json:"kind"`
	// Base is the peak learning rate.
	Base float64 `json:"base"`
	// Epochs is the length of the run.
	Epochs int `json:"epochs"`
	// StepSize and Gamma drive "step": Base·Gamma^⌊e/StepSize⌋.
	StepSize int     `json:"step_size,omitempty"`
	Gamma    float64 `json:"gamma,omitempty"`
	// Milestones and Gamma drive "multistep", as PyTorch's MultiStepLR
	// stepped once per epoch: Base·Gamma^(the milestones ≤ e).
	Milestones []int `json:"milestones,omitempty"`
	// Warmup epochs ramp linearly from Base/Warmup to Base; the main
	// schedule then runs over the remaining epochs.
	Warmup int `json:"warmup,omitempty"`
}

// ScheduleKinds lists the schedule names.
func ScheduleKinds() []string { return []string{"constant", "cosine", "step", "multistep"} }

// Validate reports a schedule that cannot run.
func (s Schedule) Validate() error {
	switch {
	case math.IsNaN(s.Base) || math.IsInf(s.Base, 0) || s.Base <= 0:
		return fmt.Errorf("learning rate %g: must be a positive finite number", s.Base)
	case s.Epochs < 1:
		return fmt.Errorf("epochs %d: must be at least 1", s.Epochs)
	case s.Warmup < 0 || s.Warmup >= s.Epochs && s.Warmup > 0:
		return fmt.Errorf("warm-up %d epochs: must be between 0 and epochs-1 (%d)", s.Warmup, s.Epochs-1)
	}
	switch s.Kind {
	case "cosine", "constant":
	case "step":
		if s.StepSize < 1 || !(s.Gamma > 0 && s.Gamma <= 1) {
			return fmt.Errorf("step schedule: step size %d and gamma %g must be ≥ 1 and in (0,1]", s.StepSize, s.Gamma)
		}
	case "multistep":
		if !(s.Gamma > 0 && s.Gamma <= 1) {
			return fmt.Errorf("multistep schedule: gamma %g must be in (0,1]", s.Gamma)
		}
		for i, m := range s.Milestones {
			if m < 1 || i > 0 && m <= s.Milestones[i-1] {
				return fmt.Errorf("multistep schedule: milestones %v must be increasing epochs ≥ 1", s.Milestones)
			}
		}
	default:
		return fmt.Errorf("unknown schedule %q (known: %s)", s.Kind, strings.Join(ScheduleKinds(), ", "))
	}
	return nil
}

// At is the learning rate for epoch e (0-based). Cosine follows PyTorch's
// CosineAnnealingLR stepped once per epoch with T_max = the epochs after
// warm-up and a minimum of 0.
func (s Schedule) At(e int) float64 {
	if e < s.Warmup {
		return s.Base * float64(e+1) / float64(s.Warmup)
	}
	e -= s.Warmup
	n := s.Epochs - s.Warmup
	switch s.Kind {
	case "cosine":
		return s.Base * (1 + math.Cos(math.Pi*float64(e)/float64(n))) / 2
	case "step":
		return s.Base * math.Pow(s.Gamma, float64(e/s.StepSize))
	case "multistep":
		passed := 0
		for _, m := range s.Milestones {
			if m <= e {
				passed++
			}
		}
		return s.Base * math.Pow(s.Gamma, float64(passed))
	}
	return s.Base
}
