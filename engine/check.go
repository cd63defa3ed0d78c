package engine

import "fmt"

// Op preconditions. Each op family's file declares the Check functions of
// its ops; every backend calls them before it touches an operand and
// panics with the error they return, prefixed by its name ("cpu: ",
// "cuda: "), so that a bad call fails the same way whatever runs it. What
// only one backend cannot do (Float64 on CUDA, sizes past its 32-bit
// kernel parameters) that backend checks on top.

// checkNumel reports a non-nil t whose element count is not n.
func checkNumel(op, what string, t *Tensor, n int) error {
	if t != nil && t.Numel() != n {
		return fmt.Errorf("%s: %s is %v, want %d elements", op, what, t, n)
	}
	return nil
}

// checkSizes reports the first non-nil operand among ts whose element
// count is not n.
func checkSizes(op, what string, n int, ts ...*Tensor) error {
	for _, t := range ts {
		if err := checkNumel(op, what, t, n); err != nil {
			return err
		}
	}
	return nil
}

// CheckLike reports t unless it has ref's type and element count: the
// second operand of an elementwise op.
func CheckLike(op, what string, t, ref *Tensor) error {
	if t.DType != ref.DType || t.Numel() != ref.Numel() {
		return fmt.Errorf("%s: %s is %v, want %d %s elements", op, what, t, ref.Numel(), ref.DType)
	}
	return nil
}

// checkRequired reports a nil operand among ts, naming the op's main
// operand x.
func checkRequired(op string, x *Tensor, ts ...*Tensor) error {
	for _, t := range ts {
		if t == nil {
			return fmt.Errorf("%s of %v: a required operand is nil", op, x)
		}
	}
	return nil
}

// checkType reports a non-nil operand among ts whose type is not dt.
func checkType(op string, dt DType, ts ...*Tensor) error {
	for _, t := range ts {
		if t != nil && t.DType != dt {
			return fmt.Errorf("%s: %v is not %s", op, t, dt)
		}
	}
	return nil
}

// firstError returns the first non-nil error of errs.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
