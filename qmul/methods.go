package qmul

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/optim"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// emaDecay smooths the gradient-norm estimates of --agr step and sample.
const emaDecay = 0.9

// unlearner runs one method's epochs.
type unlearner struct {
	*Study
	h      Hyper
	method string
	opt    *optim.SGD
	sched  optim.Schedule
	ctx    *nn.Ctx
	// labels are the training labels with D_f relabelled (Int32 [N]).
	labels *engine.Tensor
	// norm holds the smoothed gradient norms of the forget (0) and retain
	// (1) groups for --agr step and sample.
	norm [2]float64
	// isForget marks D_f members among training indices.
	isForget map[int32]bool
	// note is what the current epoch adds to its trace (AGR norms and
	// weights).
	note EpochTrace
}

// EpochTrace records one unlearning epoch; the AGR fields are set for
// qmul, sl and rl-agr (norms of --agr step and sample are the smoothed
// values at the end of the epoch).
type EpochTrace struct {
	train.EpochStats
	NormForget   float64 `json:"norm_forget,omitempty"`
	NormRetain   float64 `json:"norm_retain,omitempty"`
	WeightForget float64 `json:"weight_forget,omitempty"`
	WeightRetain float64 `json:"weight_retain,omitempty"`
}

// epochFunc runs one epoch at learning rate lr and returns its summary.
type epochFunc func(e int, lr float64) (train.StepResult, error)

// loop runs the method's epochs, reporting progress and stopping on a
// non-finite loss.
func (u *unlearner) loop(epoch epochFunc) error {
	for e := 0; e < u.h.Epochs; e++ {
		began := time.Now()
		lr := u.sched.At(e)
		if u.Progress != nil {
			u.Progress.EpochStart(e+1, u.h.Epochs, 0)
		}
		var r train.StepResult
		err := u.timed("unlearn", func() (err error) {
			r, err = epoch(e, lr)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s epoch %d: %w", u.method, e+1, err)
		}
		if err := u.B.Err(); err != nil {
			return fmt.Errorf("%s epoch %d: %w", u.method, e+1, err)
		}
		secs := time.Since(began).Seconds()
		stats := train.EpochStats{Epoch: e + 1, Epochs: u.h.Epochs, LR: lr,
			TrainLoss: r.Loss / float64(max(1, r.N)), TrainAcc: 100 * float64(r.Correct) / float64(max(1, r.N)),
			Seconds: secs, ImagesPerSec: float64(r.N) / secs}
		u.note.EpochStats = stats
		u.Trace = append(u.Trace, u.note)
		u.note = EpochTrace{}
		if u.Progress != nil {
			u.Progress.EpochEnd(stats)
		}
	}
	return nil
}

// stepFunc trains on one batch at learning rate lr.
type stepFunc func(bt *train.Batch, lr float64) (train.StepResult, error)

// pass runs step over the minibatches of idx, shuffled and augmented with
// the epoch's random source; labels overrides the true labels.
func (u *unlearner) pass(r *rand.Rand, idx []int, labels *engine.Tensor, lr float64, step stepFunc) (train.StepResult, error) {
	plans := train.Plans(idx, u.h.Batch, r, u.Aug)
	it := u.Train.Iterate(u.B, plans, u.Aug, labels)
	defer it.Close()
	var total train.StepResult
	for n := 1; ; n++ {
		bt, ok := it.Next()
		if !ok {
			break
		}
		res, err := step(bt, lr)
		bt.Free(u.B)
		if err != nil {
			return total, err
		}
		if !res.Finite() {
			return total, fmt.Errorf("step %d: %w", n, train.ErrDiverged)
		}
		total.N += res.N
		total.Loss += res.Loss
		total.Correct += res.Correct
		if u.Progress != nil {
			u.Progress.StepDone(n, total.Loss/float64(total.N), 100*float64(total.Correct)/float64(total.N), 0)
		}
	}
	return total, nil
}

// sgdStep is a plain step: mean cross-entropy times scale, then the update
// with the gradient multiplied by gradScale.
func (u *unlearner) sgdStep(scale float64) stepFunc {
	return func(bt *train.Batch, lr float64) (train.StepResult, error) {
		r := train.Step(u.ctx, u.Model, bt, nil, scale/float64(len(bt.Index)))
		u.opt.Step(u.B, lr)
		nn.ZeroGrad(u.B, u.opt.Params())
		return r, nil
	}
}

func (u *unlearner) rng(e int) *rand.Rand { return train.EpochRNG(u.h.Seed, e) }

// fineTuneEpoch is FT: cross-entropy on D_r; for ℓ1-sparse the penalty
// γ_e‖θ‖₁ with γ_e = α(1 − e/E) is added.
func (u *unlearner) fineTuneEpoch(e int, lr float64) (train.StepResult, error) {
	gamma := u.h.Alpha * (1 - float64(e)/float64(u.h.Epochs))
	return u.pass(u.rng(e), u.Retain, nil, lr, func(bt *train.Batch, lr float64) (train.StepResult, error) {
		r := train.Step(u.ctx, u.Model, bt, nil, 1/float64(len(bt.Index)))
		if u.method == "l1" && gamma > 0 {
			for _, p := range u.opt.Params() {
				u.B.AddSign(gamma, p.Value, p.Grad)
			}
		}
		u.opt.Step(u.B, lr)
		nn.ZeroGrad(u.B, u.opt.Params())
		return r, nil
	})
}

// relabel uploads the training labels with D_f's replaced by forget[i].
func (u *unlearner) relabel(forget []int32) {
	if u.labels == nil {
		u.labels = u.B.Alloc(engine.Int32, u.Train.N)
	}
	host := slices.Clone(u.Train.HostLabels)
	for i, idx := range u.Forget {
		host[idx] = forget[i]
	}
	u.B.Upload(u.labels, host)
}

// randomLabels draws a uniformly random class for each forget sample, as
// the SalUn code does (the true class may be drawn).
func (u *unlearner) randomLabels(r *rand.Rand) []int32 {
	l := make([]int32, len(u.Forget))
	for i := range l {
		l[i] = int32(r.IntN(u.Classes))
	}
	return l
}

// randomLabelEpoch is RL (and SalUn's training pass): D_f with fresh random
// labels and D_r, in shuffled joint minibatches.
func (u *unlearner) randomLabelEpoch(e int, lr float64) (train.StepResult, error) {
	r := u.rng(e)
	u.relabel(u.randomLabels(r))
	return u.pass(r, append(slices.Clone(u.Forget), u.Retain...), u.labels, lr, u.sgdStep(1))
}

// gradientAscentEpoch is GA: minimise −CE on D_f.
func (u *unlearner) gradientAscentEpoch(e int, lr float64) (train.StepResult, error) {
	return u.pass(u.rng(e), u.Forget, nil, lr, u.sgdStep(-1))
}

// gradNorm is Σ_k ‖∂/∂θ_k‖₂ over every trainable tensor of the gradient
// accumulated in the parameters (one reduction, one download).
func (u *unlearner) gradNorm() float64 {
	ps := u.opt.Params()
	grads := make([]*engine.Tensor, len(ps))
	for i, p := range ps {
		grads[i] = p.Grad
	}
	out := u.B.Alloc(engine.Float32, len(ps))
	u.B.SumSquares(grads, out)
	v := make([]float32, len(ps))
	u.B.Download(out, v)
	u.B.Free(out)
	var s float64
	for _, x := range v {
		s += math.Sqrt(float64(x))
	}
	return s
}

// saliencyMask is SalUn's mask: the gradient of −CE on D_f at θ_o (in
// evaluation mode, summed over minibatches); weights whose gradient
// magnitude is in the top (1 − Sparsity) over all tensors jointly train,
// the rest stay frozen at θ_o.
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

// boundaryShrink is BS: each forget image is pushed across the nearest
// decision boundary of a frozen θ_o by one FGSM step, x' = x +
// Bound·sign(∇_x CE), and the model is fine-tuned on D_f towards
// argmax f_θo(x').
func (u *unlearner) boundaryShrink() error {
	frozen, err := u.Original()
	if err != nil {
		return err
	}
	frozen.SetInputGrad(true)
	fc := &nn.Ctx{B: u.B, Train: false}
	return u.loop(func(e int, lr float64) (train.StepResult, error) {
		return u.pass(u.rng(e), u.Forget, nil, lr, func(bt *train.Batch, lr float64) (train.StepResult, error) {
			n := len(bt.Index)
			// The input gradient of CE under θ_o.
			logits := frozen.Net.Forward(fc, bt.X)
			dl := u.B.Alloc(engine.Float32, logits.Shape...)
			u.B.SoftmaxCrossEntropy(engine.LossArgs{Logits: logits, Labels: bt.Y, Scale: 1, DLogits: dl})
			dx := frozen.Net.Backward(fc, dl)
			u.B.Free(dl)
			adv := u.B.Alloc(engine.Float32, bt.X.Shape...)
			u.B.Copy(adv, bt.X)
			u.B.AddSign(u.h.Bound, dx, adv)
			u.B.Free(dx)
			// The label θ_o gives the shifted image.
			logits = frozen.Net.Forward(fc, adv)
			shrunk := u.B.Alloc(engine.Int32, n)
			u.B.SoftmaxCrossEntropy(engine.LossArgs{Logits: logits, Labels: bt.Y, Scale: 1, Pred: shrunk})
			frozen.Net.Release(fc)
			u.B.Free(adv)
			nb := &train.Batch{X: bt.X, Y: shrunk, Index: bt.Index}
			r := train.Step(u.ctx, u.Model, nb, nil, 1/float64(n))
			u.B.Free(shrunk)
			u.opt.Step(u.B, lr)
			nn.ZeroGrad(u.B, u.opt.Params())
			return r, nil
		})
	})
}

// oeuEpoch is OEU (experimental): maximise the prediction entropy on D_f,
// with the forget gradient projected onto the orthogonal complement of the
// retain gradient, g_f ← g_f − (g_f·g_r/‖g_r‖²)·g_r, and the step taken
// along g_f + g_r. Each retain minibatch is paired with the next forget
// minibatch (cycling through D_f).
func (u *unlearner) oeuEpoch(e int, lr float64) (train.StepResult, error) {
	r := u.rng(e)
	fplans := train.Plans(u.Forget, u.h.Batch, r, u.Aug)
	ps := u.opt.Params()
	gf := make([]*engine.Tensor, len(ps))
	grads := make([]*engine.Tensor, len(ps))
	for i, p := range ps {
		gf[i] = u.B.Alloc(p.Grad.DType, p.Grad.Shape...)
		grads[i] = p.Grad
	}
	defer func() {
		for _, t := range gf {
			u.B.Free(t)
		}
	}()
	next := 0
	return u.pass(r, u.Retain, nil, lr, func(bt *train.Batch, lr float64) (train.StepResult, error) {
		fb := u.Train.Load(u.B, fplans[next%len(fplans)], u.Aug, nil)
		next++
		logits := u.Model.Net.Forward(u.ctx, fb.X)
		dl := u.B.Alloc(engine.Float32, logits.Shape...)
		u.B.SoftmaxEntropy(engine.LossArgs{Logits: logits, Scale: -1 / float64(len(fb.Index)), DLogits: dl})
		if dx := u.Model.Net.Backward(u.ctx, dl); dx != nil {
			u.B.Free(dx)
		}
		u.B.Free(dl)
		fb.Free(u.B)
		for i := range ps {
			u.B.Copy(gf[i], ps[i].Grad)
		}
		nn.ZeroGrad(u.B, ps)
		res := train.Step(u.ctx, u.Model, bt, nil, 1/float64(len(bt.Index)))
		dots := u.B.Alloc(engine.Float32, len(ps))
		sq := u.B.Alloc(engine.Float32, len(ps))
		u.B.Dot(gf, grads, dots)
		u.B.SumSquares(grads, sq)
		dv, sv := make([]float32, len(ps)), make([]float32, len(ps))
		u.B.Download(dots, dv)
		u.B.Download(sq, sv)
		u.B.Free(dots)
		u.B.Free(sq)
		var dot, rr float64
		for i := range dv {
			dot += float64(dv[i])
			rr += float64(sv[i])
		}
		coef := 0.0
		if rr > 0 {
			coef = dot / rr
		}
		for i := range ps {
			u.B.Axpy(1-coef, ps[i].Grad, gf[i]) // g_f − coef·g_r + g_r
			u.B.Copy(ps[i].Grad, gf[i])
		}
		u.opt.Step(u.B, lr)
		nn.ZeroGrad(u.B, ps)
		return res, nil
	})
}
