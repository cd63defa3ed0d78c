package qmul

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// SalUn (method.md section 4): a saliency mask from the gradient of −CE on
// D_f at θ_o keeps the top (1 − sparsity) of the weights trainable, over
// all tensors jointly (every weight tied with the threshold kept); then RL
// with the rest frozen at θ_o.

var salunMethod = Method{
	Name:     "salun",
	Summary:  "RL on the weights most salient to the forget set (--sparsity, --schedule)",
	Params:   []string{"sparsity", "schedule"},
	Defaults: func(h *Hyper) { h.LR, h.Sparsity = 0.013, 0.5 },
	Check: func(h Hyper) error {
		if !(h.Sparsity > 0 && h.Sparsity < 1) {
			return fmt.Errorf("--sparsity %g must be in (0, 1)", h.Sparsity)
		}
		return nil
	},
	Run: func(u *unlearner) error {
		if err := u.timed("saliency", u.saliencyMask); err != nil {
			return err
		}
		return u.loop(u.randomLabelEpoch)
	},
}

// saliencyMask is SalUn's mask: the gradient of −CE on D_f at θ_o (in
// evaluation mode, summed over minibatches in D_f's order); weights whose
// gradient magnitude is in the top (1 − Sparsity) over all tensors jointly
// train, the rest stay frozen at θ_o.
func (u *unlearner) saliencyMask() error {
	c := &nn.Ctx{B: u.B, Train: false}
	plans := train.Plans(u.Forget, u.h.Batch, nil, u.Aug)
	it := u.Train.Iterate(u.B, plans, u.Aug, nil)
	ps := u.opt.Params()
	nn.ZeroGrad(u.B, ps)
	for {
		bt, ok := it.Next()
		if !ok {
			break
		}
		train.Step(c, u.Model, bt, nil, -1/float64(len(bt.Index)))
		bt.Free(u.B)
	}
	it.Close()
	masks, err := topMasks(u.B, ps, 1-u.h.Sparsity)
	if err != nil {
		return err
	}
	for i, m := range masks {
		u.opt.SetMask(i, m)
	}
	nn.ZeroGrad(u.B, ps)
	return nil
}

// topMasks returns 0/1 masks keeping every element whose gradient
// magnitude reaches the k-th largest over all parameters jointly, k =
// round(keep·total), as SalUn's 1(|g| ≥ threshold): ties at the threshold
// are all kept, which makes the mask independent of the order of the
// parameters (it matters when many gradients are exactly zero).
func topMasks(b engine.Backend, ps []*nn.Param, keep float64) ([]*engine.Tensor, error) {
	var all []float32
	var vals [][]float32
	for _, p := range ps {
		v := make([]float32, p.Grad.Numel())
		b.Download(p.Grad, v)
		for i, g := range v {
			if g != g {
				return nil, fmt.Errorf("saliency: gradient of %s is not finite", p.Name)
			}
			v[i] = float32(math.Abs(float64(g)))
		}
		all = append(all, v...)
		vals = append(vals, v)
	}
	k := int(math.Round(keep * float64(len(all))))
	threshold := float32(math.Inf(1))
	if k > 0 {
		sorted := slices.Clone(all)
		slices.SortFunc(sorted, func(a, b float32) int { return cmp.Compare(b, a) })
		threshold = sorted[k-1]
	}
	masks := make([]*engine.Tensor, len(ps))
	for i, p := range ps {
		flags := make([]float32, len(vals[i]))
		for j, m := range vals[i] {
			if m >= threshold {
				flags[j] = 1
			}
		}
		masks[i] = b.Alloc(engine.Float32, p.Value.Shape...)
		b.Upload(masks[i], flags)
	}
	return masks, nil
}
