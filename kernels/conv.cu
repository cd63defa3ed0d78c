// conv.cu: im2col/col2im for convolutions computed as GEMMs, and direct
// kernels for depthwise convolutions.
//
// Activations are NHWC, weights [K, R, S, C/groups]. The Go side keeps every
// pixel count (N·H·W and N·OH·OW) at most 2^30 and every column buffer below
// 2^31 elements, so 32-bit ints index pixels and columns; element offsets
// into activations are computed in 64 bits.
//
// The 2-D kernels run blocks of QM_TILE_X × QM_TILE_Y threads: x runs over
// the contiguous dimension (a column of the column matrix, or a channel) and
// y, grid-stride, over pixels.
#include "common.cuh"

// qm_im2col_f32 fills col [rows, R·S·cg] for output pixels p0 .. p0+rows-1
// of the batch (pixel p = (n·OH + oy)·OW + ox) and channel group grp: row q
// holds the input window of pixel p0+q in (r, s, c) order, zero where the
// window leaves the image. cg = C/groups.
extern "C" __global__ void qm_im2col_f32(const float* x, float* col, int p0, int rows,
    int H, int W, int C, int OH, int OW, int R, int S, int stride, int pad, int cg, int grp)
{
    int rsc = R * S * cg;
    int k = blockIdx.x * QM_TILE_X + threadIdx.x;
    if (k >= rsc)
        return;
    int c = k % cg;
    int rs = k / cg;
    int s = rs % S;
    int r = rs / S;
    for (int q = blockIdx.y * QM_TILE_Y + threadIdx.y; q < rows; q += gridDim.y * QM_TILE_Y) {
        int p = p0 + q;
        int ox = p % OW;
        int t = p / OW;
        int oy = t % OH;
        int n = t / OH;
        int iy = oy * stride - pad + r;
        int ix = ox * stride - pad + s;
        float v = 0.0f;
        if (iy >= 0 && iy < H && ix >= 0 && ix < W)
            v = x[(((long long)n * H + iy) * W + ix) * C + grp * cg + c];
        col[(long long)q * rsc + k] = v;
    }
}

// qm_col2im_f32 is the adjoint of qm_im2col_f32: for every input pixel of
// images n0 .. n0+nimg-1 (the images that output pixels p0 .. p0+rows-1
// belong to) and channel c of group grp, it adds to dx the entries of dcol
// [rows, R·S·cg] whose output pixel lies in the chunk and whose window
// covers the input pixel. Each thread owns one dx element: no atomics.
extern "C" __global__ void qm_col2im_f32(const float* dcol, float* dx, int p0, int rows, int n0, int nimg,
    int H, int W, int C, int OH, int OW, int R, int S, int stride, int pad, int cg, int grp)
{
    int c = blockIdx.x * QM_TILE_X + threadIdx.x;
    if (c >= cg)
        return;
    int rsc = R * S * cg;
    int total = nimg * H * W;
    for (int q = blockIdx.y * QM_TILE_Y + threadIdx.y; q < total; q += gridDim.y * QM_TILE_Y) {
        int ix = q % W;
        int t = q / W;
        int iy = t % H;
        int n = n0 + t / H;
        float sum = 0.0f;
        // Output row oy covers iy through kernel row r = iy + pad - oy·stride.
        for (int r = 0; r < R; r++) {
            int oy = qm_window_out(iy, r, pad, stride, OH);
            if (oy < 0)
                continue;
            for (int s = 0; s < S; s++) {
                int ox = qm_window_out(ix, s, pad, stride, OW);
                if (ox < 0)
                    continue;
                int p = (n * OH + oy) * OW + ox;
                if (p < p0 || p >= p0 + rows)
                    continue;
                sum += dcol[(long long)(p - p0) * rsc + (r * S + s) * cg + c];
            }
        }
        dx[(((long long)n * H + iy) * W + ix) * C + grp * cg + c] += sum;
    }
}

// qm_dwconv_f32 is a depthwise convolution (groups = C = K): y [N,OH,OW,C]
// from x [N,H,W,C] and w [C,R,S].
extern "C" __global__ void qm_dwconv_f32(const float* x, const float* w, float* y,
    int N, int H, int W, int C, int OH, int OW, int R, int S, int stride, int pad)
{
    int c = blockIdx.x * QM_TILE_X + threadIdx.x;
    if (c >= C)
        return;
    const float* wc = w + (long long)c * R * S;
    int pixels = N * OH * OW;
    for (int p = blockIdx.y * QM_TILE_Y + threadIdx.y; p < pixels; p += gridDim.y * QM_TILE_Y) {
        int ox = p % OW;
        int t = p / OW;
        int oy = t % OH;
        int n = t / OH;
        float acc = 0.0f;
        for (int r = 0; r < R; r++) {
            int iy = oy * stride - pad + r;
            if (iy < 0 || iy >= H)
                continue;
            for (int s = 0; s < S; s++) {
                int ix = ox * stride - pad + s;
                if (ix < 0 || ix >= W)
                    continue;
                acc += x[(((long long)n * H + iy) * W + ix) * C + c] * wc[r * S + s];
            }
        }
        y[(long long)p * C + c] = acc;
    }
}

// qm_dwconv_dx_f32 is the input gradient of qm_dwconv_f32: every element of
// dx [N,H,W,C] gathers dy·w over the output pixels whose window covers it.
extern "C" __global__ void qm_dwconv_dx_f32(const float* dy, const float* w, float* dx,
    int N, int H, int W, int C, int OH, int OW, int R, int S, int stride, int pad)
{
    int c = blockIdx.x * QM_TILE_X + threadIdx.x;
    if (c >= C)
        return;
    const float* wc = w + (long long)c * R * S;
    int pixels = N * H * W;
    for (int q = blockIdx.y * QM_TILE_Y + threadIdx.y; q < pixels; q += gridDim.y * QM_TILE_Y) {
        int ix = q % W;
        int t = q / W;
        int iy = t % H;
        int n = t / H;
        float sum = 0.0f;
        for (int r = 0; r < R; r++) {
            int oy = qm_window_out(iy, r, pad, stride, OH);
            if (oy < 0)
                continue;
            for (int s = 0; s < S; s++) {
                int ox = qm_window_out(ix, s, pad, stride, OW);
                if (ox < 0)
                    continue;
                sum += dy[(((long long)n * OH + oy) * OW + ox) * C + c] * wc[r * S + s];
            }
        }
        dx[(long long)q * C + c] = sum;
    }
}

// qm_dwconv_dw_partial_f32 is the first kernel of the weight gradient of
// qm_dwconv_f32. It runs on a grid of (ceil(C/QM_TILE_X), R·S, splits):
// block (cx, rs, z) adds dy[p, c]·x[input of p at tap rs, c] over output
// pixels p of split z (the z-th of gridDim.z equal ranges) for its
// QM_TILE_X channels and writes partial[(z·R·S + rs)·C + c].
extern "C" __global__ void qm_dwconv_dw_partial_f32(const float* x, const float* dy, float* partial,
    int N, int H, int W, int C, int OH, int OW, int R, int S, int stride, int pad)
{
    __shared__ float sh[QM_TILE_Y][QM_TILE_X];
    int c = blockIdx.x * QM_TILE_X + threadIdx.x;
    int rs = blockIdx.y;
    int r = rs / S;
    int s = rs % S;
    int pixels = N * OH * OW;
    int lo = (int)((long long)pixels * blockIdx.z / gridDim.z);
    int hi = (int)((long long)pixels * (blockIdx.z + 1) / gridDim.z);
    float acc = 0.0f;
    if (c < C) {
        for (int p = lo + threadIdx.y; p < hi; p += QM_TILE_Y) {
            int ox = p % OW;
            int t = p / OW;
            int oy = t % OH;
            int n = t / OH;
            int iy = oy * stride - pad + r;
            int ix = ox * stride - pad + s;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                continue;
            acc += dy[(long long)p * C + c] * x[(((long long)n * H + iy) * W + ix) * C + c];
        }
    }
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float sum = 0.0f;
        for (int k = 0; k < QM_TILE_Y; k++)
            sum += sh[k][threadIdx.x];
        partial[((long long)blockIdx.z * R * S + rs) * C + c] = sum;
    }
}

// qm_dwconv_dw_final_f32: dw[c, rs] += Σ_z partial[(z·RS + rs)·C + c] for
// the weight gradient dw [C, R·S].
extern "C" __global__ void qm_dwconv_dw_final_f32(const float* partial, float* dw, int C, int RS, int splits)
{
    long long n = (long long)C * RS;
    for (long long j = qm_first(); j < n; j += qm_stride()) {
        int c = (int)(j / RS);
        int rs = (int)(j - (long long)c * RS);
        double sum = 0.0;
        for (int z = 0; z < splits; z++)
            sum += (double)partial[((long long)z * RS + rs) * C + c];
        dw[j] += (float)sum;
    }
}
