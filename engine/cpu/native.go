//go:build !purego

package cpu

/*
#cgo CFLAGS: -O3 -std=c11
#include "native.h"
*/
import "C"

import (
	"unsafe"

	"github.com/qmulgpu/qmulgpu/engine"
)

// The float32 kernels of the hottest element-wise passes (BatchNorm, the
// activations, the fake quantizers, the column sums they share, and im2col
// and col2im) are written a second time in C, vectorised with GCC's function
// multi-versioning (AVX-512, AVX2 or SSE, chosen when the program starts).
// Go does not vectorise loops, and on the 2-core machine of
// docs/performance.md these passes took more than half of a MobileNetV2
// step and 45% of a small CNN's. Each C kernel does the same float
// operations as its Go twin in the same order, without contracting them
// into fused multiply-adds (-ffp-contract=off), so the two give the same
// bits; tests compare them. The Go kernels stay the reference, run float64,
// and run everything in the purego build, which has no C compiler.

// native says whether the C kernels are built in; useNative switches them
// off for the tests that compare them with the Go kernels.
const native = true

var useNative = true

// cFloats returns a pointer to v's first element (nil for an empty slice).
func cFloats(v []float32) *C.float {
	if len(v) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&v[0]))
}

func cDoubles(v []float64) *C.double {
	if len(v) == 0 {
		return nil
	}
	return (*C.double)(unsafe.Pointer(&v[0]))
}

func cConv(g engine.ConvGeom) C.qm_conv {
	return C.qm_conv{h: C.int(g.H), w: C.int(g.W), c: C.int(g.C), r: C.int(g.R), s: C.int(g.S), stride: C.int(g.Stride),
		pad: C.int(g.Pad), groups: C.int(g.Groups), oh: C.int(g.OutH()), ow: C.int(g.OutW())}
}

func nativeIm2col(x, col []float32, n0, n1, grp int, g engine.ConvGeom) {
	cg := cConv(g)
	C.qm_im2col(cFloats(x), cFloats(col), &cg, C.int(n0), C.int(n1), C.int(grp))
}

func nativeCol2im(dcol, dx []float32, n0, n1, grp int, g engine.ConvGeom) {
	cg := cConv(g)
	C.qm_col2im(cFloats(dcol), cFloats(dx), &cg, C.int(n0), C.int(n1), C.int(grp))
}

func nativeColSums(x, y []float32, rows, c int, s1, s2 []float64) {
	C.qm_col_sums(cFloats(x), cFloats(y), C.long(rows), C.int(c), cDoubles(s1), cDoubles(s2))
}

func nativeBNApply(x, y []float32, rows, c int, scale, shift []float32, act int) {
	C.qm_bn_apply(cFloats(x), cFloats(y), C.long(rows), C.int(c), cFloats(scale), cFloats(shift), C.int(act))
}

func nativeBNGradSums(dy, x, y []float32, rows, c, act int, sd, sx []float64) {
	C.qm_bn_grad_sums(cFloats(dy), cFloats(x), cFloats(y), C.long(rows), C.int(c), C.int(act), cDoubles(sd), cDoubles(sx))
}

func nativeBNGradApply(dy, x, y, dx []float32, rows, c, act int, k, u, v []float32) {
	C.qm_bn_grad_apply(cFloats(dy), cFloats(x), cFloats(y), cFloats(dx), C.long(rows), C.int(c), C.int(act),
		cFloats(k), cFloats(u), cFloats(v))
}

func nativeActivate(x, y []float32, act int) {
	C.qm_activate(cFloats(x), cFloats(y), C.long(len(x)), C.int(act))
}

func nativeActivateGrad(x, dy, dx []float32, act int) {
	C.qm_activate_grad(cFloats(x), cFloats(dy), cFloats(dx), C.long(len(x)), C.int(act))
}

func nativeFakeQuant(x, y []float32, s, z, lo, hi float32) {
	C.qm_fake_quant(cFloats(x), cFloats(y), C.long(len(x)), C.float(s), C.float(z), C.float(lo), C.float(hi))
}

// nativeFakeQuantGrad returns the sums inside, above and below the grid.
func nativeFakeQuantGrad(x, dy, dx []float32, s, z, lo, hi float32, accumulate bool) (in, above, below float64) {
	acc := 0
	if accumulate {
		acc = 1
	}
	var sums [3]float64
	C.qm_fake_quant_grad(cFloats(x), cFloats(dy), cFloats(dx), C.long(len(x)), C.float(s), C.float(z), C.float(lo),
		C.float(hi), C.int(acc), (*C.double)(unsafe.Pointer(&sums[0])))
	return sums[0], sums[1], sums[2]
}
