package engine

import "fmt"

// ReduceOps are reductions accumulated in float64 (engine/cpu/reduce.go,
// cuda/reduce.go, kernels/reduce.cu).
type ReduceOps interface {
	// SumSquares writes out[i] = Σ ts[i]², accumulated in float64, into a
	// float tensor of len(ts) elements.
	SumSquares(ts []*Tensor, out *Tensor)
	// Dot writes out[i] = Σ as[i]·bs[i], accumulated in float64, into a
	// float tensor of len(as) elements.
	Dot(as, bs []*Tensor, out *Tensor)
	// RowSqNorm writes out[i] = Σ_j x[i,j]² for x viewed as [rows, cols].
	RowSqNorm(x, out *Tensor)
}

// CheckDot reports operands of Dot (or of SumSquares, with bs = as) that
// do not fit: pairs of like tensors and one output element per pair.
func CheckDot(op string, as, bs []*Tensor, out *Tensor) error {
	if len(as) != len(bs) {
		return fmt.Errorf("%s of %d and %d tensors", op, len(as), len(bs))
	}
	if err := checkNumel(op, "out", out, len(as)); err != nil {
		return err
	}
	for i, a := range as {
		if err := CheckLike(op, "an operand", bs[i], a); err != nil {
			return err
		}
	}
	return nil
}

// CheckRowSqNorm reports an output of RowSqNorm without one element per
// row of x.
func CheckRowSqNorm(x, out *Tensor) error {
	if len(x.Shape) == 0 {
		return fmt.Errorf("row norm of %v", x)
	}
	return checkNumel("row norm", "out", out, x.Rows())
}
