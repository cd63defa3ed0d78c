//go:build cuda

package cuda

import "github.com/qmulgpu/qmulgpu/engine"

// Gemm implements engine.Backend with cublasSgemm_v2 (TF32 tensor-op math
// unless switched off, see SetTF32).
func (b *Backend) Gemm(transA, transB bool, m, n, k int, alpha float64, a, bm *engine.Tensor, beta float64, c *engine.Tensor) {
	must(engine.CheckGemm(m, n, k, a, bm, c))
	checkFloat("gemm", a, bm, c)
	if b.err != nil {
		return
	}
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	// cuBLAS wants leading dimensions of at least 1 even for empty matrices.
	b.gemm("Gemm", gemmArgs{transA: transA, transB: transB, m: m, n: n, k: k, alpha: float32(alpha),
		a: b.f32(a), lda: max(1, lda), b: b.f32(bm), ldb: max(1, ldb), beta: float32(beta), c: b.f32(c), ldc: max(1, n)})
}

// AddBias implements engine.Backend.
func (b *Backend) AddBias(y, bias *engine.Tensor) {
	must(engine.CheckBias("add bias", y, bias))
	checkFloat("add bias", y, bias)
	cols := bias.Numel()
	rows := y.Numel() / cols
	if rows == 0 || b.err != nil {
		return
	}
	lanes := b.lanes(rows, cols)
	b.launchLanes("AddBias", cols, lanes, qmAddBiasF32(b.f32(y), b.f32(bias), int64(rows), narrow(cols), int32(lanes)))
}

// BiasGrad implements engine.Backend: a column reduction in double
// precision (qm_colsum_partial, then qm_bias_grad_final per column).
func (b *Backend) BiasGrad(dy, db *engine.Tensor) {
	must(engine.CheckBias("bias grad", dy, db))
	checkFloat("bias grad", dy, db)
	cols := db.Numel()
	if b.err != nil {
		return
	}
	rows := dy.Numel() / cols
	partial, lanes, ok := b.columnSums("BiasGrad", dy, nil, rows, cols)
	if !ok {
		return
	}
	defer b.release(partial)
	b.launchBlocks("BiasGrad", cols, qmBiasGradFinal(dptr[float64](partial.ptr), narrow(cols), int32(lanes), b.f32(db)))
}
