package qmul

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/atomicfile"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/optim"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qat"
)

// DemoConfig sizes the demo study. The defaults (DefaultDemo) are the
// setting of the study's Fashion-MNIST random-10% table (docs/results.md,
// docs/study/auto-fmnist-random.yaml, seed 1): a 5,000-image subset trained 15
// epochs (long enough for the original to remember its training images
// better than unseen ones) and 5 epochs per method at the learning rate
// the study's search chose. They finish in 5–10 minutes on an idle
// 2-core CPU, depending on the CPU (README.md).
type DemoConfig struct {
	Out, DataDir string
	// Subset and TestSubset are the class-balanced training and test
	// subsets of Fashion-MNIST the study uses.
	Subset, TestSubset int
	// OriginalEpochs, OriginalLR and OriginalBatch train the original
	// model (and Retrain); UnlearnEpochs and UnlearnBatch run every
	// iterative method.
	OriginalEpochs int
	OriginalLR     float64
	OriginalBatch  int
	UnlearnEpochs  int
	UnlearnBatch   int
	Forget         string
	Methods        []string
	// Rates are the learning rates of the methods, by name; a method that
	// trains and has none is not run. RatesSource says where they come
	// from.
	Rates       map[string]float64
	RatesSource string
	Backend     engine.Backend
	Threads     int
	Progress    train.Progress
	Log         io.Writer
}

// DefaultDemo is the study `qmulgpu demo` runs (the caller supplies the
// rates).
func DefaultDemo() DemoConfig {
	return DemoConfig{Out: "out/demo", Subset: 5000, TestSubset: 2000, OriginalEpochs: 15, OriginalLR: 0.05, OriginalBatch: 128,
		UnlearnEpochs: 5, UnlearnBatch: 128, Forget: "random:10%", Methods: UnlearningMethods()}
}

// DemoRow is one line of the demo's table.
type DemoRow struct {
	Method string `json:"method"`
	// LR is the method's learning rate (0: it takes none).
	LR float64 `json:"lr,omitempty"`
	// Failed is the collapse guard's message for a method that collapsed
	// at its rate; such a row has no metrics.
	Failed string `json:"failed,omitempty"`
	Metrics
}

// DemoResult is the demo's table, the original model first, then
// Retrain, then the methods; Skipped lists methods without a rate.
type DemoResult struct {
	Rows    []DemoRow `json:"rows"`
	Skipped []string  `json:"skipped,omitempty"`
}

// Demo runs the whole study on Fashion-MNIST with smallcnn LSQ W4A4: the
// original model, Retrain, the original's own gap to Retrain (doing
// nothing), then every method with a rate on the forget set, each
// evaluated against Retrain.
func Demo(cfg DemoConfig) (*DemoResult, error) {
	b := cfg.Backend
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format, args...)
		}
	}
	q := qat.Config{Scheme: "lsq", WBits: 4, ABits: 4, Float: qat.DefaultFloat()}
	orig := &train.Job{
		Data:  train.DataSpec{Dataset: "fashion-mnist", Dir: cfg.DataDir, ValFrac: 0, SplitSeed: 1, Subset: cfg.Subset, TestSubset: cfg.TestSubset},
		Model: models.Config{Arch: "smallcnn"},
		Recipe: train.Recipe{Epochs: cfg.OriginalEpochs, Batch: cfg.OriginalBatch, Momentum: 0.9, WeightDecay: 5e-4, Seed: 1,
			Schedule: optim.Schedule{Kind: "cosine", Base: cfg.OriginalLR, Epochs: cfg.OriginalEpochs}},
		Meta:    map[string]string{qat.MetaKey: q.Meta()},
		Prepare: func(m *models.Model) error { return qat.Apply(b, m, q) },
		Out:     filepath.Join(cfg.Out, "original"), Force: true, Command: "qmulgpu demo", Backend: b, Threads: cfg.Threads,
		Progress: cfg.Progress,
	}
	logf("demo: Fashion-MNIST subset of %d training and %d test images, smallcnn %s, forget set %s\n", cfg.Subset, cfg.TestSubset, q, cfg.Forget)
	logf("demo: original model, %d epochs\n", cfg.OriginalEpochs)
	if _, err := orig.Run(); err != nil {
		return nil, fmt.Errorf("original: %w", err)
	}
	ckpt := filepath.Join(orig.Out, train.ModelFile)
	reference := filepath.Join(cfg.Out, Reference(), train.MetricsFile)
	run := func(method string, h Hyper) (*Result, error) {
		logf("demo: %s\n", method)
		j := &Job{Checkpoint: ckpt, Method: method, Forget: cfg.Forget, Hyper: h, DataDir: cfg.DataDir,
			Out: filepath.Join(cfg.Out, method), Force: true, Backend: b, Threads: cfg.Threads, Progress: cfg.Progress,
			Command: "qmulgpu demo"}
		if !FromScratch(method) {
			j.Reference = reference
		}
		return j.Run()
	}
	re, err := run(Reference(), Hyper{})
	if err != nil {
		return nil, err
	}
	ev := &EvalJob{Checkpoint: ckpt, Forget: cfg.Forget, Reference: reference, Batch: 256, Backend: b}
	if cfg.DataDir != "" {
		ev.Data = func(spec train.DataSpec, err error) (train.DataSpec, error) { spec.Dir = cfg.DataDir; return spec, err }
	}
	before, err := ev.Unlearning()
	if err != nil {
		return nil, fmt.Errorf("evaluating the original: %w", err)
	}
	out := &DemoResult{Rows: []DemoRow{{Method: "original", Metrics: before.Metrics}, {Method: Reference(), Metrics: re.Metrics}}}
	for _, m := range cfg.Methods {
		h := Defaults(m)
		h.Epochs, h.Batch = min(h.Epochs, cfg.UnlearnEpochs), cfg.UnlearnBatch
		if TakesLR(m) {
			lr, ok := cfg.Rates[m]
			if !ok {
				out.Skipped = append(out.Skipped, m)
				continue
			}
			h.LR = lr
		}
		row := DemoRow{Method: m}
		if TakesLR(m) {
			row.LR = h.LR
		}
		res, err := run(m, h)
		switch {
		case errors.Is(err, train.ErrCollapsed) || errors.Is(err, train.ErrDiverged):
			row.Failed = err.Error()
			logf("demo: %v\n", err)
		case err != nil:
			return nil, err
		default:
			row.Metrics = res.Metrics
		}
		out.Rows = append(out.Rows, row)
	}
	return out, writeDemoSummary(cfg, q, out)
}

// writeDemoSummary writes summary.md and summary.json into the demo's
// folder.
func writeDemoSummary(cfg DemoConfig, q qat.Config, res *DemoResult) error {
	if err := atomicfile.Write(filepath.Join(cfg.Out, "summary.md"), func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "# qmulgpu demo, %s\n\nFashion-MNIST (%d training, %d test images), smallcnn %s, forget %s, original %d epochs, unlearning %d epochs at the learning rates of %s.\n\n%s",
			time.Now().UTC().Format("2006-01-02"), cfg.Subset, cfg.TestSubset, q, cfg.Forget, cfg.OriginalEpochs, cfg.UnlearnEpochs, cfg.RatesSource, FormatTable(res.Rows))
		return err
	}); err != nil {
		return err
	}
	return atomicfile.WriteJSON(filepath.Join(cfg.Out, "summary.json"), res)
}

// FormatTable renders rows as a Markdown table: the learning rate, FA, RA,
// TA, MIA, Avg. Gap (to Retrain) and RTE.
func FormatTable(rows []DemoRow) string {
	var sb strings.Builder
	sb.WriteString("| method | lr | FA | RA | TA | MIA | Avg. Gap | RTE (s) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		gap, lr, rte := "–", "–", "–"
		if r.AvgGap != nil && !FromScratch(r.Method) {
			gap = fmt.Sprintf("%.2f", *r.AvgGap)
		}
		if r.LR != 0 {
			lr = fmt.Sprintf("%g", r.LR)
		}
		if r.Method != "original" {
			rte = fmt.Sprintf("%.1f", r.RTE)
		}
		if r.Failed != "" {
			fmt.Fprintf(&sb, "| %s | %s | collapsed | | | | | |\n", r.Method, lr)
			continue
		}
		fmt.Fprintf(&sb, "| %s | %s | %.2f | %.2f | %.2f | %.2f | %s | %s |\n", r.Method, lr, r.FA, r.RA, r.TA, r.MIA, gap, rte)
	}
	return sb.String()
}
