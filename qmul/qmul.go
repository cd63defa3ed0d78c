package qmul

import (
	"fmt"
	"math"
	"slices"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// Q-MUL (method.md section 3): at the start of every epoch, with the
// current model, relabel D_f with similar labels and weigh the forget and
// retain losses so that both contribute equal gradient norms (adaptive
// gradient reweighting), then train. The ablations change one thing each:
// sl keeps both weights at 1; rl-agr draws random labels as RL does (per
// forget minibatch in the sequential schedule, once per epoch in the joint
// one). With --similar-labels released, qmul and sl relabel as the
// released code does (releasedSimilarLabels).

var qmulMethod = Method{
	Name:    "qmul",
	Summary: "Q-MUL: similar labels with adaptive gradient reweighting",
	Check:   checkAGR,
	Run:     func(u *unlearner) error { return u.loop(u.agrEpoch(false)) },
}

var slMethod = Method{
	Name:    "sl",
	Summary: "ablation: similar labels without reweighting",
	Run:     func(u *unlearner) error { return u.loop(u.agrEpoch(false)) },
}

var rlAGRMethod = Method{
	Name:    "rl-agr",
	Summary: "ablation: random labels with adaptive gradient reweighting",
	Check:   checkAGR,
	Run:     func(u *unlearner) error { return u.loop(u.agrEpoch(true)) },
}

// checkAGR checks that the reweighting mode suits the schedule.
func checkAGR(h Hyper) error {
	if h.String("agr") == "step" && h.String("schedule") == "joint" {
		return fmt.Errorf("--agr step measures each group's minibatch gradient and needs --schedule sequential; with joint minibatches use --agr sample or epoch")
	}
	return nil
}

// emaDecay smooths the gradient-norm estimates of --agr step and sample.
const emaDecay = 0.9

const (
	forgetGroup = 0
	retainGroup = 1
)

// similarLabels computes epoch e's labels of D_f, in D_f's order: as
// described (describedSimilarLabels) or as released
// (releasedSimilarLabels), as --similar-labels says.
func (u *unlearner) similarLabels(e int) []int32 {
	if u.h.String("similar-labels") == "released" {
		return u.releasedSimilarLabels(e)
	}
	return u.describedSimilarLabels()
}

// describedSimilarLabels computes ŷ(x) = argmin_{j≠y} |p_j − p_y| for every
// forget sample with the current model in evaluation mode, in D_f's order.
func (u *unlearner) describedSimilarLabels() []int32 {
	plans := train.Plans(u.Forget, u.h.Batch, nil, data.Augmentation{})
	return u.labelPass(&nn.Ctx{B: u.B, Train: false}, plans, data.Augmentation{}, func(logits *engine.Tensor, bt *train.Batch) []int32 {
		sim := u.B.Alloc(engine.Int32, len(bt.Index))
		u.B.SimilarLabels(logits, bt.Y, sim)
		v := make([]int32, len(bt.Index))
		u.B.Download(sim, v)
		u.B.Free(sim)
		return v
	})
}

// labelPass runs the model, in c's mode, over the minibatches of plans and
// returns the labels label gives each minibatch from its logits, in the
// pass's order.
func (u *unlearner) labelPass(c *nn.Ctx, plans []train.Plan, aug data.Augmentation, label func(logits *engine.Tensor, bt *train.Batch) []int32) []int32 {
	it := u.Train.Iterate(u.B, plans, aug, nil)
	defer it.Close()
	out := make([]int32, 0, len(u.Forget))
	for {
		bt, ok := it.Next()
		if !ok {
			break
		}
		out = append(out, label(u.Model.Net.Forward(c, bt.X), bt)...)
		u.Model.Net.Release(c)
		bt.Free(u.B)
	}
	return out
}

// releasedSimilarLabels reproduces the released code's relabelling,
// defects included (docs/methods.md, "Q-MUL as released"). It runs the
// model in training mode (batch statistics; running statistics and
// observers updated, as a PyTorch forward in training mode does) over a
// shuffled pass over D_f, augmented as the training passes are, its order
// drawn from a stream of its own and recorded as "similar-released". For
// each sample, with logits z and p_y the softmax probability of its true
// class y, it
//
//   - subtracts p_y from the logits, |z_j − p_y|, instead of from the
//     probabilities;
//   - removes class y from that vector and takes the position of its
//     minimum in the shorter vector as the label, without mapping it back
//     (classes above y come out one lower, and y itself can come out);
//
// and the labels, listed in the shuffled order, are assigned to D_f in its
// own order.
func (u *unlearner) releasedSimilarLabels(e int) []int32 {
	plans := u.plansOf("similar-released", u.Forget, u.h.Batch, train.EpochRNG(u.h.Seed^0x72656c, e), u.aug)
	return u.labelPass(&nn.Ctx{B: u.B, Train: true}, plans, u.aug, func(logits *engine.Tensor, bt *train.Batch) []int32 {
		z := make([]float32, logits.Numel())
		u.B.Download(logits, z)
		y := make([]int32, len(bt.Index))
		u.B.Download(bt.Y, y)
		k := u.Classes
		v := make([]int32, len(y))
		for i := range y {
			v[i] = releasedLabel(z[i*k:(i+1)*k], int(y[i]))
		}
		return v
	})
}

// releasedLabel is the released code's label for one sample: the position,
// in the logits with the true class y removed, of the smallest
// |z_j − p_y|.
func releasedLabel(z []float32, y int) int32 {
	py := math.Exp(logSoftmax(z)[y])
	best, bestGap := 0, math.Inf(1)
	pos := 0
	for j, v := range z {
		if j == y {
			continue
		}
		if gap := math.Abs(float64(v) - py); gap < bestGap {
			best, bestGap = pos, gap
		}
		pos++
	}
	return int32(best)
}

// agrWeights are w_f = g_r/(g_f+g_r) and w_r = g_f/(g_f+g_r), which make
// w_f·g_f = w_r·g_r.
func agrWeights(gf, gr float64) (wf, wr float64) {
	if gf+gr == 0 {
		return 0.5, 0.5
	}
	return gr / (gf + gr), gf / (gf + gr)
}

// epochNorms is the paper's measurement: the mean over D_f's minibatches
// (labels ŷ, or random ones drawn per minibatch when draw is set) and over
// D_r's (true labels) of Σ_k ‖∂CE_mean(B)/∂θ_k‖₂, one extra forward and
// backward pass over D_f ∪ D_r that leaves BatchNorm statistics and
// observers untouched. Its minibatch orders (and label draws) come from a
// stream of their own, so that the training passes see the same orders
// as those of the methods without reweighting.
func (u *unlearner) epochNorms(e int, draw bool) (gf, gr float64, err error) {
	c := &nn.Ctx{B: u.B, Train: true, FrozenStats: true}
	ps := u.opt.Params()
	measure := func(role string, idx []int, labels *engine.Tensor, salt int, draw bool) (float64, error) {
		r := train.EpochRNG(u.h.Seed^0x616772, e*2+salt)
		it := u.Train.Iterate(u.B, u.plans(role, idx, r), u.aug, labels)
		defer it.Close()
		var sum float64
		n := 0
		for {
			bt, ok := it.Next()
			if !ok {
				break
			}
			if draw {
				u.B.Upload(bt.Y, u.randomLabels("batch", r, len(bt.Index)))
			}
			res := train.Step(c, u.Model, bt, nil, 1/float64(len(bt.Index)))
			bt.Free(u.B)
			if !res.Finite() {
				return 0, train.ErrDiverged
			}
			sum += u.gradNorm()
			nn.ZeroGrad(u.B, ps)
			n++
		}
		return sum / float64(max(1, n)), nil
	}
	if gf, err = measure("measure-forget", u.Forget, u.forgetLabels(draw), 0, draw); err != nil {
		return 0, 0, err
	}
	gr, err = measure("measure-retain", u.Retain, nil, 1, false)
	return gf, gr, err
}

// forgetLabels is the relabelled label tensor, or nil when labels are
// drawn per minibatch.
func (u *unlearner) forgetLabels(perBatch bool) *engine.Tensor {
	if perBatch {
		return nil
	}
	return u.labels
}

// agrEpoch is one epoch of qmul or sl (similar labels) or rl-agr (random
// labels).
func (u *unlearner) agrEpoch(random bool) epochFunc {
	return func(e int, lr float64) (train.StepResult, error) {
		r, lab := u.rng(e), u.labelRNG(e)
		if u.isForget == nil {
			u.isForget = make(map[int32]bool, len(u.Forget))
			for _, i := range u.Forget {
				u.isForget[int32(i)] = true
			}
		}
		// Random labels are drawn per forget minibatch in the sequential
		// schedule, as RL draws them.
		perBatch := random && u.h.String("schedule") == "sequential"
		if !perBatch {
			err := u.timed("relabel", func() error {
				if random {
					u.relabel(u.randomLabels("forget", lab, len(u.Forget)))
				} else {
					sim := u.similarLabels(e)
					u.record(Event{Kind: "labels", Role: "similar", Labels: sim})
					u.relabel(sim)
				}
				return nil
			})
			if err != nil {
				return train.StepResult{}, err
			}
		}
		wf, wr := 1.0, 1.0
		switch u.h.String("agr") {
		case "epoch":
			var gf, gr float64
			err := u.timed("agr", func() (err error) {
				gf, gr, err = u.epochNorms(e, perBatch)
				return err
			})
			if err != nil {
				return train.StepResult{}, err
			}
			wf, wr = agrWeights(gf, gr)
			u.note = EpochTrace{NormForget: gf, NormRetain: gr, WeightForget: wf, WeightRetain: wr}
		case "step", "sample":
			if e == 0 {
				if err := u.timed("agr", func() error { return u.seedNorms(perBatch) }); err != nil {
					return train.StepResult{}, err
				}
			}
		default:
			u.note = EpochTrace{WeightForget: 1, WeightRetain: 1}
		}
		defer u.traceNorms()
		if u.h.String("schedule") == "joint" {
			both := append(slices.Clone(u.Forget), u.Retain...)
			return u.pass("joint", r, both, u.labels, lr, u.jointStep(wf, wr))
		}
		fstep := u.groupStep(forgetGroup, wf)
		if perBatch {
			fstep = u.withRandomLabels(lab, fstep)
		}
		fr, err := u.pass("forget", r, u.Forget, u.forgetLabels(perBatch), lr, fstep)
		if err != nil {
			return fr, err
		}
		rr, err := u.pass("retain", r, u.Retain, nil, lr, u.groupStep(retainGroup, wr))
		return sum(fr, rr), err
	}
}

// traceNorms records the smoothed norms and the weights they give at the
// end of an epoch of --agr step or sample.
func (u *unlearner) traceNorms() {
	if u.h.String("agr") == "step" || u.h.String("agr") == "sample" {
		wf, wr := agrWeights(u.norm[forgetGroup], u.norm[retainGroup])
		u.note = EpochTrace{NormForget: u.norm[forgetGroup], NormRetain: u.norm[retainGroup], WeightForget: wf, WeightRetain: wr}
	}
}

// seedNorms starts the step and sample estimates with one measured
// minibatch of each group, so that the first forget steps have a retain
// norm to weigh against; draw gives the forget minibatch random labels.
func (u *unlearner) seedNorms(draw bool) error {
	c := &nn.Ctx{B: u.B, Train: true, FrozenStats: true}
	for g, set := range [][]int{u.Forget, u.Retain} {
		labels, role := u.forgetLabels(draw), "seed-forget"
		if g == retainGroup {
			labels, role = nil, "seed-retain"
		}
		r := train.EpochRNG(u.h.Seed^0x73656564, g)
		plans := u.plans(role, set, r)
		bt := u.Train.Load(u.B, plans[0], u.aug, labels)
		if draw && g == forgetGroup {
			u.B.Upload(bt.Y, u.randomLabels("batch", r, len(bt.Index)))
		}
		u.norm[g] = u.measure(c, bt)
		bt.Free(u.B)
		nn.ZeroGrad(u.B, u.opt.Params())
	}
	return nil
}

// measure runs forward and backward with the mean loss and returns the
// group statistic of the current mode: the minibatch gradient norm (step)
// or the mean per-sample gradient norm (sample).
func (u *unlearner) measure(c *nn.Ctx, bt *train.Batch) float64 {
	n := len(bt.Index)
	if u.h.String("agr") == "sample" {
		c.PerSample = u.B.Zeros(engine.Float32, n)
		defer func() { u.B.Free(c.PerSample); c.PerSample = nil }()
	}
	train.Step(c, u.Model, bt, nil, 1/float64(n))
	if u.h.String("agr") == "step" {
		return u.gradNorm()
	}
	v := make([]float32, n)
	u.B.Download(c.PerSample, v)
	var s float64
	for _, x := range v {
		s += float64(x)
	}
	// The loss is the mean, so each sample's gradient carries a factor 1/n:
	// Σ_i of the per-sample norms is their mean for unit weights.
	return s
}

// track folds a new measurement of a group into its smoothed norm.
func (u *unlearner) track(g int, v float64) {
	u.norm[g] = emaDecay*u.norm[g] + (1-emaDecay)*v
}

// groupStep trains on a minibatch of one group (the sequential schedule)
// with weight w (epoch and no reweighting), or with the weight the
// smoothed norms give after this minibatch's measurement (step, sample).
func (u *unlearner) groupStep(g int, w float64) stepFunc {
	return func(bt *train.Batch, lr float64) (train.StepResult, error) {
		n := len(bt.Index)
		if u.h.String("agr") != "step" && u.h.String("agr") != "sample" {
			r := train.Step(u.ctx, u.Model, bt, nil, w/float64(n))
			u.opt.Step(u.B, lr)
			nn.ZeroGrad(u.B, u.opt.Params())
			return r, nil
		}
		var r train.StepResult
		c := *u.ctx
		if u.h.String("agr") == "sample" {
			c.PerSample = u.B.Zeros(engine.Float32, n)
		}
		r = train.Step(&c, u.Model, bt, nil, 1/float64(n))
		v := 0.0
		if u.h.String("agr") == "step" {
			v = u.gradNorm()
		} else {
			ps := make([]float32, n)
			u.B.Download(c.PerSample, ps)
			u.B.Free(c.PerSample)
			for _, x := range ps {
				v += float64(x)
			}
		}
		u.track(g, v)
		wf, wr := agrWeights(u.norm[forgetGroup], u.norm[retainGroup])
		scale := wr
		if g == forgetGroup {
			scale = wf
		}
		u.opt.ScaledStep(u.B, lr, scale)
		nn.ZeroGrad(u.B, u.opt.Params())
		return r, nil
	}
}

// jointStep trains on a shuffled minibatch of D_f ∪ D_r with the loss
// (1/|B|)·Σ_i w_i·CE_i, w_i = w_f or w_r. With --agr sample the weights
// come from the smoothed per-sample norms of earlier steps, and this step's
// per-sample norms (divided by their weights) update them.
func (u *unlearner) jointStep(wf, wr float64) stepFunc {
	return func(bt *train.Batch, lr float64) (train.StepResult, error) {
		n := len(bt.Index)
		sample := u.h.String("agr") == "sample"
		if sample {
			wf, wr = agrWeights(u.norm[forgetGroup], u.norm[retainGroup])
		}
		w := make([]float32, n)
		for i, idx := range bt.Index {
			w[i] = float32(wr)
			if u.isForget[idx] {
				w[i] = float32(wf)
			}
		}
		wt := u.B.Alloc(engine.Float32, n)
		u.B.Upload(wt, w)
		c := *u.ctx
		if sample {
			c.PerSample = u.B.Zeros(engine.Float32, n)
		}
		r := train.Step(&c, u.Model, bt, wt, 1/float64(n))
		u.B.Free(wt)
		if sample {
			ps := make([]float32, n)
			u.B.Download(c.PerSample, ps)
			u.B.Free(c.PerSample)
			var sum [2]float64
			var cnt [2]int
			for i, idx := range bt.Index {
				g := retainGroup
				if u.isForget[idx] {
					g = forgetGroup
				}
				if w[i] > 0 {
					sum[g] += float64(ps[i]) / float64(w[i]) * float64(n)
					cnt[g]++
				}
			}
			for g := range sum {
				if cnt[g] > 0 {
					u.track(g, sum[g]/float64(cnt[g]))
				}
			}
		}
		u.opt.Step(u.B, lr)
		nn.ZeroGrad(u.B, u.opt.Params())
		return r, nil
	}
}
