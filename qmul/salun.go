package qmul

import (
	"fmt"
	"math"
	"sort"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// SalUn (method.md section 4): a saliency mask from the gradient of −CE on
// D_f at θ_o keeps the top (1 − sparsity) of the weights trainable, over
// all tensors jointly; then RL with the rest frozen at θ_o.

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

// topMasks returns 0/1 masks keeping exactly round(keep·total) elements of
// largest gradient magnitude across all parameters (ties broken by
// position, parameters in order).
func topMasks(b engine.Backend, ps []*nn.Param, keep float64) ([]*engine.Tensor, error) {
	type entry struct {
		mag float32
		pos int
	}
	var all []entry
	var vals [][]float32
	for _, p := range ps {
		v := make([]float32, p.Grad.Numel())
		b.Download(p.Grad, v)
		for _, g := range v {
			if g != g {
				return nil, fmt.Errorf("saliency: gradient of %s is not finite", p.Name)
			}
			all = append(all, entry{float32(math.Abs(float64(g))), len(all)})
		}
		vals = append(vals, v)
	}
	k := int(math.Round(keep * float64(len(all))))
	sort.Slice(all, func(i, j int) bool {
		if all[i].mag != all[j].mag {
			return all[i].mag > all[j].mag
		}
		return all[i].pos < all[j].pos
	})
	flags := make([]float32, len(all))
	for _, e := range all[:k] {
		flags[e.pos] = 1
	}
	masks := make([]*engine.Tensor, len(ps))
	at := 0
	for i, p := range ps {
		masks[i] = b.Alloc(engine.Float32, p.Value.Shape...)
		b.Upload(masks[i], flags[at:at+len(vals[i])])
		at += len(vals[i])
	}
	return masks, nil
}
