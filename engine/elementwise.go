package engine

import "fmt"

// ElementwiseOps are fills, copies, elementwise updates and row gathers
// on whole tensors (engine/cpu/elementwise.go, cuda/elementwise.go,
// kernels/elementwise.cu).
type ElementwiseOps interface {
	// Fill sets every element of x to v.
	Fill(x *Tensor, v float64)
	// Copy copies src into dst (same type and size).
	Copy(dst, src *Tensor)
	// Scale multiplies x by a in place.
	Scale(x *Tensor, a float64)
	// Axpy computes y += a·x.
	Axpy(a float64, x, y *Tensor)
	// Add computes dst = a + b (dst may alias a or b).
	Add(dst, a, b *Tensor)
	// Gather copies rows: dst[i] = src[index[i]] for the leading dimension.
	Gather(dst, src, index *Tensor)
}

// CheckAdd reports operands of Add that are not like dst.
func CheckAdd(dst, a, b *Tensor) error {
	return firstError(CheckLike("add", "a", a, dst), CheckLike("add", "b", b, dst))
}

// CheckGather reports operands of Gather that do not fit: dst of src's
// type and row length, one Int32 index per row of dst.
func CheckGather(dst, src, index *Tensor) error {
	if dst.DType != src.DType || index.DType != Int32 || len(dst.Shape) == 0 || len(src.Shape) == 0 ||
		dst.Rows() != index.Numel() || dst.Cols() != src.Cols() {
		return fmt.Errorf("gather %v from %v by %v", dst, src, index)
	}
	return nil
}
