//go:build !purego

package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/qmulgpu/qmulgpu/engine"
)

// winogradBound is the largest error of each algorithm allowed against a
// float64 convolution, relative to the largest output (docs/performance.md
// gives the errors measured on ResNet-18's layers).
var winogradBound = map[int]float64{2: 3e-6, 4: 5e-5}

// TestWinogradMatrices checks each algorithm's matrices on the 1-D identity
// they must satisfy: Aᵀ·[(G·g) ⊙ (Bᵀ·d)] is the correlation of d with g.
func TestWinogradMatrices(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, wg := range []*winograd{winograd23, winograd43} {
		g, d := make([]float64, 3), make([]float64, wg.a)
		for i := range g {
			g[i] = r.NormFloat64()
		}
		for i := range d {
			d[i] = r.NormFloat64()
		}
		gg := matVec(wg.g, wg.a, 3, g)
		bd := matVec(wg.bt, wg.a, wg.a, d)
		for i := range gg {
			gg[i] *= bd[i]
		}
		y := matVec(wg.at, wg.m, wg.a, gg)
		for i := 0; i < wg.m; i++ {
			want := 0.0
			for j := 0; j < 3; j++ {
				want += g[j] * d[i+j]
			}
			if math.Abs(y[i]-want) > 1e-6*(1+math.Abs(want)) {
				t.Errorf("F(%d,3): y[%d] = %g, want %g", wg.m, i, y[i], want)
			}
		}
	}
}

func matVec(m []float32, rows, cols int, v []float64) []float64 {
	out := make([]float64, rows)
	for i := range out {
		for j := 0; j < cols; j++ {
			out[i] += float64(m[i*cols+j]) * v[j]
		}
	}
	return out
}

// winogradGeoms are the shapes the float64 comparison runs: padding 0, 1
// and 2, sizes that are not multiples of the tiles, channel counts that are
// not multiples of the 16 vector lanes, a batch that chunks unevenly.
var winogradGeoms = []engine.ConvGeom{
	{N: 3, H: 8, W: 7, C: 5, K: 6, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
	{N: 2, H: 9, W: 11, C: 17, K: 33, R: 3, S: 3, Stride: 1, Pad: 0, Groups: 1},
	{N: 2, H: 6, W: 5, C: 33, K: 16, R: 3, S: 3, Stride: 1, Pad: 2, Groups: 1},
	{N: 5, H: 8, W: 8, C: 64, K: 48, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
	{N: 2, H: 4, W: 4, C: 256, K: 128, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
}

// winogradErrors returns the relative errors of wg's forward pass, input
// gradient and weight gradient against float64 im2col + GEMM.
func winogradErrors(b *Backend, wg *winograd, g engine.ConvGeom) [3]float64 {
	r := rand.New(rand.NewPCG(uint64(g.C), uint64(g.K)))
	x, w, dy := randF32(r, g.N*g.H*g.W*g.C), randF32(r, g.K*9*g.C), randF32(r, g.N*g.OutH()*g.OutW()*g.K)
	want := convFloat64(b, x, w, dy, g)
	y, dx, dw := make([]float32, len(dy)), make([]float32, len(x)), make([]float32, len(w))
	wg.forward(b, x, w, y, g)
	wg.data(b, w, dy, dx, g)
	wg.filter(b, x, dy, dw, g)
	return [3]float64{relativeError(y, want[0]), relativeError(dx, want[1]), relativeError(dw, want[2])}
}

// convFloat64 is the convolution's forward pass, input gradient and weight
// gradient in float64 by im2col + GEMM.
func convFloat64(b *Backend, x, w, dy []float32, g engine.ConvGeom) [3][]float64 {
	t := func(v []float64) *engine.Tensor {
		return &engine.Tensor{Shape: []int{len(v)}, DType: engine.Float64, Mem: &hostMemory{f64: v}}
	}
	x64, w64, dy64 := widen(x), widen(w), widen(dy)
	y, dx, dw := make([]float64, len(dy)), make([]float64, len(x)), make([]float64, len(w))
	convForward[float64](b, convArgs{x: t(x64), w: t(w64), y: t(y), g: g})
	convData[float64](b, convArgs{w: t(w64), dy: t(dy64), dx: t(dx), g: g})
	convFilter[float64](b, convArgs{x: t(x64), dy: t(dy64), dw: t(dw), g: g})
	return [3][]float64{y, dx, dw}
}

func widen(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// relativeError is max|got − want| / max|want|.
func relativeError(got []float32, want []float64) float64 {
	var worst, scale float64
	for i := range want {
		worst = math.Max(worst, math.Abs(float64(got[i])-want[i]))
		scale = math.Max(scale, math.Abs(want[i]))
	}
	return worst / scale
}

// TestWinogradMatchesFloat64 runs both algorithms' forward and backward
// passes, with one and three threads and with blocks of a few tiles, and
// bounds their errors against float64 im2col + GEMM.
func TestWinogradMatchesFloat64(t *testing.T) {
	defer func(old int) { winoBlockElems = old }(winoBlockElems)
	for _, blockElems := range []int{winoBlockElems, 1} { // 1: blocks of 16 tiles
		winoBlockElems = blockElems
		for _, threads := range []int{1, 3} {
			b := New(threads)
			for _, wg := range []*winograd{winograd23, winograd43} {
				for _, g := range winogradGeoms {
					errs := winogradErrors(b, wg, g)
					for i, name := range []string{"forward", "dX", "dW"} {
						if errs[i] > winogradBound[wg.m] || math.IsNaN(errs[i]) {
							t.Errorf("F(%d,3) %s %+v, %d threads, block %d: error %.3g, bound %.3g",
								wg.m, name, g, threads, blockElems, errs[i], winogradBound[wg.m])
						}
					}
				}
			}
		}
	}
}

// TestWinogradWrongTransformFails makes sure the comparison above can fail:
// each of the three matrices with one coefficient off by 1% must push some
// error past the bound.
func TestWinogradWrongTransformFails(t *testing.T) {
	b := New(2)
	g := winogradGeoms[3]
	for _, m := range []struct {
		name string
		pick func(*winograd) []float32
	}{{"Bᵀ", func(w *winograd) []float32 { return w.bt }}, {"G", func(w *winograd) []float32 { return w.g }},
		{"Aᵀ", func(w *winograd) []float32 { return w.at }}} {
		for _, base := range []*winograd{winograd23, winograd43} {
			wrong := *base
			wrong.bt, wrong.g, wrong.at = append([]float32(nil), base.bt...), append([]float32(nil), base.g...), append([]float32(nil), base.at...)
			mat := m.pick(&wrong)
			mat[len(mat)/2] *= 1.01
			if mat[len(mat)/2] == 0 {
				mat[len(mat)/2] = 0.01
			}
			wrong.gt, wrong.aa = transpose32(wrong.g, wrong.a, 3), transpose32(wrong.at, wrong.m, wrong.a)
			errs := winogradErrors(b, &wrong, g)
			if max(errs[0], errs[1], errs[2]) <= winogradBound[base.m] {
				t.Errorf("F(%d,3) with a wrong %s passes: errors %v", base.m, m.name, errs)
			}
		}
	}
}

// TestWinogradResNetErrors prints the errors on ResNet-18's 3×3 stride-1
// layers at batch 2, the numbers docs/performance.md quotes (-v).
func TestWinogradResNetErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	b := New(2)
	for _, hc := range [][2]int{{32, 64}, {16, 128}, {8, 256}, {4, 512}} {
		g := engine.ConvGeom{N: 2, H: hc[0], W: hc[0], C: hc[1], K: hc[1], R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}
		line := fmt.Sprintf("%dx%d, %d channels:", hc[0], hc[0], hc[1])
		for _, wg := range []*winograd{winograd23, winograd43} {
			errs := winogradErrors(b, wg, g)
			line += fmt.Sprintf("  F(%d,3) %.2g %.2g %.2g", wg.m, errs[0], errs[1], errs[2])
			for i := range errs {
				if errs[i] > winogradBound[wg.m] {
					t.Errorf("%s F(%d,3) error %.3g over the bound %.3g", line, wg.m, errs[i], winogradBound[wg.m])
				}
			}
		}
		t.Log(line)
	}
}

// BenchmarkConv times each 3×3 stride-1 convolution algorithm on one
// thread, per pass, on ResNet-18's layers at batch 64 and on the small
// channel counts where im2col + GEMM wins. cpu-ms is the thread's processor
// time, which other load on a shared machine inflates much less than wall
// time:
//
//	go test -run XXX -bench Conv -benchtime 3x ./engine/cpu/
func BenchmarkConv(bm *testing.B) {
	geoms := []engine.ConvGeom{
		{N: 64, H: 32, W: 32, C: 3, K: 64, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
		{N: 64, H: 32, W: 32, C: 8, K: 16, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
		{N: 64, H: 32, W: 32, C: 16, K: 16, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
		{N: 64, H: 32, W: 32, C: 64, K: 64, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
		{N: 64, H: 16, W: 16, C: 128, K: 128, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
		{N: 64, H: 8, W: 8, C: 256, K: 256, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
		{N: 64, H: 4, W: 4, C: 512, K: 512, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
	}
	b := New(1)
	tensor := func(v []float32) *engine.Tensor {
		return &engine.Tensor{Shape: []int{len(v)}, DType: engine.Float32, Mem: &hostMemory{f32: v}}
	}
	for _, g := range geoms {
		r := rand.New(rand.NewPCG(1, 2))
		x, w, dy := randF32(r, g.N*g.H*g.W*g.C), randF32(r, g.K*9*g.C), randF32(r, g.N*g.OutH()*g.OutW()*g.K)
		y, dx, dw := make([]float32, len(dy)), make([]float32, len(x)), make([]float32, len(w))
		a := convArgs{x: tensor(x), w: tensor(w), y: tensor(y), dy: tensor(dy), dx: tensor(dx), dw: tensor(dw), g: g}
		passes := map[string][3]func(){
			"im2col": {func() { im2colForward[float32](b, a) }, func() { im2colData[float32](b, a) }, func() { im2colFilter[float32](b, a) }},
			"F(2,3)": {func() { winograd23.forward(b, x, w, y, g) }, func() { winograd23.data(b, w, dy, dx, g) }, func() { winograd23.filter(b, x, dy, dw, g) }},
			"F(4,3)": {func() { winograd43.forward(b, x, w, y, g) }, func() { winograd43.data(b, w, dy, dx, g) }, func() { winograd43.filter(b, x, dy, dw, g) }},
		}
		for _, alg := range []string{"im2col", "F(2,3)", "F(4,3)"} {
			for i, pass := range []string{"forward", "dX", "dW"} {
				bm.Run(fmt.Sprintf("%dx%d/%d-%d/%s/%s", g.H, g.W, g.C, g.K, alg, pass), func(bm *testing.B) {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					start := threadCPUTime()
					for range bm.N {
						passes[alg][i]()
					}
					bm.ReportMetric(float64(threadCPUTime()-start)/1e6/float64(bm.N), "cpu-ms")
				})
			}
		}
	}
}

// threadCPUTime is the calling thread's processor time.
func threadCPUTime() time.Duration {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&ts)), 0) // CLOCK_THREAD_CPUTIME_ID
	return time.Duration(ts.Nano())
}
