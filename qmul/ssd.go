package qmul

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// SSD, Selective Synaptic Dampening (Foster et al., AAAI 2024; method.md
// section 4): no training. The diagonal Fisher information of every
// parameter is estimated on the whole training split D (D_f ∪ D_r) and on
// D_f as the mean over minibatches of the squared gradient of the mean
// cross-entropy, in evaluation mode; a parameter whose forget importance
// exceeds α times its training importance is multiplied by
// min(λ·I_D/I_f, 1). On a quantized model the latent float weights are
// dampened and the quantizers' own parameters (LSQ steps, PACT clips) are
// left alone: the weights are then quantized on the grid the model was
// trained with, and the model stays W/A-bit. SSD makes one pass whatever
// --epochs says, and does not use --lr.

var ssdMethod = Method{
	Name:     "ssd",
	Summary:  "Selective Synaptic Dampening: no training, dampens the parameters most important to the forget set (--alpha, --lambda)",
	Params:   []string{"alpha", "lambda"},
	NoLR:     true,
	Defaults: func(h *Hyper) { h.Epochs, h.Alpha, h.Lambda = 1, 10, 1 },
	Check: func(h Hyper) error {
		if !(h.Alpha > 0) || !(h.Lambda > 0) || math.IsInf(h.Alpha+h.Lambda, 0) {
			return fmt.Errorf("--alpha %g and --lambda %g must be positive numbers", h.Alpha, h.Lambda)
		}
		return nil
	},
	Run: func(u *unlearner) error {
		u.h.Epochs = 1
		return u.loop(u.ssdPass)
	},
}

// ssdPass estimates both importances and dampens.
func (u *unlearner) ssdPass(e int, _ float64) (train.StepResult, error) {
	r := u.rng(e)
	ps := dampened(u.opt.Params())
	all := slices.Concat(u.Forget, u.Retain)
	slices.Sort(all)
	iD, res, err := u.fisher("train", all, ps, r)
	if err != nil {
		return res, err
	}
	iF, _, err := u.fisher("forget", u.Forget, ps, r)
	if err != nil {
		return res, err
	}
	for i, p := range ps {
		v := make([]float32, p.Value.Numel())
		u.B.Download(p.Value, v)
		for j := range v {
			if iF[i][j] > u.h.Alpha*iD[i][j] {
				v[j] *= float32(min(u.h.Lambda*iD[i][j]/iF[i][j], 1))
			}
		}
		u.B.Upload(p.Value, v)
	}
	return res, nil
}

// dampened are the parameters SSD may dampen: all but the quantizers'.
func dampened(ps []*nn.Param) []*nn.Param {
	var out []*nn.Param
	for _, p := range ps {
		if !strings.Contains(p.Name, ".quan_") {
			out = append(out, p)
		}
	}
	return out
}

// fisher is the mean over the minibatches of idx (ordered by r, recorded
// under role) of each parameter's squared gradient of the mean
// cross-entropy, in evaluation mode.
func (u *unlearner) fisher(role string, idx []int, ps []*nn.Param, r *rand.Rand) ([][]float64, train.StepResult, error) {
	c := &nn.Ctx{B: u.B}
	imp := make([][]float64, len(ps))
	for i, p := range ps {
		imp[i] = make([]float64, p.Value.Numel())
	}
	batches := 0
	g := make([]float32, 0)
	res, err := u.pass(role, r, idx, nil, 0, func(bt *train.Batch, _ float64) (train.StepResult, error) {
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
