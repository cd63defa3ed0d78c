package qmul

import (
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// FT and ℓ1-sparse (method.md section 4): fine-tune on D_r alone; ℓ1-sparse
// adds the penalty γ_e‖θ‖₁ with γ_e = α(1 − e/E), decaying linearly over
// the epochs.

var ftMethod = Method{
	Name:    "ft",
	Summary: "fine-tune on the retain set",
	Run:     func(u *unlearner) error { return u.loop(u.fineTuneEpoch) },
}

var l1Method = Method{
	Name:     "l1",
	Summary:  "fine-tune on the retain set with a decaying ℓ1 penalty (--alpha)",
	Params:   []string{"alpha"},
	Defaults: func(h *Hyper) { h.Alpha = 5e-5 },
	Run:      func(u *unlearner) error { return u.loop(u.fineTuneEpoch) },
}

// fineTuneEpoch is one epoch of FT, or of ℓ1-sparse when α > 0.
func (u *unlearner) fineTuneEpoch(e int, lr float64) (train.StepResult, error) {
	gamma := u.h.Alpha * (1 - float64(e)/float64(u.h.Epochs))
	return u.pass("retain", u.rng(e), u.Retain, nil, lr, func(bt *train.Batch, lr float64) (train.StepResult, error) {
		r := train.Step(u.ctx, u.Model, bt, nil, 1/float64(len(bt.Index)))
		if gamma > 0 {
			for _, p := range u.opt.Params() {
				u.B.AddSign(gamma, p.Value, p.Grad)
			}
		}
		u.opt.Step(u.B, lr)
		nn.ZeroGrad(u.B, u.opt.Params())
		return r, nil
	})
}
