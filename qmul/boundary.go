package qmul

import (
	"math"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// Boundary Shrink (method.md section 4): each forget image is pushed across
// the nearest decision boundary of a frozen θ_o by one FGSM step taken in
// pixel space, x' = round(255·clamp(x + bound·sign(∇_x CE), 0, 1))/255, and
// the model is fine-tuned on D_f towards argmax f_θo(x').

var bsMethod = Method{
	Name:     "bs",
	Summary:  "Boundary Shrink: fine-tune the forget set towards the labels of its FGSM neighbours",
	Defaults: func(h *Hyper) { h.LR = 1e-5 },
	Run:      func(u *unlearner) error { return u.boundaryShrink() },
}

// boundaryShrink runs BS's epochs.
func (u *unlearner) boundaryShrink() error {
	frozen, err := u.Original()
	if err != nil {
		return err
	}
	frozen.SetInputGrad(true)
	fc := &nn.Ctx{B: u.B, Train: false}
	return u.loop(func(e int, lr float64) (train.StepResult, error) {
		return u.pass("forget", u.rng(e), u.Forget, nil, lr, func(bt *train.Batch, lr float64) (train.StepResult, error) {
			n := len(bt.Index)
			// The input gradient of CE under θ_o.
			logits := frozen.Net.Forward(fc, bt.X)
			dl := u.B.Alloc(engine.Float32, logits.Shape...)
			u.B.SoftmaxCrossEntropy(engine.LossArgs{Logits: logits, Labels: bt.Y, Scale: 1, DLogits: dl})
			dx := frozen.Net.Backward(fc, dl)
			u.B.Free(dl)
			adv := u.shrinkStep(bt.X, dx)
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

// shrinkStep returns the normalised images of x' = round(255·clamp(p +
// bound·sign(g), 0, 1))/255, where p are x's pixels in [0, 1] (the
// normalisation (p − mean_c)/std_c undone) and g the gradient with respect
// to the normalised input (its sign is that of the pixel gradient, the
// standard deviations being positive). It runs on the host: one download
// and upload per minibatch, small next to the two forward passes.
func (u *unlearner) shrinkStep(x, dx *engine.Tensor) *engine.Tensor {
	xv := make([]float32, x.Numel())
	gv := make([]float32, dx.Numel())
	u.B.Download(x, xv)
	u.B.Download(dx, gv)
	mean, std := u.Train.Mean, u.Train.Std
	bound := u.h.Float("bound")
	for i, v := range xv {
		m, s := 0.0, 1.0 // a data set without normalisation
		if c := len(mean); c > 0 {
			m, s = float64(mean[i%c]), float64(std[i%c])
		}
		p := float64(v)*s + m
		switch {
		case gv[i] > 0:
			p += bound
		case gv[i] < 0:
			p -= bound
		}
		p = math.Round(255*min(1, max(0, p))) / 255
		xv[i] = float32((p - m) / s)
	}
	adv := u.B.Alloc(engine.Float32, x.Shape...)
	u.B.Upload(adv, xv)
	return adv
}
