// Command qmulgpu trains quantized CNNs and makes them forget: Q-MUL and the
// standard unlearning baselines, with the standard evaluation, on CPUs and
// CUDA GPUs. Run `qmulgpu help` for the commands.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	checkpoint.Version = version
	app := &cli.App{
		Name:    "qmulgpu",
		Usage:   "machine unlearning for quantized neural networks (Q-MUL and baselines)",
		Version: version,
		Commands: []*cli.Command{
			versionCommand(), devicesCommand(), trainCommand(), unlearnCommand(), evalCommand(), sweepCommand(), reportCommand(), benchCommand(), exportCommand(), importCommand(), demoCommand(),
		},
		HideVersion:     false,
		OnUsageError:    usageError,
		ExitErrHandler:  func(*cli.Context, error) {},
		CommandNotFound: func(c *cli.Context, name string) { fail(fmt.Errorf("unknown command %q (see qmulgpu help)", name)) },
	}
	for _, c := range app.Commands {
		c.OnUsageError = usageError
	}
	if err := app.Run(os.Args); err != nil {
		fail(err)
	}
}

// usageError turns flag-parsing errors into one line.
func usageError(_ *cli.Context, err error, _ bool) error {
	return fmt.Errorf("%v (see --help)", err)
}

// fail prints one line and exits non-zero.
func fail(err error) {
	msg := err.Error()
	var ec cli.ExitCoder
	code := 1
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	fmt.Fprintln(os.Stderr, "qmulgpu: "+strings.ReplaceAll(msg, "\n", "; "))
	os.Exit(code)
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(c *cli.Context) error {
			fmt.Println("qmulgpu", version)
			return nil
		},
	}
}
