//go:build !purego

#include "native.h"
#include "native_c.h"

// qm_col_sums adds Σ_rows x[row][j] into s1[j] and, when y is given,
// Σ_rows x[row][j]·y[row][j] into s2[j], every term widened to double: the
// rows of columnSums' chunk, in order.
CLONES
void qm_col_sums(const float *restrict x, const float *restrict y, long rows, int c, double *restrict s1,
	double *restrict s2) {
	for (long r = 0; r < rows; r++) {
		const float *xs = x + r * c;
		if (!y) {
			for (int j = 0; j < c; j++) {
				s1[j] += (double)xs[j];
			}
			continue;
		}
		const float *ys = y + r * c;
		for (int j = 0; j < c; j++) {
			s1[j] += (double)xs[j];
			s2[j] += (double)xs[j] * (double)ys[j];
		}
	}
}
