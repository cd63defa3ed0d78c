// elementwise.cu: Scale, Axpy, Add and row Gather. Fill and Copy need no
// kernel (cuMemsetD32Async, cuMemsetD8Async, cuMemcpyDtoDAsync).
#include "common.cuh"

// qm_scale_f32: x[i] *= a.
extern "C" __global__ void qm_scale_f32(float* x, long long n, float a)
{
    for (long long i = qm_first(); i < n; i += qm_stride())
        x[i] *= a;
}

// qm_axpy_f32: y[i] += a·x[i].
extern "C" __global__ void qm_axpy_f32(const float* x, float* y, long long n, float a)
{
    for (long long i = qm_first(); i < n; i += qm_stride())
        y[i] += a * x[i];
}

// qm_add_f32: dst[i] = a[i] + b[i]; dst may alias a or b.
extern "C" __global__ void qm_add_f32(float* dst, const float* a, const float* b, long long n)
{
    for (long long i = qm_first(); i < n; i += qm_stride())
        dst[i] = a[i] + b[i];
}

// qm_gather_rows: dst[r, j] = src[index[r], j]; dst is [rows, cols], src
// [srcRows, cols]. An index outside [0, srcRows) is reported and its row
// left unwritten.
template <typename T>
__device__ void qm_gather_rows(T* dst, const T* src, const int* index, long long rows, long long cols,
    long long srcRows, int* status)
{
    long long n = rows * cols;
    for (long long i = qm_first(); i < n; i += qm_stride()) {
        long long r = i / cols;
        long long j = i - r * cols;
        int s = index[r];
        if (s < 0 || s >= srcRows) {
            qm_report(status, QM_STATUS_GATHER_INDEX);
            continue;
        }
        dst[i] = src[(long long)s * cols + j];
    }
}

// qm_gather_rows_u32 is qm_gather_rows for 4-byte elements.
extern "C" __global__ void qm_gather_rows_u32(unsigned int* dst, const unsigned int* src, const int* index,
    long long rows, long long cols, long long srcRows, int* status)
{
    qm_gather_rows(dst, src, index, rows, cols, srcRows, status);
}

// qm_gather_rows_u8 is qm_gather_rows for 1-byte elements.
extern "C" __global__ void qm_gather_rows_u8(unsigned char* dst, const unsigned char* src, const int* index,
    long long rows, long long cols, long long srcRows, int* status)
{
    qm_gather_rows(dst, src, index, rows, cols, srcRows, status);
}
