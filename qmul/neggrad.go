package qmul

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// NegGrad+ (Kurmanji et al., NeurIPS 2023; method.md section 4): one
// objective over paired minibatches, β·CE on D_r − (1−β)·CE on D_f. Each
// retain minibatch is paired with the next forget minibatch (cycling
// through D_f); both orders come from the epoch's random source, D_f's
// first. The retain minibatch is forwarded first, then the forget one,
// and one SGD step is taken on the summed gradient.

var negGradPlusMethod = Method{
	Name:     "neggrad+",
	Summary:  "NegGrad+: β·CE on the retain set minus (1−β)·CE on the forget set, paired minibatches (--beta)",
	Params:   []string{"beta"},
	Defaults: func(h *Hyper) { h.Beta = 0.99 },
	Check: func(h Hyper) error {
		if !(h.Beta > 0 && h.Beta < 1) {
			return fmt.Errorf("--beta %g must be in (0, 1)", h.Beta)
		}
		return nil
	},
	Run: func(u *unlearner) error { return u.loop(u.negGradPlusEpoch) },
}

// negGradPlusEpoch is one epoch of NegGrad+; it reports the retain loss.
func (u *unlearner) negGradPlusEpoch(e int, lr float64) (train.StepResult, error) {
	r := u.rng(e)
	fplans := u.plans("forget", u.Forget, r)
	next := 0
	beta := u.h.Beta
	return u.pass("retain", r, u.Retain, nil, lr, func(bt *train.Batch, lr float64) (train.StepResult, error) {
		res := train.Step(u.ctx, u.Model, bt, nil, beta/float64(len(bt.Index)))
		fb := u.Train.Load(u.B, fplans[next%len(fplans)], u.Aug, nil)
		next++
		train.Step(u.ctx, u.Model, fb, nil, -(1-beta)/float64(len(fb.Index)))
		fb.Free(u.B)
		u.opt.Step(u.B, lr)
		nn.ZeroGrad(u.B, u.opt.Params())
		return res, nil
	})
}
