// gather.cu: batch assembly from uint8 images resident on the device.
#include "common.cuh"

// QM_MAX_CHANNELS bounds the image channels GatherImages normalises.
#define QM_MAX_CHANNELS 64

// qm_norm holds the per-channel normalisation of GatherImages.
struct qm_norm {
    float mean[QM_MAX_CHANNELS];
    float std[QM_MAX_CHANNELS];
};

// qm_gather_images writes out [B,H,W,C] from src [nsrc,H,W,C] (uint8):
// image index[b], read through the H×W window whose top-left corner in the
// image zero-padded by pad is (crop[2b], crop[2b+1]) (no offset when crop
// is NULL), mirrored horizontally where flip[b] ≠ 0 (flip may be NULL), and
// normalised as (pixel/255 − mean[c])/std[c]; padding reads as pixel 0. An
// index outside [0, nsrc) is reported and its image left unwritten.
extern "C" __global__ void qm_gather_images(const unsigned char* src, const int* index, const int* crop,
    const int* flip, long long nsrc, int B, int H, int W, int C, int pad, qm_norm norm, float* out, int* status)
{
    long long n = (long long)B * H * W * C;
    for (long long i = qm_first(); i < n; i += qm_stride()) {
        long long p = i / C;
        int c = (int)(i - p * C);
        int x = (int)(p % W);
        long long t = p / W;
        int y = (int)(t % H);
        int b = (int)(t / H);
        int j = index[b];
        if (j < 0 || j >= nsrc) {
            qm_report(status, QM_STATUS_IMAGE_INDEX);
            continue;
        }
        int sy = y;
        int sx = (flip != NULL && flip[b] != 0) ? W - 1 - x : x;
        if (crop != NULL) {
            sy += crop[2 * b] - pad;
            sx += crop[2 * b + 1] - pad;
        }
        float v = 0.0f;
        if (sy >= 0 && sy < H && sx >= 0 && sx < W)
            v = (float)src[(((long long)j * H + sy) * W + sx) * C + c];
        out[i] = (v / 255.0f - norm.mean[c]) / norm.std[c];
    }
}
