package qmul

import (
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

// DemoConfig sizes the demo study. The defaults (DefaultDemo) finish in
// about eight minutes on a 2-core CPU: a 5,000-image subset trained 15 epochs
// (long enough for the original to remember its training images better
// than unseen ones) and 5 epochs per method.
type DemoConfig struct {
	Out, DataDir string
	// Subset and TestSubset are the class-balanced training and test
	// subsets of Fashion-MNIST the study uses.
	Subset, TestSubset int
	// OriginalEpochs trains the original model (and Retrain);
	// UnlearnEpochs runs every iterative method.
	OriginalEpochs, UnlearnEpochs int
	Forget                        string
	Methods                       []string
	Backend                       engine.Backend
	Threads                       int
	Progress                      train.Progress
	Log                           io.Writer
}

// DefaultDemo is the study `qmulgpu demo` runs.
func DefaultDemo() DemoConfig {
	return DemoConfig{Out: "out/demo", Subset: 5000, TestSubset: 2000, OriginalEpochs: 15, UnlearnEpochs: 5,
		Forget: "random:10%", Methods: UnlearningMethods()}
}

// DemoRow is one line of the demo's table.
type DemoRow struct {
	Method string `json:"method"`
	Metrics
}

// Demo runs the whole study on Fashion-MNIST with smallcnn LSQ W4A4: the
// original model, Retrain, then every method on the forget set, each
// evaluated against Retrain. It returns the rows, Retrain's first.
func Demo(cfg DemoConfig) ([]DemoRow, error) {
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
		Recipe: train.Recipe{Epochs: cfg.OriginalEpochs, Batch: 128, Momentum: 0.9, WeightDecay: 5e-4, Seed: 1,
			Schedule: optim.Schedule{Kind: "cosine", Base: 0.05, Epochs: cfg.OriginalEpochs}},
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
	run := func(method string, h Hyper) (*Result, error) {
		logf("demo: %s\n", method)
		j := &Job{Checkpoint: ckpt, Method: method, Forget: cfg.Forget, Hyper: h, DataDir: cfg.DataDir,
			Out: filepath.Join(cfg.Out, method), Force: true, Backend: b, Threads: cfg.Threads, Progress: cfg.Progress,
			Command: "qmulgpu demo"}
		if !FromScratch(method) {
			j.Reference = filepath.Join(cfg.Out, Reference(), train.MetricsFile)
		}
		return j.Run()
	}
	re, err := run(Reference(), Hyper{})
	if err != nil {
		return nil, err
	}
	rows := []DemoRow{{Reference(), re.Metrics}}
	for _, m := range cfg.Methods {
		h := Defaults(m)
		h.Epochs = min(h.Epochs, cfg.UnlearnEpochs)
		res, err := run(m, h)
		if err != nil {
			return nil, err
		}
		rows = append(rows, DemoRow{m, res.Metrics})
	}
	table := FormatTable(rows)
	if err := atomicfile.Write(filepath.Join(cfg.Out, "summary.md"), func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "# qmulgpu demo, %s\n\nFashion-MNIST (%d training, %d test images), smallcnn %s, forget %s, original %d epochs, unlearning %d epochs.\n\n%s",
			time.Now().UTC().Format("2006-01-02"), cfg.Subset, cfg.TestSubset, q, cfg.Forget, cfg.OriginalEpochs, cfg.UnlearnEpochs, table)
		return err
	}); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteJSON(filepath.Join(cfg.Out, "summary.json"), rows); err != nil {
		return nil, err
	}
	return rows, nil
}

// FormatTable renders rows as a Markdown table: FA, RA, TA, MIA, Avg. Gap
// (to the first row, Retrain) and RTE.
func FormatTable(rows []DemoRow) string {
	var sb strings.Builder
	sb.WriteString("| method | FA | RA | TA | MIA | Avg. Gap | RTE (s) |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		gap := "–"
		if r.AvgGap != nil {
			gap = fmt.Sprintf("%.2f", *r.AvgGap)
		}
		fmt.Fprintf(&sb, "| %s | %.2f | %.2f | %.2f | %.2f | %s | %.1f |\n", r.Method, r.FA, r.RA, r.TA, r.MIA, gap, r.RTE)
	}
	return sb.String()
}
