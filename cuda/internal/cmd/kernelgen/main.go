// Command kernelgen writes the typed Go launchers of kernels/*.cu
// (cuda/X_kernels.go) and the emulated device's kernel tables
// (cuda/emu/kernels.inc, cuda/emu/fixtures/kernels.inc), and removes
// launchers whose kernel file is gone. Package cuda runs it:
//
//	go generate -tags cuda ./cuda
//
// Files whose contents are already right are left untouched, so that
// their times do not trigger rebuilds.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/qmulgpu/qmulgpu/cuda/internal/kernelgen"
	"github.com/qmulgpu/qmulgpu/engine/atomicfile"
)

func main() {
	root := flag.String("root", ".", "the repository root")
	flag.Parse()
	if err := run(*root); err != nil {
		fmt.Fprintln(os.Stderr, "kernelgen:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	outs, err := kernelgen.Generate(root)
	if err != nil {
		return err
	}
	for _, o := range outs {
		file := filepath.Join(root, o.Path)
		if old, err := os.ReadFile(file); err == nil && bytes.Equal(old, o.Data) {
			continue
		}
		if err := atomicfile.Write(file, func(w io.Writer) error { _, err := w.Write(o.Data); return err }); err != nil {
			return err
		}
		fmt.Println("kernelgen: wrote", o.Path)
	}
	old, err := kernelgen.Obsolete(root, outs)
	if err != nil {
		return err
	}
	for _, p := range old {
		if err := os.Remove(filepath.Join(root, p)); err != nil {
			return err
		}
		fmt.Println("kernelgen: removed", p)
	}
	return nil
}
