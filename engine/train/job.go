package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/atomicfile"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/optim"
	"github.com/qmulgpu/qmulgpu/engine/rundir"
	"github.com/qmulgpu/qmulgpu/internal/jsonerr"
)

// Job is a whole training run as `qmulgpu train` does it: load, split,
// build, train with per-epoch resume checkpoints, evaluate, write results.
type Job struct {
	Data   DataSpec      `json:"data"`
	Model  models.Config `json:"model"`
	Recipe Recipe        `json:"recipe"`
	// Exclude, when set, picks training-split indices to leave out once
	// the data are loaded (Retrain trains on D_r = training split minus
	// D_f); ExcludeSpec describes them.
	Exclude     func(*Splits) ([]int, error) `json:"-"`
	ExcludeSpec string                       `json:"exclude,omitempty"`
	// Meta is extra checkpoint metadata (the quantizer configuration, ...).
	Meta map[string]string `json:"-"`
	// Prepare, when set, is applied to the model after it is built and
	// before weights are restored or trained (it attaches quantizers).
	Prepare func(m *models.Model) error `json:"-"`

	// Out is the run folder. The run is staged beside it (see package
	// rundir) and moved into place when complete, unless InStage says Out
	// is the staging folder of an enclosing run.
	Out     string `json:"-"`
	InStage bool   `json:"-"`
	// MetricsName replaces metrics.json as the results file's name.
	MetricsName string `json:"-"`
	// Resume continues the run stopped in Out's staging folder; Force
	// replaces a finished run in Out (or discards a stopped one).
	Resume bool `json:"-"`
	Force  bool `json:"-"`
	// AllowCollapse turns the collapse guard (CollapseGuard) off.
	AllowCollapse bool           `json:"-"`
	Command       string         `json:"-"`
	Backend       engine.Backend `json:"-"`
	Threads       int            `json:"-"`
	Progress      Progress       `json:"-"`

	// saved is the epoch of the staged resume checkpoint (0: none); it is
	// read by Abandon from another goroutine.
	saved atomic.Int64
}

// Files written into the output directory.
const (
	ModelFile   = "model.safetensors"
	BestFile    = "best.safetensors"
	ResumeFile  = "last.safetensors"
	MetricsFile = "metrics.json"
	LogFile     = "log.jsonl"
	// RetrainMetricsFile is the training results of an unlearning run
	// that retrains.
	RetrainMetricsFile = "train_metrics.json"
)

// RunFiles are the files a training or unlearning run writes into its
// folder; a run replacing another drops the old run's, and keeps any other
// file.
var RunFiles = []string{ModelFile, BestFile, ResumeFile, MetricsFile, LogFile, RetrainMetricsFile}

// ResumePath is where a stopped run into out keeps its last epoch: in the
// staging folder beside out.
func ResumePath(out string) string { return filepath.Join(rundir.StagingPath(out), ResumeFile) }

// Result is the content of metrics.json for a training run.
type Result struct {
	Kind      string             `json:"kind"`
	Command   string             `json:"command"`
	Versions  map[string]string  `json:"versions"`
	Data      DataSpec           `json:"data"`
	Model     models.Config      `json:"model"`
	Params    int                `json:"params"`
	Meta      map[string]string  `json:"meta,omitempty"`
	Recipe    Recipe             `json:"recipe"`
	Exclude   string             `json:"exclude,omitempty"`
	Samples   map[string]int     `json:"samples"`
	Backend   string             `json:"backend"`
	Device    string             `json:"device"`
	Threads   int                `json:"threads,omitempty"`
	Epochs    []EpochStats       `json:"epochs"`
	TrainAcc  float64            `json:"train_acc"`
	ValAcc    *float64           `json:"val_acc,omitempty"`
	TestAcc   float64            `json:"test_acc"`
	BestEpoch int                `json:"best_epoch,omitempty"`
	Phases    map[string]float64 `json:"phases_s"`
	model     *models.Model
}

// TrainedModel is the trained model (in memory, on the job's backend).
func (r *Result) TrainedModel() *models.Model { return r.model }

// Versions lists the versions recorded in results.
func Versions() map[string]string {
	return map[string]string{"qmulgpu": checkpoint.Version, "go": runtime.Version()}
}

// trainRun is the state of a training run between its phases.
type trainRun struct {
	stage     *rundir.Stage // nil when InStage
	dir       string        // where files are written
	splits    *Splits
	trainIdx  []int
	model     *models.Model
	opt       *optim.SGD
	jobJSON   string
	history   []EpochStats
	start     int // epochs done before this process
	bestEpoch int
	bestVal   float64
	trainData *DeviceData
	testData  *DeviceData
	phases    map[string]float64
}

// Run executes the job in its phases — check the run folder, load the
// data, build (or restore) the model, train, evaluate — and moves the
// complete run (model.safetensors, metrics.json, log.jsonl, and
// best.safetensors when there is a validation split) into Out. A run
// stopped part-way leaves last.safetensors in the staging folder
// (ResumePath) to resume from.
func (j *Job) Run() (*Result, error) {
	t0 := time.Now()
	if err := j.Recipe.Validate(); err != nil {
		return nil, err
	}
	r, err := j.begin()
	if err != nil {
		return nil, err
	}
	res, err := j.run(r, t0)
	if err != nil && r.stage != nil && !r.stage.Has(ResumeFile) {
		r.stage.Discard()
	}
	return res, err
}

func (j *Job) run(r *trainRun, t0 time.Time) (*Result, error) {
	if err := j.load(r); err != nil {
		return nil, err
	}
	if err := j.build(r); err != nil {
		return nil, err
	}
	defer r.trainData.Free(j.Backend)
	defer r.testData.Free(j.Backend)
	r.phases["load"] = time.Since(t0).Seconds()
	if err := j.train(r); err != nil {
		return nil, err
	}
	res, err := j.finish(r)
	if err != nil {
		return nil, err
	}
	res.Phases["total"] = time.Since(t0).Seconds()
	if err := atomicfile.WriteJSON(filepath.Join(r.dir, j.metricsName()), res); err != nil {
		return nil, err
	}
	if r.stage != nil {
		if err := r.stage.Commit(); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func (j *Job) metricsName() string {
	if j.MetricsName != "" {
		return j.MetricsName
	}
	return MetricsFile
}

// begin checks the run folder against Resume and Force and stages the run.
func (j *Job) begin() (*trainRun, error) {
	r := &trainRun{dir: j.Out, bestVal: -1, phases: map[string]float64{}}
	if j.InStage {
		return r, nil
	}
	staged := ResumePath(j.Out)
	_, err := os.Stat(staged)
	stopped := err == nil
	if !j.Force {
		for _, f := range []string{ModelFile, MetricsFile} {
			if _, err := os.Stat(filepath.Join(j.Out, f)); err == nil {
				return nil, fmt.Errorf("%s already holds a finished run (%s): use --force to replace it, or another --out", j.Out, f)
			}
		}
		if stopped && !j.Resume {
			return nil, fmt.Errorf("%s holds a stopped run (%s): use --resume to continue it, --force to start over, or another --out", j.Out, staged)
		}
	}
	if j.Resume && !stopped {
		return nil, fmt.Errorf("--resume: nothing to resume for %s (no %s)", j.Out, staged)
	}
	if r.stage, err = rundir.Begin(j.Out, RunFiles, j.Resume); err != nil {
		return nil, err
	}
	r.dir = r.stage.Dir
	return r, nil
}

// load reads the data and draws the training split.
func (j *Job) load(r *trainRun) error {
	splits, err := j.Data.Load()
	if err != nil {
		return err
	}
	j.Data.Dir = splits.Dir // recorded: later runs find the data without $QMUL_DATA
	r.splits, r.trainIdx = splits, splits.TrainIdx
	if j.Exclude != nil {
		drop, err := j.Exclude(splits)
		if err != nil {
			return err
		}
		if r.trainIdx, err = without(r.trainIdx, drop); err != nil {
			return err
		}
	}
	j.Model = ModelFor(j.Model, splits.Train)
	return nil
}

// build makes the model and optimiser, restores them when resuming, and
// uploads the data.
func (j *Job) build(r *trainRun) error {
	b := j.Backend
	m, err := models.New(b, engine.Float32, j.Model, j.Recipe.Seed)
	if err != nil {
		return err
	}
	if j.Prepare != nil {
		if err := j.Prepare(m); err != nil {
			return err
		}
	}
	r.model = m
	r.opt = optim.NewSGD(b, m.Params(), j.Recipe.Momentum, j.Recipe.WeightDecay, j.Recipe.Nesterov)
	jobJSON, err := json.Marshal(j)
	if err != nil {
		return err
	}
	r.jobJSON = string(jobJSON)
	if j.Resume {
		if err := j.restore(r); err != nil {
			return err
		}
	}
	r.trainData = Upload(b, r.splits.Train)
	r.testData = Upload(b, r.splits.Test)
	return nil
}

// train runs the remaining epochs, checkpointing each.
func (j *Job) train(r *trainRun) error {
	b, m, sp := j.Backend, r.model, r.splits
	meta := j.meta(r.jobJSON)
	resumePath := filepath.Join(r.dir, ResumeFile)
	t := &Trainer{B: b, Model: m, Opt: r.opt, Recipe: j.Recipe,
		Train: Split{r.trainData, r.trainIdx}, Val: Split{r.trainData, sp.ValIdx}, Test: Split{r.testData, sp.TestIdx},
		Progress: j.Progress}
	if !j.AllowCollapse {
		t.Collapse = NewCollapseGuard(m.Config.Classes)
		for _, h := range r.history {
			t.Collapse.Epoch(h.Epoch, h.LR, h.TrainLoss) // only what the resumed epochs teach it
		}
	}
	t.EpochEnd = func(s EpochStats) error {
		r.history = append(r.history, s)
		if len(sp.ValIdx) > 0 && s.ValAcc > r.bestVal {
			r.bestVal, r.bestEpoch = s.ValAcc, s.Epoch
			if err := checkpoint.Save(filepath.Join(r.dir, BestFile), b, m, checkpoint.Contents{Meta: withEpoch(meta, s.Epoch)}); err != nil {
				return err
			}
		}
		if err := writeLog(filepath.Join(r.dir, LogFile), r.history); err != nil {
			return err
		}
		rm := withEpoch(meta, s.Epoch)
		hj, _ := json.Marshal(r.history)
		rm["history"] = string(hj)
		if err := checkpoint.Save(resumePath, b, m, checkpoint.Contents{Meta: rm, Momentum: r.opt.Buffers()}); err != nil {
			return err
		}
		j.saved.Store(int64(s.Epoch))
		return nil
	}
	start := time.Now()
	if err := t.Run(r.start); err != nil {
		if errors.Is(err, ErrDiverged) || errors.Is(err, ErrCollapsed) {
			if len(r.history) > 0 {
				return fmt.Errorf("%w; the last good checkpoint is %s (epoch %d)", err, resumePath, r.history[len(r.history)-1].Epoch)
			}
			return fmt.Errorf("%w; no epoch finished, so there is no checkpoint", err)
		}
		return err
	}
	r.phases["train"] = time.Since(start).Seconds()
	return nil
}

// finish evaluates the trained model and writes it; the results are
// written last.
func (j *Job) finish(r *trainRun) (*Result, error) {
	b, m, sp := j.Backend, r.model, r.splits
	start := time.Now()
	res := &Result{Kind: "train", Command: j.Command, Versions: Versions(), Data: j.Data, Model: m.Config,
		Params: m.NumParams(), Meta: j.Meta, Recipe: j.Recipe, Exclude: j.ExcludeSpec, model: m,
		Samples: map[string]int{"train": len(r.trainIdx), "val": len(sp.ValIdx), "test": len(sp.TestIdx)},
		Backend: b.Name(), Device: b.Describe(), Threads: j.Threads, Epochs: r.history, BestEpoch: r.bestEpoch}
	last := r.history[len(r.history)-1]
	res.TrainAcc = Evaluate(b, m, r.trainData, r.trainIdx, evalBatch(j.Recipe.Batch), false, nil).Accuracy()
	res.TestAcc = last.TestAcc
	if len(sp.ValIdx) > 0 {
		v := last.ValAcc
		res.ValAcc = &v
	}
	if err := checkpoint.Save(filepath.Join(r.dir, ModelFile), b, m, checkpoint.Contents{Meta: withEpoch(j.meta(r.jobJSON), last.Epoch)}); err != nil {
		return nil, err
	}
	if err := os.Remove(filepath.Join(r.dir, ResumeFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	r.phases["eval"] = time.Since(start).Seconds()
	res.Phases = r.phases
	return res, nil
}

// Abandon is for a process stopped by a signal while Run runs (it may be
// called from another goroutine): it removes what cannot be resumed and
// says what is kept and how to go on.
func (j *Job) Abandon() string {
	if e := j.saved.Load(); e > 0 {
		return fmt.Sprintf("epoch %d of %d is kept in %s: run the same command with --resume to continue", e, j.Recipe.Epochs, ResumePath(j.Out))
	}
	if j.Resume {
		return fmt.Sprintf("the stopped run is still in %s: run the same command with --resume to continue", ResumePath(j.Out))
	}
	if !j.InStage {
		os.RemoveAll(rundir.StagingPath(j.Out))
	}
	return fmt.Sprintf("no epoch had finished, so nothing is kept (%s is unchanged)", j.Out)
}

// meta is the checkpoint metadata of this job.
func (j *Job) meta(jobJSON string) map[string]string {
	m := map[string]string{
		"dataset":    j.Data.Dataset,
		"val_frac":   strconv.FormatFloat(j.Data.ValFrac, 'g', -1, 64),
		"split_seed": strconv.FormatUint(j.Data.SplitSeed, 10),
		"seed":       strconv.FormatUint(j.Recipe.Seed, 10),
		"command":    j.Command,
		"job":        jobJSON,
	}
	if j.ExcludeSpec != "" {
		m["exclude"] = j.ExcludeSpec
	}
	for k, v := range j.Meta {
		m[k] = v
	}
	return m
}

func withEpoch(meta map[string]string, epoch int) map[string]string {
	m := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		m[k] = v
	}
	m["epoch"] = strconv.Itoa(epoch)
	return m
}

// restore loads the staged resume checkpoint and checks it belongs to
// this job.
func (j *Job) restore(r *trainRun) error {
	path := filepath.Join(r.dir, ResumeFile)
	f, _, err := checkpoint.Read(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--resume: nothing to resume in %s (no %s)", r.dir, ResumeFile)
		}
		return err
	}
	if f.Metadata["job"] != r.jobJSON {
		return fmt.Errorf("--resume: %s was written by a different command (model, data or recipe differ); use --force to start over", path)
	}
	epoch, err := strconv.Atoi(f.Metadata["epoch"])
	if err != nil {
		return fmt.Errorf("--resume: %s has no epoch", path)
	}
	if err := json.Unmarshal([]byte(f.Metadata["history"]), &r.history); err != nil {
		return fmt.Errorf("--resume: %s: bad history: %s", path, jsonerr.Describe(err))
	}
	mom, err := checkpoint.Restore(f, j.Backend, r.model)
	if err != nil {
		return fmt.Errorf("--resume: %s: %w", path, err)
	}
	for i, buf := range r.opt.Buffers() {
		if buf != nil && mom[i] != nil {
			j.Backend.Upload(buf, mom[i])
		}
	}
	r.start = epoch
	j.saved.Store(int64(epoch))
	for _, h := range r.history {
		if len(r.splits.ValIdx) > 0 && h.ValAcc > r.bestVal {
			r.bestVal, r.bestEpoch = h.ValAcc, h.Epoch
		}
	}
	return nil
}

func writeLog(path string, history []EpochStats) error {
	var lines []byte
	for _, h := range history {
		l, err := json.Marshal(h)
		if err != nil {
			return err
		}
		lines = append(append(lines, l...), '\n')
	}
	return atomicfile.Write(path, func(w io.Writer) error { _, err := w.Write(lines); return err })
}

// without removes the excluded indices from list; every excluded index
// must be in list.
func without(list, exclude []int) ([]int, error) {
	if len(exclude) == 0 {
		return list, nil
	}
	drop := make(map[int]bool, len(exclude))
	for _, i := range exclude {
		drop[i] = true
	}
	out := make([]int, 0, len(list))
	for _, i := range list {
		if drop[i] {
			delete(drop, i)
			continue
		}
		out = append(out, i)
	}
	if len(drop) > 0 {
		var bad []int
		for i := range drop {
			bad = append(bad, i)
		}
		sort.Ints(bad)
		return nil, fmt.Errorf("excluded index %d is not in the training split", bad[0])
	}
	return out, nil
}
