// gemm.cu: the bias of linear layers (AddBias). GEMM itself is cuBLAS, and
// BiasGrad is a column sum (reduce.cu).
#include "common.cuh"

// qm_add_bias_f32: y[r, c] += bias[c] for y [rows, cols]; a lane launch
// (see common.cuh) of cols·lanes threads.
extern "C" __global__ void qm_add_bias_f32(float* y, const float* bias, long long rows, int cols, int lanes)
{
    long long t = qm_first();
    if (t >= (long long)cols * lanes)
        return;
    int c = (int)(t % cols);
    float b = bias[c];
    for (long long r = t / cols; r < rows; r += lanes)
        y[r * cols + c] += b;
}
