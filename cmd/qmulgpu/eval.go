package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qmul"
)

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
			j, err := evalJob(c)
			if err != nil {
				return err
			}
			if j.Forget == "" {
				return runJob(c, nil, nil, j.Accuracy, accuracyText)
			}
			unlearning := func() (*qmul.UnlearningReport, error) {
				r, err := j.Unlearning()
				if err == nil {
					warnMIA(r.Metrics)
				}
				return r, err
			}
			return runJob(c, nil, nil, unlearning, unlearningText)
		},
	}
}

// accuracyText is eval's line without --forget.
func accuracyText(r *qmul.AccuracyReport) string {
	val := ""
	if r.HasVal {
		val = fmt.Sprintf(", val %.2f%%", r.ValAcc)
	}
	return fmt.Sprintf("%s on %s: train %.2f%%%s, test %.2f%%", r.Checkpoint, r.Dataset, r.TrainAcc, val, r.TestAcc)
}

// unlearningText is eval's two lines with --forget.
func unlearningText(r *qmul.UnlearningReport) string {
	gap := ""
	if r.AvgGap != nil {
		gap = fmt.Sprintf(", avg gap %.2f", *r.AvgGap)
	}
	return fmt.Sprintf("%s on %s: FA %.2f RA %.2f TA %.2f MIA %.2f%s\n%s", r.Checkpoint, r.Forget, r.FA, r.RA, r.TA, r.MIA, gap,
		miaFeaturesLine(r.Metrics))
}

func evalJob(c *cli.Context) (*qmul.EvalJob, error) {
	if c.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	j := &qmul.EvalJob{Checkpoint: c.String("checkpoint"), Forget: c.String("forget"), Reference: c.String("reference"),
		Scores: c.String("scores"), Notify: func(note string) { fmt.Fprintln(os.Stderr, "qmulgpu: "+note) }}
	if j.Checkpoint == "" {
		return nil, fmt.Errorf("--checkpoint is required")
	}
	var err error
	if j.Batch, err = positive(c, "batch"); err != nil {
		return nil, err
	}
	if j.Quant, err = quantConfig(c); err != nil {
		return nil, err
	}
	j.Data = func(s train.DataSpec, recorded error) (train.DataSpec, error) { return evalDataSpec(c, s, recorded) }
	if j.Backend, err = openBackend(c); err != nil {
		return nil, err
	}
	return j, nil
}

// evalDataSpec is the data and split the checkpoint was trained with
// (subsets included), with any data flag given on the command line
// replacing its value.
func evalDataSpec(c *cli.Context, s train.DataSpec, recorded error) (train.DataSpec, error) {
	if recorded != nil && !c.IsSet("dataset") {
		return s, fmt.Errorf("--dataset is required: %w", recorded)
	}
	if c.IsSet("dataset") {
		s.Dataset = c.String("dataset")
	}
	if c.IsSet("data") {
		s.Dir = c.String("data")
	}
	var err error
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
