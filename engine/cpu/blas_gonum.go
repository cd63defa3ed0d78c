//go:build purego

package cpu

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

var impl gonum.Implementation

func gonumTrans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// sgemm computes c = alpha·op(a)·op(b) + beta·c on row-major matrices.
func sgemm(ta, tb bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleRows(c, m, n, ldc, beta)
		return
	}
	impl.Sgemm(gonumTrans(ta), gonumTrans(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// dgemm is sgemm in float64.
func dgemm(ta, tb bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleRows(c, m, n, ldc, beta)
		return
	}
	impl.Dgemm(gonumTrans(ta), gonumTrans(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// BLASName names the BLAS implementation in use.
func BLASName() string { return "gonum (pure Go)" }
