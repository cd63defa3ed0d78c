package cpu

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
)

// A convolution takes one of three paths: Winograd's F(4×4, 3×3) for
// float32 3×3 stride-1 convolutions with at least 16 input and output
// channels (conv_winograd.go), direct loops for depthwise ones
// (conv_depthwise.go) and im2col + GEMM for the rest (conv_im2col.go).
// --conv im2col (SetConv) sends the Winograd ones to im2col + GEMM too.

// SetConv implements engine.ConvPathChooser: "auto" lets Winograd take the
// convolutions it is faster for, "im2col" computes every convolution as
// im2col + GEMM, whose rounding is smaller (Winograd F(4×4, 3×3): up to
// 1.4e-5 of the largest output on ResNet-18's layers, F(2×2, 3×3) 7.6e-7;
// docs/performance.md); "cudnn" is for GPUs.
func (b *Backend) SetConv(mode string) error {
	switch mode {
	case "auto":
		b.im2colOnly = false
	case "im2col":
		b.im2colOnly = true
	case "cudnn":
		return fmt.Errorf("the %s backend has no cuDNN (use --device cuda)", b.Name())
	default:
		return fmt.Errorf("unknown convolution path %q", mode)
	}
	return nil
}

// ConvPath implements engine.ConvPathChooser. The CPU's algorithms are part
// of Describe, which every run records, so there is no separate line to
// print (a failing command's stderr stays one line).
func (b *Backend) ConvPath() string { return "" }

// convAlgorithms names the convolution algorithms in use, for Describe.
func (b *Backend) convAlgorithms() string {
	if b.im2colOnly || !native { // Winograd's transforms are C kernels
		return "im2col + GEMM"
	}
	return "Winograd F(4×4, 3×3) and im2col + GEMM"
}

// winograd is the Winograd algorithm for g on this backend, or nil.
func (b *Backend) winograd(g engine.ConvGeom) *winograd {
	if b.im2colOnly {
		return nil
	}
	return winogradFor(g)
}

func isDepthwise(g engine.ConvGeom) bool {
	return g.Groups > 1 && g.Groups == g.C && g.Groups == g.K
}

func isPointwise(g engine.ConvGeom) bool {
	return g.R == 1 && g.S == 1 && g.Stride == 1 && g.Pad == 0 && g.Groups == 1
}

// convArgs are the operands of Conv2d, Conv2dBackward and
// ConvPerSampleSqNorm (which writes norms).
type convArgs struct {
	x, w, y, dy, dx, dw *engine.Tensor
	g                   engine.ConvGeom
	norms               []float64
}

// Conv2d implements engine.Backend.
func (b *Backend) Conv2d(x, w, y *engine.Tensor, g engine.ConvGeom) {
	must(engine.CheckConv("conv", x, w, y, g))
	dispatch(b, opConvForward, x.DType, convArgs{x: x, w: w, y: y, g: g}, convForward[float32], convForward[float64])
}

// Conv2dBackward implements engine.Backend: the input gradient (when dx is
// given) and the weight gradient are two passes, timed as two op families.
func (b *Backend) Conv2dBackward(x, w, dy, dx, dw *engine.Tensor, g engine.ConvGeom) {
	must(engine.CheckConvBackward(x, w, dy, dx, dw, g))
	a := convArgs{x: x, w: w, dy: dy, dx: dx, dw: dw, g: g}
	if dx != nil {
		dispatch(b, opConvData, x.DType, a, convData[float32], convData[float64])
	}
	dispatch(b, opConvFilter, x.DType, a, convFilter[float32], convFilter[float64])
}

// convForward computes y = conv(x, w).
func convForward[T float](b *Backend, a convArgs) {
	x, w, y, g := floats[T](a.x), floats[T](a.w), floats[T](a.y), a.g
	switch wg := b.winograd(g); {
	case wg != nil && isFloat32[T]():
		wg.forward(b, any(x).([]float32), any(w).([]float32), any(y).([]float32), g)
	case isDepthwise(g):
		depthwiseForward(b, x, w, y, g)
	default:
		im2colForward[T](b, a)
	}
}

// convData computes dx = dy ⊛ w, the adjoint of the forward pass.
func convData[T float](b *Backend, a convArgs) {
	w, dy, dx, g := floats[T](a.w), floats[T](a.dy), floats[T](a.dx), a.g
	switch wg := b.winograd(g); {
	case wg != nil && isFloat32[T]():
		wg.data(b, any(w).([]float32), any(dy).([]float32), any(dx).([]float32), g)
	case isDepthwise(g):
		depthwiseData(b, w, dy, dx, g)
	default:
		im2colData[T](b, a)
	}
}

// convFilter accumulates the weight gradient dw.
func convFilter[T float](b *Backend, a convArgs) {
	x, dy, dw, g := floats[T](a.x), floats[T](a.dy), floats[T](a.dw), a.g
	switch wg := b.winograd(g); {
	case wg != nil && isFloat32[T]():
		wg.filter(b, any(x).([]float32), any(dy).([]float32), any(dw).([]float32), g)
	case isDepthwise(g):
		depthwiseFilter(b, x, dy, dw, g)
	default:
		im2colFilter[T](b, a)
	}
}

// addChunks adds the chunks' partial sums into dst in chunk order and
// returns their buffers. The elements are split across the threads; each
// element still sums its chunks in order, so the bits do not depend on the
// split.
func addChunks[T float](b *Backend, dst []T, partial [][]T) {
	if len(partial) > 0 {
		b.parallel(len(dst), minElems, func(_, lo, hi int) {
			d := dst[lo:hi]
			for _, p := range partial {
				for i, v := range p[lo:hi] {
					d[i] += v
				}
			}
		})
	}
	for _, p := range partial {
		putScratch(b, p)
	}
}
