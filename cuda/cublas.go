//go:build cuda

package cuda

/*
#include "binding.h"

static cublasStatus_t qm_cublasGetProperty(void* fn, int type, int* v) {
	return ((cublasStatus_t (*)(int, int*))fn)(type, v);
}

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
	"strings"
	"unsafe"

	"github.com/qmulgpu/qmulgpu/cuda/libsearch"
)

// cublasSonames are the cuBLAS versions tried, newest first. Each needs
// cuBLASLt of its own version, opened first from the same folder.
var cublasSonames = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11"}

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
	lib *library

	create       unsafe.Pointer
	destroy      unsafe.Pointer
	setStream    unsafe.Pointer
	setMathMode  unsafe.Pointer
	sgemm        unsafe.Pointer
	sgemmStrided unsafe.Pointer
	getProperty  unsafe.Pointer // optional: cublasGetProperty
}

// openCublas opens one candidate (cuBLASLt from its folder first) and
// resolves its entry points. driverMajor is the newest CUDA major version
// the driver runs (0: not checked): cuBLAS N needs a driver for CUDA N.
func openCublas(c libsearch.Candidate, driverMajor int) (*cublas, error) {
	major := libsearch.Major(c.Path)
	lt := "libcublasLt.so*"
	if major > 0 {
		lt = fmt.Sprintf("libcublasLt.so.%d", major)
	}
	lib, err := openLibrary("cuBLAS", c, "cuBLASLt", lt)
	if err != nil {
		return nil, err
	}
	if major > 0 && driverMajor > 0 && major > driverMajor {
		lib.close()
		return nil, fmt.Errorf("cuBLAS %d needs a driver for CUDA %d, this one runs CUDA %d at most", major, major, driverMajor)
	}
	l := &cublas{lib: lib}
	syms := []symbol{
		{dst: &l.create, names: []string{"cublasCreate_v2"}},
		{dst: &l.destroy, names: []string{"cublasDestroy_v2"}},
		{dst: &l.setStream, names: []string{"cublasSetStream_v2"}},
		{dst: &l.setMathMode, names: []string{"cublasSetMathMode"}},
		{dst: &l.sgemm, names: []string{"cublasSgemm_v2"}},
		{dst: &l.sgemmStrided, names: []string{"cublasSgemmStridedBatched"}},
		{dst: &l.getProperty, names: []string{"cublasGetProperty"}, optional: true},
	}
	if err := lib.resolve(syms); err != nil {
		lib.close()
		return nil, err
	}
	return l, nil
}

// version is the library's own version ("13.0.2"), or "" when it does
// not say.
func (l *cublas) version() string {
	if l.getProperty == nil {
		return ""
	}
	var v [3]C.int // MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
	for i := range v {
		if C.qm_cublasGetProperty(l.getProperty, C.int(i), &v[i]) != 0 {
			return ""
		}
	}
	return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2])
}

// pickCublas returns the first candidate that the driver (CUDA
// driverMajor; 0: not checked) can run, that opens and that try accepts
// (try creates a handle on the device; nil accepts every one), and a note
// naming each library found and passed over, and why. The error, when
// none is usable, says the same.
func pickCublas(cands []libsearch.Candidate, driverMajor int, try func(*cublas) error) (*cublas, string, error) {
	open := func(c libsearch.Candidate) (*cublas, error) { return openCublas(c, driverMajor) }
	l, passed, ok := firstUsable(cands, open, try, func(l *cublas) { l.lib.close() }, func(l *cublas) string { return l.lib.path })
	if !ok {
		return nil, "", fmt.Errorf("no usable cuBLAS library (install the CUDA toolkit's libcublas or NVIDIA's cuBLAS pip wheel, "+
			"or set QMUL_CUBLAS to its path): %s", strings.Join(passed, "; "))
	}
	return l, choiceNote("cuBLAS", passed), nil
}

// cublasChoice is the process's cuBLAS.
var cublasChoice choice[*cublas]

// chooseCublas creates a handle on stream s of ctx from the process's
// cuBLAS, choosing the library at the first call: the candidates of
// QMUL_CUBLAS or of the search (libsearch), newest version first, and of
// those the first that the driver runs and that creates a handle.
func chooseCublas(drv *driver, ctx C.CUcontext, s C.CUstream, tf32 bool) (*blasHandle, error) {
	var h *blasHandle
	handle := func(l *cublas) (err error) {
		h, err = newBlasHandle(l, drv, ctx, s, tf32)
		return err
	}
	err := cublasChoice.use(handle, func(try func(*cublas) error) (*cublas, error) {
		l, note, err := pickCublas(searchCandidates("QMUL_CUBLAS", cublasSonames), drv.cudaMajor(), try)
		if err == nil {
			record("cublas", l.lib.report(l.version(), note))
		}
		return l, err
	})
	return h, err
}

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
	if err := checkBlas(drv, C.qm_cublasCreate(drv.cuCtxSetCurrent, ctx, lib.create, &b.h), "cublasCreate_v2 (%s)", lib.lib.path); err != nil {
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
