package engine

import "fmt"

// PerSampleOps are per-sample gradient norms computed inside the backward
// pass (engine/cpu/persample.go, cuda/persample.go, kernels/persample.cu).
type PerSampleOps interface {
	// ConvPerSampleSqNorm writes out[n] = ‖∂/∂w of sample n's share of the
	// loss‖², the squared Frobenius norm of Σ_pixels im2col(x_n)ᵀ·dy_n,
	// for the convolution g (a linear layer is a 1×1 convolution over 1×1
	// maps).
	ConvPerSampleSqNorm(x, dy, out *Tensor, g ConvGeom)
	// BatchNormPerSampleSqNorm writes, per sample n, the squared norms of
	// its shares of dgamma (Σ_pixels dy·x̂ per channel) and dbeta (Σ_pixels
	// dy) into OutGamma and OutBeta; it uses BatchNormArgs' X, DY, Mean,
	// InvStd (and Y and Act for a fused activation) with rows grouped by
	// sample (rows/N pixels each).
	BatchNormPerSampleSqNorm(a BatchNormArgs, n int, outGamma, outBeta *Tensor)
}

// CheckConvPerSample reports a bad geometry or operands of
// ConvPerSampleSqNorm that do not fit it: x and dy as Conv2d's x and y,
// one output per sample.
func CheckConvPerSample(x, dy, out *Tensor, g ConvGeom) error {
	const op = "per-sample norm"
	if err := checkRequired(op, x, x, dy, out); err != nil {
		return err
	}
	if err := CheckConv(op, x, nil, nil, g); err != nil {
		return err
	}
	return firstError(
		checkNumel(op, "dy", dy, g.N*g.OutH()*g.OutW()*g.K),
		checkNumel(op, "out", out, g.N))
}

// CheckBatchNormPerSample reports operands of BatchNormPerSampleSqNorm
// that do not fit: InvStd like Mean, DY (and Y with a fused activation)
// like X, whose size n samples of len(Mean) channels divide, and one
// output per sample.
func CheckBatchNormPerSample(a BatchNormArgs, n int, outGamma, outBeta *Tensor) error {
	const op = "batch norm per-sample norm"
	if err := checkRequired(op, a.X, a.X, a.DY, a.Mean, a.InvStd, outGamma, outBeta); err != nil {
		return err
	}
	if a.fused() {
		if err := checkRequired(op, a.X, a.Y); err != nil {
			return err
		}
	}
	c := a.Mean.Numel()
	if n <= 0 || c == 0 || a.X.Numel()%(c*n) != 0 {
		return fmt.Errorf("%s of %v with %d channels and %d samples", op, a.X, c, n)
	}
	if a.fused() {
		if err := checkNumel(op, "y", a.Y, a.X.Numel()); err != nil {
			return err
		}
	}
	return firstError(
		checkNumel(op, "invstd", a.InvStd, c),
		checkNumel(op, "dy", a.DY, a.X.Numel()),
		checkNumel(op, "outGamma", outGamma, n),
		checkNumel(op, "outBeta", outBeta, n))
}
