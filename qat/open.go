package qat

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
)

// Opened is a checkpoint opened by Open or OpenForInference: its model,
// with the quantizers its metadata describes and its weights restored.
type Opened struct {
	Path  string
	Model *models.Model
	// File is the parsed checkpoint (its Metadata says how it was made).
	File  *safetensors.File
	Quant Config
	// Backend is where Model lives: the requested one, or the CPU for an
	// integer export.
	Backend engine.Backend
	// Integer tells an integer export (inference only) from a
	// quantization-aware trained checkpoint.
	Integer bool
}

// Open is the one way commands open a quantization-aware trained
// checkpoint: it reads and checks the file (checkpoint.Read: metadata
// within bounds and matching the tensors, every value finite and in its
// domain) before building anything, checks that want (when its scheme is
// set) agrees with the checkpoint's quantization, builds the model on b,
// attaches its quantizers and restores its weights.
func Open(path string, b engine.Backend, want Config) (*Opened, error) {
	o, err := read(path, want)
	if err != nil {
		return nil, err
	}
	if o.Integer {
		return nil, fmt.Errorf("checkpoint %s holds integer weights for inference only (qmulgpu export); use the checkpoint it was exported from", path)
	}
	return o, o.build(b)
}

// OpenForInference is Open that also accepts an integer export, which
// runs on the CPU whatever b is (notify, when set, is told so).
func OpenForInference(path string, b engine.Backend, want Config, notify func(string)) (*Opened, error) {
	o, err := read(path, want)
	if err != nil {
		return nil, err
	}
	if !o.Integer {
		return o, o.build(b)
	}
	cb, ok := b.(*cpu.Backend)
	if !ok {
		if notify != nil {
			notify("integer inference runs on the CPU")
		}
		cb = cpu.New(0)
	}
	if o.Model, err = LoadInt(o.File, cb); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	o.Backend = cb
	return o, nil
}

// read checks the file and its quantization against want.
func read(path string, want Config) (*Opened, error) {
	f, _, err := checkpoint.Read(path)
	if err != nil {
		return nil, err
	}
	q, err := FromMeta(f.Metadata)
	if err == nil {
		err = want.Contradicts(q)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return &Opened{Path: path, File: f, Quant: q, Integer: f.Metadata[checkpoint.KeyFormat] == checkpoint.FormatInt}, nil
}

// build makes the float model on b and restores its weights.
func (o *Opened) build(b engine.Backend) error {
	m, err := o.Rebuild(b)
	if err != nil {
		return err
	}
	o.Model, o.Backend = m, b
	return nil
}

// Rebuild makes another copy of the checkpoint's model on b (a method that
// needs the original model beside the one it changes uses it).
func (o *Opened) Rebuild(b engine.Backend) (*models.Model, error) {
	cfg, err := checkpoint.ModelConfig(o.File)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", o.Path, err)
	}
	m, err := models.New(b, engine.Float32, cfg, 0)
	if err == nil {
		err = Apply(b, m, o.Quant)
	}
	if err == nil {
		_, err = checkpoint.Restore(o.File, b, m)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", o.Path, err)
	}
	return m, nil
}
