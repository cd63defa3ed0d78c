package engine

import "fmt"

// UnlearnOps are the ops only the unlearning methods use: the ℓ1
// penalty's subgradient, running square roots, Q-MUL's similar labels and
// the entropy objective (engine/cpu/unlearn.go, cuda/unlearn.go,
// kernels/unlearn.cu).
type UnlearnOps interface {
	// AddSign computes y += a·sign(x) (sign(0) = 0): the ℓ1 penalty's
	// subgradient.
	AddSign(a float64, x, y *Tensor)
	// AddSqrt computes dst += sqrt(src) elementwise.
	AddSqrt(dst, src *Tensor)
	// SimilarLabels writes, for each row of Logits with label y,
	// Out[i] = argmin_{j≠y} |p_j − p_y| with p = softmax(logits) (the
	// smallest such j on ties): Q-MUL's similar label.
	SimilarLabels(logits, labels, out *Tensor)
	// SoftmaxEntropy writes Entropy[i] = −Σ_j p_ij log p_ij and DLogits,
	// the gradient of Scale·Σ_i w_i·Entropy[i]; it uses LossArgs' Logits,
	// Weights, Scale, DLogits and Entropy.
	SoftmaxEntropy(a LossArgs)
}

// CheckSimilarLabels reports operands of SimilarLabels that do not fit
// Logits [N, classes]: Int32 labels and out of N elements.
func CheckSimilarLabels(logits, labels, out *Tensor) error {
	const op = "similar labels"
	if len(logits.Shape) == 0 || labels.DType != Int32 || out.DType != Int32 ||
		(logits.Rows() > 0 && logits.Cols() == 0) {
		return fmt.Errorf("%s of %v with labels %v into %v", op, logits, labels, out)
	}
	n := logits.Rows()
	return firstError(checkNumel(op, "labels", labels, n), checkNumel(op, "out", out, n))
}

// CheckSoftmaxEntropy reports operands of SoftmaxEntropy that do not fit
// Logits [N, classes] (see CheckSoftmaxCrossEntropy).
func CheckSoftmaxEntropy(a LossArgs) error {
	if len(a.Logits.Shape) == 0 {
		return fmt.Errorf("softmax entropy of %v", a.Logits)
	}
	return checkLossOutputs("softmax entropy", a, a.Entropy)
}
