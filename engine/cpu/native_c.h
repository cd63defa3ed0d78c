#include <stdint.h>
#include <string.h>

// Shared by the C kernels: function multi-versioning, so that one binary
// runs the AVX-512, AVX2 or baseline SSE code its CPU supports.
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

// Activations as in engine.Activation.
enum { ACT_NONE = 0, ACT_RELU = 1, ACT_RELU6 = 2 };

// relu is Go's max(t, 0): NaN stays NaN and −0 becomes +0.
static inline __attribute__((always_inline)) float relu(float t) { return (t > 0 || t != t) ? t : 0.0f; }

// relu6 is Go's min(max(t, 0), 6).
static inline __attribute__((always_inline)) float relu6(float t) {
	float m = relu(t);
	return (m < 6 || m != m) ? m : 6.0f;
}

// flat reports where a fused activation passes no gradient, as flat in
// batchnorm.go; bitwise operators rather than && and || keep it free of
// branches, so that loops over it vectorise.
static inline __attribute__((always_inline)) int flat(int act, float y) { return ((act != ACT_NONE) & (y <= 0)) | ((act == ACT_RELU6) & (y >= 6)); }

// keep returns v where on is 1 and +0 where it is 0, by masking v's bits:
// unlike a conditional expression, GCC turns this into vector code, and
// unlike v·on it gives +0 (not NaN) for an infinite v.
static inline __attribute__((always_inline)) float keep(float v, int on) {
	uint32_t b;
	memcpy(&b, &v, sizeof b);
	b &= -(uint32_t)on;
	memcpy(&v, &b, sizeof v);
	return v;
}
