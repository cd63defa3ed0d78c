//go:build !purego

#include "native.h"
#include "native_c.h"

// The column matrix of im2col + GEMM: im2col and col2im of conv_im2col.go,
// the same copies and the same additions in the same order.

// qm_im2col writes, for samples [n0, n1) and group grp, one row per output
// pixel holding the input window in (r, s, c) order.
CLONES
void qm_im2col(const float *restrict x, float *restrict col, const qm_conv *g, int n0, int n1, int grp) {
	const int cg = g->c / g->groups, sc = g->s * cg, rsc = g->r * sc;
	long row = 0;
	for (int n = n0; n < n1; n++) {
		const float *img = x + (long)n * g->h * g->w * g->c;
		for (int oy = 0; oy < g->oh; oy++) {
			for (int ox = 0; ox < g->ow; ox++, row++) {
				float *dst = col + row * rsc;
				const int ix0 = ox * g->stride - g->pad;
				const int inside = ix0 >= 0 && ix0 + g->s <= g->w && g->groups == 1;
				for (int r = 0; r < g->r; r++) {
					const int iy = oy * g->stride - g->pad + r;
					float *seg = dst + r * sc;
					if (iy < 0 || iy >= g->h) {
						for (int i = 0; i < sc; i++) seg[i] = 0;
						continue;
					}
					const float *line = img + (long)iy * g->w * g->c;
					if (inside) {
						const float *src = line + ix0 * g->c;
						for (int i = 0; i < sc; i++) seg[i] = src[i];
						continue;
					}
					for (int s = 0; s < g->s; s++) {
						const int ix = ix0 + s;
						float *d = seg + s * cg;
						if (ix < 0 || ix >= g->w) {
							for (int c = 0; c < cg; c++) d[c] = 0;
						} else {
							const float *src = line + ix * g->c + grp * cg;
							for (int c = 0; c < cg; c++) d[c] = src[c];
						}
					}
				}
			}
		}
	}
}

// qm_col2im adds the rows of dcol back into dx: the adjoint of qm_im2col.
CLONES
void qm_col2im(const float *restrict dcol, float *restrict dx, const qm_conv *g, int n0, int n1, int grp) {
	const int cg = g->c / g->groups, sc = g->s * cg, rsc = g->r * sc;
	long row = 0;
	for (int n = n0; n < n1; n++) {
		float *img = dx + (long)n * g->h * g->w * g->c;
		for (int oy = 0; oy < g->oh; oy++) {
			for (int ox = 0; ox < g->ow; ox++, row++) {
				const float *src = dcol + row * rsc;
				const int ix0 = ox * g->stride - g->pad;
				const int inside = ix0 >= 0 && ix0 + g->s <= g->w && g->groups == 1;
				for (int r = 0; r < g->r; r++) {
					const int iy = oy * g->stride - g->pad + r;
					if (iy < 0 || iy >= g->h) {
						continue;
					}
					float *line = img + (long)iy * g->w * g->c;
					if (inside) {
						// The window row is one contiguous run of S·C values.
						float *d = line + ix0 * g->c;
						const float *v = src + r * sc;
						for (int i = 0; i < sc; i++) d[i] += v[i];
						continue;
					}
					for (int s = 0; s < g->s; s++) {
						const int ix = ix0 + s;
						if (ix < 0 || ix >= g->w) {
							continue;
						}
						float *d = line + ix * g->c + grp * cg;
						const float *v = src + (r * g->s + s) * cg;
						for (int c = 0; c < cg; c++) d[c] += v[c];
					}
				}
			}
		}
	}
}
