// persample.cu: per-sample squared gradient norms of BatchNorm's scale and
// shift. (Convolutions and linear layers use im2col, batched GEMMs and
// qm_row_dot, or for depthwise convolutions qm_dwconv_dw_partial_f32 with
// one split per sample.)
#include "common.cuh"

// qm_bn_persample_partial runs on (N, ceil(C/QM_TILE_X)) blocks of
// QM_TILE_X × QM_TILE_Y threads: block (n, cx) sums, over the per rows of
// sample n, d and d·(x − mean)·invstd for its QM_TILE_X channels, in
// double precision, into db[n·C + c] and dg[n·C + c], with d = dy, or 0
// where the fused activation act is flat at the forward output y.
extern "C" __global__ void qm_bn_persample_partial(const float* x, const float* dy, const float* y, int act,
    const float* mean, const float* invstd, long long per, int C, double* dg, double* db)
{
    __shared__ double sg[QM_TILE_Y][QM_TILE_X];
    __shared__ double sb[QM_TILE_Y][QM_TILE_X];
    long long n = blockIdx.x;
    int c = blockIdx.y * QM_TILE_X + threadIdx.x;
    double g = 0.0, b = 0.0;
    if (c < C) {
        double m = (double)mean[c], is = (double)invstd[c];
        for (long long r = n * per + threadIdx.y; r < (n + 1) * per; r += QM_TILE_Y) {
            long long i = r * C + c;
            if (qm_act_flat(act, y, i))
                continue;
            double d = (double)dy[i];
            b += d;
            g += d * ((double)x[i] - m) * is;
        }
    }
    sg[threadIdx.y][threadIdx.x] = g;
    sb[threadIdx.y][threadIdx.x] = b;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        double tg = 0.0, tb = 0.0;
        for (int k = 0; k < QM_TILE_Y; k++) {
            tg += sg[k][threadIdx.x];
            tb += sb[k][threadIdx.x];
        }
        dg[n * C + c] = tg;
        db[n * C + c] = tb;
    }
}

// qm_bn_persample_final: outGamma[n] = Σ_c dg[n, c]², outBeta[n] =
// Σ_c db[n, c]², one block per sample n.
extern "C" __global__ void qm_bn_persample_final(const double* dg, const double* db, int C, float* outGamma,
    float* outBeta)
{
    __shared__ double sh[QM_BLOCK];
    long long n = blockIdx.x;
    double g = 0.0, b = 0.0;
    for (int c = threadIdx.x; c < C; c += QM_BLOCK) {
        double vg = dg[n * C + c], vb = db[n * C + c];
        g += vg * vg;
        b += vb * vb;
    }
    g = qm_block_sum(g, sh);
    b = qm_block_sum(b, sh);
    if (threadIdx.x == 0) {
        outGamma[n] = (float)g;
        outBeta[n] = (float)b;
    }
}
