// libcublasLt.cpp: the fake cuBLASLt, built as libcublasLt.so.12 and
// libcublasLt.so.13 (QM_CUBLAS_MAJOR). The fake cuBLAS of the same
// version links against it, as the real cuBLAS needs the real cuBLASLt,
// so that the binding has to find it beside cuBLAS (cuda/libload.go).
#define API extern "C" __attribute__((visibility("default")))

// cublasLtGetVersion: major·10000 + minor·100 + patch.
API int cublasLtGetVersion(void) { return QM_CUBLAS_MAJOR * 10000; }
