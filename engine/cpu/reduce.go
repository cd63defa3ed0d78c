package cpu

import "github.com/qmulgpu/qmulgpu/engine"

// SumSquares implements engine.Backend.
func (b *Backend) SumSquares(ts []*engine.Tensor, out *engine.Tensor) {
	must(engine.CheckDot("sum of squares", ts, ts, out))
	res := make([]float64, len(ts))
	for i, t := range ts {
		if t.DType == engine.Float32 {
			res[i] = sumSquares(b, F32(t))
		} else {
			res[i] = sumSquares(b, F64(t))
		}
	}
	if out.DType == engine.Float32 {
		o := F32(out)
		for i, v := range res {
			o[i] = float32(v)
		}
	} else {
		copy(F64(out), res)
	}
}

func sumSquares[T float](b *Backend, x []T) float64 {
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
	return s
}

// Dot implements engine.Backend.
func (b *Backend) Dot(as, bs []*engine.Tensor, out *engine.Tensor) {
	must(engine.CheckDot("dot", as, bs, out))
	res := make([]float64, len(as))
	for i := range as {
		if as[i].DType == engine.Float32 {
			res[i] = dot(b, F32(as[i]), F32(bs[i]))
		} else {
			res[i] = dot(b, F64(as[i]), F64(bs[i]))
		}
	}
	storeFloats(out, res)
}

func dot[T float](b *Backend, x, y []T) float64 {
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
	return s
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
	rows, cols := x.Rows(), x.Cols()
	res := make([]float64, rows)
	if x.DType == engine.Float32 {
		rowSqNorm(b, F32(x), cols, res)
	} else {
		rowSqNorm(b, F64(x), cols, res)
	}
	storeFloats(out, res)
}

func rowSqNorm[T float](b *Backend, x []T, cols int, out []float64) {
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
		s1, s2 := acc[:n], acc[n:]
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
		partial[w] = acc
	})
	out := make([]float64, width)
	for _, p := range partial[:chunks] {
		for j, v := range p {
			out[j] += v
		}
	}
	return out
}
