package mia

import (
	"fmt"
	"math"
)

// Feature names a per-sample feature the attacker sees, computed from the
// model's softmax output p and the true label y of a sample.
type Feature string

// The features of the SalUn evaluation. Confidence is the one reported as
// MIA-efficacy.
const (
	// Confidence is p_y, the probability of the true class.
	Confidence Feature = "confidence"
	// Correctness is 1 if the first class of largest probability is y and 0
	// otherwise.
	Correctness Feature = "correctness"
	// Entropy is −Σ_j p_j log p_j, with 0 log 0 = 0.
	Entropy Feature = "entropy"
	// MEntropy is the modified entropy of Song and Mittal (2021),
	// −(1 − p_y) log p_y − Σ_{j≠y} p_j log(1 − p_j), with each logarithm's
	// argument clamped below at LogFloor. (The m_entropy function of the
	// SalUn and Unlearn-Sparse code bases departs from this formula: it
	// takes log p_j where log(1 − p_j) is meant, and it indexes [:, labels],
	// the columns of all the labels in every row.)
	MEntropy Feature = "m_entropy"
	// Prob is the whole probability vector, one feature per class.
	Prob Feature = "prob"
)

// LogFloor is the smallest argument of the logarithms in the Entropy and
// MEntropy features: log(max(q, LogFloor)) replaces log q, so that a
// probability of exactly 0 or 1 contributes log(1e−30) ≈ −69.08 instead of
// −Inf. The SalUn code substitutes log(1e−30) for log 0 only, which differs
// for q in (0, 1e−30): float32 subnormals. In Entropy the floor only
// matters where p_j = 0, and there it is multiplied by 0.
const LogFloor = 1e-30

// Features computes the feature kind of n samples from their softmax
// outputs and labels. probs holds the probabilities row-major, the classes
// values of sample i at probs[i*classes:(i+1)*classes], and labels[i] is
// the true class of sample i, in [0, classes). The result has one row per
// sample, of classes values for Prob and of one value otherwise. The
// probabilities must lie in [0, 1]; they need not sum exactly to 1.
func Features(kind Feature, probs []float32, classes int, labels []int) ([][]float64, error) {
	if classes < 1 {
		return nil, fmt.Errorf("mia: features: %d classes", classes)
	}
	if len(probs) != len(labels)*classes {
		return nil, fmt.Errorf("mia: features: %d probabilities for %d samples of %d classes", len(probs), len(labels), classes)
	}
	width := 1
	switch kind {
	case Confidence, Correctness, Entropy, MEntropy:
	case Prob:
		width = classes
	default:
		return nil, fmt.Errorf("mia: features: unknown feature %q", kind)
	}
	out := make([][]float64, len(labels))
	flat := make([]float64, len(labels)*width)
	for i, y := range labels {
		p := probs[i*classes : (i+1)*classes]
		if y < 0 || y >= classes {
			return nil, fmt.Errorf("mia: features: label %d of sample %d, want [0, %d)", y, i, classes)
		}
		for j, v := range p {
			if !(v >= 0 && v <= 1) {
				return nil, fmt.Errorf("mia: features: probability %v of class %d of sample %d, want [0, 1]", v, j, i)
			}
		}
		row := flat[i*width : (i+1)*width : (i+1)*width]
		switch kind {
		case Confidence:
			row[0] = float64(p[y])
		case Correctness:
			if argmax(p) == y {
				row[0] = 1
			}
		case Entropy:
			row[0] = entropy(p)
		case MEntropy:
			row[0] = modifiedEntropy(p, y)
		case Prob:
			for j, v := range p {
				row[j] = float64(v)
			}
		}
		out[i] = row
	}
	return out, nil
}

// argmax returns the first index of the largest element of p.
func argmax(p []float32) int {
	best := 0
	for j, v := range p {
		if v > p[best] {
			best = j
		}
	}
	return best
}

// safeLog returns log(max(q, LogFloor)).
func safeLog(q float64) float64 { return math.Log(max(q, LogFloor)) }

// entropy returns −Σ_j p_j log p_j.
func entropy(p []float32) float64 {
	var h float64
	for _, v := range p {
		q := float64(v)
		h -= q * safeLog(q)
	}
	return h
}

// modifiedEntropy returns −(1 − p_y) log p_y − Σ_{j≠y} p_j log(1 − p_j).
func modifiedEntropy(p []float32, y int) float64 {
	var h float64
	for j, v := range p {
		q := float64(v)
		if j == y {
			h -= (1 - q) * safeLog(q)
		} else {
			h -= q * safeLog(1-q)
		}
	}
	return h
}
