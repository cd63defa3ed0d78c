//go:build !purego

package cpu

/*
#cgo LDFLAGS: -lopenblas
#include <stdlib.h>

void cblas_sgemm(int order, int transa, int transb, int m, int n, int k,
                 float alpha, const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc);
void cblas_dgemm(int order, int transa, int transb, int m, int n, int k,
                 double alpha, const double *a, int lda, const double *b, int ldb,
                 double beta, double *c, int ldc);
void openblas_set_num_threads(int n);
char *openblas_get_corename(void);
char *openblas_get_config(void);

static void qmul_blas_init(void) { openblas_set_num_threads(1); }
*/
import "C"

import (
	"strings"
	"unsafe"
)

// The backend parallelises across the batch itself, so every BLAS call runs
// single-threaded in the calling goroutine's thread.
func init() { C.qmul_blas_init() }

const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

func trans(t bool) C.int {
	if t {
		return cblasTrans
	}
	return cblasNoTrans
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
	C.cblas_sgemm(cblasRowMajor, trans(ta), trans(tb), C.int(m), C.int(n), C.int(k),
		C.float(alpha), (*C.float)(unsafe.Pointer(&a[0])), C.int(lda),
		(*C.float)(unsafe.Pointer(&b[0])), C.int(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.int(ldc))
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
	C.cblas_dgemm(cblasRowMajor, trans(ta), trans(tb), C.int(m), C.int(n), C.int(k),
		C.double(alpha), (*C.double)(unsafe.Pointer(&a[0])), C.int(lda),
		(*C.double)(unsafe.Pointer(&b[0])), C.int(ldb),
		C.double(beta), (*C.double)(unsafe.Pointer(&c[0])), C.int(ldc))
}

// BLASName names the BLAS library and the kernel set it selected.
func BLASName() string {
	core := C.GoString(C.openblas_get_corename())
	cfg := strings.Fields(C.GoString(C.openblas_get_config()))
	version := "OpenBLAS"
	if len(cfg) >= 2 {
		version = cfg[0] + " " + cfg[1]
	}
	return version + " (" + core + " kernels)"
}
