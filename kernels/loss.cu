// loss.cu: softmax cross-entropy with per-sample weights and outputs, one
// row of logits [N, K] per warp (rows grid-stride over the warps of the
// grid), summed in double precision.
#include "common.cuh"

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
    int lane = qm_lane();
    QM_FOR_EACH_WARP_ROW(row, N) {
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
