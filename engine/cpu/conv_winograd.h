// Winograd transforms for 3×3 stride-1 convolutions; see conv_winograd.c.

#define WINO_MAX_A 8

// wino_geom is the tiling of one convolution: input h×w with padding pad,
// output oh×ow, tiles of m×m outputs from a×a inputs (a = m + 2), th×tw
// tiles per sample. Tiles are numbered sample by sample, row by row.
typedef struct {
	int h, w, oh, ow, pad;
	int m, a, th, tw;
} wino_geom;

// wino_input writes Bᵀ·d·B of tiles [t0, t1) of x (NHWC, c channels) into
// v, laid out [a·a][t1−t0][c].
void wino_input(const float *bt, const float *x, int c, const wino_geom *g, long t0, long t1, float *v);

// wino_output writes Aᵀ·M·A of tiles [t0, t1) from mm ([a·a][t1−t0][k])
// into y (NHWC, k channels), leaving out what lies past the output's edge.
void wino_output(const float *at, const float *mm, int k, const wino_geom *g, long t0, long t1, float *y);

// wino_grad_output writes A·dy·Aᵀ of the output tiles [t0, t1) of dy (NHWC,
// k channels) into dyh, laid out [a·a][t1−t0][k].
void wino_grad_output(const float *a, const float *dy, int k, const wino_geom *g, long t0, long t1, float *dyh);

// wino_weights writes G·w·Gᵀ of w9 ([3][3][cin][kout]) into u
// ([a·a][cin][kout]) for the input channels [ci0, ci1).
void wino_weights(const float *gm, int a, const float *w9, int cin, int kout, int ci0, int ci1, float *u);

// wino_weight_grad adds Gᵀ·Ŵ·G of dwh ([a·a][k][c]) into dw ([k][3][3][c])
// for the output channels [k0, k1).
void wino_weight_grad(const float *gt, int a, const float *dwh, int k, int c, int k0, int k1, float *dw);
