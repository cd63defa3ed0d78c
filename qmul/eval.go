package qmul

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qat"
)

// EvalJob is `qmulgpu eval`: a checkpoint's (or an integer export's)
// accuracy on its data set's splits, or its unlearning metrics for a
// forget set.
type EvalJob struct {
	Checkpoint string
	// Quant, when its scheme is set, must agree with the checkpoint's.
	Quant qat.Config
	// Data, when set, adjusts the data spec the checkpoint records; it gets
	// the error of reading that record too (a checkpoint from elsewhere
	// may not say which data set it was trained on) and may resolve it.
	Data func(recorded train.DataSpec, err error) (train.DataSpec, error)
	// Forget, when set, selects the unlearning metrics; Reference (Retrain's
	// metrics.json) adds the average gap, Scores writes per-sample scores.
	Forget, Reference, Scores string
	Batch                     int
	Backend                   engine.Backend
	// Notify, when set, gets notes for the user (integer inference runs on
	// the CPU).
	Notify func(string)
}

// AccuracyReport is the result of EvalJob.Accuracy.
type AccuracyReport struct {
	Checkpoint string  `json:"checkpoint"`
	Dataset    string  `json:"dataset"`
	TrainAcc   float64 `json:"train_acc"`
	ValAcc     float64 `json:"val_acc,omitempty"`
	TestAcc    float64 `json:"test_acc"`
	Backend    string  `json:"backend"`
	// HasVal tells a validation split of accuracy 0 from none.
	HasVal bool `json:"-"`
}

// UnlearningReport is the result of EvalJob.Unlearning.
type UnlearningReport struct {
	Checkpoint string `json:"checkpoint"`
	Forget     string `json:"forget"`
	Reference  string `json:"reference,omitempty"`
	Backend    string `json:"backend"`
	Metrics
}

// opened is a checkpoint opened for evaluation with its data spec.
func (j *EvalJob) open() (*qat.Opened, train.DataSpec, error) {
	if j.Batch < 1 {
		return nil, train.DataSpec{}, fmt.Errorf("batch %d: must be at least 1", j.Batch)
	}
	o, err := qat.OpenForInference(j.Checkpoint, j.Backend, j.Quant, j.Notify)
	if err != nil {
		return nil, train.DataSpec{}, err
	}
	origin, err := ReadOrigin(o.File.Metadata, "")
	spec := origin.Data
	if j.Data != nil {
		spec, err = j.Data(spec, err)
	}
	if err != nil {
		return nil, spec, fmt.Errorf("%s: %w", j.Checkpoint, err)
	}
	return o, spec, nil
}

// Accuracy evaluates the checkpoint on the training, validation and test
// splits.
func (j *EvalJob) Accuracy() (*AccuracyReport, error) {
	if j.Reference != "" || j.Scores != "" {
		return nil, fmt.Errorf("--reference and --scores need --forget")
	}
	o, spec, err := j.open()
	if err != nil {
		return nil, err
	}
	splits, err := spec.Load()
	if err != nil {
		return nil, err
	}
	if err := train.Fits(o.Model.Config, splits.Train); err != nil {
		return nil, fmt.Errorf("%s: %w", j.Checkpoint, err)
	}
	b, m := o.Backend, o.Model
	trainData, testData := train.Upload(b, splits.Train), train.Upload(b, splits.Test)
	defer trainData.Free(b)
	defer testData.Free(b)
	r := &AccuracyReport{Checkpoint: j.Checkpoint, Dataset: spec.Dataset, Backend: b.Name(), HasVal: len(splits.ValIdx) > 0}
	r.TrainAcc = train.Evaluate(b, m, trainData, splits.TrainIdx, j.Batch, false, nil).Accuracy()
	if r.HasVal {
		r.ValAcc = train.Evaluate(b, m, trainData, splits.ValIdx, j.Batch, false, nil).Accuracy()
	}
	r.TestAcc = train.Evaluate(b, m, testData, splits.TestIdx, j.Batch, false, nil).Accuracy()
	return r, b.Err()
}

// Unlearning reports FA, RA, TA and MIA-efficacy for the forget set (and
// the average gap to a reference).
func (j *EvalJob) Unlearning() (*UnlearningReport, error) {
	if _, err := ParseForget(j.Forget); err != nil {
		return nil, err
	}
	var ref *Metrics
	if j.Reference != "" {
		var err error
		if ref, err = ReadMetrics(j.Reference); err != nil {
			return nil, err
		}
	}
	o, spec, err := j.open()
	if err != nil {
		return nil, err
	}
	setup, err := LoadSetup(spec, j.Forget)
	if err != nil {
		return nil, err
	}
	if err := train.Fits(o.Model.Config, setup.Splits.Train); err != nil {
		return nil, fmt.Errorf("%s: %w", j.Checkpoint, err)
	}
	b := o.Backend
	sets, free := setup.upload(b)
	defer free()
	ev, err := Evaluate(b, o.Model, sets, j.Batch)
	if err != nil {
		return nil, err
	}
	if ref != nil {
		ev.Gap(*ref)
	}
	if j.Scores != "" {
		if err := ev.WriteScores(j.Scores); err != nil {
			return nil, err
		}
	}
	return &UnlearningReport{Checkpoint: j.Checkpoint, Forget: j.Forget, Reference: j.Reference, Backend: b.Name(), Metrics: ev.Metrics}, nil
}
