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
// D_f at θ_o keeps the most salient weights trainable — exactly
// ⌊--mask-ratio·N⌋ of the N weights of all tensors jointly, ranked as the
// reference's argsort ranks them — then RL with the rest frozen at θ_o.

var salunMethod = Method{
	Name:     "salun",
	Summary:  "RL on the weights most salient to the forget set",
	Defaults: func(h *Hyper) { h.LR = 0.013 },
	Run: func(u *unlearner) error {
		if err := u.timed("saliency", u.saliencyMask); err != nil {
			return err
		}
		return u.loop(u.randomLabelEpoch)
	},
}

// saliencyMask is SalUn's mask: the gradient of −CE on D_f at θ_o, in
// evaluation mode, summed over the minibatches of a shuffled pass over D_f
// (augmented when the method's passes are), as the reference's forget
// loader gives them; its order comes from a random stream of its own,
// recorded as "saliency".
func (u *unlearner) saliencyMask() error {
	c := &nn.Ctx{B: u.B, Train: false}
	plans := u.plansOf("saliency", u.Forget, u.h.Batch, train.EpochRNG(u.h.Seed^0x73616c, 0), u.aug)
	it := u.Train.Iterate(u.B, plans, u.aug, nil)
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
	masks, err := topMasks(u.B, ps, u.h.Float("mask-ratio"))
	if err != nil {
		return err
	}
	for i, m := range masks {
		u.opt.SetMask(i, m)
	}
	nn.ZeroGrad(u.B, ps)
	return nil
}

// topMasks returns 0/1 masks keeping exactly k = ⌊keep·N⌋ of the N
// elements of all parameters jointly: those of largest gradient magnitude,
// ties broken by position (parameters in order, then elements), as a
// stable argsort of −|g| ranks them — the reference's rank < k rule.
func topMasks(b engine.Storage, ps []*nn.Param, keep float64) ([]*engine.Tensor, error) {
	var all []float32
	for _, p := range ps {
		v := make([]float32, p.Grad.Numel())
		b.Download(p.Grad, v)
		for i, g := range v {
			if g != g || math.IsInf(float64(g), 0) {
				return nil, fmt.Errorf("saliency: gradient of %s is not finite", p.Name)
			}
			v[i] = float32(math.Abs(float64(g)))
		}
		all = append(all, v...)
	}
	order := make([]int, len(all))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return cmp.Compare(all[j], all[i]) })
	flags := make([]float32, len(all))
	for _, i := range order[:int(keep*float64(len(all)))] {
		flags[i] = 1
	}
	masks := make([]*engine.Tensor, len(ps))
	at := 0
	for i, p := range ps {
		n := p.Value.Numel()
		masks[i] = b.Alloc(engine.Float32, p.Value.Shape...)
		b.Upload(masks[i], flags[at:at+n])
		at += n
	}
	return masks, nil
}
