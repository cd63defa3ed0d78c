package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/data"
)

// TestOutOfRangeFlagsAndSweepFiles: NaN in any float flag, a momentum of
// 1, absurd thread counts, subsets smaller than the class count and faulty
// sweep files each end with one line on stderr that names the problem in
// the user's terms, and a non-zero status.
func TestOutOfRangeFlagsAndSweepFiles(t *testing.T) {
	bin := buildCLI(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	train := []string{"train", "--dataset", "fashion-mnist", "--model", "smallcnn", "--epochs", "1", "--out", out}
	unlearn := []string{"unlearn", "--checkpoint", filepath.Join(dir, "missing.safetensors"), "--method", "salun", "--forget", "random:10", "--out", out}
	with := func(base []string, more ...string) []string { return append(append([]string{}, base...), more...) }
	sweepFile := filepath.Join(dir, "sweep.yaml")
	os.WriteFile(sweepFile, []byte("datasets: [fashion-mnist]\nmodels: [smallcnn]\noriginal: {epochs: 1, lr: 0.1}\nforget: [random:10]\nmethods:\n  - method: ft\n    lr: 0.01\n    subsett: 5\n"), 0o644)
	paramFile := filepath.Join(dir, "param.yaml")
	os.WriteFile(paramFile, []byte("datasets: [fashion-mnist]\nmodels: [smallcnn]\noriginal: {epochs: 1, lr: 0.1}\nforget: [random:10]\nmethods:\n  - {method: scrub, max_steps: two}\n"), 0o644)
	classFile := filepath.Join(dir, "class.yaml")
	os.WriteFile(classFile, []byte("datasets: [fashion-mnist]\nmodels: [smallcnn]\noriginal: {epochs: 1, lr: 0.1}\nforget: [\"class:42\"]\nmethods: [{method: ft}]\n"), 0o644)
	cases := []struct {
		args     []string
		want     string
		needData bool
	}{
		{with(train, "--momentum", "NaN"), "momentum NaN", false},
		{with(train, "--wd", "NaN"), "weight decay NaN", false},
		{with(train, "--lr-gamma", "NaN", "--schedule", "step", "--lr-step", "1"), "gamma NaN", false},
		{with(train, "--val-frac", "NaN"), "--val-frac NaN", false},
		{with(train, "--threads", "100000"), "--threads 100000", false},
		{with(train, "--model", "mobilenetv2", "--width", "NaN"), "width multiplier NaN", true},
		{with(train, "--subset", "5"), "--subset 5: fewer samples than the 10 classes", true},
		{with(unlearn, "--momentum", "1"), "--momentum 1 must be below 1", false},
		{with(unlearn, "--lr", "NaN"), "--lr NaN", false},
		{with(unlearn, "--wd", "NaN"), "--wd NaN", false},
		{with(unlearn, "--mask-ratio", "NaN"), "--mask-ratio NaN: want a finite number", false},
		{with(unlearn, "--mask-ratio", "1.5"), "--mask-ratio 1.5 must be in (0, 1]", false},
		{with(unlearn, "--bound", "NaN"), "--bound NaN", false},
		{with(unlearn, "--l1-weight", "-1"), "--l1-weight -1 must not be negative", false},
		{with(unlearn, "--lr-schedule", "weekly"), "--lr-schedule weekly: want constant or cosine or multistep", false},
		{with(unlearn, "--lr-milestones", "9,3"), "--lr-milestones 9,3 must be increasing epochs ≥ 1", false},
		{with(unlearn, "--kd-weight", "0.5"), "--kd-weight is not a parameter of salun (it is used by scrub)", false},
		{[]string{"sweep", "--config", paramFile, "--out", out}, `line 6: max_steps: --max-steps two: want a whole number`, false},
		{[]string{"sweep", "--config", sweepFile, "--out", out}, `line 8: unknown key "subsett" in a method entry`, false},
		{[]string{"sweep", "--config", classFile, "--out", out}, "class:42: fashion-mnist has classes 0 to 9", false},
	}
	_, dataErr := data.Locate("fashion-mnist", "")
	for _, tc := range cases {
		if tc.needData && dataErr != nil {
			continue
		}
		cmd := exec.Command(bin, tc.args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err == nil {
			t.Errorf("%v: exit status 0", tc.args)
			continue
		}
		msg := strings.TrimRight(stderr.String(), "\n")
		if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, tc.want) || strings.Contains(msg, "json:") {
			t.Errorf("%v: stderr %q, want one line containing %q", tc.args, msg, tc.want)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) > 0 {
		t.Errorf("refused runs left files in %s: %v", out, entries)
	}
}
