package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/torchimport"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qat"
)

func importCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "checkpoint", Usage: "PyTorch checkpoint (torch.save, zip or legacy format): a state_dict, or a dict holding one under " + strings.Join(torchimport.StateDictKeys, ", ")},
		&cli.StringFlag{Name: "out", Usage: "output directory (model.safetensors)"},
		&cli.BoolFlag{Name: "force", Usage: "overwrite an existing model.safetensors in --out"},
	}
	for _, f := range dataFlags() {
		if n := f.Names()[0]; n != "subset" && n != "test-subset" {
			flags = append(flags, f)
		}
	}
	flags = append(flags, modelFlags()...)
	flags = append(flags, quantFlags()...)
	return &cli.Command{
		Name:  "import",
		Usage: "turn a PyTorch checkpoint of one of our architectures into a qmulgpu checkpoint (see docs/checkpoints.md)",
		Description: "The file is read by a restricted unpickler that rebuilds only tensors and dicts and refuses any other\n" +
			"global. --model, --dataset and --quant say what the file cannot: the architecture, the data set (its\n" +
			"shape and normalisation) and the quantizers the model was trained with; --val-frac and --split-seed\n" +
			"record the training split for unlearn and eval.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			b := cpu.New(0)
			j, err := importJob(c, b)
			if err != nil {
				return err
			}
			r, err := j.Run(b)
			if err != nil {
				return err
			}
			var notes []string
			if r.Key != "" {
				notes = append(notes, fmt.Sprintf("state_dict from entry %q", r.Key))
			}
			if r.Unwrapped > 0 {
				notes = append(notes, fmt.Sprintf("%d DataParallel prefixes removed", r.Unwrapped))
			}
			if r.Normalize {
				notes = append(notes, "normalisation module matches the data set's")
			}
			if len(r.Filled) > 0 {
				notes = append(notes, fmt.Sprintf("%d absent counters filled in", len(r.Filled)))
			}
			what := fmt.Sprintf("%s format, %d tensors", r.Format, r.Tensors)
			if len(notes) > 0 {
				what += "; " + strings.Join(notes, ", ")
			}
			fmt.Printf("%s (%s) written to %s\n", j.Source, what, j.Out)
			return nil
		},
	}
}

// importJob reads the flags; the model is built on b.
func importJob(c *cli.Context, b engine.Backend) (*torchimport.Job, error) {
	if c.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	for _, f := range []string{"checkpoint", "out"} {
		if c.String(f) == "" {
			return nil, fmt.Errorf("--%s is required", f)
		}
	}
	ds, mc, err := dataAndModel(c)
	if err != nil {
		return nil, err
	}
	q, err := quantConfig(c)
	if err != nil {
		return nil, err
	}
	if q.Scheme == "" {
		q.Scheme = "none"
	}
	mean, std := data.Stats(ds.Dataset)
	// The test split gives the data set's shape (and proves it is there
	// for the unlearning runs that follow).
	shape := func() (models.Config, error) {
		test, err := data.Load(ds.Dataset, ds.Dir, data.Test, ds.Size)
		if err != nil {
			return mc, err
		}
		return train.ModelFor(mc, test), nil
	}
	return &torchimport.Job{
		Source: c.String("checkpoint"), Out: filepath.Join(c.String("out"), train.ModelFile), Force: c.Bool("force"),
		Model:   shape,
		Prepare: func(m *models.Model) error { return qat.Apply(b, m, q) },
		Norm:    torchimport.Normalization{Mean: mean, Std: std},
		Meta: map[string]string{qat.MetaKey: q.Meta(), "dataset": ds.Dataset, "val_frac": strconv.FormatFloat(ds.ValFrac, 'g', -1, 64),
			"split_seed": strconv.FormatUint(ds.SplitSeed, 10), "command": commandLine()},
	}, nil
}
