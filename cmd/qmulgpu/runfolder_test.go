package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
)

func needFashion(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("trains small models")
	}
	if _, err := data.Locate("fashion-mnist", ""); err != nil {
		t.Skipf("Fashion-MNIST not installed: %v", err)
	}
}

// trainArgs trains a smallcnn on a Fashion-MNIST subset with a seed.
func trainArgs(out, epochs, seed string, extra ...string) []string {
	return append([]string{"train", "--dataset", "fashion-mnist", "--model", "smallcnn", "--subset", "600", "--test-subset", "200",
		"--batch", "100", "--epochs", epochs, "--seed", seed, "--threads", "1", "--out", out}, extra...)
}

// runUntil starts the CLI, waits for a stderr line containing mark (which
// the process prints at a known phase of its run), sends sig, and returns
// the exit status and the whole stderr.
func runUntil(t *testing.T, bin string, args []string, mark string, sig syscall.Signal) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	sc := bufio.NewScanner(pipe)
	sent := false
	for sc.Scan() {
		all.WriteString(sc.Text() + "\n")
		if !sent && strings.Contains(sc.Text(), mark) {
			cmd.Process.Signal(sig)
			sent = true
		}
	}
	cmd.Wait()
	if !sent {
		t.Fatalf("%v: no line %q in\n%s", args, mark, all.String())
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal()), all.String()
	}
	return ws.ExitStatus(), all.String()
}

// snapshot maps a folder's files to their contents.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = b
	}
	return m
}

// wholeRun checks that dir holds exactly one finished training run of the
// given seed: every checkpoint and the results say that seed, and nothing
// to resume is left beside them.
func wholeRun(t *testing.T, dir, seed string) {
	t.Helper()
	files := snapshot(t, dir)
	for _, name := range []string{"model.safetensors", "metrics.json", "log.jsonl", "best.safetensors"} {
		if _, ok := files[name]; !ok {
			t.Errorf("%s: no %s (holds %v)", dir, name, keys(files))
		}
	}
	for name, b := range files {
		switch {
		case name == "metrics.json":
			var m struct {
				Recipe struct {
					Seed json.Number `json:"seed"`
				} `json:"recipe"`
			}
			if err := json.Unmarshal(b, &m); err != nil || m.Recipe.Seed.String() != seed {
				t.Errorf("%s: metrics.json of seed %q (%v), want %s", dir, m.Recipe.Seed, err, seed)
			}
		case strings.HasSuffix(name, ".safetensors"):
			f, err := safetensors.Parse(b)
			if err != nil || f.Metadata["seed"] != seed {
				t.Errorf("%s: %s of seed %q (%v), want %s", dir, name, f.Metadata["seed"], err, seed)
			}
			if name == "last.safetensors" {
				t.Errorf("%s: a finished run holds last.safetensors", dir)
			}
		case name != "log.jsonl":
			t.Errorf("%s: unexpected file %s", dir, name)
		}
	}
}

func keys(m map[string][]byte) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

// TestKillDuringForceLeavesOneRun replaces a finished run (seed 1) with
// `train --force` (seed 2) and kills the process with SIGKILL at several
// phases — during the first epoch, after it, after the last epoch (while
// the run is evaluated, saved and moved into place) — which the process
// announces on stderr: the folder must hold the whole old run, byte for
// byte, or the whole new one. (The steps of the final move are killed one
// by one in package rundir's tests.)
func TestKillDuringForceLeavesOneRun(t *testing.T) {
	needFashion(t)
	bin := buildCLI(t)
	out := filepath.Join(t.TempDir(), "run")
	if b, err := exec.Command(bin, trainArgs(out, "2", "1", "--quiet")...).CombinedOutput(); err != nil {
		t.Fatalf("first run: %v\n%s", err, b)
	}
	old := snapshot(t, out)
	for _, mark := range []string{"epoch 1/2 step 1/", "epoch 1/2:", "epoch 2/2:"} {
		code, stderr := runUntil(t, bin, trainArgs(out, "2", "2", "--force"), mark, syscall.SIGKILL)
		if code != 128+int(syscall.SIGKILL) && code != 0 {
			t.Fatalf("killed at %q: status %d\n%s", mark, code, stderr)
		}
		now := snapshot(t, out)
		if !equalFiles(now, old) {
			wholeRun(t, out, "2")
			return // the new run is in place: later kills would compare with it
		}
	}
	if b, err := exec.Command(bin, trainArgs(out, "2", "2", "--force", "--quiet")...).CombinedOutput(); err != nil {
		t.Fatalf("last run: %v\n%s", err, b)
	}
	wholeRun(t, out, "2")
	if _, err := os.Stat(filepath.Join(filepath.Dir(out), ".run.partial")); err == nil {
		t.Error("the staging folder is left after a finished run")
	}
}

func equalFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(b[k], v) {
			return false
		}
	}
	return true
}

// lastLine is the last line of text, and how many lines start with
// "qmulgpu:".
func lastLine(text string) (string, int) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "qmulgpu:") {
			n++
		}
	}
	return lines[len(lines)-1], n
}

// TestSignalsSayWhatIsKept stops train with SIGINT after its first epoch
// (three epochs remain, seconds against the signal's microseconds), checks
// the one line saying what was kept and how to resume, resumes, then stops
// an unlearning run with SIGTERM and checks that it leaves nothing; and
// that unlearn refuses a finished --out without --force.
func TestSignalsSayWhatIsKept(t *testing.T) {
	needFashion(t)
	bin := buildCLI(t)
	out := filepath.Join(t.TempDir(), "run")
	args := trainArgs(out, "4", "1")
	code, stderr := runUntil(t, bin, args, "epoch 1/4:", syscall.SIGINT)
	last, n := lastLine(stderr)
	if code != 130 || n != 1 || !strings.HasPrefix(last, "qmulgpu: stopped by SIGINT; epoch ") ||
		!strings.Contains(last, ".run.partial/last.safetensors") || !strings.Contains(last, "--resume") {
		t.Fatalf("status %d, stderr ending %q (%d lines from qmulgpu), want 130 and one line saying what is kept", code, last, n)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("the stopped run left %s", out)
	}
	if b, err := exec.Command(bin, append(args, "--resume", "--quiet")...).CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, b)
	}
	wholeRun(t, out, "1")

	ckpt := filepath.Join(out, "model.safetensors")
	uout := filepath.Join(t.TempDir(), "ft")
	uargs := []string{"unlearn", "--checkpoint", ckpt, "--method", "ft", "--forget", "random:50", "--threads", "1", "--out", uout}
	code, stderr = runUntil(t, bin, append(uargs, "--epochs", "30"), "epoch 1/30:", syscall.SIGTERM)
	last, n = lastLine(stderr)
	if code != 143 || n != 1 || !strings.HasPrefix(last, "qmulgpu: stopped by SIGTERM; ") || !strings.Contains(last, "nothing is kept") {
		t.Fatalf("status %d, stderr ending %q (%d lines from qmulgpu), want 143 and one line saying nothing is kept", code, last, n)
	}
	for _, p := range []string{uout, filepath.Join(filepath.Dir(uout), ".ft.partial")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("the stopped unlearning run left %s", p)
		}
	}
	uargs = append(uargs, "--epochs", "1", "--quiet")
	if b, err := exec.Command(bin, uargs...).CombinedOutput(); err != nil {
		t.Fatalf("unlearn: %v\n%s", err, b)
	}
	cmd := exec.Command(bin, uargs...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err == nil || !strings.Contains(errb.String(), "--force") {
		t.Errorf("unlearn into a finished --out: %v, %q", err, errb.String())
	}
	if b, err := exec.Command(bin, append(uargs, "--force")...).CombinedOutput(); err != nil {
		t.Fatalf("unlearn --force: %v\n%s", err, b)
	}
}
