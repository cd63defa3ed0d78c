//go:build cuda

package cuda

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
)

// AddSign implements engine.Backend.
func (b *Backend) AddSign(a float64, x, y *engine.Tensor) {
	checkFloat("add sign", x, y)
	n := x.Numel()
	checkNumel("add sign", y, n, "y")
	if b.err != nil {
		return
	}
	b.launchN("AddSign", n, qmAddSignF32(b.f32(x), b.f32(y), int64(n), float32(a)))
}

// AddSqrt implements engine.Backend.
func (b *Backend) AddSqrt(dst, src *engine.Tensor) {
	checkFloat("add sqrt", dst, src)
	n := dst.Numel()
	checkNumel("add sqrt", src, n, "src")
	if b.err != nil {
		return
	}
	b.launchN("AddSqrt", n, qmAddSqrtF32(b.f32(dst), b.f32(src), int64(n)))
}

// SoftmaxEntropy implements engine.Backend: one warp per row, sums in
// double precision.
func (b *Backend) SoftmaxEntropy(a engine.LossArgs) {
	checkFloat("softmax entropy", a.Logits, a.Weights, a.DLogits, a.Entropy)
	n, k := a.Logits.Rows(), a.Logits.Cols()
	for _, t := range []*engine.Tensor{a.Weights, a.Entropy} {
		if t != nil {
			checkNumel("softmax entropy", t, n, "a per-sample operand")
		}
	}
	if a.DLogits != nil {
		checkNumel("softmax entropy", a.DLogits, n*k, "dlogits")
	}
	if n == 0 || k == 0 || b.err != nil {
		return
	}
	b.launchRows("SoftmaxEntropy", n, qmSoftmaxEntropyF32(b.f32(a.Logits), b.f32(a.Weights), int64(n), narrow(k),
		a.Scale, b.f32(a.DLogits), b.f32(a.Entropy)))
}

// SimilarLabels implements engine.Backend: one warp per row. A label out
// of range is reported by Err.
func (b *Backend) SimilarLabels(logits, labels, out *engine.Tensor) {
	checkFloat("similar labels", logits)
	n, k := logits.Rows(), logits.Cols()
	if labels.DType != engine.Int32 || out.DType != engine.Int32 || (n > 0 && k == 0) {
		panic(fmt.Sprintf("cuda: similar labels of %v with labels %v into %v", logits, labels, out))
	}
	checkNumel("similar labels", labels, n, "labels")
	checkNumel("similar labels", out, n, "out")
	if n == 0 || b.err != nil {
		return
	}
	b.launchRows("SimilarLabels", n, qmSimilarLabelsF32(b.f32(logits), b.i32(labels), int64(n), narrow(k),
		b.i32(out), b.statusWord()))
}
