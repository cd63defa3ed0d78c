package qmul

import "github.com/qmulgpu/qmulgpu/engine/train"

// GA (method.md section 4): minimise −CE on D_f alone.

var gaMethod = Method{
	Name:     "ga",
	Summary:  "gradient ascent on the forget set",
	Defaults: func(h *Hyper) { h.Epochs, h.LR = 5, 1e-4 },
	Ascends:  true,
	Run:      func(u *unlearner) error { return u.loop(u.gradientAscentEpoch) },
}

// gradientAscentEpoch is one epoch of GA.
func (u *unlearner) gradientAscentEpoch(e int, lr float64) (train.StepResult, error) {
	return u.pass("forget", u.rng(e), u.Forget, nil, lr, u.sgdStep(-1))
}
