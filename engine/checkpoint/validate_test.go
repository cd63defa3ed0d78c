package checkpoint_test

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
	"github.com/qmulgpu/qmulgpu/qat"
)

// lsqFile encodes a smallcnn for 28×28×1 images and 10 classes with LSQ
// W4A4 quantizers on its body, steps initialised.
func lsqFile(t *testing.T) *safetensors.File {
	t.Helper()
	b := cpu.New(1)
	m, err := models.New(b, engine.Float32, models.Config{Arch: "smallcnn", Classes: 10, H: 28, W: 28, C: 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	q := qat.Config{Scheme: "lsq", WBits: 4, ABits: 4, Float: qat.DefaultFloat()}
	if err := qat.Apply(b, m, q); err != nil {
		t.Fatal(err)
	}
	f, err := checkpoint.Encode(b, m, checkpoint.Contents{Meta: map[string]string{qat.MetaKey: q.Meta()}})
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
	return f
}

func setFloat(t *testing.T, f *safetensors.File, name string, i int, v float32) {
	t.Helper()
	tn, ok := f.Get(name)
	if !ok {
		t.Fatalf("no tensor %q", name)
	}
	binary.LittleEndian.PutUint32(tn.Data[4*i:], math.Float32bits(v))
}

func TestCheckRefusesHostileFiles(t *testing.T) {
	cases := []struct {
		name string
		edit func(*safetensors.File)
		want string // "" accepts
	}{
		{"intact", func(*safetensors.File) {}, ""},
		{"classes 1e9", func(f *safetensors.File) {
			f.Metadata["model"] = `{"arch":"smallcnn","classes":1000000000,"h":28,"w":28,"c":1}`
		}, "1000000000 classes"},
		{"side 100000", func(f *safetensors.File) {
			f.Metadata["model"] = `{"arch":"smallcnn","classes":10,"h":100000,"w":100000,"c":1}`
		}, "too large"},
		{"classes disagree with the tensors", func(f *safetensors.File) {
			f.Metadata["model"] = `{"arch":"smallcnn","classes":1000,"h":28,"w":28,"c":1}`
		}, `"fc.weight"`},
		{"side within bounds but not the tensors'", func(f *safetensors.File) {
			f.Metadata["model"] = `{"arch":"smallcnn","classes":10,"h":4096,"w":4096,"c":1}`
		}, `"fc.weight"`},
		{"channels disagree", func(f *safetensors.File) {
			f.Metadata["model"] = `{"arch":"smallcnn","classes":10,"h":28,"w":28,"c":3}`
		}, `"conv1.weight"`},
		{"another architecture", func(f *safetensors.File) {
			f.Metadata["model"] = `{"arch":"resnet18","classes":10,"h":28,"w":28,"c":1}`
		}, `"conv1.weight"`},
		{"only the anchors of a mobilenetv2 ×4", func(f *safetensors.File) {
			// 55 kB of tensors for a model of 34M parameters.
			f.Metadata["model"] = `{"arch":"mobilenetv2","classes":2,"h":32,"w":32,"c":1,"width":4}`
			f.Tensors = []safetensors.Tensor{
				{Name: "features.0.0.weight", DType: "F32", Shape: []int{128, 1, 3, 3}, Data: make([]byte, 4*128*9)},
				{Name: "classifier.1.weight", DType: "F32", Shape: []int{2, 5120}, Data: make([]byte, 4*2*5120)},
				{Name: "classifier.1.bias", DType: "F32", Shape: []int{2}, Data: make([]byte, 8)},
			}
		}, "its tensors take 45576 bytes, but the mobilenetv2 it describes has"},
		{"a negative count", func(f *safetensors.File) {
			tn, _ := f.Get("bn1.num_batches_tracked")
			tn.Data = safetensors.FromInt64s([]int64{-1})
		}, "a count must not be negative"},
		{"NaN weight", func(f *safetensors.File) { setFloat(t, f, "fc.weight", 7, float32(math.NaN())) }, "NaN"},
		{"infinite weight", func(f *safetensors.File) { setFloat(t, f, "conv2.weight", 0, float32(math.Inf(-1))) }, "-Inf"},
		{"negative variance", func(f *safetensors.File) { setFloat(t, f, "bn2.running_var", 3, -1) }, "variance"},
		{"zero LSQ step", func(f *safetensors.File) { setFloat(t, f, "conv2.quan_w_fn.s", 0, 0) }, "LSQ step"},
		{"negative LSQ step (a mirrored grid)", func(f *safetensors.File) { setFloat(t, f, "conv3.quan_a_fn.s", 0, -0.1) }, ""},
		{"PACT clip level 0", func(f *safetensors.File) {
			f.Tensors = append(f.Tensors, safetensors.Tensor{Name: "conv3.quan_a_fn.alpha", DType: "F32", Shape: []int{1}, Data: safetensors.FromFloat32s([]float32{0})})
		}, "PACT"},
		{"zero step of an uninitialised LSQ", func(f *safetensors.File) {
			setFloat(t, f, "conv2.quan_w_fn.s", 0, 0)
			tn, _ := f.Get("conv2.quan_w_fn.initialized")
			tn.Data = safetensors.FromInt64s([]int64{0})
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := lsqFile(t)
			tc.edit(f)
			_, err := checkpoint.Check(f)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want an error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
}

// TestMomentumMayBeNegative: the domain rules are for the values
// themselves, not their optimiser state.
func TestMomentumMayBeNegative(t *testing.T) {
	f := lsqFile(t)
	f.Metadata[checkpoint.KeyFormat] = checkpoint.FormatResume
	f.Tensors = append(f.Tensors, safetensors.Tensor{Name: "optimizer.momentum_buffer.conv2.quan_w_fn.s", DType: "F32", Shape: []int{1},
		Data: safetensors.FromFloat32s([]float32{-0.5})})
	if _, err := checkpoint.Check(f); err != nil {
		t.Fatal(err)
	}
}

// TestAnchorsMatchTheModels checks models.Config.Anchors against the
// tensors of built models: every anchor is a tensor of that shape.
func TestAnchorsMatchTheModels(t *testing.T) {
	if testing.Short() {
		t.Skip("builds resnet18 and mobilenetv2")
	}
	b := cpu.New(1)
	for _, cfg := range []models.Config{
		{Arch: "smallcnn", Classes: 10, H: 28, W: 28, C: 1},
		{Arch: "smallcnn", Classes: 7, H: 30, W: 17, C: 3},
		{Arch: "resnet18", Classes: 10, H: 32, W: 32, C: 3},
		{Arch: "resnet18", Classes: 200, H: 64, W: 64, C: 3},
		{Arch: "mobilenetv2", Classes: 100, H: 32, W: 32, C: 3},
		{Arch: "mobilenetv2", Classes: 10, H: 64, W: 64, C: 3, Width: 0.5},
		{Arch: "mobilenetv2", Classes: 10, H: 32, W: 32, C: 1, Width: 1.4},
	} {
		m, err := models.New(b, engine.Float32, cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		f, err := checkpoint.Encode(b, m, checkpoint.Contents{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := checkpoint.Check(f); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}
