//go:build cuda

package cuda

/*
#include "binding.h"

static cublasStatus_t qm_cublasCreate(void* set, CUcontext ctx, void* fn, cublasHandle_t* h) {
	QM_SET_CURRENT(set, ctx);
	return ((cublasStatus_t (*)(cublasHandle_t*))fn)(h);
}

static cublasStatus_t qm_cublasDestroy(void* set, CUcontext ctx, void* fn, cublasHandle_t h) {
	QM_SET_CURRENT(set, ctx);
	return ((cublasStatus_t (*)(cublasHandle_t))fn)(h);
}

static cublasStatus_t qm_cublasSetStream(void* set, CUcontext ctx, void* fn, cublasHandle_t h, CUstream s) {
	QM_SET_CURRENT(set, ctx);
	return ((cublasStatus_t (*)(cublasHandle_t, CUstream))fn)(h, s);
}

static cublasStatus_t qm_cublasSetMathMode(void* set, CUcontext ctx, void* fn, cublasHandle_t h, int mode) {
	QM_SET_CURRENT(set, ctx);
	return ((cublasStatus_t (*)(cublasHandle_t, int))fn)(h, mode);
}

// qm_cublasSgemm is column-major: C = alpha·op(A)·op(B) + beta·C with
// op(A) m×k, op(B) k×n, C m×n; opA/opB are CUBLAS_OP_N (0) or CUBLAS_OP_T
// (1). alpha and beta live on the host (the default pointer mode).
static cublasStatus_t qm_cublasSgemm(void* set, CUcontext ctx, void* fn, cublasHandle_t h,
		int opA, int opB, int m, int n, int k, float alpha, CUdeviceptr a, int lda,
		CUdeviceptr b, int ldb, float beta, CUdeviceptr c, int ldc) {
	QM_SET_CURRENT(set, ctx);
	return ((cublasStatus_t (*)(cublasHandle_t, int, int, int, int, int, const float*, const float*, int,
		const float*, int, const float*, float*, int))fn)(h, opA, opB, m, n, k, &alpha,
		(const float*)(uintptr_t)a, lda, (const float*)(uintptr_t)b, ldb, &beta, (float*)(uintptr_t)c, ldc);
}

// qm_cublasSgemmStridedBatched is qm_cublasSgemm for batch products, the
// i-th reading A + i·strideA and B + i·strideB and writing C + i·strideC
// (strides in elements).
static cublasStatus_t qm_cublasSgemmStridedBatched(void* set, CUcontext ctx, void* fn, cublasHandle_t h,
		int opA, int opB, int m, int n, int k, float alpha, CUdeviceptr a, int lda, long long strideA,
		CUdeviceptr b, int ldb, long long strideB, float beta, CUdeviceptr c, int ldc, long long strideC,
		int batch) {
	QM_SET_CURRENT(set, ctx);
	return ((cublasStatus_t (*)(cublasHandle_t, int, int, int, int, int, const float*, const float*, int,
		long long, const float*, int, long long, const float*, float*, int, long long, int))fn)(h, opA, opB,
		m, n, k, &alpha, (const float*)(uintptr_t)a, lda, strideA, (const float*)(uintptr_t)b, ldb, strideB,
		&beta, (float*)(uintptr_t)c, ldc, strideC, batch);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"
)

// cublasLibraries are the cuBLAS libraries tried, newest first: the
// sonames through the loader's search path, then the CUDA toolkit's
// default install directories.
var cublasLibraries = []string{
	"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so",
	"/usr/local/cuda/lib64/libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.12",
	"/usr/local/cuda/lib64/libcublas.so.11", "/usr/local/cuda/lib64/libcublas.so",
}

// cuBLAS math modes (cublasMath_t).
const (
	cublasDefaultMath = 0
	cublasTF32Math    = 3 // CUBLAS_TF32_TENSOR_OP_MATH
)

// cublasStatusNames names the cublasStatus_t codes.
var cublasStatusNames = map[int]string{
	1:  "CUBLAS_STATUS_NOT_INITIALIZED",
	3:  "CUBLAS_STATUS_ALLOC_FAILED",
	7:  "CUBLAS_STATUS_INVALID_VALUE",
	8:  "CUBLAS_STATUS_ARCH_MISMATCH",
	11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR",
	15: "CUBLAS_STATUS_NOT_SUPPORTED",
	16: "CUBLAS_STATUS_LICENSE_ERROR",
}

// cublas is the cuBLAS library, opened with dlopen, and its entry points.
type cublas struct {
	path string
	lib  unsafe.Pointer

	create       unsafe.Pointer
	destroy      unsafe.Pointer
	setStream    unsafe.Pointer
	setMathMode  unsafe.Pointer
	sgemm        unsafe.Pointer
	sgemmStrided unsafe.Pointer
}

// loadCublas opens the first library of paths that loads and resolves its
// entry points.
func loadCublas(paths []string) (*cublas, error) {
	var errs []string
	for _, path := range paths {
		lib, err := dlopen(path, "cuBLAS library")
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		l := &cublas{path: path, lib: lib}
		syms := []symbol{
			{&l.create, []string{"cublasCreate_v2"}},
			{&l.destroy, []string{"cublasDestroy_v2"}},
			{&l.setStream, []string{"cublasSetStream_v2"}},
			{&l.setMathMode, []string{"cublasSetMathMode"}},
			{&l.sgemm, []string{"cublasSgemm_v2"}},
			{&l.sgemmStrided, []string{"cublasSgemmStridedBatched"}},
		}
		if err := resolve(lib, path, syms); err != nil {
			dlclose(lib)
			errs = append(errs, err.Error())
			continue
		}
		return l, nil
	}
	return nil, fmt.Errorf("no usable cuBLAS library (install the CUDA toolkit's libcublas, or set QMUL_CUBLAS to its path): %s",
		strings.Join(errs, "; "))
}

// theCublas is the process's cuBLAS library, loaded once. QMUL_CUBLAS,
// when set, is the only path tried.
var theCublas = sync.OnceValues(func() (*cublas, error) {
	if p := os.Getenv("QMUL_CUBLAS"); p != "" {
		return loadCublas([]string{p})
	}
	return loadCublas(cublasLibraries)
})

// checkBlas turns a cuBLAS status into an *Error naming the call (or the
// cuCtxSetCurrent before it, reported by d); nil means success.
func checkBlas(d *driver, r C.cublasStatus_t, format string, args ...any) error {
	return checkBlasCode(d, int(r), format, args...)
}

// checkBlasCode is checkBlas for a status held in an int.
func checkBlasCode(d *driver, code int, format string, args ...any) error {
	if code == 0 {
		return nil
	}
	if code&failedSetCurrent != 0 {
		return d.checkCode(code, format, args...)
	}
	name, ok := cublasStatusNames[code]
	if !ok {
		name = fmt.Sprintf("CUBLAS_STATUS_%d", code)
	}
	return &Error{Call: fmt.Sprintf(format, args...), Code: code, Name: name, Text: "cuBLAS call failed"}
}

// blasHandle is a cuBLAS handle bound to one context and stream.
type blasHandle struct {
	lib *cublas
	drv *driver
	ctx C.CUcontext
	h   C.cublasHandle_t
}

// newBlasHandle creates a handle in ctx that runs on stream s with TF32
// tensor-op math on or off.
func newBlasHandle(lib *cublas, drv *driver, ctx C.CUcontext, s C.CUstream, tf32 bool) (*blasHandle, error) {
	b := &blasHandle{lib: lib, drv: drv, ctx: ctx}
	if err := checkBlas(drv, C.qm_cublasCreate(drv.cuCtxSetCurrent, ctx, lib.create, &b.h), "cublasCreate_v2 (%s)", lib.path); err != nil {
		return nil, err
	}
	err := checkBlas(drv, C.qm_cublasSetStream(drv.cuCtxSetCurrent, ctx, lib.setStream, b.h, s), "cublasSetStream_v2")
	if err == nil {
		err = b.setTF32(tf32)
	}
	if err != nil {
		return nil, errors.Join(err, b.destroy())
	}
	return b, nil
}

// setTF32 switches TF32 tensor-op math on or off.
func (b *blasHandle) setTF32(on bool) error {
	mode := cublasDefaultMath
	if on {
		mode = cublasTF32Math
	}
	return checkBlas(b.drv, C.qm_cublasSetMathMode(b.drv.cuCtxSetCurrent, b.ctx, b.lib.setMathMode, b.h, C.int(mode)),
		"cublasSetMathMode(%d)", mode)
}

func (b *blasHandle) destroy() error {
	return checkBlas(b.drv, C.qm_cublasDestroy(b.drv.cuCtxSetCurrent, b.ctx, b.lib.destroy, b.h), "cublasDestroy_v2")
}

// gemm computes the row-major product (or products, when g.batch > 1) of
// g. A row-major matrix is the column-major matrix of its transpose, so
// row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: cuBLAS gets
// B before A, n before m, and the same transposition flags, leading
// dimensions and strides.
func (b *blasHandle) gemm(g gemmArgs) error {
	op := func(t bool) C.int {
		if t {
			return 1 // CUBLAS_OP_T
		}
		return 0 // CUBLAS_OP_N
	}
	if g.batch > 1 {
		r := C.qm_cublasSgemmStridedBatched(b.drv.cuCtxSetCurrent, b.ctx, b.lib.sgemmStrided, b.h, op(g.transB), op(g.transA),
			C.int(g.n), C.int(g.m), C.int(g.k), C.float(g.alpha), C.CUdeviceptr(g.b), C.int(g.ldb), C.longlong(g.strideB),
			C.CUdeviceptr(g.a), C.int(g.lda), C.longlong(g.strideA), C.float(g.beta), C.CUdeviceptr(g.c), C.int(g.ldc),
			C.longlong(g.strideC), C.int(g.batch))
		return checkBlas(b.drv, r, "cublasSgemmStridedBatched(%v)", g)
	}
	r := C.qm_cublasSgemm(b.drv.cuCtxSetCurrent, b.ctx, b.lib.sgemm, b.h, op(g.transB), op(g.transA),
		C.int(g.n), C.int(g.m), C.int(g.k), C.float(g.alpha), C.CUdeviceptr(g.b), C.int(g.ldb),
		C.CUdeviceptr(g.a), C.int(g.lda), C.float(g.beta), C.CUdeviceptr(g.c), C.int(g.ldc))
	return checkBlas(b.drv, r, "cublasSgemm_v2(%v)", g)
}
