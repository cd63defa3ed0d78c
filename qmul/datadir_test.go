package qmul

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/optim"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// writeFolderSet writes a two-class image folder data set of 16x16 PNGs.
func writeFolderSet(t *testing.T, root string) {
	t.Helper()
	for _, split := range []string{"train", "test"} {
		for c, name := range []string{"dark", "light"} {
			dir := filepath.Join(root, split, name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := range 12 {
				img := image.NewGray(image.Rect(0, 0, 16, 16))
				for p := range img.Pix {
					img.Pix[p] = uint8(40 + 150*c + (p*7+i*13)%30)
				}
				var buf bytes.Buffer
				png.Encode(&buf, img)
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d.png", i)), buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestDataFoundThroughQMULDataIsRecorded: a data set found through
// $QMUL_DATA is recorded, as an absolute path, in the original's
// metrics.json and checkpoint, so that unlearning finds it without the
// variable.
func TestDataFoundThroughQMULDataIsRecorded(t *testing.T) {
	root := t.TempDir()
	writeFolderSet(t, filepath.Join(root, "folder"))
	want := filepath.Join(root, "folder")
	t.Setenv("QMUL_DATA", root)
	out := t.TempDir()
	j := &train.Job{
		Data:   train.DataSpec{Dataset: "folder", SplitSeed: 1, Size: 16},
		Model:  models.Config{Arch: "smallcnn"},
		Recipe: train.Recipe{Epochs: 1, Batch: 8, Momentum: 0.9, Seed: 1, Schedule: optim.Schedule{Kind: "constant", Base: 0.01, Epochs: 1}},
		Out:    filepath.Join(out, "original"), Backend: cpu.New(1), Command: "test",
	}
	if _, err := j.Run(); err != nil {
		t.Fatal(err)
	}
	recorded := func(path string) string {
		t.Helper()
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Data train.DataSpec `json:"data"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m.Data.Dir
	}
	if got := recorded(filepath.Join(j.Out, train.MetricsFile)); got != want {
		t.Errorf("metrics.json records data_dir %q, want %q", got, want)
	}
	f, _, err := checkpoint.Read(filepath.Join(j.Out, train.ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	o, err := ReadOrigin(f.Metadata, "")
	if err != nil {
		t.Fatal(err)
	}
	if o.Data.Dir != want {
		t.Errorf("the checkpoint records data_dir %q, want %q", o.Data.Dir, want)
	}

	// Without $QMUL_DATA, unlearning finds the data where training did.
	t.Setenv("QMUL_DATA", "")
	u := &Job{Checkpoint: filepath.Join(j.Out, train.ModelFile), Method: "ft", Forget: "random:4",
		Hyper: Hyper{Epochs: 1, LR: 0.01, Batch: 8, Momentum: 0.9, Seed: 1, Params: Params{"lr-schedule": "constant"}},
		Out:   filepath.Join(out, "ft"), Backend: cpu.New(1), Command: "test"}
	if _, err := u.Run(); err != nil {
		t.Fatalf("unlearn without $QMUL_DATA: %v", err)
	}
	if got := recorded(filepath.Join(u.Out, train.MetricsFile)); got != want {
		t.Errorf("the unlearning run records data_dir %q, want %q", got, want)
	}
}
