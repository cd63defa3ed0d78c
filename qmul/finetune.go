package qmul

import (
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// FT and ℓ1-sparse (method.md section 4): fine-tune on D_r alone; ℓ1-sparse
// adds the penalty γ_e‖θ‖₁ with γ_e = w(1 − e/E), w its --l1-weight,
// decaying linearly over the epochs (Unlearn-Sparse's FT_iter).

var ftMethod = Method{
	Name:    "ft",
	Summary: "fine-tune on the retain set",
	Run:     func(u *unlearner) error { return u.loop(u.fineTuneEpoch) },
}

var l1Method = Method{
	Name:    "l1",
	Summary: "fine-tune on the retain set with a decaying ℓ1 penalty",
	Run:     func(u *unlearner) error { return u.loop(u.fineTuneEpoch) },
}

// fineTuneEpoch is one epoch of FT, or of ℓ1-sparse when its weight is
// positive.
func (u *unlearner) fineTuneEpoch(e int, lr float64) (train.StepResult, error) {
	gamma := u.h.Float("l1-weight") * (1 - float64(e)/float64(u.h.Epochs))
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
