package engine

import "fmt"

// ConvOps are 2-D convolutions and their backward pass (engine/cpu/conv.go,
// cuda/conv.go, kernels/conv.cu).
type ConvOps interface {
	// Conv2d computes y = conv(x, w) for x [N,H,W,C], w [K,R,S,C/groups],
	// y [N,OH,OW,K], without bias.
	Conv2d(x, w, y *Tensor, g ConvGeom)
	// Conv2dBackward computes dx (overwritten, skipped when nil) and
	// accumulates dw from dy.
	Conv2dBackward(x, w, dy, dx, dw *Tensor, g ConvGeom)
}

// ConvGeom is the geometry of a 2-D convolution over NHWC activations.
type ConvGeom struct {
	N, H, W, C int // input batch, height, width, channels
	K, R, S    int // output channels, kernel height and width
	Stride     int
	Pad        int
	Groups     int
}

// OutH is the output height.
func (g ConvGeom) OutH() int { return (g.H+2*g.Pad-g.R)/g.Stride + 1 }

// OutW is the output width.
func (g ConvGeom) OutW() int { return (g.W+2*g.Pad-g.S)/g.Stride + 1 }

// Validate reports an inconsistent geometry.
func (g ConvGeom) Validate() error {
	switch {
	case g.N < 0 || g.H <= 0 || g.W <= 0 || g.C <= 0 || g.K <= 0 || g.R <= 0 || g.S <= 0:
		return fmt.Errorf("conv geometry %+v has a non-positive size", g)
	case g.Stride <= 0 || g.Pad < 0 || g.Groups <= 0:
		return fmt.Errorf("conv geometry %+v has a bad stride, padding or group count", g)
	case g.C%g.Groups != 0 || g.K%g.Groups != 0:
		return fmt.Errorf("conv geometry %+v: channels not divisible by groups", g)
	case g.OutH() <= 0 || g.OutW() <= 0:
		return fmt.Errorf("conv geometry %+v: kernel larger than the padded input", g)
	}
	return nil
}

// CheckConv reports a bad geometry or operands that do not fit it: x
// [N,H,W,C], w [K,R,S,C/groups] and y [N,OH,OW,K], by element count. A nil
// operand is not checked.
func CheckConv(op string, x, w, y *Tensor, g ConvGeom) error {
	if err := g.Validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return firstError(
		checkNumel(op, "x", x, g.N*g.H*g.W*g.C),
		checkNumel(op, "w", w, g.K*g.R*g.S*(g.C/g.Groups)),
		checkNumel(op, "y", y, g.N*g.OutH()*g.OutW()*g.K))
}

// CheckConvBackward is CheckConv for Conv2dBackward: dy is shaped like y,
// dx (optional) like x and dw like w.
func CheckConvBackward(x, w, dy, dx, dw *Tensor, g ConvGeom) error {
	const op = "conv backward"
	if err := checkRequired(op, x, x, w, dy, dw); err != nil {
		return err
	}
	if err := CheckConv(op, x, w, nil, g); err != nil {
		return err
	}
	return firstError(
		checkNumel(op, "dy", dy, g.N*g.OutH()*g.OutW()*g.K),
		checkNumel(op, "dx", dx, x.Numel()),
		checkNumel(op, "dw", dw, w.Numel()))
}
