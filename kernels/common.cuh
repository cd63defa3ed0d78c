// common.cuh: definitions shared by every kernel file.
//
// CMakeLists.txt compiles all kernels/*.cu as one translation unit (a
// generated file that includes each of them), so that they end up in one
// fatbin; each file still includes this header so that it reads on its own.
//
// Conventions:
//   - every kernel is extern "C" with a qm_ prefix, so that its name in the
//     fatbin is stable; the Go side (package cuda) names them as strings;
//   - integer parameters are `long long` for element counts and `int` for
//     geometry; the Go side passes int64 and int32 to match, and
//     cuda/fake_test.go checks every launch against these signatures;
//   - 1-D launches use QM_BLOCK threads per block; 2-D launches use blocks
//     of QM_TILE_X × QM_TILE_Y threads (x runs over channels or columns,
//     which are contiguous in memory, so that warps read and write
//     contiguous addresses).
#ifndef QM_COMMON_CUH
#define QM_COMMON_CUH

#define QM_BLOCK 256
#define QM_TILE_X 32
#define QM_TILE_Y 8

// Status codes a kernel records in the backend's status word when its input
// is invalid (where the CPU backend panics). The Go side reads the word in
// Err and turns a code into an error message.
#define QM_STATUS_GATHER_INDEX 1
#define QM_STATUS_IMAGE_INDEX 2
#define QM_STATUS_LABEL 3

// Activations a BatchNorm may fuse (engine.ReLU and engine.ReLU6); any
// other value means none.
#define QM_ACT_RELU 1
#define QM_ACT_RELU6 2

// qm_act applies a fused activation to v; NaN passes through, as in the
// CPU backend (Go's max and min return NaN).
__device__ __forceinline__ float qm_act(int act, float v)
{
    if (isnan(v))
        return v;
    if (act == QM_ACT_RELU)
        return fmaxf(v, 0.0f);
    if (act == QM_ACT_RELU6)
        return fminf(fmaxf(v, 0.0f), 6.0f);
    return v;
}

// qm_act_flat reports whether a fused activation has zero gradient at
// element i of its output y; y is not read (and may be NULL) when act fuses
// nothing.
__device__ __forceinline__ bool qm_act_flat(int act, const float* y, long long i)
{
    if (act != QM_ACT_RELU && act != QM_ACT_RELU6)
        return false;
    float v = y[i];
    return v <= 0.0f || (act == QM_ACT_RELU6 && v >= 6.0f);
}

// qm_window_out returns the output index o whose window puts kernel tap k
// on input index i (i + pad − k = o·stride, 0 ≤ o < out), or −1 when no
// output does: the adjoint walk of col2im, depthwise and pooling backward.
__device__ __forceinline__ int qm_window_out(int i, int k, int pad, int stride, int out)
{
    int t = i + pad - k;
    if (t < 0 || t % stride != 0)
        return -1;
    int o = t / stride;
    return o < out ? o : -1;
}

// qm_report records code unless an earlier code is already recorded.
__device__ __forceinline__ void qm_report(int* status, int code)
{
    atomicCAS(status, 0, code);
}

// qm_first and qm_stride drive grid-stride loops over 64-bit element
// indices: for (long long i = qm_first(); i < n; i += qm_stride()).
__device__ __forceinline__ long long qm_first()
{
    return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ long long qm_stride()
{
    return (long long)gridDim.x * blockDim.x;
}

// qm_block_sum returns the sum of v over a block of QM_BLOCK threads to
// every thread, using sh (QM_BLOCK doubles of shared memory). The additions
// happen in a fixed tree order, so results are deterministic. Every thread
// of the block must call it; it may be called again with the same sh.
__device__ __forceinline__ double qm_block_sum(double v, double* sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int half = QM_BLOCK / 2; half > 0; half >>= 1) {
        if ((int)threadIdx.x < half)
            sh[threadIdx.x] += sh[threadIdx.x + half];
        __syncthreads();
    }
    double sum = sh[0];
    __syncthreads();
    return sum;
}

// Column reductions over a [rows, cols] matrix run in two kernels. The
// first is a "lane" launch of cols·lanes threads (Go: Backend.lanes picks
// lanes): thread t owns column t % cols and rows t/cols, t/cols + lanes,
// t/cols + 2·lanes, ..., so consecutive threads touch consecutive addresses
// whatever cols is, and each thread writes its partial sum to
// partial[t] = partial[lane·cols + column]. The second kernel runs one block
// per column and adds the lanes with qm_lane_sum.
__device__ __forceinline__ double qm_lane_sum(const double* partial, int cols, int lanes, int col, double* sh)
{
    double s = 0.0;
    for (int lane = threadIdx.x; lane < lanes; lane += QM_BLOCK)
        s += partial[(long long)lane * cols + col];
    return qm_block_sum(s, sh);
}

// Warp-per-row kernels (loss.cu, unlearn.cu) handle one row per warp; the
// xor butterflies below leave the same value in every lane, so the whole
// warp takes the same branches.
#define QM_FULL_WARP 0xffffffffu

// QM_FOR_EACH_WARP_ROW(row, N) loops a warp over its rows of [0, N): rows
// grid-stride over the warps of the launch.
#define QM_FOR_EACH_WARP_ROW(row, N) \
    for (long long row = qm_first() / 32, row##_step = qm_stride() / 32; row < (N); row += row##_step)

// qm_lane returns the calling thread's lane in its warp.
__device__ __forceinline__ int qm_lane()
{
    return threadIdx.x & 31;
}

// qm_warp_sum returns the sum of v over the warp to every lane.
__device__ __forceinline__ double qm_warp_sum(double v)
{
    for (int m = 16; m > 0; m >>= 1)
        v += __shfl_xor_sync(QM_FULL_WARP, v, m);
    return v;
}

// qm_row_expsum sets *zmax to the largest of the K logits z and returns
// Σ exp(z − zmax); lane is the calling thread's lane in its warp.
__device__ __forceinline__ double qm_row_expsum(const float* z, int K, int lane, double* zmax)
{
    float m = -INFINITY;
    for (int j = lane; j < K; j += 32)
        m = fmaxf(m, z[j]);
    for (int s = 16; s > 0; s >>= 1)
        m = fmaxf(m, __shfl_xor_sync(QM_FULL_WARP, m, s));
    double sum = 0.0;
    for (int j = lane; j < K; j += 32)
        sum += exp((double)z[j] - (double)m);
    *zmax = (double)m;
    return qm_warp_sum(sum);
}

#endif // QM_COMMON_CUH
