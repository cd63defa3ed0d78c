package mia

import "fmt"

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
	x := make([][]float64, 0, len(shadowMembers)+len(shadowNonMembers))
	x = append(append(x, shadowMembers...), shadowNonMembers...)
	y := make([]int, len(x))
	for i := range shadowMembers {
		y[i] = 1
	}
	m, err := svc.fit(x, y)
	if err != nil {
		return 0, fmt.Errorf("mia: efficacy: training the attacker: %w", err)
	}
	pred, err := m.predictAll(target)
	if err != nil {
		return 0, fmt.Errorf("mia: efficacy: target: %w", err)
	}
	var nonMembers int
	for _, l := range pred {
		if l == 0 {
			nonMembers++
		}
	}
	return 100 * float64(nonMembers) / float64(len(target)), nil
}
