package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTotalLossStopsTheRun trains a small original and unlearns it with
// ft at lr 50, which throws the model to chance in its first steps, where
// it stays (every epoch's loss about ln 10, so the epoch guard never
// fires). The run must end with a non-zero status, one line on stderr that
// names --allow-collapse, and no run folder; with --allow-collapse it is
// kept.
func TestTotalLossStopsTheRun(t *testing.T) {
	needFashion(t)
	bin := buildCLI(t)
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig")
	if b, err := exec.Command(bin, trainArgs(orig, "2", "1", "--quiet", "--val-frac", "0", "--lr", "0.02")...).CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, b)
	}
	unlearn := func(out string, extra ...string) (error, string) {
		args := append([]string{"unlearn", "--checkpoint", filepath.Join(orig, "model.safetensors"), "--method", "ft", "--lr", "50",
			"--forget", "random:10%", "--epochs", "2", "--batch", "100", "--threads", "1", "--quiet", "--out", out}, extra...)
		cmd := exec.Command(bin, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		return cmd.Run(), strings.TrimRight(stderr.String(), "\n")
	}
	out := filepath.Join(dir, "ft")
	err, msg := unlearn(out)
	if err == nil {
		t.Fatal("unlearn --lr 50 exited 0")
	}
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "--allow-collapse") || !strings.Contains(msg, "retain accuracy") {
		t.Errorf("stderr %q, want one line naming the retain accuracy and --allow-collapse", msg)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a collapsed run left %s behind", out)
	}
	kept := filepath.Join(dir, "ft-kept")
	if err, msg := unlearn(kept, "--allow-collapse"); err != nil {
		t.Fatalf("with --allow-collapse: %v: %s", err, msg)
	}
	if _, err := os.Stat(filepath.Join(kept, "metrics.json")); err != nil {
		t.Errorf("with --allow-collapse the run is not kept: %v", err)
	}
}
