package engine

import "fmt"

// LossOps are the training loss (engine/cpu/loss.go, cuda/loss.go,
// kernels/loss.cu).
type LossOps interface {
	// SoftmaxCrossEntropy evaluates the weighted softmax cross-entropy and
	// its per-sample outputs; see LossArgs.
	SoftmaxCrossEntropy(a LossArgs)
}

// LossArgs are the operands of SoftmaxCrossEntropy over Logits [N, classes]
// and Labels (Int32 [N]).
//
// With w_i = Weights[i] (1 when Weights is nil) and p = softmax(logits):
//
//	Loss[i]    = −log p[i, y_i]          (unweighted)
//	Pred[i]    = argmax_j p[i, j]        (first maximum)
//	Conf[i]    = p[i, y_i]
//	Entropy[i] = −Σ_j p[i,j] log p[i,j]
//	DLogits[i] = Scale · w_i · (p[i] − onehot(y_i))
//
// so DLogits is the gradient of Scale·Σ_i w_i·Loss[i]. Every output is optional.
type LossArgs struct {
	Logits, Labels, Weights *Tensor
	Scale                   float64
	DLogits                 *Tensor
	Loss, Pred, Conf        *Tensor
	Entropy                 *Tensor
}

// CheckSoftmaxCrossEntropy reports operands of SoftmaxCrossEntropy that do
// not fit Logits [N, classes]: Int32 labels and predictions and the other
// per-sample outputs of N elements, DLogits of Logits' size.
func CheckSoftmaxCrossEntropy(a LossArgs) error {
	const op = "softmax cross-entropy"
	n, k := a.Logits.Rows(), a.Logits.Cols()
	if a.Labels == nil || a.Labels.DType != Int32 || (n > 0 && k == 0) {
		return fmt.Errorf("%s of %v with labels %v", op, a.Logits, a.Labels)
	}
	if err := firstError(checkType(op, Int32, a.Pred), checkNumel(op, "labels", a.Labels, n)); err != nil {
		return err
	}
	return checkLossOutputs(op, a, a.Loss, a.Pred, a.Conf, a.Entropy)
}

// checkLossOutputs reports a weight or per-sample output (among perSample)
// of other than N elements, or DLogits of other than Logits' size.
func checkLossOutputs(op string, a LossArgs, perSample ...*Tensor) error {
	n := a.Logits.Rows()
	for _, t := range perSample {
		if err := checkNumel(op, "a per-sample operand", t, n); err != nil {
			return err
		}
	}
	return firstError(
		checkNumel(op, "a per-sample operand", a.Weights, n),
		checkNumel(op, "dlogits", a.DLogits, a.Logits.Numel()))
}
