package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var built struct {
	once sync.Once
	bin  string
	err  error
}

// buildCLI builds the binary once per test run.
func buildCLI(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "qmulgpu-cli")
		if err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(dir, "qmulgpu")
		if out, err := exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.bin != "" {
		os.RemoveAll(filepath.Dir(built.bin))
	}
	os.Exit(code)
}

// TestBadInputIsOneLineAndNonZero runs the CLI on bad input: each must end
// with a non-zero status and exactly one line on stderr naming the
// problem, and leave no output behind.
func TestBadInputIsOneLineAndNonZero(t *testing.T) {
	bin := buildCLI(t)
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.safetensors")
	os.WriteFile(corrupt, []byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}"), 0o644)
	truncated := filepath.Join(dir, "truncated.safetensors")
	os.WriteFile(truncated, []byte{1, 2, 3}, 0o644)
	out := filepath.Join(dir, "out")
	base := []string{"train", "--dataset", "fashion-mnist", "--model", "smallcnn", "--out", out}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"train", "--dataset", "fashion-mnist", "--model", "resnet50", "--out", out}, "unknown model"},
		{[]string{"train", "--dataset", "imagenet", "--model", "smallcnn", "--out", out}, "unknown data set"},
		{append(append([]string{}, base...), "--epochs", "-1"), "epochs -1"},
		{append(append([]string{}, base...), "--batch", "0"), "batch 0"},
		{append(append([]string{}, base...), "--lr", "NaN"), "learning rate NaN"},
		{append(append([]string{}, base...), "--quant", "lsq", "--wbits", "9"), "bits 9"},
		{append(append([]string{}, base...), "--quant", "fancy"), "unknown quantization scheme"},
		{append(append([]string{}, base...), "--wbits", "x"), "invalid value"},
		{append(append([]string{}, base...), "--data", filepath.Join(dir, "nowhere")), "fashion-mnist"},
		{[]string{"eval", "--checkpoint", filepath.Join(dir, "missing.safetensors")}, "no such file"},
		{[]string{"eval", "--checkpoint", corrupt}, "safetensors"},
		{[]string{"eval", "--checkpoint", truncated}, "safetensors"},
		{[]string{"unlearn", "--checkpoint", corrupt, "--method", "qmul", "--forget", "random:10", "--out", out}, "safetensors"},
		{[]string{"unlearn", "--checkpoint", corrupt, "--method", "qmul", "--forget", "random:zero", "--out", out}, "random:zero"},
		{[]string{"unlearn", "--checkpoint", corrupt, "--method", "sl", "--agr", "epoch", "--forget", "random:10", "--out", out}, "--agr is not a parameter of sl"},
		{[]string{"unlearn", "--checkpoint", corrupt, "--method", "ft", "--agr", "step", "--forget", "random:10", "--out", out}, "--agr is not a parameter of ft"},
		{[]string{"unlearn", "--checkpoint", corrupt, "--method", "qmul", "--bound", "0.1", "--forget", "random:10", "--out", out}, "--bound is not a parameter of qmul"},
		{[]string{"unlearn", "--checkpoint", corrupt, "--method", "ssd", "--lr", "0.1", "--forget", "random:10", "--out", out}, "--lr is not a parameter of ssd (it does not train)"},
		{[]string{"unlearn", "--checkpoint", corrupt, "--method", "rl", "--schedule", "weekly", "--forget", "random:10", "--out", out}, "--schedule weekly: want sequential or joint"},
		{[]string{"sweep", "--config", filepath.Join(dir, "none.yaml"), "--out", out}, "none.yaml"},
		{[]string{"bench", "--model", "smallcnn", "--batch", "0"}, "batch 0"},
		{[]string{"train", "--device", "tpu", "--dataset", "fashion-mnist", "--model", "smallcnn", "--out", out}, "--device"},
		{append(append([]string{}, base...), "--device", "cpu", "--conv", "fft"), "--conv \"fft\": want auto, cudnn, im2col"},
		{append(append([]string{}, base...), "--device", "cpu", "--conv", "cudnn"), "--conv cudnn: the cpu backend has no cuDNN"},
	}
	for _, tc := range cases {
		cmd := exec.Command(bin, tc.args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err == nil {
			t.Errorf("%v: exit status 0", tc.args)
			continue
		}
		msg := strings.TrimRight(stderr.String(), "\n")
		if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, tc.want) {
			t.Errorf("%v: stderr %q, want one line containing %q", tc.args, msg, tc.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		entries, _ := os.ReadDir(out)
		if len(entries) > 0 {
			t.Errorf("failed runs left files in %s: %v", out, entries)
		}
	}
}
