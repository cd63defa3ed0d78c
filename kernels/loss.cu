// loss.cu: softmax cross-entropy with per-sample weights and outputs,
// softmax entropy and Q-MUL's similar labels. Each handles one row of
// logits [N, K] per warp (rows grid-stride over the warps of the grid) and
// sums in double precision; the xor butterflies leave the same value in
// every lane, so the whole warp takes the same branches.
#include "common.cuh"

#define QM_FULL_WARP 0xffffffffu

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

// qm_softmax_xent_f32: with p = softmax(z) for row z of logits,
// w = scale·weights[row] (scale when weights is NULL) and y = labels[row]:
//
//   loss = −log p[y], pred = first argmax, conf = p[y],
//   entropy = −Σ p log p, dlogits = w·(p − onehot(y)),
//
// each output skipped when NULL. A label outside [0, K) is reported and
// its row left unwritten.
extern "C" __global__ void qm_softmax_xent_f32(const float* logits, const int* labels, const float* weights,
    long long N, int K, double scale, float* dlogits, float* loss, int* pred, float* conf, float* entropy,
    int* status)
{
    int lane = threadIdx.x & 31;
    long long warps = qm_stride() / 32;
    for (long long row = qm_first() / 32; row < N; row += warps) {
        const float* z = logits + row * K;
        int y = labels[row];
        if (y < 0 || y >= K) {
            if (lane == 0)
                qm_report(status, QM_STATUS_LABEL);
            continue;
        }

        // First maximum: the largest value, the smallest index among ties.
        float best = 0.0f;
        int arg = -1;
        for (int j = lane; j < K; j += 32) {
            float v = z[j];
            if (arg < 0 || v > best) {
                best = v;
                arg = j;
            }
        }
        for (int m = 16; m > 0; m >>= 1) {
            float ob = __shfl_xor_sync(QM_FULL_WARP, best, m);
            int oa = __shfl_xor_sync(QM_FULL_WARP, arg, m);
            if (oa >= 0 && (arg < 0 || ob > best || (ob == best && oa < arg))) {
                best = ob;
                arg = oa;
            }
        }
        double zmax = (double)best;

        double sum = 0.0;
        for (int j = lane; j < K; j += 32)
            sum += exp((double)z[j] - zmax);
        sum = qm_warp_sum(sum);
        double logSum = log(sum);

        double w = scale;
        if (weights != NULL)
            w *= (double)weights[row];
        double h = 0.0;
        for (int j = lane; j < K; j += 32) {
            double d = (double)z[j] - zmax;
            double p = exp(d) / sum;
            if (p > 0.0)
                h -= p * (d - logSum);
            if (dlogits != NULL)
                dlogits[row * K + j] = (float)(w * (j == y ? p - 1.0 : p));
        }
        h = qm_warp_sum(h);

        if (lane == 0) {
            double dy = (double)z[y] - zmax;
            if (loss != NULL)
                loss[row] = (float)(logSum - dy);
            if (pred != NULL)
                pred[row] = arg;
            if (conf != NULL)
                conf[row] = (float)(exp(dy) / sum);
            if (entropy != NULL)
                entropy[row] = (float)h;
        }
    }
}

// qm_softmax_entropy_f32: with p = softmax(z) for row z of logits,
// entropy = H = −Σ p log p and dlogits = ∂(w·H)/∂z = −w·p·(log p + H)
// (w = scale·weights[row], or scale when weights is NULL); entropy and
// dlogits may be NULL.
extern "C" __global__ void qm_softmax_entropy_f32(const float* logits, const float* weights, long long N, int K,
    double scale, float* dlogits, float* entropy)
{
    int lane = threadIdx.x & 31;
    long long warps = qm_stride() / 32;
    for (long long row = qm_first() / 32; row < N; row += warps) {
        const float* z = logits + row * K;
        double zmax;
        double sum = qm_row_expsum(z, K, lane, &zmax);
        double logSum = log(sum);
        double h = 0.0;
        for (int j = lane; j < K; j += 32) {
            double d = (double)z[j] - zmax;
            double p = exp(d) / sum;
            if (p > 0.0)
                h -= p * (d - logSum);
        }
        h = qm_warp_sum(h);
        if (entropy != NULL && lane == 0)
            entropy[row] = (float)h;
        if (dlogits == NULL)
            continue;
        double w = scale;
        if (weights != NULL)
            w *= (double)weights[row];
        for (int j = lane; j < K; j += 32) {
            double logp = (double)z[j] - zmax - logSum;
            double p = exp((double)z[j] - zmax) / sum;
            dlogits[row * K + j] = (float)(-w * p * (logp + h));
        }
    }
}

// qm_similar_labels_f32: out[row] = argmin over j ≠ y of |p[j] − p[y]| with
// p = softmax(z) and y = labels[row], the smallest such j on ties (−1 when
// K = 1). A label outside [0, K) is reported and its row left unwritten.
extern "C" __global__ void qm_similar_labels_f32(const float* logits, const int* labels, long long N, int K,
    int* out, int* status)
{
    int lane = threadIdx.x & 31;
    long long warps = qm_stride() / 32;
    for (long long row = qm_first() / 32; row < N; row += warps) {
        const float* z = logits + row * K;
        int y = labels[row];
        if (y < 0 || y >= K) {
            if (lane == 0)
                qm_report(status, QM_STATUS_LABEL);
            continue;
        }
        double zmax;
        double sum = qm_row_expsum(z, K, lane, &zmax);
        double py = exp((double)z[y] - zmax) / sum;
        double gap = 0.0;
        int arg = -1;
        for (int j = lane; j < K; j += 32) {
            if (j == y)
                continue;
            double g = fabs(exp((double)z[j] - zmax) / sum - py);
            if (arg < 0 || g < gap) {
                gap = g;
                arg = j;
            }
        }
        for (int m = 16; m > 0; m >>= 1) {
            double og = __shfl_xor_sync(QM_FULL_WARP, gap, m);
            int oa = __shfl_xor_sync(QM_FULL_WARP, arg, m);
            if (oa >= 0 && (arg < 0 || og < gap || (og == gap && oa < arg))) {
                gap = og;
                arg = oa;
            }
        }
        if (lane == 0)
            out[row] = arg;
    }
}
