package cpu

import "github.com/qmulgpu/qmulgpu/engine"

// reduceArgs are the operands of the reductions: x (and y for Dot), and
// where the float64 result goes.
type reduceArgs struct {
	x, y *engine.Tensor
	out  []float64
}

// SumSquares implements engine.Backend.
func (b *Backend) SumSquares(ts []*engine.Tensor, out *engine.Tensor) {
	must(engine.CheckDot("sum of squares", ts, ts, out))
	res := make([]float64, len(ts))
	for i, t := range ts {
		dispatch(b, opReduce, t.DType, reduceArgs{x: t, out: res[i : i+1]}, sumSquares[float32], sumSquares[float64])
	}
	storeFloats(out, res)
}

// sumSquares writes Σ x² into out[0].
func sumSquares[T float](b *Backend, a reduceArgs) {
	x := floats[T](a.x)
	partial := make([]float64, b.threads)
	n := b.parallel(len(x), minElems, func(w, lo, hi int) {
		var s float64
		for _, v := range x[lo:hi] {
			s += float64(v) * float64(v)
		}
		partial[w] = s
	})
	var s float64
	for _, p := range partial[:n] {
		s += p
	}
	a.out[0] = s
}

// Dot implements engine.Backend.
func (b *Backend) Dot(as, bs []*engine.Tensor, out *engine.Tensor) {
	must(engine.CheckDot("dot", as, bs, out))
	res := make([]float64, len(as))
	for i := range as {
		dispatch(b, opReduce, as[i].DType, reduceArgs{x: as[i], y: bs[i], out: res[i : i+1]}, dot[float32], dot[float64])
	}
	storeFloats(out, res)
}

// dot writes Σ x·y into out[0].
func dot[T float](b *Backend, a reduceArgs) {
	x, y := floats[T](a.x), floats[T](a.y)
	partial := make([]float64, b.threads)
	n := b.parallel(len(x), minElems, func(w, lo, hi int) {
		var s float64
		for i := lo; i < hi; i++ {
			s += float64(x[i]) * float64(y[i])
		}
		partial[w] = s
	})
	var s float64
	for _, p := range partial[:n] {
		s += p
	}
	a.out[0] = s
}

// storeFloats writes float64 results into a float tensor.
func storeFloats(out *engine.Tensor, v []float64) {
	if out.DType == engine.Float32 {
		o := F32(out)
		for i, x := range v {
			o[i] = float32(x)
		}
		return
	}
	copy(F64(out), v)
}

// RowSqNorm implements engine.Backend.
func (b *Backend) RowSqNorm(x, out *engine.Tensor) {
	must(engine.CheckRowSqNorm(x, out))
	res := make([]float64, x.Rows())
	dispatch(b, opReduce, x.DType, reduceArgs{x: x, out: res}, rowSqNorm[float32], rowSqNorm[float64])
	storeFloats(out, res)
}

// rowSqNorm writes the squared norm of each row of x into out.
func rowSqNorm[T float](b *Backend, a reduceArgs) {
	x, cols, out := floats[T](a.x), a.x.Cols(), a.out
	b.parallel(len(out), max(1, minElems/max(1, cols)), func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			var s float64
			for _, v := range x[r*cols : (r+1)*cols] {
				s += float64(v) * float64(v)
			}
			out[r] = s
		}
	})
}

// columnSums returns Σ_rows x[row, j] (and Σ_rows x[row,j]·y[row,j] in the
// second half when y is non-nil), every term widened to float64 and summed
// in float64, as the kernels do: the statistics of BatchNorm are differences
// of these sums, which cancel when a channel's mean is large next to its
// spread, so they must carry more precision than the data. Chunks are
// combined in order, so results are deterministic for a thread count.
func columnSums[T float](b *Backend, x []T, n int, y []T) []float64 {
	rows := len(x) / n
	width := n
	if y != nil {
		width = 2 * n
	}
	partial := make([][]float64, b.threads)
	chunks := b.parallel(rows, max(1, minElems/n), func(w, lo, hi int) {
		acc := make([]float64, width)
		partial[w] = acc
		s1, s2 := acc[:n], acc[n:]
		if x32, ok := native32(x[lo*n : hi*n]); ok {
			var ys []T
			if y != nil {
				ys = y[lo*n : hi*n]
			}
			nativeColSums(x32, nativeOrNil(ys), hi-lo, n, s1, s2)
			return
		}
		for r := lo; r < hi; r++ {
			xs := x[r*n : (r+1)*n]
			s1 := s1[:len(xs)]
			if y == nil {
				for j, v := range xs {
					s1[j] += float64(v)
				}
				continue
			}
			ys := y[r*n : (r+1)*n][:len(xs)]
			s2 := s2[:len(xs)]
			for j, v := range xs {
				s1[j] += float64(v)
				s2[j] += float64(v) * float64(ys[j])
			}
		}
	})
	out := make([]float64, width)
	for _, p := range partial[:chunks] {
		for j, v := range p {
			out[j] += v
		}
	}
	return out
}
