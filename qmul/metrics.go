package qmul

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/atomicfile"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qmul/mia"
)

// Metrics are the standard numbers of an unlearned model, in percent, plus
// the run time (method.md section 5).
type Metrics struct {
	// FA, RA and TA are the top-1 accuracies on D_f, D_r and D_t.
	FA float64 `json:"fa"`
	RA float64 `json:"ra"`
	TA float64 `json:"ta"`
	// MIA is MIA-efficacy with the confidence feature; MIAFeatures has
	// the attack on every feature.
	MIA         float64            `json:"mia"`
	MIAFeatures map[string]float64 `json:"mia_features,omitempty"`
	// MIATest is what the confidence attack says of D_t, data the model
	// never saw: the percentage it calls non-members (the Retrain-free
	// criterion's estimate of Retrain's MIA on a random forget set,
	// ProxyTarget).
	MIATest float64 `json:"mia_test"`
	// MIAWarnings names the attacks whose feature is constant over the
	// shadow sets as far as the attacker can tell (mia.SVC.Spread): their
	// efficacy is decided by rounding and means nothing.
	MIAWarnings []string `json:"mia_warnings,omitempty"`
	// AvgGap is the mean of |FA−FA_ref|, |RA−RA_ref|, |TA−TA_ref| and
	// |MIA−MIA_ref| against a reference (Retrain), when one is given.
	AvgGap *float64 `json:"avg_gap,omitempty"`
	// RTE is the wall-clock time of the unlearning procedure in seconds.
	RTE float64 `json:"rte_s"`
}

// Gap sets AvgGap against a reference.
func (m *Metrics) Gap(ref Metrics) {
	g := Distance(*m, ref)
	m.AvgGap = &g
}

// Sets are the evaluation sets of a study: indices into the resident
// training and test data.
type Sets struct {
	Train, Test *train.DeviceData
	Forget      []int
	Retain      []int
	// TestIdx is D_t: the test set, without the forgotten class in
	// class-wise forgetting.
	TestIdx []int
}

// Evaluation holds the metrics and the per-sample outputs behind them.
type Evaluation struct {
	Metrics
	Forget, Retain, Test *train.Outputs
}

// MIAFeatures lists the attack features evaluated; Confidence is reported.
var MIAFeatures = []mia.Feature{mia.Confidence, mia.Correctness, mia.Entropy, mia.MEntropy, mia.Prob}

// Evaluate computes FA, RA, TA and MIA-efficacy in evaluation mode without
// augmentation. Shadow members are the first |D_t| samples of D_r in retain
// order, shadow non-members D_t, and the attacked set D_f.
func Evaluate(b engine.Backend, m *models.Model, s Sets, batch int) (*Evaluation, error) {
	e := &Evaluation{}
	e.Forget = train.Evaluate(b, m, s.Train, s.Forget, batch, true, nil)
	e.Retain = train.Evaluate(b, m, s.Train, s.Retain, batch, true, nil)
	e.Test = train.Evaluate(b, m, s.Test, s.TestIdx, batch, true, nil)
	if err := b.Err(); err != nil {
		return nil, err
	}
	e.FA, e.RA, e.TA = e.Forget.Accuracy(), e.Retain.Accuracy(), e.Test.Accuracy()
	shadow := min(len(s.TestIdx), len(s.Retain))
	e.MIAFeatures = map[string]float64{}
	for _, f := range MIAFeatures {
		v, unseen, warning, err := attack(f, e.Retain, shadow, e.Test, e.Forget)
		if err != nil {
			return nil, fmt.Errorf("MIA (%s): %w", f, err)
		}
		e.MIAFeatures[string(f)] = v
		if f == mia.Confidence {
			e.MIATest = unseen
		}
		if warning != "" {
			e.MIAWarnings = append(e.MIAWarnings, warning)
		}
	}
	e.MIA = e.MIAFeatures[string(mia.Confidence)]
	return e, nil
}

// attack trains the SVM on shadow data and returns the efficacy on D_f,
// the share of D_t it calls non-members, and a warning when the feature is
// constant over the shadow sets for the attacker.
func attack(f mia.Feature, retain *train.Outputs, shadow int, test, forget *train.Outputs) (efficacy, unseen float64, warning string, err error) {
	feats := func(o *train.Outputs, n int) ([][]float64, error) {
		labels := make([]int, n)
		for i := range labels {
			labels[i] = int(o.Labels[i])
		}
		return mia.Features(f, o.Probs[:n*o.Classes], o.Classes, labels)
	}
	members, err := feats(retain, shadow)
	if err != nil {
		return 0, 0, "", err
	}
	nonMembers, err := feats(test, len(test.Labels))
	if err != nil {
		return 0, 0, "", err
	}
	target, err := feats(forget, len(forget.Labels))
	if err != nil {
		return 0, 0, "", err
	}
	svc := mia.AttackSVC()
	if spread, constant := svc.Spread(members, nonMembers); constant {
		warning = fmt.Sprintf("%s: the feature is constant over the shadow sets for the attacker (spread %.3g), so its MIA-efficacy is decided by rounding and means nothing", f, spread)
	}
	if len(target) == 0 {
		return 0, 0, "", fmt.Errorf("mia: efficacy: no forget samples")
	}
	a, err := mia.Train(members, nonMembers, svc)
	if err != nil {
		return 0, 0, "", err
	}
	if efficacy, err = a.NonMembers(target); err != nil {
		return 0, 0, "", err
	}
	unseen, err = a.NonMembers(nonMembers)
	return efficacy, unseen, warning, err
}

// WriteScores writes one CSV row per evaluated sample — split, index,
// label, predicted, confidence, entropy, the shadow role in the attack and
// the softmax probabilities prob_0, prob_1, … — so that any metric can be
// recomputed outside the tool.
func (e *Evaluation) WriteScores(path string) error {
	classes := e.Test.Classes
	return atomicfile.Write(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		header := []string{"split", "index", "label", "predicted", "confidence", "entropy", "mia_role"}
		for c := range classes {
			header = append(header, "prob_"+strconv.Itoa(c))
		}
		cw.Write(header)
		f32 := func(v float32) string { return strconv.FormatFloat(float64(v), 'g', -1, 32) }
		shadow := min(len(e.Test.Index), len(e.Retain.Index))
		for _, part := range []struct {
			name string
			o    *train.Outputs
			role func(i int) string
		}{
			{"forget", e.Forget, func(int) string { return "target" }},
			{"retain", e.Retain, func(i int) string {
				if i < shadow {
					return "member"
				}
				return ""
			}},
			{"test", e.Test, func(int) string { return "non-member" }},
		} {
			for i := range part.o.Index {
				row := []string{part.name, strconv.Itoa(int(part.o.Index[i])), strconv.Itoa(int(part.o.Labels[i])),
					strconv.Itoa(int(part.o.Pred[i])), f32(part.o.Conf[i]), f32(part.o.Entropy[i]), part.role(i)}
				for _, p := range part.o.Probs[i*classes : (i+1)*classes] {
					row = append(row, f32(p))
				}
				cw.Write(row)
			}
		}
		cw.Flush()
		return cw.Error()
	})
}
