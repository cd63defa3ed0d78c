// sgd.cu: the fused SGD update (PyTorch's semantics, dampening 0).
#include "common.cuh"

// qm_sgd_f32 applies, element by element,
//
//   g = mask·(gs·grad + wd·param)          (mask = 1 when NULL)
//   buf = mom·buf + g                      (when buf is not NULL and mom ≠ 0)
//   d = g + mom·buf if nesterov, else buf  (g without momentum)
//   param −= lr·d
extern "C" __global__ void qm_sgd_f32(float* param, const float* grad, float* buf, const float* mask,
    long long n, float lr, float mom, float wd, float gs, int nesterov)
{
    bool momentum = buf != NULL && mom != 0.0f;
    for (long long i = qm_first(); i < n; i += qm_stride()) {
        float d = gs * grad[i] + wd * param[i];
        if (mask != NULL)
            d *= mask[i];
        if (momentum) {
            float b = mom * buf[i] + d;
            buf[i] = b;
            d = nesterov ? d + mom * b : b;
        }
        param[i] -= lr * d;
    }
}
