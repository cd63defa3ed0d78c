package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/device"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qmul/sweep"
)

func sweepCommand() *cli.Command {
	return &cli.Command{
		Name:  "sweep",
		Usage: "run a grid of unlearning runs (or one shard of it) into a results directory",
		Flags: append(deviceFlags(),
			&cli.StringFlag{Name: "config", Usage: "sweep file (YAML; see docs/sweeps.md)"},
			&cli.StringFlag{Name: "out", Usage: "results directory (may be shared by several shards)"},
			&cli.StringFlag{Name: "shard", Usage: "run shard I/N (default: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX, else all)"},
			&cli.IntFlag{Name: "shards", Usage: "number of shards of a Kubernetes indexed Job (its completions)"},
			&cli.BoolFlag{Name: "quiet", Usage: "no per-run progress bars"},
		),
		Action: func(c *cli.Context) error {
			if c.String("config") == "" || c.String("out") == "" {
				return fmt.Errorf("--config and --out are required")
			}
			cfg, err := sweep.Load(c.String("config"))
			if err != nil {
				return err
			}
			shard, shards, err := sweepShard(c)
			if err != nil {
				return err
			}
			r := &sweep.Runner{Config: cfg, Out: c.String("out"), Shard: shard, Shards: shards,
				Devices: device.Workers(c.String("device")), Threads: c.Int("threads"), Log: os.Stderr, Command: commandLine(),
				Open: func(dev string) (engine.Backend, error) {
					return openDevice(dev, c.Int("threads"), sweepConv(c, cfg))
				}}
			if !c.Bool("quiet") {
				r.Progress = func() train.Progress { return newProgress(false) }
			}
			// scancel, time limits and Ctrl-C: release the locks at once so
			// that other shards take the work over without waiting.
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
			go func() {
				sig := <-sigs
				r.Release()
				fmt.Fprintf(os.Stderr, "qmulgpu: sweep stopped by %v; unfinished cells run again next time\n", sig)
				os.Exit(128 + int(sig.(syscall.Signal)))
			}()
			s, err := r.Run()
			if err != nil {
				return err
			}
			fmt.Printf("sweep shard %d/%d: %d cells, %d run now, %d finished earlier; `qmulgpu report %s` merges the results\n",
				shard, shards, s.Cells, s.Ran, s.Skipped, c.String("out"))
			return nil
		},
	}
}

// sweepShard is the shard this process runs: --shard I/N when given, else
// the Slurm array task's or the Kubernetes indexed Job pod's
// (sweep.ShardFromEnv, with --shards), else the whole grid (0 of 1).
func sweepShard(c *cli.Context) (shard, shards int, err error) {
	if s := c.String("shard"); s != "" {
		return sweep.ParseShard(s)
	}
	i, n, ok, err := sweep.ShardFromEnv(c.Int("shards"))
	if err != nil || !ok {
		return 0, 1, err
	}
	return i, n, nil
}

// sweepConv is the convolution path of a sweep's workers: --conv (or
// QMUL_CONV) when given, else the sweep file's conv key, else auto.
func sweepConv(c *cli.Context, cfg *sweep.Config) string {
	if c.IsSet("conv") || cfg.Conv == "" {
		return c.String("conv")
	}
	return cfg.Conv
}

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "merge a results directory into results.csv, results.jsonl, report.md and plots",
		ArgsUsage: "DIR",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "report only the cells and searches this sweep file asks for"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("report takes one argument: the results directory")
			}
			dir := c.Args().First()
			var cfg *sweep.Config
			if path := c.String("config"); path != "" {
				var err error
				if cfg, err = sweep.Load(path); err != nil {
					return err
				}
			}
			skipped, err := sweep.ReportConfig(dir, cfg)
			for _, c := range skipped.Corrupt {
				fmt.Fprintf(os.Stderr, "qmulgpu: report: skipped damaged cell %s\n", c)
			}
			if err != nil {
				return err
			}
			fmt.Printf("wrote %s/report.md, results.csv, results.jsonl and plots\n", dir)
			return nil
		},
	}
}
