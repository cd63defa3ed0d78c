//go:build cuda

package cuda

import "github.com/qmulgpu/qmulgpu/engine"

// AddSign implements engine.Backend.
func (b *Backend) AddSign(a float64, x, y *engine.Tensor) {
	must(engine.CheckLike("add sign", "y", y, x))
	checkFloat("add sign", x, y)
	n := x.Numel()
	if b.err != nil {
		return
	}
	b.launchN("AddSign", n, qmAddSignF32(b.f32(x), b.f32(y), int64(n), float32(a)))
}

// AddSqrt implements engine.Backend.
func (b *Backend) AddSqrt(dst, src *engine.Tensor) {
	must(engine.CheckLike("add sqrt", "src", src, dst))
	checkFloat("add sqrt", dst, src)
	n := dst.Numel()
	if b.err != nil {
		return
	}
	b.launchN("AddSqrt", n, qmAddSqrtF32(b.f32(dst), b.f32(src), int64(n)))
}

// SoftmaxEntropy implements engine.Backend: one warp per row, sums in
// double precision.
func (b *Backend) SoftmaxEntropy(a engine.LossArgs) {
	must(engine.CheckSoftmaxEntropy(a))
	checkFloat("softmax entropy", a.Logits, a.Weights, a.DLogits, a.Entropy)
	n, k := a.Logits.Rows(), a.Logits.Cols()
	if n == 0 || k == 0 || b.err != nil {
		return
	}
	b.launchRows("SoftmaxEntropy", n, qmSoftmaxEntropyF32(b.f32(a.Logits), b.f32(a.Weights), int64(n), narrow(k),
		a.Scale, b.f32(a.DLogits), b.f32(a.Entropy)))
}

// SimilarLabels implements engine.Backend: one warp per row. A label out
// of range is reported by Err.
func (b *Backend) SimilarLabels(logits, labels, out *engine.Tensor) {
	must(engine.CheckSimilarLabels(logits, labels, out))
	checkFloat("similar labels", logits)
	n, k := logits.Rows(), logits.Cols()
	if n == 0 || b.err != nil {
		return
	}
	b.launchRows("SimilarLabels", n, qmSimilarLabelsF32(b.f32(logits), b.i32(labels), int64(n), narrow(k),
		b.i32(out), b.statusWord()))
}
