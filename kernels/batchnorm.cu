// batchnorm.cu: BatchNorm over x viewed as [rows, C], with an optional
// fused ReLU or ReLU6. The forward per-channel sums come from
// qm_colsum_partial (reduce.cu), the backward ones from
// qm_bn_backward_partial; the kernels here turn them into statistics and
// coefficients (one block per channel) and apply them (lane launches, see
// common.cuh).
#include "common.cuh"

// qm_bn_train_stats reads the sums Σx (partial) and Σx² (partial +
// C·lanes) of a training-mode forward and, for channel c = blockIdx.x,
// writes the batch mean and 1/sqrt(var + eps), updates the running
// statistics with momentum (the running variance from the unbiased
// variance) and writes scale = γ·invstd and shift = β − mean·scale.
extern "C" __global__ void qm_bn_train_stats(const double* partial, int C, int lanes, long long rows,
    const float* gamma, const float* beta, float* mean, float* invstd, float* runMean, float* runVar,
    double momentum, double eps, float* scale, float* shift)
{
    __shared__ double sh[QM_BLOCK];
    int c = blockIdx.x;
    double sx = qm_lane_sum(partial, C, lanes, c, sh);
    double sxx = qm_lane_sum(partial + (long long)C * lanes, C, lanes, c, sh);
    if (threadIdx.x != 0)
        return;
    double mu = sx / (double)rows;
    double var = fmax(sxx / (double)rows - mu * mu, 0.0);
    float m = (float)mu;
    float is = (float)(1.0 / sqrt(var + eps));
    mean[c] = m;
    invstd[c] = is;
    double unbiased = var;
    if (rows > 1)
        unbiased = var * (double)rows / (double)(rows - 1);
    runMean[c] = (float)((1.0 - momentum) * (double)runMean[c] + momentum * mu);
    runVar[c] = (float)((1.0 - momentum) * (double)runVar[c] + momentum * unbiased);
    float sc = gamma[c] * is;
    scale[c] = sc;
    shift[c] = beta[c] - m * sc;
}

// qm_bn_eval_stats is the evaluation-mode counterpart of qm_bn_train_stats:
// mean = running mean, invstd = 1/sqrt(running var + eps).
extern "C" __global__ void qm_bn_eval_stats(int C, const float* gamma, const float* beta,
    const float* runMean, const float* runVar, double eps, float* mean, float* invstd, float* scale, float* shift)
{
    for (long long i = qm_first(); i < C; i += qm_stride()) {
        int c = (int)i;
        float m = runMean[c];
        float is = (float)(1.0 / sqrt((double)runVar[c] + eps));
        mean[c] = m;
        invstd[c] = is;
        float sc = gamma[c] * is;
        scale[c] = sc;
        shift[c] = beta[c] - m * sc;
    }
}

// qm_bn_apply_f32: y[r, c] = act(x[r, c]·scale[c] + shift[c]) with the
// fused activation act (see common.cuh); a lane launch.
extern "C" __global__ void qm_bn_apply_f32(const float* x, float* y, long long rows, int C, int lanes,
    const float* scale, const float* shift, int act)
{
    long long t = qm_first();
    if (t >= (long long)C * lanes)
        return;
    int c = (int)(t % C);
    float sc = scale[c], sh = shift[c];
    for (long long r = t / C; r < rows; r += lanes) {
        long long i = r * C + c;
        y[i] = qm_act(act, x[i] * sc + sh);
    }
}

// qm_bn_backward_partial is the first kernel of the backward column
// reduction (see common.cuh): with d = dy, or 0 where the fused activation
// act is flat at the forward output y, partial[t] = Σ d and
// partial[C·lanes + t] = Σ d·x over the thread's rows.
extern "C" __global__ void qm_bn_backward_partial(const float* x, const float* dy, const float* y, int act,
    long long rows, int C, int lanes, double* partial)
{
    long long total = (long long)C * lanes;
    long long t = qm_first();
    if (t >= total)
        return;
    int c = (int)(t % C);
    double sd = 0.0, sdx = 0.0;
    for (long long r = t / C; r < rows; r += lanes) {
        long long i = r * C + c;
        if (qm_act_flat(act, y, i))
            continue;
        double d = (double)dy[i];
        sd += d;
        sdx += d * (double)x[i];
    }
    partial[t] = sd;
    partial[total + t] = sdx;
}

// qm_bn_backward_coeffs reads Σdy (partial) and Σdy·x (partial + C·lanes)
// and, for channel c = blockIdx.x, accumulates dgamma += Σdy·x̂ and
// dbeta += Σdy (each skipped when NULL) and writes the coefficients of
// dx = dy·k + x·u + v: k = γ·invstd and, in training mode,
// u = −k·invstd·Σdy·x̂/rows, v = −k·Σdy/rows − u·mean (u = v = 0 in
// evaluation mode, where the statistics are constants).
extern "C" __global__ void qm_bn_backward_coeffs(const double* partial, int C, int lanes, long long rows,
    const float* gamma, const float* mean, const float* invstd, float* dgamma, float* dbeta, int train,
    float* k, float* u, float* v)
{
    __shared__ double sh[QM_BLOCK];
    int c = blockIdx.x;
    double sumDy = qm_lane_sum(partial, C, lanes, c, sh);
    double sumDyX = qm_lane_sum(partial + (long long)C * lanes, C, lanes, c, sh);
    if (threadIdx.x != 0)
        return;
    double is = (double)invstd[c];
    double sumDyXhat = is * (sumDyX - (double)mean[c] * sumDy);
    if (dgamma != NULL)
        dgamma[c] += (float)sumDyXhat;
    if (dbeta != NULL)
        dbeta[c] += (float)sumDy;
    double gi = (double)gamma[c] * is;
    k[c] = (float)gi;
    if (train) {
        double cu = -gi * is * sumDyXhat / (double)rows;
        u[c] = (float)cu;
        v[c] = (float)(-gi * sumDy / (double)rows - cu * (double)mean[c]);
    } else {
        u[c] = 0.0f;
        v[c] = 0.0f;
    }
}

// qm_bn_backward_apply_f32: dx[r, c] = d·k[c] + x[r, c]·u[c] + v[c] with
// d = dy[r, c], or 0 where the fused activation act is flat at the forward
// output y (y is only read when act is ReLU or ReLU6); a lane launch.
extern "C" __global__ void qm_bn_backward_apply_f32(const float* x, const float* dy, const float* y, int act,
    float* dx, long long rows, int C, int lanes, const float* k, const float* u, const float* v)
{
    long long t = qm_first();
    if (t >= (long long)C * lanes)
        return;
    int c = (int)(t % C);
    float kc = k[c], uc = u[c], vc = v[c];
    for (long long r = t / C; r < rows; r += lanes) {
        long long i = r * C + c;
        float d = qm_act_flat(act, y, i) ? 0.0f : dy[i];
        dx[i] = d * kc + x[i] * uc + vc;
    }
}
