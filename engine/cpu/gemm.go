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

// Gemm implements engine.Backend. Large products are split by rows of c
// across goroutines.
func (b *Backend) Gemm(ta, tb bool, m, n, k int, alpha float64, a, bm *engine.Tensor, beta float64, c *engine.Tensor) {
	must(engine.CheckGemm(m, n, k, a, bm, c))
	if c.DType == engine.Float32 {
		gemmRows(b, ta, tb, m, n, k, float32(alpha), F32(a), F32(bm), float32(beta), F32(c))
	} else {
		gemmRows(b, ta, tb, m, n, k, alpha, F64(a), F64(bm), beta, F64(c))
	}
}

func gemmRows[T float](b *Backend, ta, tb bool, m, n, k int, alpha T, a, bm []T, beta T, c []T) {
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
	if y.DType == engine.Float32 {
		addBias(b, F32(y), F32(bias))
	} else {
		addBias(b, F64(y), F64(bias))
	}
}

func addBias[T float](b *Backend, y, bias []T) {
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
	if dy.DType == engine.Float32 {
		biasGrad(b, F32(dy), F32(db))
	} else {
		biasGrad(b, F64(dy), F64(db))
	}
}

func biasGrad[T float](b *Backend, dy, db []T) {
	n := len(db)
	sums := columnSums(b, dy, n, nil)
	for j := range db {
		db[j] += T(sums[j])
	}
}
