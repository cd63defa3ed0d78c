package qat

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
)

// TestOpenCraftedMetadataAllocatesLittle opens files whose model metadata
// declares far more than their tensors hold, and measures what opening
// allocated: about the file, not the model the metadata describes (a
// billion classes would take terabytes; the in-bounds resnet18 with 10⁵
// classes, 200 MB).
func TestOpenCraftedMetadataAllocatesLittle(t *testing.T) {
	b := cpu.New(1)
	m, err := models.New(b, engine.Float32, models.Config{Arch: "smallcnn", Classes: 10, H: 28, W: 28, C: 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	f, err := checkpoint.Encode(b, m, checkpoint.Contents{Meta: map[string]string{MetaKey: Config{Scheme: "none"}.Meta()}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "crafted.safetensors")
	for _, meta := range []string{
		`{"arch":"smallcnn","classes":1000000000,"h":28,"w":28,"c":1}`,
		`{"arch":"smallcnn","classes":10,"h":100000,"w":100000,"c":1}`,
		`{"arch":"resnet18","classes":100000,"h":4096,"w":4096,"c":64}`,
		`{"arch":"mobilenetv2","classes":10,"h":32,"w":32,"c":1,"width":4}`,
	} {
		f.Metadata[checkpoint.KeyModel] = meta
		if err := safetensors.WriteFile(path, f); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Open(path, b, Config{})
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "metadata") {
			t.Fatalf("%s: error %v, want one about the metadata", meta, err)
		}
		const limit = 16 << 20 // the file is 0.6 MB
		if got := after.TotalAlloc - before.TotalAlloc; got > limit {
			t.Errorf("%s: opening allocated %d bytes (limit %d)", meta, got, limit)
		}
	}
}
