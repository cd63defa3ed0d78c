package engine

// SGDOps are the optimiser's update (engine/cpu/sgd.go, cuda/sgd.go,
// kernels/sgd.cu).
type SGDOps interface {
	// SGD applies one SGD step to a parameter; see SGDArgs.
	SGD(a SGDArgs)
}

// SGDArgs are the operands of one SGD step (PyTorch's semantics, dampening 0):
//
//	g   = Mask ⊙ (GradScale·Grad + WeightDecay·Param)
//	Buf = Momentum·Buf + g                          (when Momentum > 0)
//	d   = g + Momentum·Buf if Nesterov, else Buf    (g when Momentum = 0)
//	Param −= LR · d
//
// A zero in Mask therefore freezes that element exactly. Mask and Buf may be
// nil (no mask; no momentum).
type SGDArgs struct {
	Param, Grad, Buf, Mask *Tensor
	LR, Momentum           float64
	WeightDecay            float64
	GradScale              float64
	Nesterov               bool
}

// CheckSGD reports a gradient, momentum buffer or mask that is not like
// the parameter.
func CheckSGD(a SGDArgs) error {
	const op = "sgd"
	if err := checkRequired(op, a.Param, a.Param, a.Grad); err != nil {
		return err
	}
	for _, t := range []*Tensor{a.Grad, a.Buf, a.Mask} {
		if t != nil {
			if err := CheckLike(op, "an operand", t, a.Param); err != nil {
				return err
			}
		}
	}
	return nil
}
