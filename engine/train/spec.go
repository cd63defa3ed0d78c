package train

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine/models"
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

// Fits checks that a model (from a checkpoint) takes a data set's images
// and labels.
func Fits(cfg models.Config, ds *data.Dataset) error {
	if cfg.Classes != ds.Classes || cfg.H != ds.H || cfg.W != ds.W || cfg.C != ds.C {
		return fmt.Errorf("the model takes %dx%dx%d images of %d classes, the data set has %dx%dx%d images of %d classes",
			cfg.H, cfg.W, cfg.C, cfg.Classes, ds.H, ds.W, ds.C, ds.Classes)
	}
	return nil
}
