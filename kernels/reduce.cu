// reduce.cu: column sums (BiasGrad, BatchNorm), dot products (Dot,
// SumSquares) and row sums of products (RowSqNorm, per-sample norms), all
// accumulated in double precision in a fixed order.
#include "common.cuh"

// qm_colsum_partial is the first kernel of a column reduction over x
// [rows, cols] (see common.cuh): partial[t] = Σ x[r, c] over the thread's
// rows and, when y is not NULL, partial[cols·lanes + t] = Σ x[r, c]·y[r, c].
extern "C" __global__ void qm_colsum_partial(const float* x, const float* y, long long rows, int cols, int lanes,
    double* partial)
{
    long long total = (long long)cols * lanes;
    long long t = qm_first();
    if (t >= total)
        return;
    int c = (int)(t % cols);
    double sx = 0.0, sxy = 0.0;
    for (long long r = t / cols; r < rows; r += lanes) {
        long long i = r * cols + c;
        double v = (double)x[i];
        sx += v;
        if (y != NULL)
            sxy += v * (double)y[i];
    }
    partial[t] = sx;
    if (y != NULL)
        partial[total + t] = sxy;
}

// qm_bias_grad_final: db[c] += Σ_lanes partial, one block per column c.
extern "C" __global__ void qm_bias_grad_final(const double* partial, int cols, int lanes, float* db)
{
    __shared__ double sh[QM_BLOCK];
    int c = blockIdx.x;
    double s = qm_lane_sum(partial, cols, lanes, c, sh);
    if (threadIdx.x == 0)
        db[c] += (float)s;
}

// QM_DOT_MAX is how many tensor pairs one qm_dot_partial launch covers;
// the table then fills 3840 of the 4096 bytes a kernel's parameters may
// take.
#define QM_DOT_MAX 160

// qm_dot_table lists the tensor pairs of one qm_dot_partial launch: device
// addresses of float arrays a[t] and b[t] (equal for sums of squares) and
// their common length.
struct qm_dot_table {
    unsigned long long a[QM_DOT_MAX];
    unsigned long long b[QM_DOT_MAX];
    long long len[QM_DOT_MAX];
};

// qm_dot_partial runs on a grid of (splits, pairs in the table): block
// (x, t) adds a·b over elements x·QM_BLOCK + k·splits·QM_BLOCK + tid
// (k = 0, 1, ...) of table pair t and writes partial[(first + t)·splits + x].
extern "C" __global__ void qm_dot_partial(qm_dot_table tab, int first, double* partial)
{
    __shared__ double sh[QM_BLOCK];
    int splits = gridDim.x;
    int t = blockIdx.y;
    const float* a = (const float*)tab.a[t];
    const float* b = (const float*)tab.b[t];
    long long n = tab.len[t];
    double s = 0.0;
    for (long long i = (long long)blockIdx.x * QM_BLOCK + threadIdx.x; i < n; i += (long long)splits * QM_BLOCK)
        s += (double)a[i] * (double)b[i];
    s = qm_block_sum(s, sh);
    if (threadIdx.x == 0)
        partial[(long long)(first + t) * splits + blockIdx.x] = s;
}

// qm_dot_final: out[t] = Σ_x partial[t·splits + x], one block per pair.
extern "C" __global__ void qm_dot_final(const double* partial, int splits, float* out)
{
    __shared__ double sh[QM_BLOCK];
    int t = blockIdx.x;
    double s = 0.0;
    for (int x = threadIdx.x; x < splits; x += QM_BLOCK)
        s += partial[(long long)t * splits + x];
    s = qm_block_sum(s, sh);
    if (threadIdx.x == 0)
        out[t] = (float)s;
}

// qm_row_dot computes s = Σ_j a[r, j]·b[r, j] for row r = blockIdx.x of
// [rows, cols] matrices, in double precision. When acc is not NULL it adds
// s to acc[r] and s becomes acc[r]; when out is not NULL it writes
// out[r] = s.
extern "C" __global__ void qm_row_dot(const float* a, const float* b, long long cols, double* acc, float* out)
{
    __shared__ double sh[QM_BLOCK];
    long long r = blockIdx.x;
    const float* ar = a + r * cols;
    const float* br = b + r * cols;
    double s = 0.0;
    for (long long j = threadIdx.x; j < cols; j += QM_BLOCK)
        s += (double)ar[j] * (double)br[j];
    s = qm_block_sum(s, sh);
    if (threadIdx.x != 0)
        return;
    if (acc != NULL) {
        s += acc[r];
        acc[r] = s;
    }
    if (out != NULL)
        out[r] = (float)s;
}
