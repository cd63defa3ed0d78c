// Package torchimport reads PyTorch checkpoints (torch.save's zip and
// legacy formats) through a restricted unpickler that rebuilds only tensors
// and dicts, maps their state_dict onto a qmulgpu model, and writes it as a
// qmulgpu checkpoint.
package torchimport

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
)

// Metadata keys an imported checkpoint carries besides the usual ones.
const (
	KeyImportedFrom = "imported_from" // the source file
	KeyTorchFormat  = "torch_format"  // FormatZip or FormatLegacy
)

// Job is one import as `qmulgpu import` does it.
type Job struct {
	// Source is the PyTorch checkpoint; Out the qmulgpu checkpoint to
	// write, which must not exist unless Force is set.
	Source, Out string
	Force       bool
	// Model gives the architecture with the data set's shape; it is called
	// once the file has been read, so that a bad file is reported first.
	Model func() (models.Config, error)
	// Prepare attaches the quantizers the file's model was trained with.
	Prepare func(*models.Model) error
	// Norm is the data pipeline's normalisation for the data set.
	Norm Normalization
	// Meta is written into the checkpoint (data set, split, quantizer
	// configuration, command line).
	Meta map[string]string
}

// Run reads, maps and writes. The checkpoint it writes passes the checks
// of loading one (checkpoint.Check) before it is written; on any error
// nothing is written and no directory is left behind.
func (j *Job) Run(b engine.Backend) (*Report, error) {
	if !j.Force {
		if _, err := os.Stat(j.Out); err == nil {
			return nil, fmt.Errorf("%s exists (use --force to overwrite it)", j.Out)
		}
	}
	c, err := Read(j.Source)
	if err != nil {
		return nil, err
	}
	cfg, err := j.Model()
	if err != nil {
		return nil, err
	}
	m, err := models.New(b, engine.Float32, cfg, 0)
	if err != nil {
		return nil, err
	}
	if j.Prepare != nil {
		if err := j.Prepare(m); err != nil {
			return nil, err
		}
	}
	r, err := Load(c, b, m, j.Norm)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", j.Source, err)
	}
	meta := map[string]string{KeyImportedFrom: j.Source, KeyTorchFormat: c.Format}
	maps.Copy(meta, j.Meta)
	f, err := checkpoint.Encode(b, m, checkpoint.Contents{Meta: meta})
	if err != nil {
		return nil, err
	}
	if _, err := checkpoint.Check(f); err != nil {
		return nil, fmt.Errorf("%s: the imported model would not load: %w", j.Source, err)
	}
	return r, write(j.Out, f)
}

// write writes f to path, creating its directory; if the write fails, the
// directories it created are removed again.
func write(path string, f *safetensors.File) error {
	var created []string
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		if _, err := os.Lstat(dir); err == nil || dir == filepath.Dir(dir) {
			break
		}
		created = append(created, dir)
	}
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		err = safetensors.WriteFile(path, f)
	}
	if err != nil {
		for _, dir := range created {
			os.Remove(dir)
		}
	}
	return err
}
