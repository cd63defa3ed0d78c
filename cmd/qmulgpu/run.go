package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/engine/train"
)

// runJob runs a command's job and prints its result; every command that
// computes (train, unlearn, eval, bench) ends in it. While run runs,
// SIGINT and SIGTERM end the process with one line (see onSignal): the
// signal, then what abandon says was kept (nil: a job that leaves nothing
// behind). With --json the result is printed as indented JSON, else as the
// line or lines text makes of it.
func runJob[R any](c *cli.Context, progress train.Progress, abandon func() string, run func() (R, error), text func(R) string) error {
	stop := onSignal(progress, abandon)
	res, err := run()
	stop()
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(res)
	}
	fmt.Println(text(res))
	return nil
}

// printJSON prints v as indented JSON.
func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
