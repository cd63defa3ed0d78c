package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
	"github.com/qmulgpu/qmulgpu/qat"
)

// writeCheckpoint writes a Fashion-MNIST-shaped smallcnn checkpoint with
// LSQ W4A4 quantizers (steps initialised) as `qmulgpu train` would, after
// edit changes it.
func writeCheckpoint(t *testing.T, path string, edit func(f *safetensors.File)) {
	t.Helper()
	b := cpu.New(1)
	mc := models.Config{Arch: "smallcnn", Classes: 10, H: 28, W: 28, C: 1}
	m, err := models.New(b, engine.Float32, mc, 1)
	if err != nil {
		t.Fatal(err)
	}
	q := qat.Config{Scheme: "lsq", WBits: 4, ABits: 4, Float: qat.DefaultFloat()}
	if err := qat.Apply(b, m, q); err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{"dataset": "fashion-mnist", "val_frac": "0.1", "split_seed": "1", qat.MetaKey: q.Meta()}
	f, err := checkpoint.Encode(b, m, checkpoint.Contents{Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Tensors {
		tn := &f.Tensors[i]
		switch {
		case strings.HasSuffix(tn.Name, "_fn.initialized"):
			tn.Data = safetensors.FromInt64s([]int64{1})
		case strings.HasSuffix(tn.Name, "_fn.s"):
			tn.Data = safetensors.FromFloat32s([]float32{0.05})
		}
	}
	if edit != nil {
		edit(f)
	}
	if err := safetensors.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
}

// setValue sets element 0 of a float tensor.
func setValue(name string, v float32) func(*safetensors.File) {
	return func(f *safetensors.File) {
		tn, _ := f.Get(name)
		binary.LittleEndian.PutUint32(tn.Data, math.Float32bits(v))
	}
}

func setModel(json string) func(*safetensors.File) {
	return func(f *safetensors.File) { f.Metadata[checkpoint.KeyModel] = json }
}

// looksComplete lists the files under dir that a finished run or an
// export would leave.
func looksComplete(dir string) []string {
	var found []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".safetensors") || strings.HasSuffix(path, ".json")) {
			found = append(found, path)
		}
		return nil
	})
	return found
}

// TestHostileInputs runs the CLI on hostile checkpoints and arguments:
// each must exit with status 1 and exactly one line on stderr, without a
// panic, within a memory limit, and leave nothing in the output place
// that looks like a finished run or export. None of them reads data.
func TestHostileInputs(t *testing.T) {
	bin := buildCLI(t)
	in := t.TempDir()
	ckpt := func(name string, edit func(*safetensors.File)) string {
		p := filepath.Join(in, name+".safetensors")
		writeCheckpoint(t, p, edit)
		return p
	}
	good := ckpt("good", nil)
	hostile := map[string]string{
		"a billion classes":  ckpt("classes", setModel(`{"arch":"smallcnn","classes":1000000000,"h":28,"w":28,"c":1}`)),
		"100000-pixel sides": ckpt("sides", setModel(`{"arch":"smallcnn","classes":10,"h":100000,"w":100000,"c":1}`)),
		"NaN weights":        ckpt("nan", setValue("fc.weight", float32(math.NaN()))),
		"infinite weights":   ckpt("inf", setValue("conv2.weight", float32(math.Inf(1)))),
		"zero LSQ step":      ckpt("step", setValue("conv2.quan_w_fn.s", 0)),
		"negative variance":  ckpt("var", setValue("bn3.running_var", -1)),
	}
	wants := map[string]string{
		"a billion classes": "1000000000 classes", "100000-pixel sides": "too large", "NaN weights": "NaN",
		"infinite weights": "+Inf", "zero LSQ step": "LSQ step", "negative variance": "variance",
	}
	type tc struct {
		name string
		args []string
		want string
	}
	var cases []tc
	for what, p := range hostile {
		out := filepath.Join(t.TempDir(), "out")
		cases = append(cases,
			tc{"eval: " + what, []string{"eval", "--checkpoint", p}, wants[what]},
			tc{"unlearn: " + what, []string{"unlearn", "--checkpoint", p, "--method", "ft", "--forget", "random:10", "--out", out}, wants[what]},
			tc{"export: " + what, []string{"export", "--checkpoint", p, "--out", filepath.Join(out, "int.safetensors")}, wants[what]},
		)
	}
	uninit := ckpt("uninit", func(f *safetensors.File) {
		setValue("conv2.quan_w_fn.s", 0)(f)
		tn, _ := f.Get("conv2.quan_w_fn.initialized")
		tn.Data = safetensors.FromInt64s([]int64{0})
	})
	cases = append(cases, tc{"export: an LSQ step never initialised", []string{"export", "--checkpoint", uninit, "--out", filepath.Join(t.TempDir(), "int.safetensors")}, "must not be zero"})
	link := filepath.Join(in, "link.safetensors")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	cases = append(cases,
		tc{"export onto itself", []string{"export", "--checkpoint", good, "--out", good}, "is the checkpoint itself"},
		tc{"export onto itself by a relative path", []string{"export", "--checkpoint", good, "--out", "./good.safetensors"}, "is the checkpoint itself"},
		tc{"export onto itself through a symlink", []string{"export", "--checkpoint", good, "--out", link}, "is the checkpoint itself"},
		tc{"eval: bad flag", []string{"eval", "--checkpoint", good, "--batch", "zero"}, "invalid value"},
		tc{"eval: batch 0", []string{"eval", "--checkpoint", good, "--batch", "0"}, "batch 0"},
		tc{"unlearn: bad forget spec", []string{"unlearn", "--checkpoint", good, "--method", "ft", "--forget", "class:ten", "--out", filepath.Join(t.TempDir(), "o")}, "class:ten"},
		tc{"unlearn: unknown method", []string{"unlearn", "--checkpoint", good, "--method", "forgetful", "--forget", "random:10", "--out", filepath.Join(t.TempDir(), "o")}, "forgetful"},
	)
	// Run folders: a finished one (unlearn without --force), a stopped
	// one (train without --resume or --force), and one a failed unlearn
	// must not leave behind.
	finished := filepath.Join(t.TempDir(), "finished")
	writeFiles(t, finished, "model.safetensors", "metrics.json")
	stopped := filepath.Join(t.TempDir(), "stopped")
	writeFiles(t, filepath.Join(filepath.Dir(stopped), ".stopped.partial"), "last.safetensors")
	fresh := filepath.Join(t.TempDir(), "fresh")
	cases = append(cases,
		tc{"unlearn: a finished --out", []string{"unlearn", "--checkpoint", good, "--method", "ft", "--forget", "random:10", "--out", finished}, "already holds a finished run"},
		tc{"train: a stopped run for --out", []string{"train", "--dataset", "fashion-mnist", "--model", "smallcnn", "--out", stopped}, "--resume"},
		tc{"train: --resume with nothing to resume", []string{"train", "--dataset", "fashion-mnist", "--model", "smallcnn", "--out", fresh, "--resume"}, "nothing to resume"},
		tc{"unlearn: data not found", []string{"unlearn", "--checkpoint", good, "--method", "ft", "--forget", "random:10", "--data", filepath.Join(in, "nowhere"), "--out", fresh}, "fashion-mnist"},
	)
	before, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A 2 GiB address-space limit: the billion-class model would
			// need terabytes.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", `ulimit -v 2097152 && exec "$0" "$@"`, bin}, c.args...)...)
			cmd.Dir = in
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			msg := strings.TrimRight(stderr.String(), "\n")
			if code := cmd.ProcessState.ExitCode(); code != 1 {
				t.Errorf("exit status %d (%v), want 1; stderr %q", code, err, msg)
			}
			if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, c.want) || strings.Contains(msg, "panic") || strings.Contains(msg, "goroutine") {
				t.Errorf("stderr %q, want one line containing %q", msg, c.want)
			}
			for i, a := range c.args {
				if a != "--out" {
					continue
				}
				out := c.args[i+1]
				if out == finished {
					continue
				}
				if found := looksComplete(out); len(found) > 0 && out != good && out != link {
					t.Errorf("left %v", found)
				}
				if out == fresh {
					if _, err := os.Stat(out); err == nil {
						t.Errorf("left the folder %s", out)
					}
					if _, err := os.Stat(filepath.Join(filepath.Dir(out), ".fresh.partial")); err == nil {
						t.Errorf("left the staging folder of %s", out)
					}
				}
			}
		})
	}
	if after, _ := os.ReadFile(good); !bytes.Equal(before, after) {
		t.Errorf("%s changed", good)
	}
}

// writeFiles creates empty files in dir.
func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
