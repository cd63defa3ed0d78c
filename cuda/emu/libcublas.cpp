// libcublas.cpp: the fake cuBLAS, built as libcublas.so.12 and
// libcublas.so.13 (QM_CUBLAS_MAJOR): the entry points cuda/cublas.go
// resolves, on OpenBLAS (device pointers are host pointers under the fake
// driver). Column-major, as cuBLAS. TF32 math mode is accepted and
// computes in full FP32.
//
// As the real libraries do, each needs the cuBLASLt of its version
// (linked against the fake libcublasLt.so.N, which the loader must find),
// and cublasCreate_v2 fails with CUBLAS_STATUS_NOT_INITIALIZED when the
// loaded driver (libcuda.so.1) runs an older CUDA major version than the
// library's.
#include <cblas.h>
#include <dlfcn.h>

#define API extern "C" __attribute__((visibility("default")))

typedef int cublasStatus_t;
typedef void* cublasHandle_t;

extern "C" int cublasLtGetVersion(void); // the fake libcublasLt.so.N

namespace {
enum : cublasStatus_t { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_NOT_INITIALIZED = 1, CUBLAS_STATUS_INVALID_VALUE = 7 };
char handle_token;
CBLAS_TRANSPOSE transpose(int op) { return op ? CblasTrans : CblasNoTrans; }

// driver_major is the CUDA major version of the loaded driver, 0 when no
// driver is loaded.
int driver_major()
{
    void* drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (!drv)
        return 0;
    int v = 0;
    auto get = (int (*)(int*))dlsym(drv, "cuDriverGetVersion");
    if (!get || get(&v) != 0)
        v = 0;
    dlclose(drv);
    return v / 1000;
}
} // namespace

API cublasStatus_t cublasCreate_v2(cublasHandle_t* h)
{
    if (cublasLtGetVersion() / 10000 != QM_CUBLAS_MAJOR || driver_major() < QM_CUBLAS_MAJOR)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    *h = &handle_token;
    return CUBLAS_STATUS_SUCCESS;
}

// cublasGetProperty: MAJOR_VERSION (0), MINOR_VERSION (1), PATCH_LEVEL (2).
API cublasStatus_t cublasGetProperty(int type, int* v)
{
    if (!v || type < 0 || type > 2)
        return CUBLAS_STATUS_INVALID_VALUE;
    *v = type == 0 ? QM_CUBLAS_MAJOR : 0;
    return CUBLAS_STATUS_SUCCESS;
}
API cublasStatus_t cublasDestroy_v2(cublasHandle_t) { return CUBLAS_STATUS_SUCCESS; }
API cublasStatus_t cublasSetStream_v2(cublasHandle_t, void*) { return CUBLAS_STATUS_SUCCESS; }

// Modes: CUBLAS_DEFAULT_MATH (0), CUBLAS_TF32_TENSOR_OP_MATH (3).
API cublasStatus_t cublasSetMathMode(cublasHandle_t, int mode)
{
    return mode == 0 || mode == 3 ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

API cublasStatus_t cublasSgemm_v2(cublasHandle_t, int op_a, int op_b, int m, int n, int k, const float* alpha,
    const float* a, int lda, const float* b, int ldb, const float* beta, float* c, int ldc)
{
    if (m < 0 || n < 0 || k < 0)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (m > 0 && n > 0)
        cblas_sgemm(CblasColMajor, transpose(op_a), transpose(op_b), m, n, k, *alpha, a, lda, b, ldb, *beta, c, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

API cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, int op_a, int op_b, int m, int n, int k,
    const float* alpha, const float* a, int lda, long long stride_a, const float* b, int ldb, long long stride_b,
    const float* beta, float* c, int ldc, long long stride_c, int batch)
{
    if (batch < 0)
        return CUBLAS_STATUS_INVALID_VALUE;
    for (int i = 0; i < batch; i++) {
        cublasStatus_t r = cublasSgemm_v2(h, op_a, op_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb,
            beta, c + i * stride_c, ldc);
        if (r != CUBLAS_STATUS_SUCCESS)
            return r;
    }
    return CUBLAS_STATUS_SUCCESS;
}
