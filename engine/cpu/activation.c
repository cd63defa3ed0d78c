//go:build !purego

#include "native.h"
#include "native_c.h"

// qm_activate writes y = act(x) for ReLU and ReLU6.
CLONES
void qm_activate(const float *restrict x, float *restrict y, long n, int act) {
	if (act == ACT_RELU6) {
		for (long i = 0; i < n; i++) y[i] = relu6(x[i]);
		return;
	}
	for (long i = 0; i < n; i++) y[i] = relu(x[i]);
}

// qm_activate_grad writes dx = dy where the activation of x is not flat,
// else 0.
CLONES
void qm_activate_grad(const float *x, const float *dy, float *dx, long n, int act) {
	// dx may be dy (engine.Layers.ActivateBackward), so no restrict here.
	for (long i = 0; i < n; i++) dx[i] = keep(dy[i], !flat(act, x[i]));
}
