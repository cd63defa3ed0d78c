//go:build cuda

package cuda

import "github.com/qmulgpu/qmulgpu/engine"

// quantSplits is how many blocks each of ch channels of per elements takes
// in a (ch, splits) launch: enough to fill the device, with at least eight
// elements per thread.
func (b *Backend) quantSplits(ch, per int) int {
	return min(max(1, b.maxBlocks/ch), max(1, (per+8*blockSize-1)/(8*blockSize)), maxGridY)
}

// checkQuant validates FakeQuantArgs for the forward or backward pass.
func checkQuant(op string, a engine.FakeQuantArgs, backward bool) (ch, per int) {
	must(engine.CheckFakeQuant(a, backward))
	checkFloat(op, a.X, a.Y, a.DY, a.DX, a.Scale, a.ZeroPoint, a.DScale)
	ch, per, _ = engine.QuantChannels(op, a.X, a.Scale)
	return ch, per
}

// FakeQuant implements engine.Backend.
func (b *Backend) FakeQuant(a engine.FakeQuantArgs) {
	_, per := checkQuant("fake quant", a, false)
	if b.err != nil {
		return
	}
	n := a.X.Numel()
	b.launchN("FakeQuant", n, qmFakeQuantF32(b.f32(a.X), b.f32(a.Y), int64(n), int64(per),
		b.f32(a.Scale), b.f32(a.ZeroPoint), float32(a.ScaleMul), float32(a.Lo), float32(a.Hi)))
}

// FakeQuantBackward implements engine.Backend: one pass writes dx and the
// per-block sums of the scale gradient (in double precision), a second adds
// them per channel into DScale.
func (b *Backend) FakeQuantBackward(a engine.FakeQuantArgs) {
	ch, per := checkQuant("fake quant backward", a, true)
	if per == 0 || b.err != nil || (a.DX == nil && a.DScale == nil) {
		return
	}
	splits := b.quantSplits(ch, per)
	var partial scratch
	if a.DScale != nil {
		var ok bool
		if partial, ok = b.scratch("FakeQuantBackward", 8*3*ch*splits); !ok {
			return
		}
		defer b.release(partial)
	}
	accumulate := int32(0)
	if a.Accumulate {
		accumulate = 1
	}
	sums := dptr[float64](partial.ptr)
	b.launch("FakeQuantBackward", dim3{uint32(ch), uint32(splits), 1}, dim3{blockSize, 1, 1},
		qmFakeQuantBackwardF32(b.f32(a.X), b.f32(a.DY), b.f32(a.DX), int64(per), b.f32(a.Scale), b.f32(a.ZeroPoint),
			float32(a.ScaleMul), float32(a.Lo), float32(a.Hi), accumulate, sums))
	if a.DScale != nil {
		b.launchBlocks("FakeQuantBackward", ch, qmFakeQuantScaleGrad(sums, narrow(splits),
			a.GradScale, a.CInside, a.CAbove, a.CBelow, b.f32(a.DScale)))
	}
}

// Observe implements engine.Backend.
func (b *Backend) Observe(a engine.ObserveArgs) {
	must(engine.CheckObserve(a))
	checkFloat("observe", a.X, a.Min, a.Max, a.Scale, a.ZeroPoint)
	ch, per, _ := engine.QuantChannels("observe", a.X, a.Min)
	if b.err != nil {
		return
	}
	var partial scratch
	splits := 1
	if a.Update || a.Count == 0 {
		splits = b.quantSplits(ch, per)
		var ok bool
		if partial, ok = b.scratch("Observe", 4*2*ch*splits); !ok {
			return
		}
		defer b.release(partial)
		b.launch("Observe", dim3{uint32(ch), uint32(splits), 1}, dim3{blockSize, 1, 1},
			qmObservePartial(b.f32(a.X), int64(per), dptr[float32](partial.ptr)))
	}
	first, symmetric := int32(0), int32(0)
	if a.Count == 0 {
		first = 1
	}
	if a.Symmetric {
		symmetric = 1
	}
	b.launchBlocks("Observe", ch, qmObserveFinal(dptr[float32](partial.ptr), narrow(splits), first, float32(a.Momentum),
		symmetric, float32(a.Lo), float32(a.Hi), b.f32(a.Min), b.f32(a.Max), b.f32(a.Scale), b.f32(a.ZeroPoint)))
}

// dorefaStats queues the reductions of DoReFa's weight quantizer: M, the
// first index attaining it and, when dy is not nil, Σ dy·tanh(w). The
// caller releases the returned buffer.
func (b *Backend) dorefaStats(op string, w, dy *engine.Tensor) (dorefaResult, bool) {
	n := w.Numel()
	blocks := min(max(1, (n+blockSize-1)/blockSize), b.maxBlocks)
	partial, ok := b.scratch(op, 3*8*blocks)
	if !ok {
		return dorefaResult{}, false
	}
	defer b.release(partial)
	buf, ok := b.scratch(op, 3*8)
	if !ok {
		return dorefaResult{}, false
	}
	pmax := dptr[float64](partial.ptr)
	parg := dptr[int64](pmax.add(blocks))
	pdot := pmax.add(2 * blocks)
	if dy == nil {
		pdot = 0
	}
	s := dorefaResult{buf, dptr[float64](buf.ptr), dptr[int64](buf.ptr + 16)}
	b.launch(op, dim3{uint32(blocks), 1, 1}, dim3{blockSize, 1, 1},
		qmDorefaStatsPartial(b.f32(w), b.f32(dy), int64(n), pmax, parg, pdot))
	b.launchBlocks(op, 1, qmDorefaStatsFinal(pmax, parg, pdot, narrow(blocks), s.stats, s.arg))
	return s, true
}

// dorefaResult is the buffer dorefaStats fills: stats (M and
// Σ dy·tanh(w)) and arg (the index of M).
type dorefaResult struct {
	buf   scratch
	stats dptr[float64]
	arg   dptr[int64]
}

func checkDoReFa(op string, a engine.DoReFaArgs, backward bool) {
	must(engine.CheckDoReFa(a, backward))
	checkFloat(op, a.W, a.Y, a.DY, a.DW)
}

// DoReFaWeights implements engine.Backend (tanh and the grid in double
// precision, like the CPU backend).
func (b *Backend) DoReFaWeights(a engine.DoReFaArgs) {
	checkDoReFa("DoReFa weights", a, false)
	n := a.W.Numel()
	if n == 0 || b.err != nil {
		return
	}
	s, ok := b.dorefaStats("DoReFaWeights", a.W, nil)
	if !ok {
		return
	}
	defer b.release(s.buf)
	b.launchN("DoReFaWeights", n, qmDorefaF32(b.f32(a.W), b.f32(a.Y), int64(n), s.stats, float64(int(1)<<a.Bits-1)))
}

// DoReFaWeightsBackward implements engine.Backend.
func (b *Backend) DoReFaWeightsBackward(a engine.DoReFaArgs) {
	checkDoReFa("DoReFa weights backward", a, true)
	n := a.W.Numel()
	if n == 0 || b.err != nil {
		return
	}
	s, ok := b.dorefaStats("DoReFaWeightsBackward", a.W, a.DY)
	if !ok {
		return
	}
	defer b.release(s.buf)
	b.launchN("DoReFaWeightsBackward", n, qmDorefaBackwardF32(b.f32(a.W), b.f32(a.DY), b.f32(a.DW), int64(n),
		s.stats, s.arg))
}
