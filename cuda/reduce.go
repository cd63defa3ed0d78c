//go:build cuda

package cuda

import "github.com/qmulgpu/qmulgpu/engine"

// dotMax is how many tensor pairs one qm_dot_partial launch covers
// (QM_DOT_MAX in kernels/reduce.cu).
const dotMax = 160

// SumSquares implements engine.Backend: Dot of each tensor with itself.
func (b *Backend) SumSquares(ts []*engine.Tensor, out *engine.Tensor) {
	must(engine.CheckDot("sum of squares", ts, ts, out))
	b.dot("SumSquares", ts, ts, out)
}

// Dot implements engine.Backend: out[i] = Σ as[i]·bs[i], accumulated in
// double precision.
func (b *Backend) Dot(as, bs []*engine.Tensor, out *engine.Tensor) {
	must(engine.CheckDot("dot", as, bs, out))
	b.dot("Dot", as, bs, out)
}

// dot computes the dot products of pairs of tensors. Up to dotMax pairs
// take one launch of qm_dot_partial, whose table of addresses and lengths
// travels in the kernel's parameters; qm_dot_final then adds each pair's
// partial sums.
func (b *Backend) dot(op string, as, bs []*engine.Tensor, out *engine.Tensor) {
	checkFloat(op, out)
	longest := 0
	for i, a := range as {
		checkFloat(op, a, bs[i])
		longest = max(longest, a.Numel())
	}
	if len(as) == 0 || b.err != nil {
		return
	}
	// Enough blocks per pair for the longest to give each thread about
	// eight elements.
	splits := min(max(1, (longest+8*blockSize-1)/(8*blockSize)), blockSize)
	partial, ok := b.scratch(op, 8*len(as)*splits)
	if !ok {
		return
	}
	defer b.release(partial)
	sums := dptr[float64](partial.ptr)
	for first := 0; first < len(as); first += dotMax {
		chunk := min(len(as)-first, dotMax)
		table := new(qmDotTable)
		for i := range chunk {
			a, bt := as[first+i], bs[first+i]
			table.a[i], table.b[i], table.len[i] = uint64(b.f32(a)), uint64(b.f32(bt)), int64(a.Numel())
		}
		b.launch(op, dim3{uint32(splits), uint32(chunk), 1}, dim3{blockSize, 1, 1},
			qmDotPartial(table, int32(first), sums))
	}
	b.launchBlocks(op, len(as), qmDotFinal(sums, int32(splits), b.f32(out)))
}

// RowSqNorm implements engine.Backend: one block per row, in double
// precision.
func (b *Backend) RowSqNorm(x, out *engine.Tensor) {
	must(engine.CheckRowSqNorm(x, out))
	checkFloat("row norm", x, out)
	rows, cols := x.Rows(), x.Cols()
	if rows == 0 || b.err != nil {
		return
	}
	b.launchBlocks("RowSqNorm", rows, qmRowDot(b.f32(x), b.f32(x), int64(cols), 0, b.f32(out)))
}

// columnSums queues the first kernel of a column reduction over x viewed as
// [rows, cols]: per-lane sums of x and, when y is not nil, of x·y, in a
// scratch buffer the caller releases.
func (b *Backend) columnSums(op string, x, y *engine.Tensor, rows, cols int) (scratch, int, bool) {
	lanes := b.lanes(rows, cols)
	sums := 1
	if y != nil {
		sums = 2
	}
	partial, ok := b.scratch(op, 8*sums*cols*lanes)
	if !ok {
		return partial, 0, false
	}
	b.launchLanes(op, cols, lanes,
		qmColsumPartial(b.f32(x), b.f32(y), int64(rows), narrow(cols), int32(lanes), dptr[float64](partial.ptr)))
	return partial, lanes, true
}
