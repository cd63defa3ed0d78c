package engine

import "fmt"

// ActivationOps are the elementwise nonlinearities and their backward
// passes (engine/cpu/activation.go, cuda/activation.go,
// kernels/activation.cu).
type ActivationOps interface {
	// Activate computes y = act(x) elementwise (x and y may alias). For
	// PReLU, alpha holds one slope or one per channel (the last dimension).
	Activate(act Activation, x, alpha, y *Tensor)
	// ActivateBackward computes dx from dy (dx may alias dy). x is the
	// input of the forward op, or its output for ReLU and ReLU6. For PReLU
	// it accumulates dalpha.
	ActivateBackward(act Activation, x, alpha, dy, dx, dalpha *Tensor)
}

// Activation selects an elementwise nonlinearity.
type Activation uint8

// Activations.
const (
	ReLU Activation = iota + 1
	ReLU6
	PReLU
)

// CheckActivate reports operands of Activate that do not fit: y like x,
// and for PReLU slopes whose count divides x's size.
func CheckActivate(act Activation, x, alpha, y *Tensor) error {
	const op = "activate"
	if err := CheckLike(op, "y", y, x); err != nil {
		return err
	}
	return checkSlopes(op, act, x, alpha)
}

// CheckActivateBackward reports operands of ActivateBackward that do not
// fit: dy and dx like x, the slopes as for Activate, and dalpha
// (optional) like alpha.
func CheckActivateBackward(act Activation, x, alpha, dy, dx, dalpha *Tensor) error {
	const op = "activate backward"
	if err := firstError(CheckLike(op, "dy", dy, x), CheckLike(op, "dx", dx, x)); err != nil {
		return err
	}
	if err := checkSlopes(op, act, x, alpha); err != nil || act != PReLU || dalpha == nil {
		return err
	}
	return CheckLike(op, "dalpha", dalpha, alpha)
}

// checkSlopes reports an unknown activation, and for PReLU missing slopes
// or a slope count that does not divide x's size.
func checkSlopes(op string, act Activation, x, alpha *Tensor) error {
	switch act {
	case ReLU, ReLU6:
		return nil
	case PReLU:
		if alpha == nil {
			return fmt.Errorf("%s: PReLU without slopes", op)
		}
		if na := alpha.Numel(); na == 0 || x.Numel()%na != 0 || alpha.DType != x.DType {
			return fmt.Errorf("%s: PReLU slopes %v for %v", op, alpha, x)
		}
		return nil
	}
	return fmt.Errorf("%s: unknown activation %d", op, act)
}
