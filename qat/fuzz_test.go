package qat

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
	"github.com/qmulgpu/qmulgpu/internal/fuzzcheck"
)

// fuzzBases are the files FuzzOpen changes: the smallest smallcnn with LSQ
// W4A4 quantizers (steps initialised) as trained, and its integer export.
var fuzzBases = sync.OnceValue(func() [2]*safetensors.File {
	b := cpu.New(1)
	m, err := models.New(b, engine.Float32, models.Config{Arch: "smallcnn", Classes: 2, H: 8, W: 8, C: 1}, 1)
	if err != nil {
		panic(err)
	}
	q := Config{Scheme: "lsq", WBits: 4, ABits: 4, Float: DefaultFloat()}
	if err := Apply(b, m, q); err != nil {
		panic(err)
	}
	for _, p := range m.Params() {
		if strings.HasSuffix(p.Name, "_fn.s") {
			b.Fill(p.Value, 0.05)
		}
	}
	for _, s := range m.States() {
		if s.Count != nil && strings.HasSuffix(s.Name, "_fn.initialized") {
			*s.Count = 1
		}
	}
	meta := map[string]string{MetaKey: q.Meta(), "dataset": "fashion-mnist"}
	float, err := checkpoint.Encode(b, m, checkpoint.Contents{Meta: meta})
	if err != nil {
		panic(err)
	}
	integer, err := Export(b, m, q, meta)
	if err != nil {
		panic(err)
	}
	return [2]*safetensors.File{float, integer}
})

// Memory opening may use: the fuzz model's tensors (380 kB) a few times
// over, and the metadata's JSON decoded.
const (
	openAllocBase    = 64 << 20
	openAllocPerByte = 64
)

// FuzzOpen opens checkpoints with any metadata (format, model, quant,
// int_layers; empty means absent) and any bytes over the start of one
// tensor, through the path every command takes (qat.OpenForInference):
// no panic, memory bounded by the file, one-line errors in a user's words;
// a float checkpoint that opens survives a round trip (its model encodes
// to the same tensors).
func FuzzOpen(f *testing.F) {
	for i, base := range fuzzBases() {
		m := base.Metadata
		f.Add(i == 1, m[checkpoint.KeyFormat], m[checkpoint.KeyModel], m[MetaKey], m[metaLayers], uint8(0), []byte{})
	}
	float := fuzzBases()[0].Metadata
	f.Add(false, checkpoint.FormatModel, `{"arch":"resnet18","classes":100000,"h":4096,"w":4096,"c":64}`, float[MetaKey], "", uint8(3), []byte{0, 0, 0xc0, 0x7f})
	f.Add(false, checkpoint.FormatModel, `{"arch":"mobilenetv2","classes":2,"h":8,"w":8,"c":1,"width":4}`, `{"scheme":"pact","wbits":2,"abits":9}`, "", uint8(9), []byte{0, 0, 0x80, 0xbf})
	f.Add(false, checkpoint.FormatResume, float[checkpoint.KeyModel], "", "", uint8(200), []byte{0xff, 0xff, 0xff, 0xff})
	f.Add(true, checkpoint.FormatInt, float[checkpoint.KeyModel], float[MetaKey], `[{"name":"conv2","bits":9}]`, uint8(1), []byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, integer bool, format, model, quant, layers string, target uint8, values []byte) {
		base := fuzzBases()[0]
		if integer {
			base = fuzzBases()[1]
		}
		file := &safetensors.File{Metadata: map[string]string{}, Tensors: append([]safetensors.Tensor(nil), base.Tensors...)}
		for k, v := range map[string]string{checkpoint.KeyFormat: format, checkpoint.KeyModel: model, MetaKey: quant, metaLayers: layers} {
			if v != "" {
				file.Metadata[k] = v
			}
		}
		tn := &file.Tensors[int(target)%len(file.Tensors)]
		tn.Data = bytes.Clone(tn.Data)
		copy(tn.Data, values)
		var raw bytes.Buffer
		if err := safetensors.Encode(&raw, file); err != nil {
			return // metadata the format cannot hold (not UTF-8)
		}
		path := filepath.Join(dir, "fuzz.safetensors")
		if err := os.WriteFile(path, raw.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		var o *Opened
		var err error
		fuzzcheck.Alloc(t, raw.Len(), openAllocBase, openAllocPerByte, func() { o, err = OpenForInference(path, cpu.New(1), Config{}, nil) })
		if err != nil {
			fuzzcheck.Message(t, errorPast(err, path))
			return
		}
		if !o.Integer {
			checkSameTensors(t, o, file)
		}
	})
}

// errorPast drops the "checkpoint PATH: " that names the file.
func errorPast(err error, path string) error {
	msg := err.Error()
	for _, prefix := range []string{"checkpoint " + path + ": ", "checkpoint: safetensors: " + path + ": "} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			return errors.New(rest)
		}
	}
	return err
}

// checkSameTensors encodes an opened model and compares its tensors with
// the file's.
func checkSameTensors(t *testing.T, o *Opened, file *safetensors.File) {
	again, err := checkpoint.Encode(o.Backend, o.Model, checkpoint.Contents{Meta: o.File.Metadata})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkpoint.Check(again); err != nil {
		t.Fatalf("the opened model, encoded again, does not pass the checks: %v", err)
	}
	for _, want := range file.Tensors {
		got, ok := again.Get(want.Name)
		if !ok && strings.HasPrefix(want.Name, "optimizer.") {
			continue
		}
		if !ok || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("tensor %q differs once opened and encoded again", want.Name)
		}
	}
}
