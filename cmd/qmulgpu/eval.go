package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qat"
	"github.com/qmulgpu/qmulgpu/qmul"
)

// evalReport is what `qmulgpu eval --json` prints.
type evalReport struct {
	Checkpoint string  `json:"checkpoint"`
	Dataset    string  `json:"dataset"`
	TrainAcc   float64 `json:"train_acc"`
	ValAcc     float64 `json:"val_acc,omitempty"`
	TestAcc    float64 `json:"test_acc"`
	Backend    string  `json:"backend"`
}

func evalCommand() *cli.Command {
	flags := append(append(dataFlags(), quantFlags()...),
		&cli.StringFlag{Name: "checkpoint", Usage: "model checkpoint (.safetensors), or an integer export"},
		&cli.StringFlag{Name: "forget", Usage: "forget set (random:N, random:P%, class:K, indices:FILE): report FA, RA, TA and MIA-efficacy"},
		&cli.StringFlag{Name: "reference", Usage: "with --forget: Retrain's metrics.json, for the average gap"},
		&cli.StringFlag{Name: "scores", Usage: "with --forget: write per-sample scores to this CSV file"},
		&cli.IntFlag{Name: "batch", Value: 256, Usage: "evaluation batch size"},
		&cli.BoolFlag{Name: "json", Usage: "print JSON"},
	)
	flags = append(flags, deviceFlags()...)
	return &cli.Command{
		Name:  "eval",
		Usage: "evaluate a checkpoint on its data set's splits",
		Flags: flags,
		Action: func(c *cli.Context) error {
			path := c.String("checkpoint")
			if path == "" {
				return fmt.Errorf("--checkpoint is required")
			}
			batch, err := positive(c, "batch")
			if err != nil {
				return err
			}
			b, err := openBackend(c)
			if err != nil {
				return err
			}
			want, err := quantConfig(c)
			if err != nil {
				return err
			}
			m, f, err := openForEval(path, b, want)
			if err != nil {
				return err
			}
			b = m.Backend
			spec, err := evalDataSpec(c, f.Metadata)
			if err != nil {
				return err
			}
			if c.String("forget") != "" {
				return evalUnlearning(c, b, m.Model, spec)
			}
			if c.IsSet("reference") || c.IsSet("scores") {
				return fmt.Errorf("--reference and --scores need --forget")
			}
			splits, err := spec.Load()
			if err != nil {
				return err
			}
			trainData, testData := train.Upload(b, splits.Train), train.Upload(b, splits.Test)
			r := evalReport{Checkpoint: path, Dataset: spec.Dataset, Backend: b.Name()}
			r.TrainAcc = train.Evaluate(b, m.Model, trainData, splits.TrainIdx, batch, false, nil).Accuracy()
			if len(splits.ValIdx) > 0 {
				r.ValAcc = train.Evaluate(b, m.Model, trainData, splits.ValIdx, batch, false, nil).Accuracy()
			}
			r.TestAcc = train.Evaluate(b, m.Model, testData, splits.TestIdx, batch, false, nil).Accuracy()
			if err := b.Err(); err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(r)
			}
			val := ""
			if len(splits.ValIdx) > 0 {
				val = fmt.Sprintf(", val %.2f%%", r.ValAcc)
			}
			fmt.Printf("%s on %s: train %.2f%%%s, test %.2f%%\n", path, spec.Dataset, r.TrainAcc, val, r.TestAcc)
			return nil
		},
	}
}

// evalDataSpec is the data and split the checkpoint was trained with
// (subsets included), with any data flag given on the command line
// replacing its value.
func evalDataSpec(c *cli.Context, meta map[string]string) (train.DataSpec, error) {
	o, err := qmul.ReadOrigin(meta, c.String("data"))
	s := o.Data
	if err != nil && !c.IsSet("dataset") {
		return s, fmt.Errorf("--dataset is required: %w", err)
	}
	if c.IsSet("dataset") {
		s.Dataset = c.String("dataset")
	}
	if c.IsSet("val-frac") {
		if s.ValFrac, err = finite(c, "val-frac", 0, 0.99); err != nil {
			return s, err
		}
	}
	if c.IsSet("split-seed") {
		s.SplitSeed = c.Uint64("split-seed")
	}
	if c.IsSet("subset") {
		s.Subset = c.Int("subset")
	}
	if c.IsSet("test-subset") {
		s.TestSubset = c.Int("test-subset")
	}
	if c.IsSet("size") {
		s.Size = c.Int("size")
	}
	return s, nil
}

// checkQuant attaches a checkpoint's quantizers after checking that the
// requested configuration (if any) agrees with it.
func checkQuant(b engine.Backend, want qat.Config) func(*models.Model, map[string]string) error {
	return func(m *models.Model, meta map[string]string) error {
		have, err := qat.FromMeta(meta)
		if err != nil {
			return err
		}
		if err := want.Contradicts(have); err != nil {
			return err
		}
		return qat.Apply(b, m, have)
	}
}

// evalModel is a model ready for evaluation and the backend it lives on.
type evalModel struct {
	*models.Model
	Backend engine.Backend
}

// openForEval opens a checkpoint, or an integer export (which runs on the
// CPU whatever the device).
func openForEval(path string, b engine.Backend, want qat.Config) (evalModel, *safetensors.File, error) {
	f, _, err := checkpoint.Read(path)
	if err != nil {
		return evalModel{}, nil, err
	}
	if f.Metadata[checkpoint.KeyFormat] == checkpoint.FormatInt {
		have, err := qat.FromMeta(f.Metadata)
		if err == nil {
			err = want.Contradicts(have)
		}
		if err != nil {
			return evalModel{}, nil, fmt.Errorf("%s: %w", path, err)
		}
		cb, ok := b.(*cpu.Backend)
		if !ok {
			fmt.Fprintf(os.Stderr, "qmulgpu: integer inference runs on the CPU\n")
			cb = cpu.New(0)
		}
		m, err := qat.LoadInt(f, cb)
		if err != nil {
			return evalModel{}, nil, fmt.Errorf("%s: %w", path, err)
		}
		return evalModel{m, cb}, f, nil
	}
	m, f, err := checkpoint.Open(path, b, checkQuant(b, want))
	return evalModel{m, b}, f, err
}

// unlearningReport is what `qmulgpu eval --forget ... --json` prints.
type unlearningReport struct {
	Checkpoint string `json:"checkpoint"`
	Forget     string `json:"forget"`
	Reference  string `json:"reference,omitempty"`
	Backend    string `json:"backend"`
	qmul.Metrics
}

// evalUnlearning reports FA, RA, TA and MIA-efficacy for a forget set.
func evalUnlearning(c *cli.Context, b engine.Backend, m *models.Model, spec train.DataSpec) error {
	setup, err := qmul.LoadSetup(spec, c.String("forget"))
	if err != nil {
		return err
	}
	var ref *qmul.Metrics
	if p := c.String("reference"); p != "" {
		if ref, err = qmul.ReadMetrics(p); err != nil {
			return err
		}
	}
	trainData, testData := train.Upload(b, setup.Splits.Train), train.Upload(b, setup.Splits.Test)
	ev, err := qmul.Evaluate(b, m, qmul.Sets{Train: trainData, Test: testData, Forget: setup.ForgetI,
		Retain: setup.Retain, TestIdx: setup.TestIdx}, c.Int("batch"))
	if err != nil {
		return err
	}
	if ref != nil {
		ev.Gap(*ref)
	}
	if p := c.String("scores"); p != "" {
		if err := ev.WriteScores(p); err != nil {
			return err
		}
	}
	r := unlearningReport{Checkpoint: c.String("checkpoint"), Forget: c.String("forget"), Reference: c.String("reference"),
		Backend: b.Name(), Metrics: ev.Metrics}
	warnMIA(ev.Metrics)
	if c.Bool("json") {
		return printJSON(r)
	}
	gap := ""
	if ev.AvgGap != nil {
		gap = fmt.Sprintf(", avg gap %.2f", *ev.AvgGap)
	}
	fmt.Printf("%s on %s: FA %.2f RA %.2f TA %.2f MIA %.2f%s\n", r.Checkpoint, r.Forget, ev.FA, ev.RA, ev.TA, ev.MIA, gap)
	fmt.Println(miaFeaturesLine(ev.Metrics))
	return nil
}
