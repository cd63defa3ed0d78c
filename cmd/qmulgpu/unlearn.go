package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qmul"
)

// methodsDefault is the default text of the shared hyper-parameters.
const methodsDefault = "the method's, listed above"

func unlearnCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "checkpoint", Usage: "the original (quantized) model"},
		&cli.StringFlag{Name: "method", Usage: "unlearning method: " + strings.Join(qmul.Methods(), ", ")},
		&cli.StringFlag{Name: "forget", Usage: "forget set: random:N, random:P%, class:K or indices:FILE"},
		&cli.StringFlag{Name: "data", Usage: "directory holding the data set (default: where the checkpoint's run found it)"},
		&cli.IntFlag{Name: "subset", Usage: "replace the training subset the checkpoint was trained on (0: the whole split)"},
		&cli.IntFlag{Name: "test-subset", Usage: "replace the test subset the checkpoint was evaluated on (0: the whole test set)"},
		&cli.IntFlag{Name: "epochs", Usage: "epochs", DefaultText: methodsDefault},
		&cli.StringFlag{Name: "lr", Usage: "learning rate, or auto: search it (see --select)", DefaultText: methodsDefault},
		&cli.IntFlag{Name: "batch", Usage: "minibatch size", DefaultText: methodsDefault},
		&cli.Float64Flag{Name: "momentum", Usage: "SGD momentum", DefaultText: methodsDefault},
		&cli.Float64Flag{Name: "wd", Usage: "weight decay", DefaultText: methodsDefault},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed (shuffling, augmentation, random labels)"},
		&cli.StringFlag{Name: "reference", Usage: "Retrain's metrics.json: adds the average gap to it"},
		&cli.StringFlag{Name: "scores", Usage: "also write per-sample scores to this CSV file"},
		&cli.StringFlag{Name: "out", Usage: "output directory (model.safetensors, metrics.json); staged beside it and moved into place when complete"},
		&cli.BoolFlag{Name: "force", Usage: "replace a finished run in --out"},
		&cli.BoolFlag{Name: "allow-collapse", Usage: "go on when an epoch's mean loss rises above ln(classes) after having been below half of it, and keep a run that ends near chance on the retain set"},
		&cli.BoolFlag{Name: "json", Usage: "print metrics.json to stdout"},
		&cli.BoolFlag{Name: "quiet", Usage: "no progress output"},
	}
	flags = append(flags, paramFlags()...)
	flags = append(flags, searchFlags()...)
	flags = append(flags, quantFlags()...)
	flags = append(flags, deviceFlags()...)
	return &cli.Command{
		Name:        "unlearn",
		Usage:       "make a model forget a forget set (Q-MUL, the baselines, Retrain) and evaluate it",
		Description: qmul.MethodsHelp(),
		Flags:       flags,
		Action: func(c *cli.Context) error {
			j, err := unlearnJob(c)
			if err != nil {
				return err
			}
			run := func() (*qmul.Result, error) {
				res, err := j.Run()
				if err == nil {
					warnMIA(res.Metrics)
				}
				return res, err
			}
			return runJob(c, j.Progress, j.Abandon, run, unlearnText)
		},
	}
}

// unlearnText is unlearn's line, after the learning rate's when --lr auto
// searched it.
func unlearnText(res *qmul.Result) string {
	gap, search := "", ""
	if res.AvgGap != nil {
		gap = fmt.Sprintf(", avg gap %.2f", *res.AvgGap)
	}
	if s := res.Search; s != nil {
		search = fmt.Sprintf("lr %g chosen by %s among %d rates tried%s (all in metrics.json)\n",
			s.Chosen, s.Select, len(s.Candidates), plateauWarning(s.Plateau))
	}
	return fmt.Sprintf("%s%s on %s (%s): FA %.2f RA %.2f TA %.2f MIA %.2f%s, RTE %.1fs",
		search, res.Method, res.Forget, res.Quant, res.FA, res.RA, res.TA, res.MIA, gap, res.RTE)
}

func unlearnJob(c *cli.Context) (*qmul.Job, error) {
	if c.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	for _, f := range []string{"checkpoint", "method", "forget", "out"} {
		if c.String(f) == "" {
			return nil, fmt.Errorf("--%s is required", f)
		}
	}
	q, err := quantConfig(c)
	if err != nil {
		return nil, err
	}
	method := c.String("method")
	if c.IsSet("lr") && !qmul.TakesLR(method) {
		return nil, fmt.Errorf("--lr is not a parameter of %s (it does not train)", method)
	}
	lr, lrSet, search, err := lrFlag(c, method)
	if err != nil {
		return nil, err
	}
	// The schedule's default depends on the data set: qmul.Job fills it in.
	h := qmul.Defaults(method)
	set := func(name string, fn func()) {
		if c.IsSet(name) {
			fn()
		}
	}
	set("epochs", func() { h.Epochs = c.Int("epochs") })
	if lrSet {
		h.LR = lr
	}
	set("batch", func() { h.Batch = c.Int("batch") })
	set("momentum", func() { h.Momentum = c.Float64("momentum") })
	set("wd", func() { h.WeightDecay = c.Float64("wd") })
	h.Seed, h.AllowCollapse = c.Uint64("seed"), c.Bool("allow-collapse")
	if err := setParams(c, &h); err != nil {
		return nil, err
	}
	b, err := openBackend(c)
	if err != nil {
		return nil, err
	}
	j := &qmul.Job{Checkpoint: c.String("checkpoint"), Method: method, Forget: c.String("forget"), Hyper: h,
		DataDir: c.String("data"), Quant: q, Subset: intFlag(c, "subset"), TestSubset: intFlag(c, "test-subset"), Reference: c.String("reference"), Scores: c.String("scores"),
		Out: c.String("out"), Force: c.Bool("force"), Backend: b, Threads: c.Int("threads"), Progress: newProgress(c.Bool("quiet")), Command: commandLine(),
		Search: search}
	if qmul.FromScratch(method) {
		j.RetrainRecipe = func(r train.Recipe) train.Recipe {
			if c.IsSet("epochs") {
				r.Epochs = c.Int("epochs")
				r.Schedule.Epochs = r.Epochs
			}
			if lrSet {
				r.Schedule.Base = lr
			}
			if c.IsSet("batch") {
				r.Batch = c.Int("batch")
			}
			return r
		}
	}
	return j, nil
}

// intFlag returns a pointer to an integer flag's value when it is set.
func intFlag(c *cli.Context, name string) *int {
	if !c.IsSet(name) {
		return nil
	}
	v := c.Int(name)
	return &v
}

// paramFlags are the flags of the method parameters, one per row of
// qmul.Parameters, typed by the row's kind.
func paramFlags() []cli.Flag {
	var out []cli.Flag
	for _, p := range qmul.Parameters {
		usage, defaults := p.HelpText(), p.DefaultsText()
		switch p.Kind {
		case qmul.Float:
			out = append(out, &cli.Float64Flag{Name: p.Name, Usage: usage, DefaultText: defaults})
		case qmul.Int:
			out = append(out, &cli.IntFlag{Name: p.Name, Usage: usage, DefaultText: defaults})
		case qmul.Bool:
			out = append(out, &cli.BoolFlag{Name: p.Name, Usage: usage + "; --" + p.Name + "=false turns it off", DefaultText: defaults})
		default:
			out = append(out, &cli.StringFlag{Name: p.Name, Usage: usage, DefaultText: defaults})
		}
	}
	return out
}

// setParams sets on h the method parameters given on the command line.
func setParams(c *cli.Context, h *qmul.Hyper) error {
	for _, p := range qmul.Parameters {
		if !c.IsSet(p.Name) {
			continue
		}
		var v any = c.String(p.Name)
		switch p.Kind {
		case qmul.Float:
			v = c.Float64(p.Name)
		case qmul.Int:
			v = c.Int(p.Name)
		case qmul.Bool:
			v = c.Bool(p.Name)
		}
		if err := h.Set(p.Name, v); err != nil {
			return err
		}
	}
	return nil
}
