package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestSameCommandSameBytes runs `train` and then `unlearn` with several
// methods twice each, with the same command line and --threads 2, and
// requires the same model.safetensors byte for byte, as the README
// promises: randomness drawn from anything but the seed, or an order taken
// from a map, would break it. The second run of each pair has
// GOMAXPROCS=1, so its goroutines are scheduled differently; that alone
// cannot show a sum combined in the order its chunks finish (two chunks
// add up alike in either order), which TestChunkOrderDoesNotChangeTraining
// in engine/cpu checks deterministically.
func TestSameCommandSameBytes(t *testing.T) {
	needFashion(t)
	bin := buildCLI(t)
	dir := t.TempDir()
	// twice runs args, which write into out, twice: the first run's folder
	// is moved aside so that the second has the very same command line
	// (which the checkpoint records). It returns both model.safetensors.
	twice := func(out string, args ...string) (first, second []byte) {
		t.Helper()
		args = slices.Concat(args, []string{"--threads", "2", "--quiet", "--out", out})
		run := func(env ...string) []byte {
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), env...)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s", args, err, b)
			}
			b, err := os.ReadFile(filepath.Join(out, "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		first = run()
		if err := os.Rename(out, out+".first"); err != nil {
			t.Fatal(err)
		}
		return first, run("GOMAXPROCS=1")
	}
	original := filepath.Join(dir, "original")
	a, b := twice(original, "train", "--dataset", "fashion-mnist", "--model", "smallcnn", "--quant", "lsq", "--subset", "400",
		"--test-subset", "100", "--batch", "50", "--epochs", "1", "--seed", "3")
	if !bytes.Equal(a, b) {
		t.Fatal("two runs of the same train command wrote different checkpoints")
	}
	ckpt := filepath.Join(original, "model.safetensors")
	for _, method := range []string{"qmul", "salun", "scrub"} {
		a, b := twice(filepath.Join(dir, method), "unlearn", "--checkpoint", ckpt, "--method", method,
			"--forget", "random:10%", "--epochs", "1", "--batch", "32")
		if !bytes.Equal(a, b) {
			t.Errorf("two runs of the same unlearn --method %s command wrote different checkpoints", method)
		}
	}
}
