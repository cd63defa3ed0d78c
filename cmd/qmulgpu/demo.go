package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/docs/study"
	"github.com/qmulgpu/qmulgpu/qmul"
)

func demoCommand() *cli.Command {
	d := qmul.DefaultDemo()
	return &cli.Command{
		Name:  "demo",
		Usage: "the default end-to-end study: smallcnn LSQ W4A4 on Fashion-MNIST, the original, Retrain and every method at the study's learning rate",
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
			rates, source, err := study.DemoRates()
			if err != nil {
				return err
			}
			b, err := openBackend(c)
			if err != nil {
				return err
			}
			cfg := d
			cfg.Out, cfg.DataDir, cfg.Backend, cfg.Threads = c.String("out"), c.String("data"), b, c.Int("threads")
			cfg.Subset, cfg.TestSubset = c.Int("subset"), c.Int("test-subset")
			cfg.OriginalEpochs, cfg.UnlearnEpochs = c.Int("epochs"), c.Int("unlearn-epochs")
			cfg.Rates, cfg.RatesSource = rates, study.DemoRatesFile
			cfg.Progress, cfg.Log = newProgress(c.Bool("quiet")), os.Stderr
			fmt.Printf("qmulgpu demo on %s: Fashion-MNIST subset (%d train / %d test images, to finish in minutes on a CPU), smallcnn LSQ W4A4, forget %s\n",
				b.Describe(), cfg.Subset, cfg.TestSubset, cfg.Forget)
			fmt.Printf("Learning rates: %s (%s).\n", study.DemoRatesFile, source)
			res, err := qmul.Demo(cfg)
			if err != nil {
				return err
			}
			fmt.Println()
			fmt.Print(qmul.FormatTable(res.Rows))
			fmt.Println()
			fmt.Println(demoReading(res.Rows))
			if len(res.Skipped) > 0 {
				fmt.Printf("Not run (the study has no rate for them; `qmulgpu unlearn --lr auto` searches one): %s.\n", strings.Join(res.Skipped, ", "))
			}
			fmt.Printf("Results in %s (summary.md, one directory per method).\n", cfg.Out)
			return nil
		},
	}
}

// demoReading says how to read the demo's table: the original's row is
// doing nothing, Retrain's is the target, and a method forgets when its FA
// moves from the first toward the second; methods that stay where the
// original was (qmul.OnPlateau) are named.
func demoReading(rows []qmul.DemoRow) string {
	if len(rows) < 2 || rows[0].AvgGap == nil {
		return ""
	}
	o, r := rows[0], rows[1]
	var forget, idle, failed []string
	for _, m := range rows[2:] {
		switch {
		case m.Failed != "":
			failed = append(failed, m.Method)
		case qmul.OnPlateau(m.Metrics, o.Metrics):
			idle = append(idle, m.Method)
		case m.AvgGap != nil && *m.AvgGap < *o.AvgGap:
			forget = append(forget, fmt.Sprintf("%s %.2f", m.Method, m.FA))
		}
	}
	text := fmt.Sprintf("The original row is doing nothing: FA %.2f, Avg. Gap %.2f to Retrain, whose FA is %.2f (to Retrain the forget set is unseen data). "+
		"%d of %d methods forget, ending closer to Retrain than doing nothing, FA %s.",
		o.FA, *o.AvgGap, r.FA, len(forget), len(rows)-2, strings.Join(forget, ", "))
	if len(failed) > 0 {
		text += fmt.Sprintf(" %s collapsed at the study's rate (the collapse guard stopped it).", strings.Join(failed, ", "))
	}
	if len(idle) > 0 {
		text += fmt.Sprintf(" At the study's rate %s stay%s where the original was (every metric within %g point).",
			strings.Join(idle, ", "), map[bool]string{true: "s", false: ""}[len(idle) == 1], qmul.PlateauPoints)
	}
	return text
}
