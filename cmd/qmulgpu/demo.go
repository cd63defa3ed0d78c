package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/optim"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "the default end-to-end job: smallcnn on Fashion-MNIST",
		Flags: append(deviceFlags(),
			&cli.StringFlag{Name: "out", Value: "out/demo", Usage: "output directory"},
			&cli.StringFlag{Name: "data", Usage: "directory holding Fashion-MNIST (default: the Debian package's)"},
		),
		Action: func(c *cli.Context) error {
			b, err := openBackend(c)
			if err != nil {
				return err
			}
			j := &train.Job{
				Data:  train.DataSpec{Dataset: "fashion-mnist", Dir: c.String("data"), ValFrac: 0, SplitSeed: 1},
				Model: models.Config{Arch: "smallcnn"},
				Recipe: train.Recipe{Epochs: 5, Batch: 128, Momentum: 0.9, WeightDecay: 5e-4, Seed: 1,
					Schedule: optim.Schedule{Kind: "cosine", Base: 0.05, Epochs: 5}},
				Out: c.String("out"), Force: true, Command: commandLine(), Backend: b, Threads: c.Int("threads"),
				Progress: newProgress(false),
			}
			fmt.Printf("demo: training smallcnn (float) on Fashion-MNIST, 5 epochs, on %s\n", b.Describe())
			res, err := j.Run()
			if err != nil {
				return err
			}
			fmt.Printf("demo: test accuracy %.2f%% (%.0fs); results in %s\n", res.TestAcc, res.Phases["total"], j.Out)
			return nil
		},
	}
}
