//go:build !purego

#include "native.h"
#include "native_c.h"

// qm_bn_apply writes y = act(x·scale + shift) per channel.
CLONES
void qm_bn_apply(const float *restrict x, float *restrict y, long rows, int c, const float *restrict scale,
	const float *restrict shift, int act) {
	for (long r = 0; r < rows; r++) {
		const float *xs = x + r * c;
		float *ys = y + r * c;
		switch (act) {
		case ACT_RELU:
			for (int j = 0; j < c; j++) ys[j] = relu(xs[j] * scale[j] + shift[j]);
			break;
		case ACT_RELU6:
			for (int j = 0; j < c; j++) ys[j] = relu6(xs[j] * scale[j] + shift[j]);
			break;
		default:
			for (int j = 0; j < c; j++) ys[j] = xs[j] * scale[j] + shift[j];
		}
	}
}

// qm_bn_grad_sums adds Σ dy and Σ dy·x per channel into sd and sx, leaving
// out the elements where the fused activation (output y) is flat: their
// terms are +0, which changes no sum.
CLONES
void qm_bn_grad_sums(const float *restrict dy, const float *restrict x, const float *restrict y, long rows, int c,
	int act, double *restrict sd, double *restrict sx) {
	for (long r = 0; r < rows; r++) {
		const float *ds = dy + r * c, *xs = x + r * c, *ys = y + r * c;
		for (int j = 0; j < c; j++) {
			int on = !flat(act, ys[j]);
			float d = keep(ds[j], on), xv = keep(xs[j], on);
			sd[j] += (double)d;
			sx[j] += (double)d * (double)xv;
		}
	}
}

// qm_bn_grad_apply writes dx = dy·k + x·u + v per channel, dy taken as 0
// where the fused activation is flat (y may be NULL without one).
CLONES
void qm_bn_grad_apply(const float *restrict dy, const float *restrict x, const float *restrict y,
	float *restrict dx, long rows, int c, int act, const float *restrict k, const float *restrict u,
	const float *restrict v) {
	for (long r = 0; r < rows; r++) {
		const float *ds = dy + r * c, *xs = x + r * c;
		float *os = dx + r * c;
		if (!y) {
			for (int j = 0; j < c; j++) os[j] = ds[j] * k[j] + xs[j] * u[j] + v[j];
			continue;
		}
		const float *ys = y + r * c;
		for (int j = 0; j < c; j++) {
			float d = keep(ds[j], !flat(act, ys[j]));
			os[j] = d * k[j] + xs[j] * u[j] + v[j];
		}
	}
}
