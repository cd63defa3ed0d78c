package qmul

import (
	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// OEU (method.md section 4, experimental): maximise the prediction entropy
// on D_f, with the forget gradient projected onto the orthogonal complement
// of the retain gradient, g_f ← g_f − (g_f·g_r/‖g_r‖²)·g_r, and the step
// taken along g_f + g_r. Each retain minibatch is paired with the next
// forget minibatch (cycling through D_f); both orders are drawn from the
// epoch's random source, D_f's first.

var oeuMethod = Method{
	Name:    "oeu",
	Summary: "experimental: forget-set entropy ascent projected orthogonally to the retain gradient",
	Run:     func(u *unlearner) error { return u.loop(u.oeuEpoch) },
}

// oeuEpoch is one epoch of OEU.
func (u *unlearner) oeuEpoch(e int, lr float64) (train.StepResult, error) {
	r := u.rng(e)
	fplans := u.plans("forget", u.Forget, r)
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
	return u.pass("retain", r, u.Retain, nil, lr, func(bt *train.Batch, lr float64) (train.StepResult, error) {
		fb := u.Train.Load(u.B, fplans[next%len(fplans)], u.aug, nil)
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
