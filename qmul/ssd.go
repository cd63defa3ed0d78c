package qmul

import (
	"slices"
	"strings"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// SSD, Selective Synaptic Dampening (Foster et al., AAAI 2024; method.md
// section 4): no training. The diagonal Fisher information of every
// parameter is estimated on the whole training split D and on D_f as the
// mean over minibatches of the squared gradient of the mean cross-entropy,
// in evaluation mode, on plain images in a fixed order, as the reference
// does: D as the concatenation of D_r and D_f, D_f alone, minibatches of
// --batch. A parameter whose forget importance exceeds α times its
// training importance (α its --selection-weighting) is multiplied by
// min(λ·I_D/I_f, 1) (λ its --dampening-constant). On a quantized model the
// latent float weights are dampened; the quantizers' own parameters (LSQ
// steps, PACT clips) only with --dampen-quantizers (docs/methods.md says
// why not by default). SSD makes one pass whatever --epochs says, and does
// not use --lr.

var ssdMethod = Method{
	Name:    "ssd",
	Summary: "Selective Synaptic Dampening: no training, dampens the parameters most important to the forget set",
	NoLR:    true,
	// The reference's random-forgetting script: minibatches of 128.
	Defaults: func(h *Hyper) { h.Epochs, h.Batch = 1, 128 },
	Run: func(u *unlearner) error {
		u.h.Epochs = 1
		return u.loop(u.ssdPass)
	},
}

// ssdPass estimates both importances and dampens.
func (u *unlearner) ssdPass(int, float64) (train.StepResult, error) {
	ps := u.opt.Params()
	if !u.h.Bool("dampen-quantizers") {
		ps = notQuantizers(ps)
	}
	iD, res, err := u.fisher("train", slices.Concat(u.Retain, u.Forget), ps)
	if err != nil {
		return res, err
	}
	iF, _, err := u.fisher("forget", u.Forget, ps)
	if err != nil {
		return res, err
	}
	alpha, lambda := u.h.Float("selection-weighting"), u.h.Float("dampening-constant")
	for i, p := range ps {
		v := make([]float32, p.Value.Numel())
		u.B.Download(p.Value, v)
		for j := range v {
			if iF[i][j] > alpha*iD[i][j] {
				v[j] *= float32(min(lambda*iD[i][j]/iF[i][j], 1))
			}
		}
		u.B.Upload(p.Value, v)
	}
	return res, nil
}

// notQuantizers are the parameters other than the quantizers' own.
func notQuantizers(ps []*nn.Param) []*nn.Param {
	var out []*nn.Param
	for _, p := range ps {
		if !strings.Contains(p.Name, ".quan_") {
			out = append(out, p)
		}
	}
	return out
}

// fisher is the mean over the minibatches of idx (in its order, plain
// images, recorded under role) of each parameter's squared gradient of the
// mean cross-entropy, in evaluation mode.
func (u *unlearner) fisher(role string, idx []int, ps []*nn.Param) ([][]float64, train.StepResult, error) {
	c := &nn.Ctx{B: u.B}
	imp := make([][]float64, len(ps))
	for i, p := range ps {
		imp[i] = make([]float64, p.Value.Numel())
	}
	batches := 0
	g := make([]float32, 0)
	plans := u.plansOf(role, idx, u.h.Batch, nil, data.Augmentation{})
	res, err := u.run(plans, nil, 0, func(bt *train.Batch, _ float64) (train.StepResult, error) {
		res := train.Step(c, u.Model, bt, nil, 1/float64(len(bt.Index)))
		for i, p := range ps {
			g = slices.Grow(g[:0], p.Grad.Numel())[:p.Grad.Numel()]
			u.B.Download(p.Grad, g)
			for j, x := range g {
				imp[i][j] += float64(x) * float64(x)
			}
		}
		nn.ZeroGrad(u.B, u.opt.Params())
		batches++
		return res, nil
	})
	for i := range imp {
		for j := range imp[i] {
			imp[i][j] /= float64(max(batches, 1))
		}
	}
	return imp, res, err
}
