//go:build cuda

package cuda

import "github.com/qmulgpu/qmulgpu/engine"

// SoftmaxCrossEntropy implements engine.Backend: one warp per row, sums in
// double precision. A label out of range is reported by Err.
func (b *Backend) SoftmaxCrossEntropy(a engine.LossArgs) {
	must(engine.CheckSoftmaxCrossEntropy(a))
	checkFloat("softmax cross-entropy", a.Logits, a.Weights, a.DLogits, a.Loss, a.Conf, a.Entropy)
	n, k := a.Logits.Rows(), a.Logits.Cols()
	if n == 0 || b.err != nil {
		return
	}
	b.launchRows("SoftmaxCrossEntropy", n, qmSoftmaxXentF32(
		b.f32(a.Logits), b.i32(a.Labels), b.f32(a.Weights), int64(n), narrow(k), a.Scale,
		b.f32(a.DLogits), b.f32(a.Loss), b.i32(a.Pred), b.f32(a.Conf), b.f32(a.Entropy), b.statusWord()))
}

// launchRows launches a one-warp-per-row kernel over n rows.
func (b *Backend) launchRows(op string, n int, c kernelCall) {
	warpsPerBlock := blockSize / 32
	blocks := min((n+warpsPerBlock-1)/warpsPerBlock, b.maxBlocks)
	b.launch(op, dim3{uint32(blocks), 1, 1}, dim3{blockSize, 1, 1}, c)
}
