package rundir

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

var runFiles = []string{"model.safetensors", "metrics.json", "best.safetensors"}

// writeRun writes a run whose every file says which run it is.
func writeRun(t *testing.T, dir, which string, files ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(which), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// contents maps a folder's files to what they hold.
func contents(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		m[e.Name()] = string(b)
	}
	return m
}

// crashEnv tells the test binary, run as a child, to stage a new run over
// the target in $RUNDIR_TARGET and kill itself at the Commit step named.
const crashEnv = "RUNDIR_CRASH_AT"

func TestMain(m *testing.M) {
	if step := os.Getenv(crashEnv); step != "" {
		crashChild(step)
		os.Exit(3) // not reached when the step is met
	}
	os.Exit(m.Run())
}

func crashChild(step string) {
	target := os.Getenv("RUNDIR_TARGET")
	s, err := Begin(target, runFiles, false)
	if err != nil {
		os.Exit(2)
	}
	for _, f := range []string{"model.safetensors", "metrics.json"} {
		os.WriteFile(s.Path(f), []byte("new"), 0o644)
	}
	kill := func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	if step == "staged" {
		kill()
	}
	testHook = func(at string) {
		if at == step {
			kill()
		}
	}
	if err := s.Commit(); err != nil {
		os.Exit(2)
	}
	if step == "committed" {
		kill()
	}
}

// TestKillDuringCommitLeavesOneRun replaces an old run (model, metrics and
// best checkpoint, beside a file that is not part of the run) with a new
// one (model and metrics only), killing the process with SIGKILL at each
// step: the folder must then hold exactly the old run or exactly the new
// one, with the other file in both cases, and a fresh Begin must clear
// what the kill left.
func TestKillDuringCommitLeavesOneRun(t *testing.T) {
	old := map[string]string{"model.safetensors": "old", "metrics.json": "old", "best.safetensors": "old", "cell.json": "keep"}
	new := map[string]string{"model.safetensors": "new", "metrics.json": "new", "cell.json": "keep"}
	for _, tc := range []struct {
		step string
		want map[string]string
	}{
		{"staged", old},
		{"linked", old},
		{"exchanged", new},
		{"committed", new},
	} {
		t.Run(tc.step, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "run")
			writeRun(t, target, "old", "model.safetensors", "metrics.json", "best.safetensors")
			writeRun(t, target, "keep", "cell.json")
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), crashEnv+"="+tc.step, "RUNDIR_TARGET="+target)
			err := cmd.Run()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the child was not killed at %s: %v", tc.step, err)
			}
			if got := contents(t, target); !equal(got, tc.want) {
				t.Fatalf("after a kill at %s the folder holds %v, want %v", tc.step, got, tc.want)
			}
			s, err := Begin(target, runFiles, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := contents(t, s.Dir); len(got) != 0 {
				t.Errorf("a new stage starts with %v", got)
			}
		})
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestCommitIntoNewFolder(t *testing.T) {
	target := filepath.Join(t.TempDir(), "run")
	s, err := Begin(target, runFiles, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target); err == nil {
		t.Fatal("Begin created the target")
	}
	writeRun(t, s.Dir, "new", "model.safetensors")
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := contents(t, target); !equal(got, map[string]string{"model.safetensors": "new"}) {
		t.Errorf("target holds %v", got)
	}
	if _, err := os.Stat(s.Dir); err == nil {
		t.Error("the staging folder is left")
	}
}

func TestBeginRefusesSubfolders(t *testing.T) {
	target := t.TempDir()
	os.Mkdir(filepath.Join(target, "src"), 0o755)
	if _, err := Begin(target, runFiles, false); err == nil || !strings.Contains(err.Error(), "src") {
		t.Errorf("got %v, want a refusal naming src", err)
	}
}

func TestResumeKeepsStagedFiles(t *testing.T) {
	target := filepath.Join(t.TempDir(), "run")
	s, _ := Begin(target, runFiles, false)
	writeRun(t, s.Dir, "epoch 1", "last.safetensors")
	s, err := Begin(target, runFiles, true)
	if err != nil || !s.Has("last.safetensors") {
		t.Errorf("resume lost the staged checkpoint (%v)", err)
	}
	s, _ = Begin(target, runFiles, false)
	if s.Has("last.safetensors") {
		t.Error("starting over kept the staged checkpoint")
	}
}

func TestStagingPath(t *testing.T) {
	for in, want := range map[string]string{"out/run": "out/.run.partial", "run/": ".run.partial", "/a/b": "/a/.b.partial"} {
		if got := StagingPath(in); got != want {
			t.Errorf("StagingPath(%q) = %q, want %q", in, got, want)
		}
	}
}
