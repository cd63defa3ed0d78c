package cpu

import "github.com/qmulgpu/qmulgpu/engine"

// gemm dispatches to sgemm or dgemm.
func gemm[T float](ta, tb bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch cs := any(c).(type) {
	case []float32:
		sgemm(ta, tb, m, n, k, float32(alpha), any(a).([]float32), lda, any(b).([]float32), ldb, float32(beta), cs, ldc)
	case []float64:
		dgemm(ta, tb, m, n, k, float64(alpha), any(a).([]float64), lda, any(b).([]float64), ldb, float64(beta), cs, ldc)
	}
}

// gemmArgs are the operands of Gemm.
type gemmArgs struct {
	ta, tb      bool
	m, n, k     int
	alpha, beta float64
	a, b, c     *engine.Tensor
}

// Gemm implements engine.Backend. Large products are split by rows of c
// across goroutines.
func (b *Backend) Gemm(ta, tb bool, m, n, k int, alpha float64, a, bm *engine.Tensor, beta float64, c *engine.Tensor) {
	must(engine.CheckGemm(m, n, k, a, bm, c))
	dispatch(b, opLinear, c.DType, gemmArgs{ta: ta, tb: tb, m: m, n: n, k: k, alpha: alpha, beta: beta, a: a, b: bm, c: c},
		gemmRows[float32], gemmRows[float64])
}

func gemmRows[T float](b *Backend, g gemmArgs) {
	ta, tb, m, n, k := g.ta, g.tb, g.m, g.n, g.k
	alpha, beta, a, bm, c := T(g.alpha), T(g.beta), floats[T](g.a), floats[T](g.b), floats[T](g.c)
	lda, ldb := k, n
	if ta {
		lda = m
	}
	if tb {
		ldb = k
	}
	// Rows of op(a) are rows of a, or columns of a when transposed.
	minRows := max(1, (1<<20)/max(1, n*k))
	b.parallel(m, minRows, func(_, lo, hi int) {
		off := lo * lda
		if ta {
			off = lo
		}
		gemm(ta, tb, hi-lo, n, k, alpha, a[off:], lda, bm, ldb, beta, c[lo*n:], n)
	})
}

// AddBias implements engine.Backend.
func (b *Backend) AddBias(y, bias *engine.Tensor) {
	must(engine.CheckBias("add bias", y, bias))
	dispatch(b, opLinear, y.DType, vectorArgs{y: y, x: bias}, addBias[float32], addBias[float64])
}

// addBias adds the bias x to every row of y.
func addBias[T float](b *Backend, v vectorArgs) {
	y, bias := floats[T](v.y), floats[T](v.x)
	n := len(bias)
	b.parallel(len(y)/n, max(1, minElems/n), func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			row := y[r*n : (r+1)*n]
			for j := range row {
				row[j] += bias[j]
			}
		}
	})
}

// BiasGrad implements engine.Backend.
func (b *Backend) BiasGrad(dy, db *engine.Tensor) {
	must(engine.CheckBias("bias grad", dy, db))
	dispatch(b, opLinear, dy.DType, vectorArgs{x: dy, y: db}, biasGrad[float32], biasGrad[float64])
}

// biasGrad adds the column sums of x to y.
func biasGrad[T float](b *Backend, v vectorArgs) {
	dy, db := floats[T](v.x), floats[T](v.y)
	n := len(db)
	sums := columnSums(b, dy, n, nil)
	for j := range db {
		db[j] += T(sums[j])
	}
}
