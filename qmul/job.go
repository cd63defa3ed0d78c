package qmul

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/atomicfile"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/rundir"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/internal/jsonerr"
	"github.com/qmulgpu/qmulgpu/qat"
)

// Origin is what a checkpoint says about how it was trained.
type Origin struct {
	Data   train.DataSpec
	Model  models.Config
	Quant  qat.Config
	Recipe train.Recipe
}

// ReadOrigin decodes a checkpoint's metadata; dataDir, when set, replaces
// the data directory it records.
func ReadOrigin(meta map[string]string, dataDir string) (Origin, error) {
	var o Origin
	var job train.Job
	if s, ok := meta["job"]; ok {
		if err := json.Unmarshal([]byte(s), &job); err != nil {
			return o, fmt.Errorf("bad %q metadata: %s", "job", jsonerr.Describe(err))
		}
		o.Data, o.Model, o.Recipe = job.Data, job.Model, job.Recipe
	} else {
		// A checkpoint from elsewhere: the data set and split from the
		// plain keys.
		o.Data.Dataset = meta["dataset"]
		o.Data.ValFrac, _ = strconv.ParseFloat(meta["val_frac"], 64)
		o.Data.SplitSeed, _ = strconv.ParseUint(meta["split_seed"], 10, 64)
	}
	if o.Data.Dataset == "" {
		return o, fmt.Errorf("the checkpoint does not say which data set it was trained on")
	}
	if dataDir != "" {
		o.Data.Dir = dataDir
	}
	var err error
	o.Quant, err = qat.FromMeta(meta)
	return o, err
}

// Setup is a loaded data set divided for an unlearning study.
type Setup struct {
	Splits  *train.Splits
	Forget  ForgetSpec
	ForgetI []int
	Retain  []int
	TestIdx []int
}

// LoadSetup loads the data and draws D_f (from the training split, with the
// split seed), D_r and D_t (the forgotten class removed for class-wise
// forgetting).
func LoadSetup(spec train.DataSpec, forget string) (*Setup, error) {
	fs, err := ParseForget(forget)
	if err != nil {
		return nil, err
	}
	splits, err := spec.Load()
	if err != nil {
		return nil, err
	}
	tr := splits.Train
	f, err := fs.Select(tr.Labels, tr.Classes, splits.TrainIdx, spec.SplitSeed)
	if err != nil {
		return nil, err
	}
	s := &Setup{Splits: splits, Forget: fs, ForgetI: f, Retain: Complement(splits.TrainIdx, f), TestIdx: splits.TestIdx}
	if fs.ClassWise() {
		s.TestIdx = nil
		for _, i := range splits.TestIdx {
			if int(splits.Test.Labels[i]) != fs.Class {
				s.TestIdx = append(s.TestIdx, i)
			}
		}
	}
	if len(s.Retain) == 0 {
		return nil, fmt.Errorf("--forget %s leaves no retain set", fs)
	}
	return s, nil
}

// Job is one unlearning run as `qmulgpu unlearn` does it.
type Job struct {
	Checkpoint string
	Method     string
	Forget     string
	Hyper      Hyper
	// RetrainRecipe, for the method that trains from scratch, adjusts the original's recipe
	// (nil: train exactly as the original was).
	RetrainRecipe func(train.Recipe) train.Recipe
	DataDir       string
	// Subset and TestSubset, when set, replace the checkpoint's subsets.
	Subset, TestSubset *int
	// Quant, when its scheme is set, must agree with the checkpoint's.
	Quant     qat.Config
	Reference string
	Scores    string
	// Search, when set, searches the learning rate (Hyper.LR is not read).
	Search *LRSearch
	// Out is the run folder (staged beside it and moved into place when
	// complete, see package rundir); Force replaces a finished run there.
	Out      string
	Force    bool
	Backend  engine.Backend
	Threads  int
	Progress train.Progress
	Command  string
}

// Result is the content of an unlearning run's metrics.json.
type Result struct {
	Kind      string             `json:"kind"`
	Command   string             `json:"command"`
	Versions  map[string]string  `json:"versions"`
	Method    string             `json:"method"`
	Original  string             `json:"original"`
	Forget    string             `json:"forget"`
	Samples   map[string]int     `json:"samples"`
	Data      train.DataSpec     `json:"data"`
	Model     models.Config      `json:"model"`
	Quant     string             `json:"quant"`
	QuantCfg  qat.Config         `json:"quant_config"`
	Hyper     *Hyper             `json:"hyper,omitempty"`
	Recipe    *train.Recipe      `json:"retrain_recipe,omitempty"`
	Reference string             `json:"reference,omitempty"`
	Backend   string             `json:"backend"`
	Device    string             `json:"device"`
	Threads   int                `json:"threads,omitempty"`
	Phases    map[string]float64 `json:"phases_s"`
	Epochs    []EpochTrace       `json:"epochs,omitempty"`
	Work      *DeviceWork        `json:"device_work,omitempty"`
	Search    *SearchRecord      `json:"search,omitempty"`
	Metrics
}

// DeviceWork is the device work of the unlearning procedure on a backend
// that counts it (engine.WorkCounter): everything between loading and
// evaluation, AGR's gradient-norm passes included, and the optimizer steps
// it took; Total/Steps is the work per step.
type DeviceWork struct {
	Steps int           `json:"steps"`
	Total engine.OpWork `json:"total"`
}

// Run executes the job in its phases: check what needs no data, open θ_o
// and load the data, unlearn (or retrain), evaluate, and write
// model.safetensors and metrics.json (and the scores CSV when asked).
func (j *Job) Run() (*Result, error) {
	t0 := time.Now()
	if err := j.check(); err != nil {
		return nil, err
	}
	stage, err := j.begin()
	if err != nil {
		return nil, err
	}
	res, err := j.run(stage, t0)
	if err != nil {
		stage.Discard()
		return nil, err
	}
	return res, nil
}

func (j *Job) run(stage *rundir.Stage, t0 time.Time) (*Result, error) {
	r, err := j.load()
	if err != nil {
		return nil, err
	}
	defer r.free()
	r.dir = stage.Dir
	r.phases["load"] = time.Since(t0).Seconds()
	if err := j.unlearn(r); err != nil {
		return nil, err
	}
	if err := j.evaluate(r); err != nil {
		return nil, err
	}
	if err := j.guardTotalLoss(r); err != nil {
		return nil, err
	}
	if err := j.save(r, t0); err != nil {
		return nil, err
	}
	return r.res, stage.Commit()
}

// Abandon is for a process stopped by a signal while Run runs (it may be
// called from another goroutine): an unlearning run cannot be resumed, so
// it removes the staged run and says that Out is unchanged.
func (j *Job) Abandon() string {
	os.RemoveAll(rundir.StagingPath(j.Out))
	return fmt.Sprintf("an unlearning run cannot be resumed, so nothing is kept (%s is unchanged): run the command again", j.Out)
}

// begin checks the run folder against Force and stages the run.
func (j *Job) begin() (*rundir.Stage, error) {
	if !j.Force {
		for _, f := range []string{train.ModelFile, train.MetricsFile} {
			if _, err := os.Stat(filepath.Join(j.Out, f)); err == nil {
				return nil, fmt.Errorf("%s already holds a finished run (%s): use --force to replace it, or another --out", j.Out, f)
			}
		}
	}
	return rundir.Begin(j.Out, train.RunFiles, false)
}

// run is the state of an unlearning run between its phases.
type run struct {
	dir    string // the staging folder
	orig   *qat.Opened
	origin Origin
	setup  *Setup
	ref    *Metrics
	sets   Sets
	free   func()
	model  *models.Model // the unlearned model
	// original is θ_o's evaluation, when known (nil: not measured).
	original *Evaluation
	res      *Result
	phases   map[string]float64
}

// check validates what needs neither the checkpoint nor the data.
func (j *Job) check() error {
	if _, err := ParseForget(j.Forget); err != nil {
		return err
	}
	if _, err := Lookup(j.Method); err != nil {
		return err
	}
	if j.Search != nil {
		if err := j.Search.Check(j.Method, j.Reference != ""); err != nil {
			return err
		}
	}
	if FromScratch(j.Method) {
		return nil
	}
	// The classes are not known yet: parameters that depend on them are
	// checked again once the data are loaded.
	return j.Hyper.Resolve(j.Method, 10).Validate(j.Method)
}

// load opens θ_o, loads the data and draws the forget set.
func (j *Job) load() (*run, error) {
	b := j.Backend
	o, err := qat.Open(j.Checkpoint, b, j.Quant)
	if err != nil {
		return nil, err
	}
	origin, err := ReadOrigin(o.File.Metadata, j.DataDir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", j.Checkpoint, err)
	}
	if j.Subset != nil {
		origin.Data.Subset = *j.Subset
	}
	if j.TestSubset != nil {
		origin.Data.TestSubset = *j.TestSubset
	}
	setup, err := LoadSetup(origin.Data, j.Forget)
	if err != nil {
		return nil, err
	}
	if err := train.Fits(o.Model.Config, setup.Splits.Train); err != nil {
		return nil, fmt.Errorf("%s: %w", j.Checkpoint, err)
	}
	origin.Data.Dir = setup.Splits.Dir // recorded: later runs find the data without $QMUL_DATA
	r := &run{orig: o, origin: origin, setup: setup, model: o.Model, phases: map[string]float64{}}
	if j.Reference != "" {
		if r.ref, err = ReadMetrics(j.Reference); err != nil {
			return nil, err
		}
	}
	r.res = &Result{Kind: "unlearn", Command: j.Command, Versions: train.Versions(), Method: j.Method,
		Original: j.Checkpoint, Forget: j.Forget, Data: origin.Data, Model: o.Model.Config, Quant: origin.Quant.String(),
		QuantCfg: origin.Quant, Reference: j.Reference, Backend: b.Name(), Device: b.Describe(), Threads: j.Threads,
		Samples: map[string]int{"forget": len(setup.ForgetI), "retain": len(setup.Retain), "test": len(setup.TestIdx)}}
	r.sets, r.free = setup.upload(b)
	return r, nil
}

// upload puts the data on b: the study's sets and a function that frees
// them.
func (s *Setup) upload(b engine.Backend) (Sets, func()) {
	trainData, testData := train.Upload(b, s.Splits.Train), train.Upload(b, s.Splits.Test)
	return Sets{Train: trainData, Test: testData, Forget: s.ForgetI, Retain: s.Retain, TestIdx: s.TestIdx},
		func() { trainData.Free(b); testData.Free(b) }
}

// unlearn runs the method on θ_o (or retrains) and times it.
func (j *Job) unlearn(r *run) error {
	if FromScratch(j.Method) {
		m, err := j.retrain(r)
		r.model = m
		return err
	}
	if j.Search != nil {
		return j.search(r)
	}
	b := j.Backend
	h := j.Hyper.Resolve(j.Method, r.model.Config.Classes)
	if err := h.Validate(j.Method); err != nil {
		return err
	}
	r.res.Hyper = &h
	s := &Study{B: b, Model: r.model, Sets: r.sets, Classes: r.model.Config.Classes, Aug: r.origin.Recipe.Aug,
		Progress: j.Progress, Phases: r.phases,
		Original: func() (*models.Model, error) { return r.orig.Rebuild(b) }}
	start := time.Now()
	counter, counts := b.(engine.WorkCounter)
	var before engine.Work
	if counts {
		before = counter.Work()
	}
	if err := Unlearn(s, j.Method, h); err != nil {
		return err
	}
	r.res.RTE = time.Since(start).Seconds()
	r.res.Epochs = s.Trace
	if counts {
		r.res.Work = &DeviceWork{Steps: s.Steps, Total: counter.Work().OpWork.Sub(before.OpWork)}
	}
	return nil
}

// evaluate measures the unlearned model (and its gap to the reference) and
// writes the scores when asked.
func (j *Job) evaluate(r *run) error {
	start := time.Now()
	ev, err := Evaluate(j.Backend, r.model, r.sets, max(256, j.Hyper.Batch))
	if err != nil {
		return err
	}
	rte := r.res.RTE
	r.res.Metrics = ev.Metrics
	r.res.RTE = rte
	if r.ref != nil {
		r.res.Gap(*r.ref)
	}
	r.phases["eval"] = time.Since(start).Seconds()
	if j.Scores != "" {
		return ev.WriteScores(j.scoresPath(r.dir))
	}
	return nil
}

// scoresPath is where the scores CSV is written: a path inside Out goes to
// the same place in the staging folder, to be moved in with the run.
func (j *Job) scoresPath(staged string) string {
	rel, err := filepath.Rel(j.Out, j.Scores)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return j.Scores
	}
	return filepath.Join(staged, rel)
}

// save writes the unlearned model, with θ_o's metadata and how it was
// unlearned, and metrics.json.
func (j *Job) save(r *run, t0 time.Time) error {
	meta := map[string]string{}
	for k, v := range r.orig.File.Metadata {
		if k != checkpoint.KeyFormat && k != checkpoint.KeyModel && k != checkpoint.KeyVersion {
			meta[k] = v
		}
	}
	uj, _ := json.Marshal(map[string]any{"method": j.Method, "forget": j.Forget, "hyper": r.res.Hyper, "original": j.Checkpoint})
	meta["unlearn"] = string(uj)
	meta["command"] = j.Command
	if err := checkpoint.Save(filepath.Join(r.dir, train.ModelFile), j.Backend, r.model, checkpoint.Contents{Meta: meta}); err != nil {
		return err
	}
	r.phases["total"] = time.Since(t0).Seconds()
	r.res.Phases = r.phases
	return atomicfile.WriteJSON(filepath.Join(r.dir, train.MetricsFile), r.res)
}

// retrain trains from scratch on D_r with the original's recipe (or the
// job's), writing train_metrics.json and log.jsonl beside the results.
func (j *Job) retrain(u *run) (*models.Model, error) {
	o, s := u.origin, u.setup
	if o.Model.Arch == "" {
		return nil, fmt.Errorf("retrain: %s does not record how it was trained; train Retrain with `qmulgpu train --forget SPEC --exclude-forget` instead", j.Checkpoint)
	}
	r := o.Recipe
	if j.RetrainRecipe != nil {
		r = j.RetrainRecipe(r)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("retrain: %w", err)
	}
	u.res.Recipe = &r
	b := j.Backend
	q := o.Quant
	tj := &train.Job{Data: o.Data, Model: o.Model, Recipe: r, ExcludeSpec: s.Forget.String(),
		Exclude: func(*train.Splits) ([]int, error) { return s.ForgetI, nil },
		Meta:    map[string]string{qat.MetaKey: q.Meta()},
		Prepare: func(m *models.Model) error { return qat.Apply(b, m, q) },
		Out:     u.dir, InStage: true, MetricsName: train.RetrainMetricsFile, AllowCollapse: j.Hyper.AllowCollapse,
		Command: j.Command, Backend: b, Threads: j.Threads, Progress: j.Progress}
	start := time.Now()
	tr, err := tj.Run()
	if err != nil {
		return nil, fmt.Errorf("retrain: %w", err)
	}
	u.phases["retrain"] = time.Since(start).Seconds()
	// RTE is the training alone, as the methods' is their unlearning alone:
	// not the data loading, the per-epoch evaluation or the checkpoints.
	u.res.RTE = 0
	for _, e := range tr.Epochs {
		u.res.RTE += e.TrainSeconds
	}
	return tr.TrainedModel(), nil
}

// ReadMetrics reads the metrics of a results file (an unlearning run's
// metrics.json, or any JSON object with fa, ra, ta and mia).
func ReadMetrics(path string) (*Metrics, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--reference: %w", err)
	}
	m, err := ParseMetrics(raw)
	if err != nil {
		return nil, fmt.Errorf("--reference %s: %w", path, err)
	}
	return m, nil
}

// ParseMetrics reads a results file's metrics: a JSON object whose fa, ra,
// ta and mia are percentages.
func ParseMetrics(raw []byte) (*Metrics, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("not a JSON object: %s", jsonerr.Describe(err))
	}
	for _, k := range []string{"fa", "ra", "ta", "mia"} {
		if _, ok := probe[k]; !ok {
			return nil, fmt.Errorf("no %q (want the metrics.json of an unlearn or eval run)", k)
		}
	}
	var m Metrics
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errors.New(jsonerr.Describe(err))
	}
	for i, v := range []float64{m.FA, m.RA, m.TA, m.MIA} {
		if !(v >= 0 && v <= 100) {
			return nil, fmt.Errorf("%q is %g, not a percentage", []string{"fa", "ra", "ta", "mia"}[i], v)
		}
	}
	// An empty map or list says what an absent one does (the writer omits
	// both), so both read as absent.
	if len(m.MIAFeatures) == 0 {
		m.MIAFeatures = nil
	}
	if len(m.MIAWarnings) == 0 {
		m.MIAWarnings = nil
	}
	return &m, nil
}

// ExcludeForget returns a train.Job Exclude function that leaves out the
// forget set a spec draws (with the job's split seed): training with it
// makes the Retrain model.
func ExcludeForget(spec train.DataSpec, forget string) (func(*train.Splits) ([]int, error), error) {
	fs, err := ParseForget(forget)
	if err != nil {
		return nil, err
	}
	return func(sp *train.Splits) ([]int, error) {
		return fs.Select(sp.Train.Labels, sp.Train.Classes, sp.TrainIdx, spec.SplitSeed)
	}, nil
}
