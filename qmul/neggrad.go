package qmul

import (
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// NegGrad+ (Kurmanji et al., NeurIPS 2023; method.md section 4): one
// objective over paired minibatches, β·CE on D_r − (1−β)·CE on D_f, β its
// --retain-weight. Each retain minibatch is paired with the next forget
// minibatch (of --forget-batch samples, cycling through D_f, as the
// reference's zip(retain, cycle(forget))); both orders come from the
// epoch's random source, D_f's first. The retain minibatch is forwarded
// first, then the forget one, and one SGD step is taken on the summed
// gradient.

var negGradPlusMethod = Method{
	Name:    "neggrad+",
	Summary: "NegGrad+: β·CE on the retain set minus (1−β)·CE on the forget set, paired minibatches",
	// The SCRUB authors' large-scale notebook: plain SGD (no momentum, no
	// weight decay), 10 epochs at 0.01, retain minibatches of 128.
	Defaults: func(h *Hyper) { h.Epochs, h.LR, h.Batch, h.Momentum, h.WeightDecay = 10, 0.01, 128, 0, 0 },
	Run:      func(u *unlearner) error { return u.loop(u.negGradPlusEpoch) },
}

// negGradPlusEpoch is one epoch of NegGrad+; it reports the retain loss.
func (u *unlearner) negGradPlusEpoch(e int, lr float64) (train.StepResult, error) {
	r := u.rng(e)
	fplans := u.plansOf("forget", u.Forget, u.h.Int("forget-batch"), r, u.aug)
	next := 0
	beta := u.h.Float("retain-weight")
	return u.pass("retain", r, u.Retain, nil, lr, func(bt *train.Batch, lr float64) (train.StepResult, error) {
		res := train.Step(u.ctx, u.Model, bt, nil, beta/float64(len(bt.Index)))
		fb := u.Train.Load(u.B, fplans[next%len(fplans)], u.aug, nil)
		next++
		train.Step(u.ctx, u.Model, fb, nil, -(1-beta)/float64(len(fb.Index)))
		fb.Free(u.B)
		u.opt.Step(u.B, lr)
		nn.ZeroGrad(u.B, u.opt.Params())
		return res, nil
	})
}
