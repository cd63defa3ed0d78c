package mia

import (
	"fmt"
	"math"
	"slices"
)

// Efficacy returns the MIA-efficacy of the SalUn evaluation: 100 times the
// fraction of the target samples that an attacker, the classifier svc
// trained on the features of shadowMembers (label 1) and shadowNonMembers
// (label 0), predicts to be non-members. In the evaluation of unlearning,
// the shadow members are the first len(shadowNonMembers) samples of the
// retain set, the shadow non-members the test set and the target the forget
// set, all with the same Feature. All sets must be nonempty and all rows
// must have the same number of finite features.
func Efficacy(shadowMembers, shadowNonMembers, target [][]float64, svc SVC) (float64, error) {
	if len(shadowMembers) == 0 || len(shadowNonMembers) == 0 || len(target) == 0 {
		return 0, fmt.Errorf("mia: efficacy: %d shadow members, %d shadow non-members and %d targets, want all nonzero",
			len(shadowMembers), len(shadowNonMembers), len(target))
	}
	a, err := Train(shadowMembers, shadowNonMembers, svc)
	if err != nil {
		return 0, err
	}
	return a.NonMembers(target)
}

// Attacker is a membership-inference attack trained on shadow data.
type Attacker struct{ m *Model }

// Train trains the attacker svc on the features of shadowMembers (label 1)
// and shadowNonMembers (label 0), both nonempty.
func Train(shadowMembers, shadowNonMembers [][]float64, svc SVC) (*Attacker, error) {
	if len(shadowMembers) == 0 || len(shadowNonMembers) == 0 {
		return nil, fmt.Errorf("mia: efficacy: %d shadow members and %d shadow non-members, want both nonzero",
			len(shadowMembers), len(shadowNonMembers))
	}
	x := make([][]float64, 0, len(shadowMembers)+len(shadowNonMembers))
	x = append(append(x, shadowMembers...), shadowNonMembers...)
	y := make([]int, len(x))
	for i := range shadowMembers {
		y[i] = 1
	}
	m, err := svc.fit(x, y)
	if err != nil {
		return nil, fmt.Errorf("mia: efficacy: training the attacker: %w", err)
	}
	return &Attacker{m}, nil
}

// NonMembers returns 100 times the fraction of the samples (nonempty) that
// the attacker predicts to be non-members.
func (a *Attacker) NonMembers(samples [][]float64) (float64, error) {
	if len(samples) == 0 {
		return 0, fmt.Errorf("mia: efficacy: no target samples")
	}
	pred, err := a.m.predictAll(samples)
	if err != nil {
		return 0, fmt.Errorf("mia: efficacy: target: %w", err)
	}
	var nonMembers int
	for _, l := range pred {
		if l == 0 {
			nonMembers++
		}
	}
	return 100 * float64(nonMembers) / float64(len(samples)), nil
}

// Spread returns the diameter of the bounding box of the samples of all the
// sets, √(Σ_j (max_j − min_j)²) over the features j, and whether the
// attacker svc trained on them would see a constant feature: whether
// exp(−γ·spread²) rounds to 1 in float32, so that every kernel value it
// trains with (libsvm's float32 Qfloat) is 1 and no two samples differ for
// it. Its predictions then follow from the rounding of decision values of
// order γ·spread² (of exactly 0 where the targets equal the shadow samples),
// and the efficacy it gives means nothing. The rows must have equal widths.
func (s SVC) Spread(sets ...[][]float64) (spread float64, constant bool) {
	var lo, hi []float64
	for _, set := range sets {
		for _, row := range set {
			if lo == nil {
				lo, hi = slices.Clone(row), slices.Clone(row)
			}
			for j, v := range row {
				lo[j], hi[j] = min(lo[j], v), max(hi[j], v)
			}
		}
	}
	if lo == nil {
		return 0, true
	}
	var sq float64
	for j := range lo {
		sq += (hi[j] - lo[j]) * (hi[j] - lo[j])
	}
	gamma := s.Gamma
	if gamma == 0 {
		gamma = 1 / float64(len(lo))
	}
	return math.Sqrt(sq), float32(math.Exp(-gamma*sq)) == 1
}
