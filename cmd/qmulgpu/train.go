package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/optim"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qat"
	"github.com/qmulgpu/qmulgpu/qmul"
)

// recipeFlags are train's optimiser and schedule flags, with the defaults
// of train.DefaultRecipe (the learning rate's depends on --model).
func recipeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "epochs", Value: train.DefaultEpochs, Usage: "training epochs"},
		&cli.Float64Flag{Name: "lr", Usage: "peak learning rate",
			DefaultText: fmt.Sprintf("%g; smallcnn %g", train.DefaultLR("resnet18"), train.DefaultLR("smallcnn"))},
		&cli.IntFlag{Name: "batch", Value: train.DefaultBatch, Usage: "minibatch size"},
		&cli.Float64Flag{Name: "momentum", Value: train.DefaultMomentum, Usage: "SGD momentum"},
		&cli.Float64Flag{Name: "wd", Value: train.DefaultWeightDecay, Usage: "weight decay"},
		&cli.BoolFlag{Name: "nesterov", Usage: "Nesterov momentum"},
		&cli.StringFlag{Name: "schedule", Value: train.DefaultSchedule, Usage: "learning-rate schedule: " + strings.Join(optim.ScheduleKinds(), ", ")},
		&cli.IntFlag{Name: "warmup", Usage: "linear warm-up epochs"},
		&cli.IntFlag{Name: "lr-step", Value: 30, Usage: "epochs per decay of the step schedule"},
		&cli.Float64Flag{Name: "lr-gamma", Value: 0.1, Usage: "decay factor of the step schedule"},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed (initialisation, shuffling, augmentation)"},
		&cli.StringFlag{Name: "augment", Value: "auto", Usage: "training augmentation: auto (the data set's usual), none, crop, flip, crop+flip"},
	}
}

// dataFlags select the data set and its split.
func dataFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "dataset", Usage: "data set: " + strings.Join(data.Names(), ", ")},
		&cli.StringFlag{Name: "data", Usage: "directory holding the data set's files (default: $QMUL_DATA, then the usual places)"},
		&cli.Float64Flag{Name: "val-frac", Value: 0.1, Usage: "fraction of each class of the training set held out for validation"},
		&cli.Uint64Flag{Name: "split-seed", Value: 1, Usage: "seed of the validation hold-out and of forget sets"},
		&cli.IntFlag{Name: "size", Usage: "side length folder images are resized to (default 32)"},
		&cli.IntFlag{Name: "subset", Usage: "train on a class-balanced random subset of this many samples (0: all)"},
		&cli.IntFlag{Name: "test-subset", Usage: "evaluate on a class-balanced random subset of the test set (0: all)"},
	}
}

func dataSpec(c *cli.Context) (train.DataSpec, error) {
	s := train.DataSpec{Dataset: c.String("dataset"), Dir: c.String("data"), SplitSeed: c.Uint64("split-seed"), Size: c.Int("size"),
		Subset: c.Int("subset"), TestSubset: c.Int("test-subset")}
	if s.Dataset == "" {
		return s, fmt.Errorf("--dataset is required (one of %s)", strings.Join(data.Names(), ", "))
	}
	v, err := finite(c, "val-frac", 0, 0.99)
	s.ValFrac = v
	return s, err
}

func recipe(c *cli.Context, dataset, arch string) (train.Recipe, error) {
	r := train.Recipe{Epochs: c.Int("epochs"), Batch: c.Int("batch"), Momentum: c.Float64("momentum"),
		WeightDecay: c.Float64("wd"), Nesterov: c.Bool("nesterov"), Seed: c.Uint64("seed")}
	lr := train.DefaultLR(arch)
	if c.IsSet("lr") {
		lr = c.Float64("lr")
	}
	r.Schedule = optim.Schedule{Kind: c.String("schedule"), Base: lr, Epochs: r.Epochs,
		Warmup: c.Int("warmup"), StepSize: c.Int("lr-step"), Gamma: c.Float64("lr-gamma")}
	aug, err := data.ParseAugmentation(c.String("augment"), dataset)
	if err != nil {
		return r, fmt.Errorf("--augment: %w", err)
	}
	r.Aug = aug
	return r, r.Validate()
}

// dataAndModel reads the data set's and the model's flags.
func dataAndModel(c *cli.Context) (train.DataSpec, models.Config, error) {
	ds, err := dataSpec(c)
	if err != nil {
		return ds, models.Config{}, err
	}
	mc, err := modelConfig(c)
	return ds, mc, err
}

func modelFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "model", Usage: "architecture: " + strings.Join(models.Names(), ", ")},
		&cli.Float64Flag{Name: "width", Value: 1, Usage: "MobileNetV2 width multiplier"},
	}
}

func modelConfig(c *cli.Context) (models.Config, error) {
	cfg := models.Config{Arch: c.String("model")}
	if cfg.Arch == "" {
		return cfg, fmt.Errorf("--model is required (one of %s)", strings.Join(models.Names(), ", "))
	}
	if cfg.Arch == "mobilenetv2" {
		cfg.Width = c.Float64("width")
	}
	return cfg, nil
}

func trainCommand() *cli.Command {
	flags := append(dataFlags(), modelFlags()...)
	flags = append(flags, quantFlags()...)
	flags = append(flags, recipeFlags()...)
	flags = append(flags, deviceFlags()...)
	flags = append(flags,
		&cli.StringFlag{Name: "out", Usage: "output directory (model.safetensors, metrics.json, log.jsonl); staged in .NAME.partial beside it and moved into place when complete"},
		&cli.StringFlag{Name: "forget", Usage: "a forget set (random:N, random:P%, class:K, indices:FILE), drawn with --split-seed"},
		&cli.BoolFlag{Name: "exclude-forget", Usage: "train on the training split without the --forget set (the Retrain model)"},
		&cli.BoolFlag{Name: "resume", Usage: "continue a stopped run for --out from its last epoch (kept in .NAME.partial beside it)"},
		&cli.BoolFlag{Name: "force", Usage: "replace a finished run in --out, or discard a stopped one"},
		&cli.BoolFlag{Name: "allow-collapse", Usage: "go on when an epoch's mean loss rises above ln(classes) after having been below half of it"},
		&cli.BoolFlag{Name: "json", Usage: "print metrics.json to stdout"},
		&cli.BoolFlag{Name: "quiet", Usage: "no progress output"},
	)
	return &cli.Command{
		Name:  "train",
		Usage: "train a model (quantization-aware with --quant) and write a checkpoint",
		Flags: flags,
		Action: func(c *cli.Context) error {
			job, err := trainJob(c)
			if err != nil {
				return err
			}
			return runJob(c, job.Progress, job.Abandon, job.Run, func(res *train.Result) string {
				return fmt.Sprintf("%s %s on %s: test accuracy %.2f%% (train %.2f%%) in %.1fs on %s",
					res.Model.Arch, res.Data.Dataset, res.Backend, res.TestAcc, res.TrainAcc, res.Phases["total"], res.Device)
			})
		},
	}
}

func trainJob(c *cli.Context) (*train.Job, error) {
	if c.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	ds, mc, err := dataAndModel(c)
	if err != nil {
		return nil, err
	}
	r, err := recipe(c, ds.Dataset, mc.Arch)
	if err != nil {
		return nil, err
	}
	q, err := quantConfig(c)
	if err != nil {
		return nil, err
	}
	out := c.String("out")
	if out == "" {
		return nil, fmt.Errorf("--out is required")
	}
	b, err := openBackend(c)
	if err != nil {
		return nil, err
	}
	if q.Scheme == "" {
		q.Scheme = "none"
	}
	var exclude func(*train.Splits) ([]int, error)
	if c.Bool("exclude-forget") != (c.String("forget") != "") {
		return nil, fmt.Errorf("--forget and --exclude-forget go together (they train the Retrain model)")
	}
	if c.Bool("exclude-forget") {
		if exclude, err = qmul.ExcludeForget(ds, c.String("forget")); err != nil {
			return nil, err
		}
	}
	return &train.Job{Exclude: exclude, ExcludeSpec: c.String("forget"), Data: ds, Model: mc, Recipe: r, Out: out, Resume: c.Bool("resume"), Force: c.Bool("force"),
		AllowCollapse: c.Bool("allow-collapse"),
		Meta:          map[string]string{qat.MetaKey: q.Meta()},
		Prepare:       func(m *models.Model) error { return qat.Apply(b, m, q) },
		Command:       commandLine(), Backend: b, Threads: c.Int("threads"), Progress: newProgress(c.Bool("quiet"))}, nil
}
