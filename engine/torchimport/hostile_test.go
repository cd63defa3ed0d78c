package torchimport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/torchimport/torchtest"
	"github.com/qmulgpu/qmulgpu/qat"
)

// goWords are signs of a message written for Go programmers, not users.
var goWords = []string{"torchimport.", "interface {}", "[]uint8", "%!", "*pyDict", "pyTuple", "Go ", "runtime", "goroutine"}

// checkMessage fails unless msg is one line of at most limit bytes in a
// user's words.
func checkMessage(t *testing.T, msg string, limit int) {
	t.Helper()
	if strings.ContainsAny(msg, "\n\r") || len(msg) > limit {
		t.Errorf("message of %d bytes, want one line of at most %d: %.400q", len(msg), limit, msg)
	}
	for _, w := range goWords {
		if strings.Contains(msg, w) {
			t.Errorf("message %.300q contains %q", msg, w)
		}
	}
}

// TestHostileImports: every crafted file of torchtest.Hostile is refused by
// the import job with one line in a user's words naming what is wrong, and
// nothing is written: neither the checkpoint nor its directory.
func TestHostileImports(t *testing.T) {
	b := cpu.New(1)
	dir := t.TempDir()
	for i, h := range torchtest.Hostile() {
		t.Run(h.Name, func(t *testing.T) {
			src := filepath.Join(dir, "hostile.pth")
			if err := os.WriteFile(src, h.File, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out", string(rune('a'+i)), "model.safetensors")
			job := &Job{Source: src, Out: out,
				Model:   func() (models.Config, error) { return torchtest.SmallCNN, nil },
				Prepare: func(m *models.Model) error { return qat.Apply(b, m, torchtest.SmallCNNQ) },
				Norm:    Normalization{Mean: torchtest.FashionMean, Std: torchtest.FashionStd},
				Meta:    map[string]string{qat.MetaKey: torchtest.SmallCNNQ.Meta(), "dataset": "fashion-mnist"}}
			_, err := job.Run(b)
			if err == nil {
				t.Fatalf("imported")
			}
			msg := strings.TrimPrefix(err.Error(), src+": ")
			if !strings.Contains(msg, h.Want) {
				t.Errorf("error %.400q, want it to contain %q", msg, h.Want)
			}
			checkMessage(t, msg, maxMessage)
			if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
				t.Errorf("the import made %s", filepath.Join(dir, "out"))
			}
		})
	}
}

// TestGoodImport: the state_dict the hostile files are made from imports,
// in both formats, and the written checkpoint holds its values.
func TestGoodImport(t *testing.T) {
	b := cpu.New(1)
	dir := t.TempDir()
	for format, file := range map[string][]byte{
		FormatZip:    torchtest.ZipStateDict(torchtest.SmallCNNTensors()),
		FormatLegacy: torchtest.LegacyStateDict(torchtest.SmallCNNTensors()),
	} {
		src := filepath.Join(dir, format+".pth")
		if err := os.WriteFile(src, file, 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, format, "new", "model.safetensors")
		job := &Job{Source: src, Out: out,
			Model:   func() (models.Config, error) { return torchtest.SmallCNN, nil },
			Prepare: func(m *models.Model) error { return qat.Apply(b, m, torchtest.SmallCNNQ) },
			Meta:    map[string]string{qat.MetaKey: torchtest.SmallCNNQ.Meta(), "dataset": "fashion-mnist"}}
		r, err := job.Run(b)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if r.Format != format || r.Tensors != len(torchtest.SmallCNNTensors()) {
			t.Errorf("%s: report %+v", format, r)
		}
		if _, err := os.Stat(out); err != nil {
			t.Error(err)
		}
	}
}
