package qmul

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// The total-loss guard. The epoch guard (train.CollapseGuard) stops a run
// whose loss climbs back above chance after having fallen; it cannot see a
// run that is thrown to chance in its first steps and stays there, as
// `unlearn --method ft --lr 50` is (every epoch's loss about ln(classes),
// TA 10%). This guard judges the result instead: an unlearned model that
// has kept less than a tenth of the original's retain accuracy above
// chance, from an original that was well above it, has lost everything it
// knew, which no unlearning method aims at (Retrain's own RA is about the
// original's).
const (
	// totalLossKept is the share of the original's retain accuracy above
	// chance under which a model counts as collapsed.
	totalLossKept = 0.1
	// totalLossMargin is how far (in points) above chance the original's
	// retain accuracy must be for the guard to judge: a model that never
	// learnt much cannot lose it.
	totalLossMargin = 20.0
)

// nearChance reports whether a retain accuracy (percent) could count as
// total loss for a classifier of the given number of classes, whatever
// the original's: the guard measures the original only then.
func nearChance(ra float64, classes int) bool {
	chance := 100 / float64(classes)
	return ra-chance <= totalLossKept*(100-chance)
}

// TotalLoss reports, wrapping train.ErrCollapsed, an unlearned model whose
// retain accuracy ra has fallen to within a tenth of the original's
// (originalRA) distance above chance, when the original was at least 20
// points above chance.
func TotalLoss(method string, ra, originalRA float64, classes int) error {
	chance := 100 / float64(classes)
	if originalRA-chance < totalLossMargin || ra-chance > totalLossKept*(originalRA-chance) {
		return nil
	}
	return fmt.Errorf("%s: %w: it ends at %.2f%% retain accuracy, chance is %.2f%% and the original had %.2f%%; lower the learning rate, or pass --allow-collapse to keep such a run",
		method, train.ErrCollapsed, ra, chance, originalRA)
}

// guardTotalLoss applies TotalLoss to an unlearning run (Retrain and runs
// with AllowCollapse are not judged). The original's retain accuracy is
// measured only when the result is near chance.
func (j *Job) guardTotalLoss(r *run) error {
	classes := r.model.Config.Classes
	if FromScratch(j.Method) || j.Hyper.AllowCollapse || !nearChance(r.res.RA, classes) {
		return nil
	}
	ra, err := r.originalRA(j.Backend, max(256, j.Hyper.Batch))
	if err != nil {
		return err
	}
	return TotalLoss(j.Method, r.res.RA, ra, classes)
}

// originalRA is θ_o's accuracy on D_r, measured on a fresh copy of it
// (the run's model is unlearned in place) unless already known.
func (r *run) originalRA(b engine.Backend, batch int) (float64, error) {
	if r.original != nil {
		return r.original.RA, nil
	}
	m, err := r.orig.Rebuild(b)
	if err != nil {
		return 0, err
	}
	defer freeModel(b, m)
	ra := train.Evaluate(b, m, r.sets.Train, r.sets.Retain, batch, false, nil).Accuracy()
	return ra, b.Err()
}

// freeModel frees a model's parameters, gradients and state tensors (a
// copy of θ_o made for a measurement or a discarded candidate).
func freeModel(b engine.Backend, m *models.Model) {
	m.Net.Release(&nn.Ctx{B: b})
	for _, p := range m.Params() {
		b.Free(p.Value)
		if p.Grad != nil {
			b.Free(p.Grad)
		}
	}
	for _, s := range m.States() {
		if s.Value != nil {
			b.Free(s.Value)
		}
	}
}
