//go:build purego

package cpu

import "github.com/qmulgpu/qmulgpu/engine"

// The purego build has no C kernels: every op runs its Go kernel.
const native = false

var useNative = false

func nativeIm2col(x, col []float32, n0, n1, grp int, g engine.ConvGeom)   { panic("cpu: no C kernels") }
func nativeCol2im(dcol, dx []float32, n0, n1, grp int, g engine.ConvGeom) { panic("cpu: no C kernels") }
func nativeColSums(x, y []float32, rows, c int, s1, s2 []float64)         { panic("cpu: no C kernels") }
func nativeBNApply(x, y []float32, rows, c int, scale, shift []float32, act int) {
	panic("cpu: no C kernels")
}
func nativeBNGradSums(dy, x, y []float32, rows, c, act int, sd, sx []float64) {
	panic("cpu: no C kernels")
}
func nativeBNGradApply(dy, x, y, dx []float32, rows, c, act int, k, u, v []float32) {
	panic("cpu: no C kernels")
}
func nativeActivate(x, y []float32, act int)               { panic("cpu: no C kernels") }
func nativeActivateGrad(x, dy, dx []float32, act int)      { panic("cpu: no C kernels") }
func nativeFakeQuant(x, y []float32, s, z, lo, hi float32) { panic("cpu: no C kernels") }
func nativeFakeQuantGrad(x, dy, dx []float32, s, z, lo, hi float32, accumulate bool) (in, above, below float64) {
	panic("cpu: no C kernels")
}
