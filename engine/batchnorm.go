package engine

import "fmt"

// BatchNormOps are batch normalisation's forward and backward passes
// (engine/cpu/batchnorm.go, cuda/batchnorm.go, kernels/batchnorm.cu).
type BatchNormOps interface {
	// BatchNorm normalises x viewed as [rows, C]; see BatchNormArgs.
	BatchNorm(a BatchNormArgs)
	// BatchNormBackward computes dx and accumulates dgamma, dbeta; see
	// BatchNormArgs.
	BatchNormBackward(a BatchNormArgs)
}

// BatchNormArgs are the operands of BatchNorm and BatchNormBackward. X, Y, DY
// and DX are viewed as [rows, C] with C = len(Gamma).
//
// Forward in training mode normalises with the batch statistics, saves the
// batch mean and 1/sqrt(var+Eps) into Mean and InvStd, and updates
// RunMean/RunVar with Momentum (RunVar from the unbiased variance, as PyTorch).
// Forward in evaluation mode uses RunMean/RunVar and writes the matching mean
// and inverse deviation into Mean and InvStd, so that the same backward serves
// both modes. Backward uses X, DY, Gamma, Mean, InvStd and Train.
//
// Act, when ReLU or ReLU6, fuses that activation: the forward pass writes
// Y = act(BN(X)), and the backward pass (given that Y) first zeroes DY
// where the activation was flat, as the activation's own backward would.
type BatchNormArgs struct {
	X, Y, DY, DX    *Tensor
	Gamma, Beta     *Tensor
	DGamma, DBeta   *Tensor
	RunMean, RunVar *Tensor
	Mean, InvStd    *Tensor
	Train           bool
	Momentum, Eps   float64
	Act             Activation
}

// fused reports whether the op fuses an activation.
func (a BatchNormArgs) fused() bool { return a.Act == ReLU || a.Act == ReLU6 }

// CheckBatchNorm reports missing or mis-sized operands of BatchNorm
// (backward false) or BatchNormBackward: per-channel operands of
// len(Gamma) elements, activation operands of X's, whose size the channel
// count must divide.
func CheckBatchNorm(a BatchNormArgs, backward bool) error {
	op := "batch norm"
	if backward {
		op = "batch norm backward"
	}
	if err := checkRequired(op, a.X, a.X, a.Gamma, a.Mean, a.InvStd); err != nil {
		return err
	}
	c, n := a.Gamma.Numel(), a.X.Numel()
	if c == 0 || n%c != 0 {
		return fmt.Errorf("%s of %v with %d channels", op, a.X, c)
	}
	if !backward {
		return firstError(
			checkRequired(op, a.X, a.Y, a.Beta, a.RunMean, a.RunVar),
			checkSizes(op, "a per-channel operand", c, a.Gamma, a.Mean, a.InvStd, a.Beta, a.RunMean, a.RunVar),
			checkSizes(op, "an activation operand", n, a.Y))
	}
	var y *Tensor // read only with a fused activation
	if a.fused() {
		if err := checkRequired(op, a.X, a.Y); err != nil {
			return err
		}
		y = a.Y
	}
	return firstError(
		checkRequired(op, a.X, a.DY),
		checkSizes(op, "a per-channel operand", c, a.Gamma, a.Mean, a.InvStd, a.DGamma, a.DBeta),
		checkSizes(op, "an activation operand", n, a.DY, a.DX, y))
}
