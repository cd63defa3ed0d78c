// fakequant.cu: fake quantization (the uniform affine quantizer of LSQ, PACT,
// DoReFa activations and min-max observers), min/max observers and
// DoReFa-Net's weight quantizer.
//
// A tensor of n elements is split into ch channels along its leading index:
// channel c holds elements [c·per, (c+1)·per) with per = n/ch (ch = 1 for
// per-tensor quantization). Reductions per channel run on grids of
// (ch, splits) blocks: block (c, z) covers elements z·QM_BLOCK + tid,
// stepping gridDim.y·QM_BLOCK, of channel c, and a final kernel with one
// block per channel adds the splits in order.
#include "common.cuh"

// qm_nan_min and qm_nan_max are fminf and fmaxf that propagate NaN, as Go's
// min and max do.
__device__ __forceinline__ float qm_nan_min(float a, float b)
{
    return (isnan(a) || isnan(b)) ? NAN : fminf(a, b);
}

__device__ __forceinline__ float qm_nan_max(float a, float b)
{
    return (isnan(a) || isnan(b)) ? NAN : fmaxf(a, b);
}

// qm_fake_quant_f32: y = s·(clamp(round(x/s + z), lo, hi) − z) with
// s = scaleMul·scale[c], z = zp[c] (0 when zp is NULL), round half to even.
// x and y may alias.
extern "C" __global__ void qm_fake_quant_f32(const float* x, float* y, long long n, long long per,
    const float* scale, const float* zp, float scaleMul, float lo, float hi)
{
    for (long long i = qm_first(); i < n; i += qm_stride()) {
        int c = per == n ? 0 : (int)(i / per);
        float s = scaleMul * scale[c];
        float z = zp != NULL ? zp[c] : 0.0f;
        float r = rintf(x[i] / s + z);
        // Written with comparisons so that NaN passes through, as in Go.
        r = r < lo ? lo : (r > hi ? hi : r);
        y[i] = s * (r - z);
    }
}

// qm_fake_quant_backward_f32 runs on (ch, splits) blocks. With v = x/s + z,
// it writes (or, when accumulate is set, adds) dx = dy where lo ≤ v ≤ hi and
// 0 elsewhere (dx may be NULL, or alias dy), and, when partial is not NULL,
// the block's sums Σ_inside dy·(round(v) − v), Σ_{v>hi} dy and Σ_{v<lo} dy
// to partial[3·(c·splits + z) + 0, 1, 2].
extern "C" __global__ void qm_fake_quant_backward_f32(const float* x, const float* dy, float* dx, long long per,
    const float* scale, const float* zp, float scaleMul, float lo, float hi, int accumulate, double* partial)
{
    __shared__ double sh[QM_BLOCK];
    int c = blockIdx.x;
    float s = scaleMul * scale[c];
    float z = zp != NULL ? zp[c] : 0.0f;
    long long base = (long long)c * per;
    double inside = 0.0, above = 0.0, below = 0.0;
    for (long long j = (long long)blockIdx.y * QM_BLOCK + threadIdx.x; j < per; j += (long long)gridDim.y * QM_BLOCK) {
        long long i = base + j;
        float v = x[i] / s + z;
        float d = dy[i];
        if (v < lo) {
            below += (double)d;
            d = 0.0f;
        } else if (v > hi) {
            above += (double)d;
            d = 0.0f;
        } else {
            inside += (double)d * (double)(rintf(v) - v);
        }
        if (dx != NULL)
            dx[i] = accumulate ? dx[i] + d : d;
    }
    if (partial == NULL)
        return;
    inside = qm_block_sum(inside, sh);
    above = qm_block_sum(above, sh);
    below = qm_block_sum(below, sh);
    if (threadIdx.x == 0) {
        double* p = partial + 3 * ((long long)c * gridDim.y + blockIdx.y);
        p[0] = inside;
        p[1] = above;
        p[2] = below;
    }
}

// qm_fake_quant_scale_grad: dscale[c] += gradScale·(cInside·Σinside +
// cAbove·Σabove + cBelow·Σbelow), one block per channel c adding the
// splits of qm_fake_quant_backward_f32.
extern "C" __global__ void qm_fake_quant_scale_grad(const double* partial, int splits, double gradScale,
    double cInside, double cAbove, double cBelow, float* dscale)
{
    __shared__ double sh[QM_BLOCK];
    int c = blockIdx.x;
    double sums[3];
    for (int k = 0; k < 3; k++) {
        double s = 0.0;
        for (int z = threadIdx.x; z < splits; z += QM_BLOCK)
            s += partial[3 * ((long long)c * splits + z) + k];
        sums[k] = qm_block_sum(s, sh);
    }
    if (threadIdx.x == 0)
        dscale[c] += (float)(gradScale * (cInside * sums[0] + cAbove * sums[1] + cBelow * sums[2]));
}

// qm_block_minmax reduces lo and hi (NaN-propagating min and max) over a
// block of QM_BLOCK threads, using sh (2·QM_BLOCK floats); every thread
// gets the result.
__device__ __forceinline__ void qm_block_minmax(float* lo, float* hi, float* sh)
{
    sh[threadIdx.x] = *lo;
    sh[QM_BLOCK + threadIdx.x] = *hi;
    __syncthreads();
    for (int half = QM_BLOCK / 2; half > 0; half >>= 1) {
        if ((int)threadIdx.x < half) {
            sh[threadIdx.x] = qm_nan_min(sh[threadIdx.x], sh[threadIdx.x + half]);
            sh[QM_BLOCK + threadIdx.x] = qm_nan_max(sh[QM_BLOCK + threadIdx.x], sh[QM_BLOCK + threadIdx.x + half]);
        }
        __syncthreads();
    }
    *lo = sh[0];
    *hi = sh[QM_BLOCK];
    __syncthreads();
}

// qm_observe_partial runs on (ch, splits) blocks and writes the minimum and
// maximum (both starting from 0) of the block's elements of channel c to
// partial[2·(c·splits + z) + 0, 1].
extern "C" __global__ void qm_observe_partial(const float* x, long long per, float* partial)
{
    __shared__ float sh[2 * QM_BLOCK];
    int c = blockIdx.x;
    long long base = (long long)c * per;
    float lo = 0.0f, hi = 0.0f;
    for (long long j = (long long)blockIdx.y * QM_BLOCK + threadIdx.x; j < per; j += (long long)gridDim.y * QM_BLOCK) {
        float v = x[base + j];
        lo = qm_nan_min(lo, v);
        hi = qm_nan_max(hi, v);
    }
    qm_block_minmax(&lo, &hi, sh);
    if (threadIdx.x == 0) {
        float* p = partial + 2 * ((long long)c * gridDim.y + blockIdx.y);
        p[0] = lo;
        p[1] = hi;
    }
}

// qm_observe_final handles channel c = blockIdx.x. When partial is not
// NULL it reduces the splits of qm_observe_partial and copies the batch
// range into mn/mx (first set) or moves them towards it by momentum. Then
// it derives the grid: symmetric: scale = max(max(−mn, mx)/hi, 1e-8),
// zp = 0; affine: scale = max((mx − mn)/(hi − lo), 1e-8),
// zp = clamp(lo − round(mn/scale), lo, hi).
extern "C" __global__ void qm_observe_final(const float* partial, int splits, int first, float momentum,
    int symmetric, float lo, float hi, float* mn, float* mx, float* scale, float* zp)
{
    __shared__ float sh[2 * QM_BLOCK];
    int c = blockIdx.x;
    if (partial != NULL) {
        float bl = 0.0f, bh = 0.0f;
        for (int z = threadIdx.x; z < splits; z += QM_BLOCK) {
            const float* p = partial + 2 * ((long long)c * splits + z);
            bl = qm_nan_min(bl, p[0]);
            bh = qm_nan_max(bh, p[1]);
        }
        qm_block_minmax(&bl, &bh, sh);
        if (threadIdx.x == 0) {
            if (first) {
                mn[c] = bl;
                mx[c] = bh;
            } else {
                mn[c] += momentum * (bl - mn[c]);
                mx[c] += momentum * (bh - mx[c]);
            }
        }
    }
    if (threadIdx.x != 0)
        return;
    float a = mn[c], b = mx[c];
    if (symmetric) {
        scale[c] = qm_nan_max(qm_nan_max(-a, b) / hi, 1e-8f);
        zp[c] = 0.0f;
        return;
    }
    float s = qm_nan_max((b - a) / (hi - lo), 1e-8f);
    scale[c] = s;
    zp[c] = qm_nan_min(qm_nan_max(lo - rintf(a / s), lo), hi);
}

// qm_block_argmax reduces one value and index per thread, already in sv and
// si (index −1: none) and followed by a __syncthreads, to the largest value
// with the smallest index among ties in sv[0] and si[0].
__device__ void qm_block_argmax(double* sv, long long* si)
{
    for (int half = QM_BLOCK / 2; half > 0; half >>= 1) {
        if ((int)threadIdx.x < half) {
            double ov = sv[threadIdx.x + half];
            long long oi = si[threadIdx.x + half];
            long long mi = si[threadIdx.x];
            if (oi >= 0 && (mi < 0 || ov > sv[threadIdx.x] || (ov == sv[threadIdx.x] && oi < mi))) {
                sv[threadIdx.x] = ov;
                si[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
}

// qm_dorefa_stats_partial is the first pass over DoReFa weights w, grid
// stride: block k writes the largest |tanh(w)| of its elements and the
// first index holding it to pmax[k], parg[k] (−1 when it has no element
// that is not NaN) and, when dy is not NULL, Σ dy·tanh(w) to pdot[k].
extern "C" __global__ void qm_dorefa_stats_partial(const float* w, const float* dy, long long n,
    double* pmax, long long* parg, double* pdot)
{
    __shared__ double sv[QM_BLOCK];
    __shared__ long long si[QM_BLOCK];
    double best = -1.0, dot = 0.0;
    long long arg = -1;
    for (long long i = qm_first(); i < n; i += qm_stride()) {
        double t = tanh((double)w[i]);
        if (fabs(t) > best) {
            best = fabs(t);
            arg = i;
        }
        if (dy != NULL)
            dot += (double)dy[i] * t;
    }
    sv[threadIdx.x] = best;
    si[threadIdx.x] = arg;
    __syncthreads();
    qm_block_argmax(sv, si);
    if (threadIdx.x == 0) {
        pmax[blockIdx.x] = sv[0];
        parg[blockIdx.x] = si[0];
    }
    if (dy == NULL)
        return;
    __shared__ double sh[QM_BLOCK];
    dot = qm_block_sum(dot, sh);
    if (threadIdx.x == 0)
        pdot[blockIdx.x] = dot;
}

// qm_dorefa_stats_final runs as one block and reduces the partials of
// blocks blocks into stats[0] = M = max(max|tanh(w)|, 1e-12), stats[1] =
// Σ dy·tanh(w) (when pdot is not NULL) and *arg = the first index attaining
// the maximum (0 when there is none).
extern "C" __global__ void qm_dorefa_stats_final(const double* pmax, const long long* parg, const double* pdot,
    int blocks, double* stats, long long* arg)
{
    __shared__ double sv[QM_BLOCK];
    __shared__ long long si[QM_BLOCK];
    double best = -1.0;
    long long at = -1;
    for (int k = threadIdx.x; k < blocks; k += QM_BLOCK) {
        long long oi = parg[k];
        double ov = pmax[k];
        if (oi >= 0 && (at < 0 || ov > best || (ov == best && oi < at))) {
            best = ov;
            at = oi;
        }
    }
    sv[threadIdx.x] = best;
    si[threadIdx.x] = at;
    __syncthreads();
    qm_block_argmax(sv, si);
    if (pdot != NULL) {
        __shared__ double sh[QM_BLOCK];
        double dot = 0.0;
        for (int k = threadIdx.x; k < blocks; k += QM_BLOCK)
            dot += pdot[k];
        dot = qm_block_sum(dot, sh);
        if (threadIdx.x == 0)
            stats[1] = dot;
    }
    if (threadIdx.x == 0) {
        stats[0] = fmax(si[0] < 0 ? -1.0 : sv[0], 1e-12);
        *arg = si[0] < 0 ? 0 : si[0];
    }
}

// qm_dorefa_f32: y = 2·round(levels·(t/(2M) + 1/2))/levels − 1 with
// t = tanh(w) and M = stats[0], in double precision.
extern "C" __global__ void qm_dorefa_f32(const float* w, float* y, long long n, const double* stats, double levels)
{
    double m = stats[0];
    for (long long i = qm_first(); i < n; i += qm_stride()) {
        double t = tanh((double)w[i]);
        double q = rint(levels * (t / (2.0 * m) + 0.5)) / levels;
        y[i] = (float)(2.0 * q - 1.0);
    }
}

// qm_dorefa_backward_f32: dw += (dy/M − [i = arg]·sign(t)·Σdy·t/M²)·(1 − t²),
// the derivative of t/M through t = tanh(w) and M = |t[arg]|.
extern "C" __global__ void qm_dorefa_backward_f32(const float* w, const float* dy, float* dw, long long n,
    const double* stats, const long long* arg)
{
    double m = stats[0], dot = stats[1];
    long long at = *arg;
    for (long long i = qm_first(); i < n; i += qm_stride()) {
        double t = tanh((double)w[i]);
        double dt = (double)dy[i] / m;
        if (i == at)
            dt -= copysign(1.0, t) * dot / (m * m);
        dw[i] += (float)(dt * (1.0 - t * t));
    }
}
