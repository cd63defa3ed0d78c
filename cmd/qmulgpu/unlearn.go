package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qmul"
)

func unlearnCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "checkpoint", Usage: "the original (quantized) model"},
		&cli.StringFlag{Name: "method", Usage: "unlearning method: " + strings.Join(qmul.Methods(), ", ")},
		&cli.StringFlag{Name: "forget", Usage: "forget set: random:N, random:P%, class:K or indices:FILE"},
		&cli.StringFlag{Name: "data", Usage: "directory holding the data set (default: where the checkpoint's run found it)"},
		&cli.IntFlag{Name: "subset", Usage: "replace the training subset the checkpoint was trained on (0: the whole split)"},
		&cli.IntFlag{Name: "test-subset", Usage: "replace the test subset the checkpoint was evaluated on (0: the whole test set)"},
		&cli.IntFlag{Name: "epochs", Usage: "epochs (default: the method's reference value)"},
		&cli.StringFlag{Name: "lr", Usage: "learning rate (default: the method's reference value), or auto: search it (see --select)"},
		&cli.IntFlag{Name: "batch", Usage: "minibatch size (default 256)"},
		&cli.Float64Flag{Name: "momentum", Value: 0.9, Usage: "SGD momentum"},
		&cli.Float64Flag{Name: "wd", Value: 5e-4, Usage: "weight decay"},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed (shuffling, augmentation, random labels)"},
		&cli.Float64Flag{Name: "alpha", Usage: qmul.UsedBy("alpha") + ": l1's sparsity penalty at the first epoch (default 5e-5), scrub's distillation weight (0.001), ssd's selection weight (10)"},
		&cli.Float64Flag{Name: "sparsity", Usage: qmul.UsedBy("sparsity") + ": fraction of weights frozen by the saliency mask (default 0.5)"},
		&cli.Float64Flag{Name: "bound", Usage: qmul.UsedBy("bound") + ": FGSM step in pixel units, images in [0, 1] (default 0.1)"},
		&cli.StringFlag{Name: "agr", Usage: qmul.UsedBy("agr") + ": gradient reweighting epoch (the paper's), step or sample"},
		&cli.StringFlag{Name: "schedule", Usage: qmul.UsedBy("schedule") + ": sequential or joint (default: sequential for ≤ 10 classes, else joint)"},
		&cli.Float64Flag{Name: "beta", Usage: qmul.UsedBy("beta") + ": weight of the retain loss; the forget loss gets 1−β (default 0.99)"},
		&cli.Float64Flag{Name: "gamma", Usage: qmul.UsedBy("gamma") + ": cross-entropy weight of the min steps (default 0.99)"},
		&cli.Float64Flag{Name: "temperature", Usage: qmul.UsedBy("temperature") + ": distillation temperature (default 4)"},
		&cli.IntFlag{Name: "max-steps", Usage: qmul.UsedBy("max-steps") + ": epochs that start with a max pass over the forget set (default 3)"},
		&cli.Float64Flag{Name: "lambda", Usage: qmul.UsedBy("lambda") + ": dampening constant (default 1)"},
		&cli.StringFlag{Name: "reference", Usage: "Retrain's metrics.json: adds the average gap to it"},
		&cli.StringFlag{Name: "scores", Usage: "also write per-sample scores to this CSV file"},
		&cli.StringFlag{Name: "out", Usage: "output directory (model.safetensors, metrics.json); staged beside it and moved into place when complete"},
		&cli.BoolFlag{Name: "force", Usage: "replace a finished run in --out"},
		&cli.BoolFlag{Name: "allow-collapse", Usage: "go on when an epoch's mean loss rises above ln(classes) after having been below half of it, and keep a run that ends near chance on the retain set"},
		&cli.BoolFlag{Name: "json", Usage: "print metrics.json to stdout"},
		&cli.BoolFlag{Name: "quiet", Usage: "no progress output"},
	}
	flags = append(flags, searchFlags()...)
	flags = append(flags, quantFlags()...)
	flags = append(flags, deviceFlags()...)
	return &cli.Command{
		Name:  "unlearn",
		Usage: "make a model forget a forget set (Q-MUL, the baselines, Retrain) and evaluate it",
		Flags: flags,
		Action: func(c *cli.Context) error {
			j, err := unlearnJob(c)
			if err != nil {
				return err
			}
			stop := onSignal(j.Progress, j.Abandon)
			res, err := j.Run()
			stop()
			if err != nil {
				return err
			}
			warnMIA(res.Metrics)
			if c.Bool("json") {
				return printJSON(res)
			}
			gap := ""
			if res.AvgGap != nil {
				gap = fmt.Sprintf(", avg gap %.2f", *res.AvgGap)
			}
			if s := res.Search; s != nil {
				fmt.Printf("lr %g chosen by %s among %d rates tried%s (all in metrics.json)\n", s.Chosen, s.Select, len(s.Candidates), plateauWarning(s.Plateau))
			}
			fmt.Printf("%s on %s (%s): FA %.2f RA %.2f TA %.2f MIA %.2f%s, RTE %.1fs\n",
				res.Method, res.Forget, res.Quant, res.FA, res.RA, res.TA, res.MIA, gap, res.RTE)
			return nil
		},
	}
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
	h.Momentum, h.WeightDecay, h.Seed = c.Float64("momentum"), c.Float64("wd"), c.Uint64("seed")
	set("alpha", func() { h.Alpha = c.Float64("alpha") })
	set("sparsity", func() { h.Sparsity = c.Float64("sparsity") })
	set("bound", func() { h.Bound = c.Float64("bound") })
	set("agr", func() { h.AGR = c.String("agr") })
	set("schedule", func() { h.Schedule = c.String("schedule") })
	h.AllowCollapse = c.Bool("allow-collapse")
	set("beta", func() { h.Beta = c.Float64("beta") })
	set("gamma", func() { h.Gamma = c.Float64("gamma") })
	set("temperature", func() { h.Temperature = c.Float64("temperature") })
	set("max-steps", func() { h.MaxSteps = c.Int("max-steps") })
	set("lambda", func() { h.Lambda = c.Float64("lambda") })
	b, err := openBackend(c)
	if err != nil {
		return nil, err
	}
	j := &qmul.Job{Checkpoint: c.String("checkpoint"), Method: method, Forget: c.String("forget"), Hyper: h,
		DataDir: c.String("data"), Quant: q, Subset: intFlag(c, "subset"), TestSubset: intFlag(c, "test-subset"), Reference: c.String("reference"), Scores: c.String("scores"),
		Out: c.String("out"), Force: c.Bool("force"), Backend: b, Threads: c.Int("threads"), Progress: newProgress(c.Bool("quiet")), Command: commandLine(),
		Search: search}
	if method == "retrain" {
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
