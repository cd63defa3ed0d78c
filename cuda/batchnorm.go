//go:build cuda

package cuda

import "github.com/qmulgpu/qmulgpu/engine"

// checkBatchNorm validates the operands an op uses and returns the channel
// count and the number of rows of the [rows, C] view.
func checkBatchNorm(op string, a engine.BatchNormArgs, backward bool) (c, rows int) {
	must(engine.CheckBatchNorm(a, backward))
	checkFloat(op, a.X, a.Y, a.DY, a.DX, a.Gamma, a.Beta, a.DGamma, a.DBeta, a.RunMean, a.RunVar, a.Mean, a.InvStd)
	c = a.Gamma.Numel()
	return c, a.X.Numel() / c
}

// fusedAct is the activation code the kernels fuse into BatchNorm
// (QM_ACT_RELU, QM_ACT_RELU6 in kernels/common.cuh), or 0 for none.
func fusedAct(act engine.Activation) int32 {
	switch act {
	case engine.ReLU:
		return actReLU
	case engine.ReLU6:
		return actReLU6
	}
	return 0
}

// Activation codes of the kernels (QM_ACT_* in kernels/common.cuh).
const (
	actReLU  = 1
	actReLU6 = 2
)

// fusedOutput is the forward output Y the backward kernels read for a
// fused activation, and 0 (NULL) without one.
func (b *Backend) fusedOutput(a engine.BatchNormArgs) dptr[float32] {
	if fusedAct(a.Act) == 0 {
		return 0
	}
	return b.f32(a.Y)
}

// BatchNorm implements engine.Backend. In training mode the per-channel
// sums Σx and Σx² are accumulated in double precision over the rows
// (qm_colsum_partial), then turned into statistics, running statistics and
// the affine map y = x·scale + shift (qm_bn_train_stats), which
// qm_bn_apply_f32 applies, with the fused activation if any.
func (b *Backend) BatchNorm(a engine.BatchNormArgs) {
	c, rows := checkBatchNorm("batch norm", a, false)
	if b.err != nil {
		return
	}
	affine, ok := b.scratch("BatchNorm", 4*2*c)
	if !ok {
		return
	}
	defer b.release(affine)
	scale := dptr[float32](affine.ptr)
	shift := scale.add(c)
	if a.Train {
		partial, lanes, ok := b.columnSums("BatchNorm", a.X, a.X, rows, c)
		if !ok {
			return
		}
		defer b.release(partial)
		b.launchBlocks("BatchNorm", c, qmBnTrainStats(dptr[float64](partial.ptr), narrow(c), int32(lanes), int64(rows),
			b.f32(a.Gamma), b.f32(a.Beta), b.f32(a.Mean), b.f32(a.InvStd), b.f32(a.RunMean), b.f32(a.RunVar),
			a.Momentum, a.Eps, scale, shift))
	} else {
		b.launchN("BatchNorm", c, qmBnEvalStats(narrow(c), b.f32(a.Gamma), b.f32(a.Beta),
			b.f32(a.RunMean), b.f32(a.RunVar), a.Eps, b.f32(a.Mean), b.f32(a.InvStd), scale, shift))
	}
	if rows == 0 {
		return
	}
	lanes := b.lanes(rows, c)
	b.launchLanes("BatchNorm", c, lanes, qmBnApplyF32(b.f32(a.X), b.f32(a.Y), int64(rows), narrow(c), int32(lanes),
		scale, shift, fusedAct(a.Act)))
}

// BatchNormBackward implements engine.Backend: the sums Σdy and Σdy·x per
// channel (in double precision, dy zeroed where a fused activation is
// flat; qm_bn_backward_partial) give dgamma, dbeta and the coefficients of
// dx = dy·k + x·u + v (qm_bn_backward_coeffs), which
// qm_bn_backward_apply_f32 applies.
func (b *Backend) BatchNormBackward(a engine.BatchNormArgs) {
	c, rows := checkBatchNorm("batch norm backward", a, true)
	if b.err != nil {
		return
	}
	coeffs, ok := b.scratch("BatchNormBackward", 4*3*c)
	if !ok {
		return
	}
	defer b.release(coeffs)
	k := dptr[float32](coeffs.ptr)
	u, v := k.add(c), k.add(2*c)
	lanes := b.lanes(rows, c)
	partial, ok := b.scratch("BatchNormBackward", 8*2*c*lanes)
	if !ok {
		return
	}
	defer b.release(partial)
	sums := dptr[float64](partial.ptr)
	act, y := fusedAct(a.Act), b.fusedOutput(a)
	b.launchLanes("BatchNormBackward", c, lanes, qmBnBackwardPartial(b.f32(a.X), b.f32(a.DY), y, act,
		int64(rows), narrow(c), int32(lanes), sums))
	train := int32(0)
	if a.Train {
		train = 1
	}
	b.launchBlocks("BatchNormBackward", c, qmBnBackwardCoeffs(sums, narrow(c), int32(lanes), int64(rows),
		b.f32(a.Gamma), b.f32(a.Mean), b.f32(a.InvStd), b.f32(a.DGamma), b.f32(a.DBeta), train, k, u, v))
	if a.DX == nil || rows == 0 {
		return
	}
	b.launchLanes("BatchNormBackward", c, lanes, qmBnBackwardApplyF32(b.f32(a.X), b.f32(a.DY), y, act,
		b.f32(a.DX), int64(rows), narrow(c), int32(lanes), k, u, v))
}
