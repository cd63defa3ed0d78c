package qmul

import (
	"fmt"
	"math"
)

// Selection criteria of a learning-rate search: which candidate is best.
const (
	// SelectGap is the research protocol's: the smallest Avg. Gap to
	// Retrain. It needs Retrain.
	SelectGap = "gap"
	// SelectProxy needs no Retrain: the smallest ProxyGap, the Avg. Gap to
	// ProxyTarget, an estimate of Retrain's metrics made from the original
	// model alone.
	SelectProxy = "proxy"
)

// Criteria lists the selection criteria.
func Criteria() []string { return []string{SelectGap, SelectProxy} }

// CheckCriterion reports an unknown selection criterion.
func CheckCriterion(c string) error {
	if c != SelectGap && c != SelectProxy {
		return fmt.Errorf("--select %q: want gap (Avg. Gap to Retrain, needs --reference) or proxy (no Retrain)", c)
	}
	return nil
}

// ProxyTarget estimates what Retrain would score on a forget set, from
// the original model's evaluation alone (docs/sweeps.md, "Choosing a rate
// without Retrain"):
//
//   - RA and TA: the original's. Retrain is trained with the original's
//     recipe on nearly the same data, so it fits its training data and
//     generalises about as well (in the study, within 1–2 points).
//   - FA, random or explicit forget sets: the original's TA. To Retrain
//     the forget set is unseen data drawn like the training data, so it
//     scores on it what it scores on the test set.
//   - FA, class-wise: 0. A model that never saw a class does not predict
//     it.
//   - MIA, random or explicit: the original's MIATest, the share of test
//     data (never seen) that the attack calls non-members: Retrain's
//     forget set is unseen data, and the attack treats it like the test
//     set.
//   - MIA, class-wise: 100. Samples of a class the model never saw get a
//     confidence near 0 in their label, which the attack reads as
//     non-membership.
func ProxyTarget(original Metrics, classWise bool) Metrics {
	t := Metrics{FA: original.TA, RA: original.RA, TA: original.TA, MIA: original.MIATest}
	if classWise {
		t.FA, t.MIA = 0, 100
	}
	return t
}

// ProxyGap is a model's Avg. Gap to ProxyTarget: the Retrain-free
// criterion.
func ProxyGap(m, original Metrics, classWise bool) float64 {
	return Distance(m, ProxyTarget(original, classWise))
}

// Distance is the mean absolute difference of FA, RA, TA and MIA: the Avg.
// Gap of a to b.
func Distance(a, b Metrics) float64 {
	return (math.Abs(a.FA-b.FA) + math.Abs(a.RA-b.RA) + math.Abs(a.TA-b.TA) + math.Abs(a.MIA-b.MIA)) / 4
}

// PlateauPoints is how close to the original's (in points) each of FA,
// RA, TA and MIA must stay for an unlearning run to count as doing
// nothing: five forget samples in 500.
const PlateauPoints = 1.0

// OnPlateau reports whether an unlearned model is about where the original
// was, on every metric: the learning rate was too small to do anything.
func OnPlateau(m, original Metrics) bool {
	for _, d := range []float64{m.FA - original.FA, m.RA - original.RA, m.TA - original.TA, m.MIA - original.MIA} {
		if math.Abs(d) > PlateauPoints {
			return false
		}
	}
	return true
}
