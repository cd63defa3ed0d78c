package engine

import "fmt"

// PoolOps are max, average and global average pooling with their backward
// passes (engine/cpu/pool.go, cuda/pool.go, kernels/pool.cu).
type PoolOps interface {
	// Pool2d computes max or average pooling of x [N,H,W,C] into
	// y [N,OH,OW,C]; for max pooling, argmax (Int32, y's shape) records the
	// flat input position of each maximum. Average pooling counts padding.
	Pool2d(kind PoolKind, x, y, argmax *Tensor, g PoolGeom)
	// Pool2dBackward computes dx (overwritten) from dy.
	Pool2dBackward(kind PoolKind, dy, argmax, dx *Tensor, g PoolGeom)
	// GlobalAvgPool averages x [N,H,W,C] over H and W into y [N,C].
	GlobalAvgPool(x, y *Tensor)
	// GlobalAvgPoolBackward spreads dy [N,C] evenly into dx [N,H,W,C].
	GlobalAvgPoolBackward(dy, dx *Tensor)
}

// PoolKind selects max or average pooling.
type PoolKind uint8

// Pooling kinds.
const (
	MaxPool PoolKind = iota + 1
	AvgPool
)

// PoolGeom is the geometry of a 2-D pooling over NHWC activations.
type PoolGeom struct {
	N, H, W, C int
	Kernel     int
	Stride     int
	Pad        int
}

// OutH is the output height.
func (g PoolGeom) OutH() int { return (g.H+2*g.Pad-g.Kernel)/g.Stride + 1 }

// OutW is the output width.
func (g PoolGeom) OutW() int { return (g.W+2*g.Pad-g.Kernel)/g.Stride + 1 }

// Validate reports an inconsistent geometry.
func (g PoolGeom) Validate() error {
	if g.N < 0 || g.H <= 0 || g.W <= 0 || g.C <= 0 || g.Kernel <= 0 || g.Stride <= 0 || g.Pad < 0 ||
		g.OutH() <= 0 || g.OutW() <= 0 {
		return fmt.Errorf("pool geometry %+v is inconsistent", g)
	}
	return nil
}

// CheckPool reports a bad geometry or operands of Pool2d (x the input, y
// the output) or Pool2dBackward (x = dx, y = dy) that do not fit it; max
// pooling needs an Int32 argmax of y's size.
func CheckPool(op string, kind PoolKind, x, y, argmax *Tensor, g PoolGeom) error {
	if err := g.Validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := checkRequired(op, x, x, y); err != nil {
		return err
	}
	if err := firstError(
		checkNumel(op, "the input", x, g.N*g.H*g.W*g.C),
		checkNumel(op, "the output", y, g.N*g.OutH()*g.OutW()*g.C)); err != nil {
		return err
	}
	switch kind {
	case MaxPool:
		if argmax == nil || argmax.DType != Int32 {
			return fmt.Errorf("%s: max pooling needs an Int32 argmax, not %v", op, argmax)
		}
		return checkNumel(op, "argmax", argmax, y.Numel())
	case AvgPool:
		return nil
	}
	return fmt.Errorf("%s: unknown pooling %d", op, kind)
}

// CheckGlobalAvgPool reports operands of GlobalAvgPool (x [N,H,W,C], y
// [N,C]) or of its backward pass (x = dx, y = dy) that do not fit.
func CheckGlobalAvgPool(op string, x, y *Tensor) error {
	if len(x.Shape) == 0 || len(y.Shape) == 0 || x.DType != y.DType {
		return fmt.Errorf("%s of %v and %v", op, x, y)
	}
	n, c := x.Rows(), y.Cols()
	if y.Rows() != n || n*c == 0 || x.Numel()%(n*c) != 0 {
		return fmt.Errorf("%s of %v and %v", op, x, y)
	}
	return nil
}
