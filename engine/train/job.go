package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/atomicfile"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/optim"
)

// DataSpec names a data set and how its training split is divided.
type DataSpec struct {
	Dataset string  `json:"dataset"`
	Dir     string  `json:"data_dir,omitempty"`
	ValFrac float64 `json:"val_frac"`
	// SplitSeed draws the validation hold-out (and, in package qmul, the
	// forget set), so runs that share it share their splits.
	SplitSeed uint64 `json:"split_seed"`
	// Size is the side length of folder images (0: the default).
	Size int `json:"size,omitempty"`
	// Subset and TestSubset, when positive, keep a class-balanced random
	// subset of that many samples of the training split and of the test
	// set (drawn with SplitSeed), for quick runs.
	Subset     int `json:"subset,omitempty"`
	TestSubset int `json:"test_subset,omitempty"`
}

// Resolve returns the absolute directory the data set's files are read
// from: where data.Locate finds them from s.Dir, $QMUL_DATA or the system
// locations. Runs record it, so that later runs find the same files
// without $QMUL_DATA.
func (s DataSpec) Resolve() (string, error) {
	dir, err := data.Locate(s.Dataset, s.Dir)
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%s: %w", s.Dataset, err)
	}
	return abs, nil
}

// Splits are a loaded data set divided for training.
type Splits struct {
	// Dir is the absolute directory the data set was read from.
	Dir         string
	Train, Test *data.Dataset
	// TrainIdx and ValIdx index Train: the training split and the
	// per-class validation hold-out. TestIdx indexes Test.
	TrainIdx, ValIdx, TestIdx []int
}

// Load reads the data set and draws the hold-out.
func (s DataSpec) Load() (*Splits, error) {
	dir, err := s.Resolve()
	if err != nil {
		return nil, err
	}
	tr, err := data.Load(s.Dataset, dir, data.Train, s.Size)
	if err != nil {
		return nil, err
	}
	te, err := data.Load(s.Dataset, dir, data.Test, s.Size)
	if err != nil {
		return nil, err
	}
	if te.Classes != tr.Classes || te.H != tr.H || te.W != tr.W || te.C != tr.C {
		return nil, fmt.Errorf("%s: test set (%dx%dx%d, %d classes) does not match the training set (%dx%dx%d, %d classes)",
			s.Dataset, te.H, te.W, te.C, te.Classes, tr.H, tr.W, tr.C, tr.Classes)
	}
	trainIdx, valIdx, err := data.HoldOut(tr, s.ValFrac, s.SplitSeed)
	if err != nil {
		return nil, err
	}
	sp := &Splits{Dir: dir, Train: tr, Test: te, TrainIdx: trainIdx, ValIdx: valIdx, TestIdx: All(te.N)}
	if err := s.checkSubsets(tr.Classes); err != nil {
		return nil, err
	}
	if s.Subset > 0 {
		sp.TrainIdx = balanced(tr.Labels, sp.TrainIdx, s.Subset, tr.Classes, s.SplitSeed)
	}
	if s.TestSubset > 0 {
		sp.TestIdx = balanced(te.Labels, sp.TestIdx, s.TestSubset, te.Classes, s.SplitSeed+1)
	}
	return sp, nil
}

// checkSubsets reports subset sizes that are negative or, when set, fewer
// than the classes (some class would have no sample).
func (s DataSpec) checkSubsets(classes int) error {
	for _, sub := range []struct {
		flag string
		n    int
	}{{"--subset", s.Subset}, {"--test-subset", s.TestSubset}} {
		if sub.n < 0 {
			return fmt.Errorf("%s %d: must not be negative (0: the whole split)", sub.flag, sub.n)
		}
		if sub.n > 0 && sub.n < classes {
			return fmt.Errorf("%s %d: fewer samples than the %d classes of %s", sub.flag, sub.n, classes, s.Dataset)
		}
	}
	return nil
}

// balanced keeps n of the indices (all when n ≥ len), taking classes in
// turn from a seeded shuffle so that every class is represented; the result
// is sorted.
func balanced(labels []int32, idx []int, n, classes int, seed uint64) []int {
	if n >= len(idx) {
		return idx
	}
	r := rand.New(rand.NewPCG(seed, 0x737562736574))
	perm := append([]int(nil), idx...)
	r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	byClass := make([][]int, classes)
	for _, i := range perm {
		byClass[labels[i]] = append(byClass[labels[i]], i)
	}
	out := make([]int, 0, n)
	for round := 0; len(out) < n; round++ {
		for c := range byClass {
			if round < len(byClass[c]) && len(out) < n {
				out = append(out, byClass[c][round])
			}
		}
	}
	sort.Ints(out)
	return out
}

// ModelFor completes a model configuration with a data set's shape.
func ModelFor(cfg models.Config, ds *data.Dataset) models.Config {
	cfg.Classes, cfg.H, cfg.W, cfg.C = ds.Classes, ds.H, ds.W, ds.C
	return cfg
}

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

	Out string `json:"-"`
	// MetricsName replaces metrics.json as the results file's name.
	MetricsName string `json:"-"`
	Resume      bool   `json:"-"`
	Force       bool   `json:"-"`
	// AllowCollapse turns the collapse guard (CollapseGuard) off.
	AllowCollapse bool           `json:"-"`
	Command       string         `json:"-"`
	Backend       engine.Backend `json:"-"`
	Threads       int            `json:"-"`
	Progress      Progress       `json:"-"`
}

// Files written into the output directory.
const (
	ModelFile   = "model.safetensors"
	BestFile    = "best.safetensors"
	ResumeFile  = "last.safetensors"
	MetricsFile = "metrics.json"
	LogFile     = "log.jsonl"
)

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

// Run executes the job and writes model.safetensors, metrics.json and
// log.jsonl into Out (and best.safetensors when there is a validation
// split). A run stopped part-way leaves last.safetensors to resume from.
func (j *Job) Run() (*Result, error) {
	t0 := time.Now()
	if err := j.Recipe.Validate(); err != nil {
		return nil, err
	}
	resumePath := filepath.Join(j.Out, ResumeFile)
	if !j.Resume && !j.Force {
		for _, f := range []string{ModelFile, ResumeFile} {
			if _, err := os.Stat(filepath.Join(j.Out, f)); err == nil {
				return nil, fmt.Errorf("%s already holds a run (%s): use --resume to continue it, --force to start over, or another --out", j.Out, f)
			}
		}
	}
	splits, err := j.Data.Load()
	if err != nil {
		return nil, err
	}
	j.Data.Dir = splits.Dir // recorded: later runs find the data without $QMUL_DATA
	if err := os.MkdirAll(j.Out, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	trainIdx := splits.TrainIdx
	if j.Exclude != nil {
		drop, err := j.Exclude(splits)
		if err != nil {
			return nil, err
		}
		if trainIdx, err = without(trainIdx, drop); err != nil {
			return nil, err
		}
	}
	j.Model = ModelFor(j.Model, splits.Train)
	b := j.Backend
	m, err := models.New(b, engine.Float32, j.Model, j.Recipe.Seed)
	if err != nil {
		return nil, err
	}
	if j.Prepare != nil {
		if err := j.Prepare(m); err != nil {
			return nil, err
		}
	}
	opt := optim.NewSGD(b, m.Params(), j.Recipe.Momentum, j.Recipe.WeightDecay, j.Recipe.Nesterov)
	jobJSON, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	var history []EpochStats
	start, bestEpoch, bestVal := 0, 0, -1.0
	if j.Resume {
		if start, history, err = j.restore(resumePath, string(jobJSON), b, m, opt); err != nil {
			return nil, err
		}
		for _, h := range history {
			if len(splits.ValIdx) > 0 && h.ValAcc > bestVal {
				bestVal, bestEpoch = h.ValAcc, h.Epoch
			}
		}
	}
	trainData := Upload(b, splits.Train)
	testData := Upload(b, splits.Test)
	defer trainData.Free(b)
	defer testData.Free(b)
	loadSecs := time.Since(t0).Seconds()

	meta := j.meta(string(jobJSON))
	t := &Trainer{B: b, Model: m, Opt: opt, Recipe: j.Recipe,
		Train: Split{trainData, trainIdx}, Val: Split{trainData, splits.ValIdx}, Test: Split{testData, splits.TestIdx},
		Progress: j.Progress}
	if !j.AllowCollapse {
		t.Collapse = NewCollapseGuard(m.Config.Classes)
		for _, h := range history {
			t.Collapse.Epoch(h.Epoch, h.LR, h.TrainLoss) // only what the resumed epochs teach it
		}
	}
	t.EpochEnd = func(s EpochStats) error {
		history = append(history, s)
		if len(splits.ValIdx) > 0 && s.ValAcc > bestVal {
			bestVal, bestEpoch = s.ValAcc, s.Epoch
			if err := checkpoint.Save(filepath.Join(j.Out, BestFile), b, m, checkpoint.Contents{Meta: withEpoch(meta, s.Epoch)}); err != nil {
				return err
			}
		}
		if err := writeLog(filepath.Join(j.Out, LogFile), history); err != nil {
			return err
		}
		rm := withEpoch(meta, s.Epoch)
		hj, _ := json.Marshal(history)
		rm["history"] = string(hj)
		return checkpoint.Save(resumePath, b, m, checkpoint.Contents{Meta: rm, Momentum: opt.Buffers()})
	}
	trainStart := time.Now()
	if err := t.Run(start); err != nil {
		if errors.Is(err, ErrDiverged) || errors.Is(err, ErrCollapsed) {
			if len(history) > 0 {
				return nil, fmt.Errorf("%w; the last good checkpoint is %s (epoch %d)", err, resumePath, history[len(history)-1].Epoch)
			}
			return nil, fmt.Errorf("%w; no epoch finished, so there is no checkpoint", err)
		}
		return nil, err
	}
	trainSecs := time.Since(trainStart).Seconds()

	evalStart := time.Now()
	res := &Result{Kind: "train", Command: j.Command, Versions: Versions(), Data: j.Data, Model: m.Config,
		Params: m.NumParams(), Meta: j.Meta, Recipe: j.Recipe, Exclude: j.ExcludeSpec, model: m,
		Samples: map[string]int{"train": len(trainIdx), "val": len(splits.ValIdx), "test": len(splits.TestIdx)},
		Backend: b.Name(), Device: b.Describe(), Threads: j.Threads, Epochs: history, BestEpoch: bestEpoch}
	last := history[len(history)-1]
	res.TrainAcc = Evaluate(b, m, trainData, trainIdx, evalBatch(j.Recipe.Batch), false, nil).Accuracy()
	res.TestAcc = last.TestAcc
	if len(splits.ValIdx) > 0 {
		v := last.ValAcc
		res.ValAcc = &v
	}
	if err := checkpoint.Save(filepath.Join(j.Out, ModelFile), b, m, checkpoint.Contents{Meta: withEpoch(meta, last.Epoch)}); err != nil {
		return nil, err
	}
	res.Phases = map[string]float64{"load": loadSecs, "train": trainSecs,
		"eval": time.Since(evalStart).Seconds(), "total": time.Since(t0).Seconds()}
	name := MetricsFile
	if j.MetricsName != "" {
		name = j.MetricsName
	}
	if err := atomicfile.WriteJSON(filepath.Join(j.Out, name), res); err != nil {
		return nil, err
	}
	if err := os.Remove(resumePath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return res, nil
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

// restore loads the resume checkpoint and checks it belongs to this job.
func (j *Job) restore(path, jobJSON string, b engine.Backend, m *models.Model, opt *optim.SGD) (int, []EpochStats, error) {
	f, _, err := checkpoint.Read(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil, fmt.Errorf("--resume: nothing to resume in %s (no %s)", j.Out, ResumeFile)
		}
		return 0, nil, err
	}
	if f.Metadata["job"] != jobJSON {
		return 0, nil, fmt.Errorf("--resume: %s was written by a different command (model, data or recipe differ); use --force to start over", path)
	}
	epoch, err := strconv.Atoi(f.Metadata["epoch"])
	if err != nil {
		return 0, nil, fmt.Errorf("--resume: %s has no epoch", path)
	}
	var history []EpochStats
	if err := json.Unmarshal([]byte(f.Metadata["history"]), &history); err != nil {
		return 0, nil, fmt.Errorf("--resume: %s: bad history: %w", path, err)
	}
	mom, err := checkpoint.Restore(f, b, m)
	if err != nil {
		return 0, nil, fmt.Errorf("--resume: %s: %w", path, err)
	}
	for i, buf := range opt.Buffers() {
		if buf != nil && mom[i] != nil {
			b.Upload(buf, mom[i])
		}
	}
	return epoch, history, nil
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
