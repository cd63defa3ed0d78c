// Package optest holds calls that break an op's preconditions, for the
// tests of every backend: each must reject them with the error of the
// engine's Check functions (see engine/check.go), whatever runs it.
package optest

import (
	"fmt"
	"strings"

	"github.com/qmulgpu/qmulgpu/engine"
)

// Rejection is one call that breaks an op's preconditions.
type Rejection struct {
	// Name names the case.
	Name string
	// Want is a part of the error the call must panic with.
	Want string
	// Call makes the call on b with operands allocated there.
	Call func(b engine.Backend)
}

// Rejected runs r's call on b and returns the error it panicked with,
// without the backend's prefix (its name and ": "), or an error saying why
// that is not the rejection r wants.
func Rejected(b engine.Backend, r Rejection) (msg string, err error) {
	defer func() {
		v := recover()
		if v == nil {
			err = fmt.Errorf("%s on %s: no panic, want %q", r.Name, b.Name(), r.Want)
			return
		}
		s := fmt.Sprint(v)
		prefix := strings.SplitN(b.Name(), ":", 2)[0] + ": "
		msg, _ = strings.CutPrefix(s, prefix)
		switch {
		case msg == s:
			err = fmt.Errorf("%s on %s: panic %q lacks the prefix %q", r.Name, b.Name(), s, prefix)
		case !strings.Contains(msg, r.Want):
			err = fmt.Errorf("%s on %s: panic %q, want one containing %q", r.Name, b.Name(), s, r.Want)
		}
	}()
	r.Call(b)
	return "", nil
}

// f32 and i32 allocate zero tensors.
func f32(b engine.Backend, shape ...int) *engine.Tensor { return b.Zeros(engine.Float32, shape...) }
func i32(b engine.Backend, shape ...int) *engine.Tensor { return b.Zeros(engine.Int32, shape...) }

// conv is a 3×3 convolution of one 4×4 image of 2 channels into 3.
var conv = engine.ConvGeom{N: 1, H: 4, W: 4, C: 2, K: 3, R: 3, S: 3, Stride: 1, Pad: 0, Groups: 1}

// pool is a 2×2 max pooling of one 4×4 image of 3 channels.
var pool = engine.PoolGeom{N: 1, H: 4, W: 4, C: 3, Kernel: 2, Stride: 2}

// bn returns complete BatchNorm operands of 4 rows of 3 channels.
func bn(b engine.Backend) engine.BatchNormArgs {
	return engine.BatchNormArgs{X: f32(b, 4, 3), Y: f32(b, 4, 3), DY: f32(b, 4, 3), DX: f32(b, 4, 3),
		Gamma: f32(b, 3), Beta: f32(b, 3), DGamma: f32(b, 3), DBeta: f32(b, 3),
		RunMean: f32(b, 3), RunVar: f32(b, 3), Mean: f32(b, 3), InvStd: f32(b, 3), Train: true, Eps: 1e-5}
}

// fq returns FakeQuant operands of 4 channels of 3 elements.
func fq(b engine.Backend) engine.FakeQuantArgs {
	return engine.FakeQuantArgs{X: f32(b, 4, 3), Y: f32(b, 4, 3), DY: f32(b, 4, 3), DX: f32(b, 4, 3),
		Scale: f32(b, 4), DScale: f32(b, 4), ScaleMul: 1, Lo: -8, Hi: 7}
}

// Rejections lists calls of every op family that break its preconditions.
func Rejections() []Rejection {
	var rs []Rejection
	for _, f := range []func() []Rejection{layerRejections, mathRejections, trainingRejections,
		quantRejections, unlearnRejections} {
		rs = append(rs, f()...)
	}
	return rs
}

func layerRejections() []Rejection {
	return []Rejection{
		{"conv/weights", "conv: w is F32[3,3,3,3], want 54 elements", func(b engine.Backend) {
			b.Conv2d(f32(b, 1, 4, 4, 2), f32(b, 3, 3, 3, 3), f32(b, 1, 2, 2, 3), conv)
		}},
		{"conv/geometry", "conv: conv geometry", func(b engine.Backend) {
			g := conv
			g.Groups = 0
			b.Conv2d(f32(b, 1, 4, 4, 2), f32(b, 3, 3, 3, 2), f32(b, 1, 2, 2, 3), g)
		}},
		{"conv backward/dx", "conv backward: dx is F32[1,4,4,3], want 32 elements", func(b engine.Backend) {
			b.Conv2dBackward(f32(b, 1, 4, 4, 2), f32(b, 3, 3, 3, 2), f32(b, 1, 2, 2, 3), f32(b, 1, 4, 4, 3),
				f32(b, 3, 3, 3, 2), conv)
		}},
		{"pool/argmax", "pool: max pooling needs an Int32 argmax", func(b engine.Backend) {
			b.Pool2d(engine.MaxPool, f32(b, 1, 4, 4, 3), f32(b, 1, 2, 2, 3), nil, pool)
		}},
		{"pool backward/dy", "pool backward: the output is F32[1,3,3,3], want 12 elements", func(b engine.Backend) {
			b.Pool2dBackward(engine.AvgPool, f32(b, 1, 3, 3, 3), nil, f32(b, 1, 4, 4, 3), pool)
		}},
		{"global pool/rows", "global average pool of F32[2,2,2,3] and F32[3,3]", func(b engine.Backend) {
			b.GlobalAvgPool(f32(b, 2, 2, 2, 3), f32(b, 3, 3))
		}},
		{"batch norm/required", "batch norm of F32[4,3]: a required operand is nil", func(b engine.Backend) {
			a := bn(b)
			a.RunVar = nil
			b.BatchNorm(a)
		}},
		{"batch norm backward/dgamma", "batch norm backward: a per-channel operand is F32[4]", func(b engine.Backend) {
			a := bn(b)
			a.DGamma = f32(b, 4)
			b.BatchNormBackward(a)
		}},
		{"activate/slopes", "activate: PReLU slopes F32[5] for F32[4,3]", func(b engine.Backend) {
			b.Activate(engine.PReLU, f32(b, 4, 3), f32(b, 5), f32(b, 4, 3))
		}},
		{"activate/y", "activate: y is F32[4,4], want 12 F32 elements", func(b engine.Backend) {
			b.Activate(engine.ReLU, f32(b, 4, 3), nil, f32(b, 4, 4))
		}},
		{"activate backward/dx", "activate backward: dx is F32[11], want 12 F32 elements", func(b engine.Backend) {
			b.ActivateBackward(engine.ReLU6, f32(b, 4, 3), nil, f32(b, 4, 3), f32(b, 11), nil)
		}},
		{"loss/labels", "softmax cross-entropy: labels is I32[3], want 4 elements", func(b engine.Backend) {
			b.SoftmaxCrossEntropy(engine.LossArgs{Logits: f32(b, 4, 10), Labels: i32(b, 3), Scale: 1})
		}},
		{"loss/dlogits", "softmax cross-entropy: dlogits is F32[4,9], want 40 elements", func(b engine.Backend) {
			b.SoftmaxCrossEntropy(engine.LossArgs{Logits: f32(b, 4, 10), Labels: i32(b, 4), Scale: 1,
				DLogits: f32(b, 4, 9)})
		}},
	}
}

func mathRejections() []Rejection {
	return []Rejection{
		{"gemm/sizes", "gemm 2x3x4 with F32[2,4], F32[4,3], F32[2,2]", func(b engine.Backend) {
			b.Gemm(false, false, 2, 3, 4, 1, f32(b, 2, 4), f32(b, 4, 3), 0, f32(b, 2, 2))
		}},
		{"add bias/length", "add bias: bias F32[5] for F32[4,3]", func(b engine.Backend) {
			b.AddBias(f32(b, 4, 3), f32(b, 5))
		}},
		{"bias grad/length", "bias grad: bias F32[0] for F32[4,3]", func(b engine.Backend) {
			b.BiasGrad(f32(b, 4, 3), f32(b, 0))
		}},
		{"copy/size", "copy: src is F32[5], want 6 F32 elements", func(b engine.Backend) {
			b.Copy(f32(b, 2, 3), f32(b, 5))
		}},
		{"copy/type", "copy: src is I32[2,3], want 6 F32 elements", func(b engine.Backend) {
			b.Copy(f32(b, 2, 3), i32(b, 2, 3))
		}},
		{"axpy/y", "axpy: y is F32[7], want 6 F32 elements", func(b engine.Backend) {
			b.Axpy(2, f32(b, 6), f32(b, 7))
		}},
		{"add/b", "add: b is F32[5], want 6 F32 elements", func(b engine.Backend) {
			b.Add(f32(b, 6), f32(b, 6), f32(b, 5))
		}},
		{"gather/index", "gather F32[3,2] from F32[5,2] by I32[2]", func(b engine.Backend) {
			b.Gather(f32(b, 3, 2), f32(b, 5, 2), i32(b, 2))
		}},
		{"dot/pairs", "dot of 2 and 1 tensors", func(b engine.Backend) {
			b.Dot([]*engine.Tensor{f32(b, 3), f32(b, 3)}, []*engine.Tensor{f32(b, 3)}, f32(b, 2))
		}},
		{"dot/operand", "dot: an operand is F32[4], want 3 F32 elements", func(b engine.Backend) {
			b.Dot([]*engine.Tensor{f32(b, 3)}, []*engine.Tensor{f32(b, 4)}, f32(b, 1))
		}},
		{"sum of squares/out", "sum of squares: out is F32[1], want 2 elements", func(b engine.Backend) {
			b.SumSquares([]*engine.Tensor{f32(b, 3), f32(b, 4)}, f32(b, 1))
		}},
		{"row norm/out", "row norm: out is F32[3], want 4 elements", func(b engine.Backend) {
			b.RowSqNorm(f32(b, 4, 3), f32(b, 3))
		}},
	}
}

func trainingRejections() []Rejection {
	return []Rejection{
		{"sgd/grad", "sgd: an operand is F32[5], want 6 F32 elements", func(b engine.Backend) {
			b.SGD(engine.SGDArgs{Param: f32(b, 6), Grad: f32(b, 5), LR: 0.1})
		}},
		{"sgd/buffer", "sgd: an operand is F32[7], want 6 F32 elements", func(b engine.Backend) {
			b.SGD(engine.SGDArgs{Param: f32(b, 6), Grad: f32(b, 6), Buf: f32(b, 7), LR: 0.1, Momentum: 0.9})
		}},
		{"gather images/means", "gather images: 3 channels with 1 means and 3 deviations", func(b engine.Backend) {
			b.GatherImages(engine.GatherArgs{Src: b.Zeros(engine.Uint8, 5, 4, 4, 3), Index: i32(b, 2),
				Mean: []float32{0}, Std: []float32{1, 1, 1}, Out: f32(b, 2, 4, 4, 3)})
		}},
		{"gather images/crop", "gather images: crop is I32[2], want 4 elements", func(b engine.Backend) {
			b.GatherImages(engine.GatherArgs{Src: b.Zeros(engine.Uint8, 5, 4, 4, 1), Index: i32(b, 2),
				Crop: i32(b, 2), Mean: []float32{0}, Std: []float32{1}, Out: f32(b, 2, 4, 4, 1)})
		}},
	}
}

func quantRejections() []Rejection {
	return []Rejection{
		{"fake quant/channels", "fake quant of F32[4,3] with 5 channels", func(b engine.Backend) {
			a := fq(b)
			a.Scale = f32(b, 5)
			b.FakeQuant(a)
		}},
		{"fake quant backward/dx", "fake quant backward: dx is F32[4,4], want 12 elements", func(b engine.Backend) {
			a := fq(b)
			a.DX = f32(b, 4, 4)
			b.FakeQuantBackward(a)
		}},
		{"observe/required", "observe of F32[4,3]: a required operand is nil", func(b engine.Backend) {
			b.Observe(engine.ObserveArgs{X: f32(b, 4, 3), Min: f32(b, 4), Scale: f32(b, 4), ZeroPoint: f32(b, 4),
				Lo: -8, Hi: 7})
		}},
		{"DoReFa/bits", "DoReFa weights of F32[4,3] with 0 bits", func(b engine.Backend) {
			b.DoReFaWeights(engine.DoReFaArgs{W: f32(b, 4, 3), Y: f32(b, 4, 3)})
		}},
		{"DoReFa backward/dy", "DoReFa weights backward: dy is F32[3], want 12 elements", func(b engine.Backend) {
			b.DoReFaWeightsBackward(engine.DoReFaArgs{W: f32(b, 4, 3), DY: f32(b, 3), DW: f32(b, 4, 3), Bits: 2})
		}},
	}
}

func unlearnRejections() []Rejection {
	return []Rejection{
		{"similar labels/out", "similar labels: out is I32[3], want 4 elements", func(b engine.Backend) {
			b.SimilarLabels(f32(b, 4, 10), i32(b, 4), i32(b, 3))
		}},
		{"similar labels/labels", "similar labels of F32[4,10] with labels F32[4] into I32[4]", func(b engine.Backend) {
			b.SimilarLabels(f32(b, 4, 10), f32(b, 4), i32(b, 4))
		}},
		{"softmax entropy/weights", "softmax entropy: a per-sample operand is F32[5], want 4 elements", func(b engine.Backend) {
			b.SoftmaxEntropy(engine.LossArgs{Logits: f32(b, 4, 10), Weights: f32(b, 5), Scale: 1,
				Entropy: f32(b, 4)})
		}},
		{"add sign/y", "add sign: y is F32[5], want 6 F32 elements", func(b engine.Backend) {
			b.AddSign(0.1, f32(b, 6), f32(b, 5))
		}},
		{"add sqrt/src", "add sqrt: src is F32[7], want 6 F32 elements", func(b engine.Backend) {
			b.AddSqrt(f32(b, 6), f32(b, 7))
		}},
		{"per-sample norm/out", "per-sample norm: out is F32[2], want 1 elements", func(b engine.Backend) {
			b.ConvPerSampleSqNorm(f32(b, 1, 4, 4, 2), f32(b, 1, 2, 2, 3), f32(b, 2), conv)
		}},
		{"batch norm per-sample/samples", "batch norm per-sample norm of F32[4,3] with 3 channels and 3 samples",
			func(b engine.Backend) {
				b.BatchNormPerSampleSqNorm(bn(b), 3, f32(b, 3), f32(b, 3))
			}},
	}
}
