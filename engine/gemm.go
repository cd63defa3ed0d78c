package engine

import "fmt"

// GemmOps are matrix products and the bias ops of linear and convolution
// layers (engine/cpu/gemm.go, cuda/gemm.go, kernels/gemm.cu).
type GemmOps interface {
	// Gemm computes c = alpha·op(a)·op(b) + beta·c for row-major matrices,
	// with op(a) m×k, op(b) k×n and c m×n.
	Gemm(transA, transB bool, m, n, k int, alpha float64, a, b *Tensor, beta float64, c *Tensor)
	// AddBias adds b[j] to every row of y viewed as [rows, len(b)].
	AddBias(y, b *Tensor)
	// BiasGrad accumulates db[j] += Σ_rows dy[row, j].
	BiasGrad(dy, db *Tensor)
}

// CheckGemm reports operands of Gemm whose sizes are not m×k, k×n and m×n
// or whose types differ.
func CheckGemm(m, n, k int, a, b, c *Tensor) error {
	if m < 0 || n < 0 || k < 0 || a.Numel() != m*k || b.Numel() != k*n || c.Numel() != m*n ||
		a.DType != c.DType || b.DType != c.DType {
		return fmt.Errorf("gemm %dx%dx%d with %v, %v, %v", m, n, k, a, b, c)
	}
	return nil
}

// CheckBias reports a bias (or bias gradient) of AddBias (or BiasGrad)
// whose length does not divide y's (or dy's) size.
func CheckBias(op string, y, bias *Tensor) error {
	if cols := bias.Numel(); cols == 0 || y.Numel()%cols != 0 || y.DType != bias.DType {
		return fmt.Errorf("%s: bias %v for %v", op, bias, y)
	}
	return nil
}
