package qmul

import (
	"fmt"
	"math"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// SCRUB (Kurmanji et al., NeurIPS 2023; method.md section 4): a student,
// starting at θ_o, is pulled away from the frozen original (the teacher, in
// evaluation mode) on D_f and kept close to it on D_r. Each epoch e <
// --max-steps starts with a max pass over D_f (minibatches of
// --forget-batch) minimising −T²·KL(softmax(t/T) ‖ softmax(s/T)); every
// epoch then makes a min pass over D_r minimising α·T²·KL(teacher ‖
// student) + γ·CE(student, y), α its --kd-weight and γ its --ce-weight.
// The T² factor is Hinton's distillation scaling, as in SCRUB's DistillKL;
// it keeps the gradient's size independent of T. Both passes draw their
// orders from the epoch's random source, D_f's first.

var scrubMethod = Method{
	Name:    "scrub",
	Summary: "SCRUB: max steps away from the original on the forget set, min steps towards it on the retain set",
	// The SCRUB authors' large-scale notebook: 3 epochs at 5e-4, retain
	// minibatches of 256, momentum 0.9, weight decay 5e-4.
	Defaults: func(h *Hyper) { h.Epochs, h.LR = 3, 5e-4 },
	Run: func(u *unlearner) error {
		teacher, err := u.Original()
		if err != nil {
			return fmt.Errorf("scrub: the teacher: %w", err)
		}
		return u.loop(func(e int, lr float64) (train.StepResult, error) { return u.scrubEpoch(teacher, e, lr) })
	},
}

// scrubEpoch is one SCRUB epoch; it reports the min pass.
func (u *unlearner) scrubEpoch(teacher *models.Model, e int, lr float64) (train.StepResult, error) {
	r := u.rng(e)
	if e < u.h.Int("max-steps") {
		fplans := u.plansOf("forget", u.Forget, u.h.Int("forget-batch"), r, u.aug)
		if _, err := u.run(fplans, nil, lr, u.scrubStep(teacher, -1, 0)); err != nil {
			return train.StepResult{}, err
		}
	}
	return u.pass("retain", r, u.Retain, nil, lr, u.scrubStep(teacher, u.h.Float("kd-weight"), u.h.Float("ce-weight")))
}

// scrubStep minimises kl·T²·KL(teacher ‖ student) + ce·CE(student, y),
// averaged over the minibatch.
func (u *unlearner) scrubStep(teacher *models.Model, kl, ce float64) stepFunc {
	return func(bt *train.Batch, lr float64) (train.StepResult, error) {
		b := u.B
		n := len(bt.Index)
		t := teacher.Net.Forward(&nn.Ctx{B: b}, bt.X)
		tl := b.Alloc(t.DType, t.Shape...)
		b.Copy(tl, t)
		s := u.Model.Net.Forward(u.ctx, bt.X)
		dl := b.Zeros(s.DType, s.Shape...)
		res := softTargetStep(b, s, tl, bt, u.h.Float("temperature"), kl, dl)
		if ce != 0 {
			g := b.Alloc(s.DType, s.Shape...)
			b.SoftmaxCrossEntropy(engine.LossArgs{Logits: s, Labels: bt.Y, Scale: ce / float64(n), DLogits: g})
			b.Axpy(1, g, dl)
			b.Free(g)
		}
		if dx := u.Model.Net.Backward(u.ctx, dl); dx != nil {
			b.Free(dx)
		}
		b.Free(dl)
		b.Free(tl)
		u.opt.Step(b, lr)
		nn.ZeroGrad(b, u.opt.Params())
		return res, nil
	}
}

// softTargetStep adds to dl the gradient with respect to the student's
// logits s of w·T²·KL(softmax(t/T) ‖ softmax(s/T)), averaged over the
// rows: w·T·(softmax(s/T) − softmax(t/T))/n. It is composed from the
// cross-entropy op: with the same (arbitrary) labels, the difference of
// the two gradients at s/T and t/T is the difference of the two softmaxes.
// It returns the rows' summed KL (times T², as reported loss) and the
// student's top-1 hits.
func softTargetStep(b engine.Backend, s, t *engine.Tensor, bt *train.Batch, temp, w float64, dl *engine.Tensor) train.StepResult {
	n := s.Shape[0]
	st, tt := b.Alloc(s.DType, s.Shape...), b.Alloc(t.DType, t.Shape...)
	b.Copy(st, s)
	b.Scale(st, 1/temp)
	b.Copy(tt, t)
	b.Scale(tt, 1/temp)
	res := klSummary(b, st, tt, bt, temp)
	if w != 0 {
		anyLabel := b.Zeros(engine.Int32, n)
		g := b.Alloc(s.DType, s.Shape...)
		b.SoftmaxCrossEntropy(engine.LossArgs{Logits: st, Labels: anyLabel, Scale: w * temp / float64(n), DLogits: g})
		b.Axpy(1, g, dl)
		b.SoftmaxCrossEntropy(engine.LossArgs{Logits: tt, Labels: anyLabel, Scale: w * temp / float64(n), DLogits: g})
		b.Axpy(-1, g, dl)
		b.Free(g)
		b.Free(anyLabel)
	}
	b.Free(st)
	b.Free(tt)
	return res
}

// klSummary computes T²·KL(softmax(t) ‖ softmax(s)) summed over the rows of
// the tempered logits, and the student's top-1 hits, on the host.
func klSummary(b engine.Backend, s, t *engine.Tensor, bt *train.Batch, temp float64) train.StepResult {
	n, k := s.Shape[0], s.Shape[1]
	sv, tv, y := make([]float32, n*k), make([]float32, n*k), make([]int32, n)
	b.Download(s, sv)
	b.Download(t, tv)
	b.Download(bt.Y, y)
	res := train.StepResult{N: n}
	for i := 0; i < n; i++ {
		ls, lt := logSoftmax(sv[i*k:(i+1)*k]), logSoftmax(tv[i*k:(i+1)*k])
		best := 0
		for j := range ls {
			res.Loss += temp * temp * math.Exp(lt[j]) * (lt[j] - ls[j])
			if ls[j] > ls[best] {
				best = j
			}
		}
		if int32(best) == y[i] {
			res.Correct++
		}
	}
	return res
}

func logSoftmax(z []float32) []float64 {
	mx := float64(z[0])
	for _, v := range z {
		mx = math.Max(mx, float64(v))
	}
	var sum float64
	for _, v := range z {
		sum += math.Exp(float64(v) - mx)
	}
	out := make([]float64, len(z))
	for j, v := range z {
		out[j] = float64(v) - mx - math.Log(sum)
	}
	return out
}
