// The CPU backend's float32 kernels in C (see native.go): each does exactly
// the arithmetic of its Go twin, in the same order, so that both give the
// same bits; the C code is only vectorised.

// conv_im2col.c: the geometry of engine.ConvGeom with the output size.
typedef struct {
	int h, w, c, r, s, stride, pad, groups, oh, ow;
} qm_conv;

void qm_im2col(const float *x, float *col, const qm_conv *g, int n0, int n1, int grp);
void qm_col2im(const float *dcol, float *dx, const qm_conv *g, int n0, int n1, int grp);

// reduce.c
void qm_col_sums(const float *x, const float *y, long rows, int c, double *s1, double *s2);

// batchnorm.c
void qm_bn_apply(const float *x, float *y, long rows, int c, const float *scale, const float *shift, int act);
void qm_bn_grad_sums(const float *dy, const float *x, const float *y, long rows, int c, int act, double *sd,
	double *sx);
void qm_bn_grad_apply(const float *dy, const float *x, const float *y, float *dx, long rows, int c, int act,
	const float *k, const float *u, const float *v);

// activation.c
void qm_activate(const float *x, float *y, long n, int act);
void qm_activate_grad(const float *x, const float *dy, float *dx, long n, int act);

// fakequant.c
void qm_fake_quant(const float *x, float *y, long n, float s, float z, float lo, float hi);
void qm_fake_quant_grad(const float *x, const float *dy, float *dx, long n, float s, float z, float lo, float hi,
	int accumulate, double *sums);
