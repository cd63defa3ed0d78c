//go:build !purego

package cpu

/*
#cgo CFLAGS: -O3
#include "conv_winograd.h"
*/
import "C"

import (
	"unsafe"

	"github.com/qmulgpu/qmulgpu/engine"
)

// Winograd's minimal filtering F(m×m, 3×3) computes an m×m tile of a 3×3
// stride-1 convolution from an a×a tile of its input (a = m + 2) with a·a
// multiplications per channel pair instead of 9·m·m:
//
//	Y = Aᵀ·[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A
//
// Summed over input channels, the ⊙ becomes one GEMM per point of the a×a
// tile: [tiles × C]·[C × K]. The transforms run in C (conv_winograd.c),
// vectorised over the channels that NHWC keeps contiguous; the GEMMs are
// OpenBLAS's. The input gradient is the forward convolution of dy with the
// flipped, transposed weights, and the weight gradient is the adjoint of
// the forward pass: dg = Σ_tiles Gᵀ·[(A·dY·Aᵀ) ⊙ (Bᵀ·d·B)]·G.
type winograd struct {
	m, a int
	// bt (a×a), g (a×3) and at (m×a) are Bᵀ, G and Aᵀ; gt (3×a) and aa
	// (a×m) are Gᵀ and A.
	bt, g, at, gt, aa []float32
}

// newWinograd makes the algorithm from Bᵀ, G and Aᵀ, row-major.
func newWinograd(m int, bt, g, at []float64) *winograd {
	a := m + 2
	w := &winograd{m: m, a: a, bt: f32s(bt), g: f32s(g), at: f32s(at)}
	w.gt = transpose32(w.g, a, 3)
	w.aa = transpose32(w.at, m, a)
	return w
}

// winograd23 is F(2×2, 3×3) at the points 0, 1, −1 and ∞ (Lavin and Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016).
var winograd23 = newWinograd(2,
	[]float64{
		1, 0, -1, 0,
		0, 1, 1, 0,
		0, -1, 1, 0,
		0, 1, 0, -1,
	},
	[]float64{
		1, 0, 0,
		0.5, 0.5, 0.5,
		0.5, -0.5, 0.5,
		0, 0, 1,
	},
	[]float64{
		1, 1, 1, 0,
		0, 1, -1, -1,
	})

// winograd43 is F(4×4, 3×3) at the points 0, ±1, ±2 and ∞ (ibid.).
var winograd43 = newWinograd(4,
	[]float64{
		4, 0, -5, 0, 1, 0,
		0, -4, -4, 1, 1, 0,
		0, 4, -4, -1, 1, 0,
		0, -2, -1, 2, 1, 0,
		0, 2, -1, -2, 1, 0,
		0, 4, 0, -5, 0, 1,
	},
	[]float64{
		1.0 / 4, 0, 0,
		-1.0 / 6, -1.0 / 6, -1.0 / 6,
		-1.0 / 6, 1.0 / 6, -1.0 / 6,
		1.0 / 24, 1.0 / 12, 1.0 / 6,
		1.0 / 24, -1.0 / 12, 1.0 / 6,
		0, 0, 1,
	},
	[]float64{
		1, 1, 1, 1, 1, 0,
		0, 1, -1, 2, -2, 0,
		0, 1, 1, 4, 4, 0,
		0, 1, -1, 8, -8, 1,
	})

func f32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func transpose32(m []float32, rows, cols int) []float32 {
	t := make([]float32, len(m))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			t[j*rows+i] = m[i*cols+j]
		}
	}
	return t
}

// winoBlockElems bounds a block's transformed tiles, a·a·tiles·channels,
// so that they stay in the last-level cache between the transforms and
// the GEMMs.
var winoBlockElems = 1 << 20

// geom is the tiling of a convolution of an h×w input with padding pad.
func (wg *winograd) geom(h, w, pad int) C.wino_geom {
	oh, ow := h+2*pad-2, w+2*pad-2
	m := wg.m
	return C.wino_geom{h: C.int(h), w: C.int(w), oh: C.int(oh), ow: C.int(ow), pad: C.int(pad),
		m: C.int(m), a: C.int(wg.a), th: C.int((oh + m - 1) / m), tw: C.int((ow + m - 1) / m)}
}

// block is how many tiles one block transforms for c input and k output
// channels.
func (wg *winograd) block(c, k int) int {
	return max(16, winoBlockElems/(wg.a*wg.a*max(c, k)))
}

// channelsPerChunk is the fewest output channels a chunk of the weight
// transforms takes, each channel being a·a·c transformed values, by the
// element-wise ops' rule (minElems).
func (wg *winograd) channelsPerChunk(c int) int {
	return max(1, minElems/(wg.a*wg.a*c))
}

func ptr(v []float32) *C.float { return (*C.float)(unsafe.Pointer(&v[0])) }

// weights writes the transformed weights G·w·Gᵀ, laid out [a·a][K][C],
// of w ([K][3][3][C]), or of w flipped in both spatial dimensions.
func (wg *winograd) weights(b *Backend, w []float32, k, c int, flip bool) []float32 {
	u := getScratch[float32](b, wg.a*wg.a*k*c)
	// [3][3][K][C] from [K][3][3][C]: whole channel vectors move. Each
	// chunk of output channels rearranges and then transforms its own.
	w9 := getScratch[float32](b, 9*k*c)
	defer putScratch(b, w9)
	b.parallel(k, wg.channelsPerChunk(c), func(_, lo, hi int) {
		for kk := lo; kk < hi; kk++ {
			for p := 0; p < 9; p++ {
				src := p
				if flip {
					src = 8 - p
				}
				copy(w9[(p*k+kk)*c:(p*k+kk+1)*c], w[(kk*9+src)*c:])
			}
		}
		C.wino_weights(ptr(wg.g), C.int(wg.a), ptr(w9), C.int(k), C.int(c), C.int(lo), C.int(hi), ptr(u))
	})
	return u
}

// apply computes y = x ⊛ w for x [n, h, w, c] padded by pad, with the
// weights transformed by weights into u ([a·a][c][k] read as [k][c] when
// transposed, i.e. as the forward pass stores them, or [a·a][c][k]).
func (wg *winograd) apply(b *Backend, x, u, y []float32, n, h, w, c, k, pad int, uTransposed bool) {
	geom := wg.geom(h, w, pad)
	per := int(geom.th * geom.tw)
	a2 := wg.a * wg.a
	blk := wg.block(c, k)
	b.parallel(n, 1, func(_, lo, hi int) {
		t0, t1 := lo*per, hi*per
		nb := min(blk, t1-t0)
		v := getScratch[float32](b, a2*nb*c)
		defer putScratch(b, v)
		mm := getScratch[float32](b, a2*nb*k)
		defer putScratch(b, mm)
		for s := t0; s < t1; s += nb {
			e := min(t1, s+nb)
			nt := e - s
			C.wino_input(ptr(wg.bt), ptr(x), C.int(c), &geom, C.long(s), C.long(e), ptr(v))
			for p := 0; p < a2; p++ {
				if uTransposed {
					sgemm(false, true, nt, k, c, 1, v[p*nt*c:], c, u[p*k*c:], c, 0, mm[p*nt*k:], k)
				} else {
					sgemm(false, false, nt, k, c, 1, v[p*nt*c:], c, u[p*c*k:], k, 0, mm[p*nt*k:], k)
				}
			}
			C.wino_output(ptr(wg.at), ptr(mm), C.int(k), &geom, C.long(s), C.long(e), ptr(y))
		}
	})
}

// forward computes y = conv(x, w).
func (wg *winograd) forward(b *Backend, x, w, y []float32, g engine.ConvGeom) {
	u := wg.weights(b, w, g.K, g.C, false)
	defer putScratch(b, u)
	wg.apply(b, x, u, y, g.N, g.H, g.W, g.C, g.K, g.Pad, true)
}

// data computes dx, the forward convolution of dy (padded by 2 − pad) with
// the flipped weights, whose transform [a·a][K][C] is already [c][k] for it.
func (wg *winograd) data(b *Backend, w, dy, dx []float32, g engine.ConvGeom) {
	u := wg.weights(b, w, g.K, g.C, true)
	defer putScratch(b, u)
	wg.apply(b, dy, u, dx, g.N, g.OutH(), g.OutW(), g.K, g.C, 2-g.Pad, false)
}

// filter accumulates dw += Σ_tiles Gᵀ·[(A·dY·Aᵀ) ⊙ (Bᵀ·d·B)]·G: each chunk
// sums its tiles' products per point in one GEMM per block, the chunks are
// added in order, and one inverse transform maps the sum to 3×3.
func (wg *winograd) filter(b *Backend, x, dy, dw []float32, g engine.ConvGeom) {
	geom := wg.geom(g.H, g.W, g.Pad)
	per := int(geom.th * geom.tw)
	a2 := wg.a * wg.a
	k, c := g.K, g.C
	blk := wg.block(c, k)
	partial := make([][]float32, b.threads)
	chunks := b.parallel(g.N, 1, func(wk, lo, hi int) {
		acc := getScratch[float32](b, a2*k*c)
		partial[wk] = acc
		t0, t1 := lo*per, hi*per
		nb := min(blk, t1-t0)
		v := getScratch[float32](b, a2*nb*c)
		defer putScratch(b, v)
		dyh := getScratch[float32](b, a2*nb*k)
		defer putScratch(b, dyh)
		for s := t0; s < t1; s += nb {
			e := min(t1, s+nb)
			nt := e - s
			C.wino_input(ptr(wg.bt), ptr(x), C.int(c), &geom, C.long(s), C.long(e), ptr(v))
			C.wino_grad_output(ptr(wg.aa), ptr(dy), C.int(k), &geom, C.long(s), C.long(e), ptr(dyh))
			beta := float32(1)
			if s == t0 {
				beta = 0
			}
			for p := 0; p < a2; p++ {
				sgemm(true, false, k, c, nt, 1, dyh[p*nt*k:], k, v[p*nt*c:], c, beta, acc[p*k*c:], c)
			}
		}
	})
	sum := partial[0]
	addChunks(b, sum, partial[1:chunks])
	b.parallel(k, wg.channelsPerChunk(c), func(_, lo, hi int) {
		C.wino_weight_grad(ptr(wg.gt), C.int(wg.a), ptr(sum), C.int(k), C.int(c), C.int(lo), C.int(hi), ptr(dw))
	})
	putScratch(b, sum)
}

// winoMinChannels is the fewest input and output channels for which
// Winograd beats im2col + GEMM (BenchmarkConv: with 8 and 16 channels,
// or 3 and 64, the transforms cost more than the multiplications they
// save).
const winoMinChannels = 16

// winogradFor picks the Winograd algorithm for a float32 convolution, or
// nil where im2col + GEMM is the better choice.
func winogradFor(g engine.ConvGeom) *winograd {
	if g.R != 3 || g.S != 3 || g.Stride != 1 || g.Groups != 1 || g.Pad > 2 || min(g.C, g.K) < winoMinChannels {
		return nil
	}
	return winograd43
}
