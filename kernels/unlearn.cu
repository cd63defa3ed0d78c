// unlearn.cu: the ops only the unlearning methods use: AddSign, AddSqrt,
// softmax entropy and Q-MUL's similar labels (one row of logits per warp,
// as in loss.cu).
#include "common.cuh"

// qm_add_sign_f32: y[i] += a·sign(x[i]), with sign(0) = 0 (and NaN).
extern "C" __global__ void qm_add_sign_f32(const float* x, float* y, long long n, float a)
{
    for (long long i = qm_first(); i < n; i += qm_stride()) {
        float v = x[i];
        if (v > 0.0f)
            y[i] += a;
        else if (v < 0.0f)
            y[i] -= a;
    }
}

// qm_add_sqrt_f32: dst[i] += sqrt(src[i]).
extern "C" __global__ void qm_add_sqrt_f32(float* dst, const float* src, long long n)
{
    for (long long i = qm_first(); i < n; i += qm_stride())
        dst[i] += sqrtf(src[i]);
}

// qm_softmax_entropy_f32: with p = softmax(z) for row z of logits,
// entropy = H = −Σ p log p and dlogits = ∂(w·H)/∂z = −w·p·(log p + H)
// (w = scale·weights[row], or scale when weights is NULL); entropy and
// dlogits may be NULL.
extern "C" __global__ void qm_softmax_entropy_f32(const float* logits, const float* weights, long long N, int K,
    double scale, float* dlogits, float* entropy)
{
    int lane = qm_lane();
    QM_FOR_EACH_WARP_ROW(row, N) {
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
    int lane = qm_lane();
    QM_FOR_EACH_WARP_ROW(row, N) {
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
