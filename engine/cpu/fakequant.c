//go:build !purego

#include <string.h>

#include "native.h"
#include "native_c.h"

// FQ_BLOCK and FQ_LANES are fqBlock and fqLanes of fakequant.go.
#define FQ_BLOCK 256
#define FQ_LANES 16

// round_small rounds half to even for |v| < 2^22, as roundSmall.
static inline __attribute__((always_inline)) float round_small(float v) {
	const float m = 12582912.0f; // 1.5·2^23
	return (v + m) - m;
}

// qm_fake_quant writes y = s·(round(clamp(x/s + z, lo, hi)) − z).
CLONES
void qm_fake_quant(const float *x, float *y, long n, float s, float z, float lo, float hi) {
	for (long i = 0; i < n; i++) {
		float v = x[i] / s + z;
		v = v < lo ? lo : v;
		v = v > hi ? hi : v;
		y[i] = s * (round_small(v) - z);
	}
}

// fq_grad_group does FQ_LANES consecutive elements of qm_fake_quant_grad,
// element l into lane l of in, above and below; mode is 0 (no dx), 1 (write
// dx) or 2 (add to dx). Written lane by lane without branches, so that the
// compiler turns the loop into vector code for each clone's instruction set
// (GCC's generic vectors lower comparisons element by element in a function
// with a target attribute).
static inline __attribute__((always_inline)) void fq_grad_group(const float *restrict x, const float *restrict dy,
	float *restrict dx, float s, float z, float lo, float hi, int mode, float *restrict in, float *restrict above,
	float *restrict below) {
	for (int l = 0; l < FQ_LANES; l++) {
		float v = x[l] / s + z, d = dy[l];
		int below_ = v < lo, above_ = (v > hi) & !below_, on = !(below_ | above_);
		in[l] += keep(d * (round_small(v) - v), on);
		above[l] += keep(d, above_);
		below[l] += keep(d, below_);
		if (mode == 1) dx[l] = keep(d, on);
		if (mode == 2) dx[l] = dx[l] + keep(d, on);
	}
}

// fq_grad_blocks is qm_fake_quant_grad for one mode.
static inline __attribute__((always_inline)) void fq_grad_blocks(const float *x, const float *dy, float *dx, long n,
	float s, float z, float lo, float hi, int mode, double *sums) {
	for (long b0 = 0; b0 < n; b0 += FQ_BLOCK) {
		long b1 = b0 + FQ_BLOCK < n ? b0 + FQ_BLOCK : n;
		float in[FQ_LANES] = {0}, above[FQ_LANES] = {0}, below[FQ_LANES] = {0};
		long i = b0;
		for (; i + FQ_LANES <= b1; i += FQ_LANES) {
			fq_grad_group(x + i, dy + i, mode ? dx + i : NULL, s, z, lo, hi, mode, in, above, below);
		}
		if (i < b1) {
			// The last, partial group, padded with dy = 0: its terms are
			// ±0, which change no sum.
			float px[FQ_LANES] = {0}, pdy[FQ_LANES] = {0}, pdx[FQ_LANES] = {0};
			size_t rest = (size_t)(b1 - i) * sizeof(float);
			memcpy(px, x + i, rest);
			memcpy(pdy, dy + i, rest);
			if (mode == 2) memcpy(pdx, dx + i, rest);
			fq_grad_group(px, pdy, pdx, s, z, lo, hi, mode, in, above, below);
			if (mode != 0) memcpy(dx + i, pdx, rest);
		}
		for (int l = 0; l < FQ_LANES; l++) {
			sums[0] += (double)in[l];
			sums[1] += (double)above[l];
			sums[2] += (double)below[l];
		}
	}
}

// qm_fake_quant_grad writes (or adds, with accumulate) the straight-through
// gradient into dx (NULL: none) and adds to sums[0..2] the sums inside,
// above and below the grid: in blocks of FQ_BLOCK elements, element i of a
// block summed in float in lane i mod FQ_LANES, each lane widened to double
// at the block's end, in lane order.
CLONES
void qm_fake_quant_grad(const float *x, const float *dy, float *dx, long n, float s, float z, float lo, float hi,
	int accumulate, double *sums) {
	if (!dx) {
		fq_grad_blocks(x, dy, dx, n, s, z, lo, hi, 0, sums);
	} else if (accumulate) {
		fq_grad_blocks(x, dy, dx, n, s, z, lo, hi, 2, sums);
	} else {
		fq_grad_blocks(x, dy, dx, n, s, z, lo, hi, 1, sums);
	}
}
