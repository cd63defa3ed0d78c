// pool.cu: max and average pooling over NHWC activations (square windows,
// average counting padding) and global average pooling, forward and
// backward. Backward kernels gather: each thread owns one dx element and
// sums over the windows that cover it, so no atomics are needed.
#include "common.cuh"

// qm_maxpool_f32: y [N,OH,OW,C] is the maximum of x [N,H,W,C] over each
// window and argmax the position iy·W + ix of that maximum within its image
// (the first one in scan order; a NaN wins, as in the CPU backend). A window
// entirely in the padding gives −inf and argmax −1.
extern "C" __global__ void qm_maxpool_f32(const float* x, float* y, int* argmax,
    int N, int H, int W, int C, int OH, int OW, int K, int stride, int pad)
{
    long long n_out = (long long)N * OH * OW * C;
    for (long long i = qm_first(); i < n_out; i += qm_stride()) {
        long long p = i / C;
        int c = (int)(i - p * C);
        int ox = (int)(p % OW);
        long long t = p / OW;
        int oy = (int)(t % OH);
        long long n = t / OH;
        const float* img = x + n * H * W * C;
        float best = -INFINITY;
        int arg = -1;
        for (int r = 0; r < K; r++) {
            int iy = oy * stride - pad + r;
            if (iy < 0 || iy >= H)
                continue;
            for (int s = 0; s < K; s++) {
                int ix = ox * stride - pad + s;
                if (ix < 0 || ix >= W)
                    continue;
                int pos = iy * W + ix;
                float v = img[(long long)pos * C + c];
                if (arg < 0 || v > best || isnan(v)) {
                    best = v;
                    arg = pos;
                }
            }
        }
        y[i] = best;
        argmax[i] = arg;
    }
}

// qm_avgpool_f32: y = mean of x over each K×K window, padding counted as 0.
extern "C" __global__ void qm_avgpool_f32(const float* x, float* y,
    int N, int H, int W, int C, int OH, int OW, int K, int stride, int pad)
{
    long long n_out = (long long)N * OH * OW * C;
    float inv = 1.0f / (float)(K * K);
    for (long long i = qm_first(); i < n_out; i += qm_stride()) {
        long long p = i / C;
        int c = (int)(i - p * C);
        int ox = (int)(p % OW);
        long long t = p / OW;
        int oy = (int)(t % OH);
        long long n = t / OH;
        const float* img = x + n * H * W * C;
        float sum = 0.0f;
        for (int r = 0; r < K; r++) {
            int iy = oy * stride - pad + r;
            if (iy < 0 || iy >= H)
                continue;
            for (int s = 0; s < K; s++) {
                int ix = ox * stride - pad + s;
                if (ix < 0 || ix >= W)
                    continue;
                sum += img[((long long)iy * W + ix) * C + c];
            }
        }
        y[i] = sum * inv;
    }
}

// qm_pool_backward_f32 writes dx [N,H,W,C] for max pooling (argmax not
// NULL: dx gathers dy from the windows whose argmax is this position) or
// average pooling (argmax NULL: dx gathers dy/K² from every covering
// window).
extern "C" __global__ void qm_pool_backward_f32(const float* dy, const int* argmax, float* dx,
    int N, int H, int W, int C, int OH, int OW, int K, int stride, int pad)
{
    long long n_in = (long long)N * H * W * C;
    float inv = 1.0f / (float)(K * K);
    for (long long i = qm_first(); i < n_in; i += qm_stride()) {
        long long p = i / C;
        int c = (int)(i - p * C);
        int ix = (int)(p % W);
        long long t = p / W;
        int iy = (int)(t % H);
        long long n = t / H;
        int pos = iy * W + ix;
        float sum = 0.0f;
        for (int r = 0; r < K; r++) {
            int oy = qm_window_out(iy, r, pad, stride, OH);
            if (oy < 0)
                continue;
            for (int s = 0; s < K; s++) {
                int ox = qm_window_out(ix, s, pad, stride, OW);
                if (ox < 0)
                    continue;
                long long o = ((n * OH + oy) * OW + ox) * C + c;
                if (argmax == NULL)
                    sum += dy[o] * inv;
                else if (argmax[o] == pos)
                    sum += dy[o];
            }
        }
        dx[i] = sum;
    }
}

// qm_global_avgpool_f32: y[n, c] = mean over the HW pixels of x[n, :, c].
extern "C" __global__ void qm_global_avgpool_f32(const float* x, float* y, long long N, int HW, int C)
{
    long long n_out = N * C;
    for (long long i = qm_first(); i < n_out; i += qm_stride()) {
        long long n = i / C;
        int c = (int)(i - n * C);
        const float* img = x + n * HW * C;
        double sum = 0.0;
        for (int p = 0; p < HW; p++)
            sum += (double)img[(long long)p * C + c];
        y[i] = (float)(sum / (double)HW);
    }
}

// qm_global_avgpool_backward_f32: dx[n, p, c] = dy[n, c]/HW.
extern "C" __global__ void qm_global_avgpool_backward_f32(const float* dy, float* dx, long long N, int HW, int C)
{
    long long n_in = N * HW * C;
    float inv = 1.0f / (float)HW;
    for (long long i = qm_first(); i < n_in; i += qm_stride()) {
        long long n = i / ((long long)HW * C);
        int c = (int)(i % C);
        dx[i] = dy[n * C + c] * inv;
    }
}
