package qmul

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
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
	// AvgGap is the mean of |FA−FA_ref|, |RA−RA_ref|, |TA−TA_ref| and
	// |MIA−MIA_ref| against a reference (Retrain), when one is given.
	AvgGap *float64 `json:"avg_gap,omitempty"`
	// RTE is the wall-clock time of the unlearning procedure in seconds.
	RTE float64 `json:"rte_s"`
}

// Gap sets AvgGap against a reference.
func (m *Metrics) Gap(ref Metrics) {
	g := (math.Abs(m.FA-ref.FA) + math.Abs(m.RA-ref.RA) + math.Abs(m.TA-ref.TA) + math.Abs(m.MIA-ref.MIA)) / 4
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
		v, err := attack(f, e.Retain, shadow, e.Test, e.Forget)
		if err != nil {
			return nil, fmt.Errorf("MIA (%s): %w", f, err)
		}
		e.MIAFeatures[string(f)] = v
	}
	e.MIA = e.MIAFeatures[string(mia.Confidence)]
	return e, nil
}

// attack trains the SVM on shadow data and returns the efficacy on D_f.
func attack(f mia.Feature, retain *train.Outputs, shadow int, test, forget *train.Outputs) (float64, error) {
	feats := func(o *train.Outputs, n int) ([][]float64, error) {
		labels := make([]int, n)
		for i := range labels {
			labels[i] = int(o.Labels[i])
		}
		return mia.Features(f, o.Probs[:n*o.Classes], o.Classes, labels)
	}
	members, err := feats(retain, shadow)
	if err != nil {
		return 0, err
	}
	nonMembers, err := feats(test, len(test.Labels))
	if err != nil {
		return 0, err
	}
	target, err := feats(forget, len(forget.Labels))
	if err != nil {
		return 0, err
	}
	return mia.Efficacy(members, nonMembers, target, mia.AttackSVC())
}

// WriteScores writes one CSV row per evaluated sample — split, index,
// label, predicted, confidence, entropy and the shadow role in the attack —
// so that any metric can be recomputed outside the tool.
func (e *Evaluation) WriteScores(path string) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write([]string{"split", "index", "label", "predicted", "confidence", "entropy", "mia_role"})
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
				cw.Write([]string{part.name, strconv.Itoa(int(part.o.Index[i])), strconv.Itoa(int(part.o.Labels[i])),
					strconv.Itoa(int(part.o.Pred[i])), strconv.FormatFloat(float64(part.o.Conf[i]), 'g', 9, 32),
					strconv.FormatFloat(float64(part.o.Entropy[i]), 'g', 9, 32), part.role(i)})
			}
		}
		cw.Flush()
		return cw.Error()
	})
}
