//go:build !purego

// Winograd transforms for 3×3 stride-1 convolutions (see conv_winograd.go).
// Every transform here is one shape of the same operation,
//
//     out[ξ][ν] = Σ_i Σ_j R[ξ][i] · R[ν][j] · in[i][j],
//
// applied to vectors of channels (NHWC keeps them contiguous): each in[i][j]
// and out[ξ][ν] is a pointer to a run of channels, or NULL for an input of
// zeros (padding) and an output that is not wanted (past the image's edge).
// The matrices come from the caller, so that the transforms are data here.

#include <stddef.h>
#include <string.h>

#include "conv_winograd.h"

// The transforms may contract a·b + c into fused multiply-adds (cgo builds
// the package with -std=c11, which forbids it elsewhere): Winograd results
// are bounded against float64, not compared bit for bit.
#pragma GCC optimize("fp-contract=fast")

// The transforms are vectorised over 16 channels at a time; GCC's vector
// extension lowers this to one AVX-512 register, two AVX2 ones or four SSE
// ones in the clones below, into which the transforms are inlined.
typedef float lanes __attribute__((vector_size(64), aligned(4)));

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

// TRANSFORM defines NAME(R, in, out, c, accumulate) for an NO×NI matrix R:
// out = R·in·Rᵀ for the lanes of type T at channel offset c of every
// input and output. Both passes are dense products over compile-time sizes,
// so that the compiler unrolls them and keeps the sums in registers; a zero
// coefficient costs a multiply-add but changes nothing.
#define TRANSFORM(NAME, T, NI, NO)                                                          \
	static inline __attribute__((always_inline)) void NAME(const float *R, const float *const *in, \
		float *const *out, int c, int accumulate) {                                         \
		T tmp[NO][NI];                                                                      \
		_Pragma("GCC unroll 8") for (int j = 0; j < NI; j++) {                              \
			T col[NI];                                                                      \
			_Pragma("GCC unroll 8") for (int i = 0; i < NI; i++) {                          \
				const float *p = in[i * NI + j];                                            \
				if (p) {                                                                    \
					memcpy(&col[i], p + c, sizeof(T));                                      \
				} else {                                                                    \
					memset(&col[i], 0, sizeof(T));                                          \
				}                                                                           \
			}                                                                               \
			_Pragma("GCC unroll 8") for (int x = 0; x < NO; x++) {                          \
				T s = R[x * NI] * col[0];                                                   \
				_Pragma("GCC unroll 8") for (int i = 1; i < NI; i++) s += R[x * NI + i] * col[i]; \
				tmp[x][j] = s;                                                              \
			}                                                                               \
		}                                                                                   \
		_Pragma("GCC unroll 8") for (int x = 0; x < NO; x++) {                              \
			_Pragma("GCC unroll 8") for (int y = 0; y < NO; y++) {                          \
				T s = R[y * NI] * tmp[x][0];                                                \
				_Pragma("GCC unroll 8") for (int j = 1; j < NI; j++) s += R[y * NI + j] * tmp[x][j]; \
				float *p = out[x * NO + y];                                                 \
				if (!p) {                                                                   \
					continue;                                                               \
				}                                                                           \
				if (accumulate) {                                                           \
					T v;                                                                    \
					memcpy(&v, p + c, sizeof(T));                                           \
					s += v;                                                                 \
				}                                                                           \
				memcpy(p + c, &s, sizeof(T));                                               \
			}                                                                               \
		}                                                                                   \
	}

// SHAPE defines transform_NI_NO over every channel in [0, len): 16 at a
// time, then one at a time.
#define SHAPE(NI, NO)                                                                       \
	TRANSFORM(lanes_##NI##_##NO, lanes, NI, NO)                                            \
	TRANSFORM(one_##NI##_##NO, float, NI, NO)                                              \
	static inline __attribute__((always_inline)) void transform_##NI##_##NO(const float *R, \
		const float *const *in, float *const *out, int len, int accumulate) {               \
		int c = 0;                                                                          \
		for (; c + 16 <= len; c += 16) lanes_##NI##_##NO(R, in, out, c, accumulate);        \
		for (; c < len; c++) one_##NI##_##NO(R, in, out, c, accumulate);                    \
	}

// The shapes F(2×2, 3×3) and F(4×4, 3×3) need: inputs (a → a), outputs
// (a → m), weights (3 → a), output gradients (m → a), weight gradients
// (a → 3).
SHAPE(4, 4)
SHAPE(4, 2)
SHAPE(3, 4)
SHAPE(2, 4)
SHAPE(4, 3)
SHAPE(6, 6)
SHAPE(6, 4)
SHAPE(3, 6)
SHAPE(4, 6)
SHAPE(6, 3)

// Each entry point uses the two shapes it needs, F(4×4, 3×3)'s and
// F(2×2, 3×3)'s, by the size a of the transform.
#define BY_A(A, BIG, SMALL) ((A) == 6 ? (BIG) : (SMALL))

// tile_origin returns the sample of tile t and its top-left corner in
// tiles of m.
static inline int tile_origin(const wino_geom *g, long t, int *ty, int *tx) {
	int per = g->th * g->tw;
	int n = (int)(t / per), r = (int)(t % per);
	*ty = r / g->tw * g->m;
	*tx = r % g->tw * g->m;
	return n;
}

CLONES
void wino_input(const float *bt, const float *x, int c, const wino_geom *g, long t0, long t1, float *v) {
	const float *in[WINO_MAX_A * WINO_MAX_A];
	float *out[WINO_MAX_A * WINO_MAX_A];
	const long nt = t1 - t0;
	for (long t = t0; t < t1; t++) {
		int ty, tx, n = tile_origin(g, t, &ty, &tx);
		for (int i = 0; i < g->a; i++) {
			int iy = ty - g->pad + i;
			for (int j = 0; j < g->a; j++) {
				int ix = tx - g->pad + j;
				int inside = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w;
				in[i * g->a + j] = inside ? x + (((long)n * g->h + iy) * g->w + ix) * c : NULL;
				out[i * g->a + j] = v + ((i * g->a + j) * nt + (t - t0)) * (long)c;
			}
		}
		BY_A(g->a, transform_6_6(bt, in, out, c, 0), transform_4_4(bt, in, out, c, 0));
	}
}

CLONES
void wino_output(const float *at, const float *mm, int k, const wino_geom *g, long t0, long t1, float *y) {
	const float *in[WINO_MAX_A * WINO_MAX_A];
	float *out[WINO_MAX_A * WINO_MAX_A];
	const long nt = t1 - t0;
	for (long t = t0; t < t1; t++) {
		int ty, tx, n = tile_origin(g, t, &ty, &tx);
		for (int p = 0; p < g->a * g->a; p++) {
			in[p] = mm + (p * nt + (t - t0)) * (long)k;
		}
		for (int i = 0; i < g->m; i++) {
			for (int j = 0; j < g->m; j++) {
				int oy = ty + i, ox = tx + j;
				int inside = oy < g->oh && ox < g->ow;
				out[i * g->m + j] = inside ? y + (((long)n * g->oh + oy) * g->ow + ox) * k : NULL;
			}
		}
		BY_A(g->a, transform_6_4(at, in, out, k, 0), transform_4_2(at, in, out, k, 0));
	}
}

CLONES
void wino_grad_output(const float *a, const float *dy, int k, const wino_geom *g, long t0, long t1, float *dyh) {
	const float *in[WINO_MAX_A * WINO_MAX_A];
	float *out[WINO_MAX_A * WINO_MAX_A];
	const long nt = t1 - t0;
	for (long t = t0; t < t1; t++) {
		int ty, tx, n = tile_origin(g, t, &ty, &tx);
		for (int i = 0; i < g->m; i++) {
			for (int j = 0; j < g->m; j++) {
				int oy = ty + i, ox = tx + j;
				int inside = oy < g->oh && ox < g->ow;
				in[i * g->m + j] = inside ? dy + (((long)n * g->oh + oy) * g->ow + ox) * k : NULL;
			}
		}
		for (int p = 0; p < g->a * g->a; p++) {
			out[p] = dyh + (p * nt + (t - t0)) * (long)k;
		}
		BY_A(g->a, transform_4_6(a, in, out, k, 0), transform_2_4(a, in, out, k, 0));
	}
}

CLONES
void wino_weights(const float *gm, int a, const float *w9, int cin, int kout, int ci0, int ci1, float *u) {
	const float *in[9];
	float *out[WINO_MAX_A * WINO_MAX_A];
	for (int ci = ci0; ci < ci1; ci++) {
		for (int p = 0; p < 9; p++) {
			in[p] = w9 + ((long)p * cin + ci) * kout;
		}
		for (int p = 0; p < a * a; p++) {
			out[p] = u + ((long)p * cin + ci) * kout;
		}
		BY_A(a, transform_3_6(gm, in, out, kout, 0), transform_3_4(gm, in, out, kout, 0));
	}
}

CLONES
void wino_weight_grad(const float *gt, int a, const float *dwh, int k, int c, int k0, int k1, float *dw) {
	const float *in[WINO_MAX_A * WINO_MAX_A];
	float *out[9];
	for (int kk = k0; kk < k1; kk++) {
		for (int p = 0; p < a * a; p++) {
			in[p] = dwh + ((long)p * k + kk) * c;
		}
		for (int p = 0; p < 9; p++) {
			out[p] = dw + ((long)kk * 9 + p) * c;
		}
		BY_A(a, transform_6_3(gt, in, out, c, 1), transform_4_3(gt, in, out, c, 1));
	}
}
