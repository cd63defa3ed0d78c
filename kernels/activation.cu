// activation.cu: ReLU, ReLU6 and PReLU, forward and backward. NaN inputs
// propagate as in the CPU backend (Go's max and min return NaN).
#include "common.cuh"

// qm_relu_f32: y = max(x, 0); x and y may alias.
extern "C" __global__ void qm_relu_f32(const float* x, float* y, long long n)
{
    for (long long i = qm_first(); i < n; i += qm_stride()) {
        float v = x[i];
        y[i] = isnan(v) ? v : fmaxf(v, 0.0f);
    }
}

// qm_relu6_f32: y = min(max(x, 0), 6); x and y may alias.
extern "C" __global__ void qm_relu6_f32(const float* x, float* y, long long n)
{
    for (long long i = qm_first(); i < n; i += qm_stride()) {
        float v = x[i];
        y[i] = isnan(v) ? v : fminf(fmaxf(v, 0.0f), 6.0f);
    }
}

// qm_prelu_f32: y = x if x > 0, else alpha[c]·x, for x viewed as
// [rows, na] (na = 1 or the channel count); a lane launch.
extern "C" __global__ void qm_prelu_f32(const float* x, const float* alpha, float* y, long long rows, int na, int lanes)
{
    long long t = qm_first();
    if (t >= (long long)na * lanes)
        return;
    int c = (int)(t % na);
    float a = alpha[c];
    for (long long r = t / na; r < rows; r += lanes) {
        long long i = r * na + c;
        float v = x[i];
        y[i] = v > 0.0f ? v : a * v;
    }
}

// qm_relu_backward_f32: dx = dy where x > 0, else 0 (x is ReLU's input or
// output); dx may alias dy.
extern "C" __global__ void qm_relu_backward_f32(const float* x, const float* dy, float* dx, long long n)
{
    for (long long i = qm_first(); i < n; i += qm_stride())
        dx[i] = x[i] <= 0.0f ? 0.0f : dy[i];
}

// qm_relu6_backward_f32: dx = dy where 0 < x < 6, else 0.
extern "C" __global__ void qm_relu6_backward_f32(const float* x, const float* dy, float* dx, long long n)
{
    for (long long i = qm_first(); i < n; i += qm_stride()) {
        float v = x[i];
        dx[i] = (v <= 0.0f || v >= 6.0f) ? 0.0f : dy[i];
    }
}

// qm_prelu_backward_f32 writes dx = dy where x > 0, else alpha[c]·dy (dx may
// alias dy), and, when partial is not NULL, the first kernel of the column
// reduction of dalpha: partial[t] = Σ dy·x over the thread's elements with
// x ≤ 0. A lane launch over [rows, na].
extern "C" __global__ void qm_prelu_backward_f32(const float* x, const float* alpha, const float* dy, float* dx,
    long long rows, int na, int lanes, double* partial)
{
    long long t = qm_first();
    if (t >= (long long)na * lanes)
        return;
    int c = (int)(t % na);
    float a = alpha[c];
    double s = 0.0;
    for (long long r = t / na; r < rows; r += lanes) {
        long long i = r * na + c;
        float v = x[i], d = dy[i];
        if (v > 0.0f) {
            dx[i] = d;
        } else {
            s += (double)d * (double)v;
            dx[i] = a * d;
        }
    }
    if (partial != NULL)
        partial[t] = s;
}

// qm_prelu_dalpha_final: dalpha[c] += Σ_lanes partial, one block per slope.
extern "C" __global__ void qm_prelu_dalpha_final(const double* partial, int na, int lanes, float* dalpha)
{
    __shared__ double sh[QM_BLOCK];
    int c = blockIdx.x;
    double s = qm_lane_sum(partial, na, lanes, c, sh);
    if (threadIdx.x == 0)
        dalpha[c] += (float)s;
}
