package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/qmul"
)

func demoCommand() *cli.Command {
	d := qmul.DefaultDemo()
	return &cli.Command{
		Name:  "demo",
		Usage: "the default end-to-end study: smallcnn LSQ W4A4 on Fashion-MNIST, Retrain and every method",
		Flags: append(deviceFlags(),
			&cli.StringFlag{Name: "out", Value: d.Out, Usage: "output directory"},
			&cli.StringFlag{Name: "data", Usage: "directory holding Fashion-MNIST (default: the Debian package's)"},
			&cli.IntFlag{Name: "subset", Value: d.Subset, Usage: "training images used (class-balanced)"},
			&cli.IntFlag{Name: "test-subset", Value: d.TestSubset, Usage: "test images used (class-balanced)"},
			&cli.IntFlag{Name: "epochs", Value: d.OriginalEpochs, Usage: "epochs of the original model and Retrain"},
			&cli.IntFlag{Name: "unlearn-epochs", Value: d.UnlearnEpochs, Usage: "epochs of each unlearning method (at most its default)"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress bars"},
		),
		Action: func(c *cli.Context) error {
			b, err := openBackend(c)
			if err != nil {
				return err
			}
			cfg := d
			cfg.Out, cfg.DataDir, cfg.Backend, cfg.Threads = c.String("out"), c.String("data"), b, c.Int("threads")
			cfg.Subset, cfg.TestSubset = c.Int("subset"), c.Int("test-subset")
			cfg.OriginalEpochs, cfg.UnlearnEpochs = c.Int("epochs"), c.Int("unlearn-epochs")
			cfg.Progress, cfg.Log = newProgress(c.Bool("quiet")), os.Stderr
			fmt.Printf("qmulgpu demo on %s: Fashion-MNIST subset (%d train / %d test images, to finish in minutes on a CPU), smallcnn LSQ W4A4, forget %s\n",
				b.Describe(), cfg.Subset, cfg.TestSubset, cfg.Forget)
			rows, err := qmul.Demo(cfg)
			if err != nil {
				return err
			}
			fmt.Println()
			fmt.Print(qmul.FormatTable(rows))
			fmt.Printf("\nResults in %s (summary.md, one directory per method).\n", cfg.Out)
			return nil
		},
	}
}
