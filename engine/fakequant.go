package engine

import "fmt"

// FakeQuantOps are the fake quantizers and observers of quantization-aware
// training (engine/cpu/fakequant.go, cuda/fakequant.go,
// kernels/fakequant.cu).
type FakeQuantOps interface {
	// FakeQuant maps X onto a uniform grid; see FakeQuantArgs.
	FakeQuant(a FakeQuantArgs)
	// FakeQuantBackward computes the straight-through input gradient and
	// the scale gradient; see FakeQuantArgs.
	FakeQuantBackward(a FakeQuantArgs)
	// Observe updates min/max observers and the scale and zero point they
	// imply; see ObserveArgs.
	Observe(a ObserveArgs)
	// DoReFaWeights quantizes weights as DoReFa-Net does; see DoReFaArgs.
	DoReFaWeights(a DoReFaArgs)
	// DoReFaWeightsBackward accumulates the weight gradient; see DoReFaArgs.
	DoReFaWeightsBackward(a DoReFaArgs)
}

// FakeQuantArgs are the operands of FakeQuant and FakeQuantBackward, the
// uniform affine fake quantizer shared by every scheme. With channel c of an
// element (the leading index when Scale has more than one element, else 0),
// s = ScaleMul·Scale[c], z = ZeroPoint[c] (0 when ZeroPoint is nil) and
// v = X/s + z:
//
//	Y = s·(clamp(round(v), Lo, Hi) − z)        (round half to even)
//
// Backward, with "inside" meaning Lo ≤ v ≤ Hi:
//
//	DX = DY where inside, else 0               (+= when Accumulate)
//	DScale[c] += GradScale·( CInside·Σ_inside DY·(round(v)−v)
//	                       + CAbove·Σ_{v>Hi} DY + CBelow·Σ_{v<Lo} DY )
//
// which is LSQ's step gradient with (CInside, CAbove, CBelow) = (1, Hi, Lo)
// and PACT's clip gradient with (0, 1, 0). DScale may be nil.
type FakeQuantArgs struct {
	X, Y, DY, DX             *Tensor
	Scale, ZeroPoint, DScale *Tensor
	ScaleMul                 float64
	Lo, Hi                   int
	GradScale                float64
	CInside, CAbove, CBelow  float64
	Accumulate               bool
}

// ObserveArgs are the operands of Observe. X is viewed per channel like
// FakeQuantArgs (leading index when Min has more than one element). In
// training (Update set) the batch minimum and maximum of each channel (with
// 0 included, so that zero stays exactly representable) update Min and Max:
// the first update (Count = 0) copies them, later ones move by Momentum.
// Then, for the grid [Lo, Hi]:
//
//	symmetric: Scale = max(|Min|, |Max|)/Hi, ZeroPoint = 0
//	affine:    Scale = (Max − Min)/(Hi − Lo), ZeroPoint = Lo − round(Min/Scale)
//
// with Scale floored at 1e-8 so that an all-zero tensor stays finite.
type ObserveArgs struct {
	X                *Tensor
	Min, Max         *Tensor
	Scale, ZeroPoint *Tensor
	Update           bool
	Count            int64
	Momentum         float64
	Symmetric        bool
	Lo, Hi           int
}

// DoReFaArgs are the operands of DoReFaWeights and its backward: with
// t = tanh(W), M = max|t| over the whole tensor and n = 2^Bits − 1,
//
//	Y = 2·round(n·(t/(2M) + 1/2))/n − 1
//
// and the backward pass accumulates into DW the exact derivative of
// 2·(t/(2M) + 1/2) − 1 (rounding passed straight through, the dependence
// on M included) applied to DY.
type DoReFaArgs struct {
	W, Y, DY, DW *Tensor
	Bits         int
}

// QuantChannels returns the channel count ch of X (the size of the
// per-channel operand perChannel) and the elements per channel, or an
// error when ch does not divide X's size.
func QuantChannels(op string, x, perChannel *Tensor) (ch, per int, err error) {
	ch = perChannel.Numel()
	if ch == 0 || x.Numel()%ch != 0 {
		return 0, 0, fmt.Errorf("%s of %v with %d channels", op, x, ch)
	}
	return ch, x.Numel() / ch, nil
}

// CheckFakeQuant reports operands of FakeQuant (backward false) or
// FakeQuantBackward that do not fit: a per-channel Scale dividing X's
// size, ZeroPoint and DScale like Scale, Y (forward) or DY and DX
// (backward) like X.
func CheckFakeQuant(a FakeQuantArgs, backward bool) error {
	op, full := "fake quant", a.Y
	if backward {
		op, full = "fake quant backward", a.DY
	}
	if err := checkRequired(op, a.X, a.X, a.Scale, full); err != nil {
		return err
	}
	if err := checkPerChannel(op, a.X, a.Scale, a.ZeroPoint, a.DScale); err != nil {
		return err
	}
	return firstError(
		checkNumel(op, "dx", a.DX, a.X.Numel()),
		checkNumel(op, "an activation operand", full, a.X.Numel()))
}

// CheckObserve reports operands of Observe that do not fit: Min, Max,
// Scale and ZeroPoint of one element per channel, which must divide X's
// size.
func CheckObserve(a ObserveArgs) error {
	const op = "observe"
	if err := checkRequired(op, a.X, a.X, a.Min, a.Max, a.Scale, a.ZeroPoint); err != nil {
		return err
	}
	return checkPerChannel(op, a.X, a.Min, a.Max, a.Scale, a.ZeroPoint)
}

// checkPerChannel reports a channel count (perChannel's size) that does
// not divide x's size, or an operand among others (nil ones skipped) of
// another size.
func checkPerChannel(op string, x, perChannel *Tensor, others ...*Tensor) error {
	ch, _, err := QuantChannels(op, x, perChannel)
	if err != nil {
		return err
	}
	for _, t := range others {
		if err := checkNumel(op, "a per-channel operand", t, ch); err != nil {
			return err
		}
	}
	return nil
}

// CheckDoReFa reports operands of DoReFaWeights (backward false: Y like W)
// or DoReFaWeightsBackward (DY and DW like W), and bit widths outside
// [1, 30].
func CheckDoReFa(a DoReFaArgs, backward bool) error {
	op, out := "DoReFa weights", a.Y
	if backward {
		op, out = "DoReFa weights backward", a.DW
	}
	if out == nil || a.Bits < 1 || a.Bits > 30 {
		return fmt.Errorf("%s of %v with %d bits", op, a.W, a.Bits)
	}
	if err := checkNumel(op, "an operand", out, a.W.Numel()); err != nil || !backward {
		return err
	}
	if err := checkRequired(op, a.W, a.DY); err != nil {
		return err
	}
	return checkNumel(op, "dy", a.DY, a.W.Numel())
}
