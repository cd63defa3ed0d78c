package torchimport

import (
	"slices"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
	"github.com/qmulgpu/qmulgpu/qat"
)

var grayNorm = Normalization{Mean: []float32{0.2860}, Std: []float32{0.3530}}

// lsqSmallCNN builds a smallcnn with LSQ W4A4 quantizers.
func lsqSmallCNN(t *testing.T, b engine.Backend, seed uint64) *models.Model {
	t.Helper()
	m, err := models.New(b, engine.Float32, models.Config{Arch: "smallcnn", Classes: 10, H: 28, W: 28, C: 1}, seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := qat.Apply(b, m, qat.Config{Scheme: "lsq", WBits: 4, ABits: 4, Float: qat.DefaultFloat()}); err != nil {
		t.Fatal(err)
	}
	// Steps as LSQ initialises them: not zero.
	for _, p := range m.Params() {
		if strings.HasSuffix(p.Name, "_fn.s") {
			v := make([]float32, p.Value.Numel())
			for i := range v {
				v[i] = 0.01 * float32(int(seed)+i+1)
			}
			b.Upload(p.Value, v)
		}
	}
	return m
}

// asCheckpoint turns a model's own state into a checkpoint with the given
// name mapping (drop it by returning "").
func asCheckpoint(t *testing.T, b engine.Backend, m *models.Model, rename func(string) string) *Checkpoint {
	t.Helper()
	f, err := checkpoint.Encode(b, m, checkpoint.Contents{})
	if err != nil {
		t.Fatal(err)
	}
	c := &Checkpoint{Format: FormatZip, Tensors: map[string]*Tensor{}}
	for _, st := range f.Tensors {
		name := rename(st.Name)
		if name == "" {
			continue
		}
		c.add(name, st.DType, st.Shape, st.Data)
	}
	return c
}

func (c *Checkpoint) add(name, dtype string, shape []int, data []byte) {
	stride := make([]int64, len(shape))
	s := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		stride[i] = s
		s *= int64(shape[i])
	}
	c.Names = append(c.Names, name)
	c.Tensors[name] = &Tensor{DType: dtype, Shape: shape, data: data, stride: stride}
}

// TestLoadMapsNames: DataParallel prefixes, the normalisation module,
// absent LSQ "initialized" flags and num_batches_tracked all map, and the
// model ends up with the source's exact values.
func TestLoadMapsNames(t *testing.T) {
	b := cpu.New(1)
	src := lsqSmallCNN(t, b, 3)
	c := asCheckpoint(t, b, src, func(n string) string {
		if strings.HasSuffix(n, ".initialized") || strings.HasSuffix(n, "num_batches_tracked") && n != "bn1.num_batches_tracked" {
			return ""
		}
		return "module." + n
	})
	c.add("module.normalize.mean", "F32", []int{1}, safetensors.FromFloat32s(grayNorm.Mean))
	c.add("module.normalize.std", "F64", []int{1}, safetensors.FromFloat64s([]float64{0.3530}))
	dst := lsqSmallCNN(t, b, 4)
	r, err := Load(c, b, dst, grayNorm)
	if err != nil {
		t.Fatal(err)
	}
	if r.Unwrapped != len(c.Names) || !r.Normalize || len(r.Filled) != 6 {
		t.Errorf("report %+v: want all names unwrapped, the normalisation checked, 4 LSQ flags and 2 counters filled", r)
	}
	want, _ := checkpoint.Encode(b, src, checkpoint.Contents{})
	got, _ := checkpoint.Encode(b, dst, checkpoint.Contents{})
	for i, wt := range want.Tensors {
		gt := got.Tensors[i]
		if strings.HasSuffix(wt.Name, ".initialized") || strings.HasSuffix(wt.Name, "num_batches_tracked") {
			continue
		}
		if gt.Name != wt.Name || !slices.Equal(gt.Data, wt.Data) {
			t.Errorf("%s differs after import", wt.Name)
		}
	}
}

// TestLoadIsStrict: everything that does not fit is listed on one line.
func TestLoadIsStrict(t *testing.T) {
	b := cpu.New(1)
	src := lsqSmallCNN(t, b, 3)
	c := asCheckpoint(t, b, src, func(n string) string {
		switch n {
		case "conv2.weight", "bn3.running_var":
			return ""
		case "fc.bias":
			return "classifier.bias"
		}
		return n
	})
	c.Tensors["bn1.weight"].Shape = []int{16, 2}
	_, err := Load(c, b, lsqSmallCNN(t, b, 4), grayNorm)
	want := []string{"missing (3): conv2.weight, fc.bias, bn3.running_var", "unexpected (1): classifier.bias", "size mismatch (1): bn1.weight: file [16 2], model [32]"}
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %v, want one line", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func TestLoadRefusesOtherNormalization(t *testing.T) {
	b := cpu.New(1)
	src := lsqSmallCNN(t, b, 3)
	c := asCheckpoint(t, b, src, func(n string) string { return n })
	c.add("normalize.mean", "F32", []int{1}, safetensors.FromFloat32s([]float32{0.5}))
	c.add("normalize.std", "F32", []int{1}, safetensors.FromFloat32s([]float32{0.5}))
	if _, err := Load(c, b, lsqSmallCNN(t, b, 4), grayNorm); err == nil || !strings.Contains(err.Error(), "normalises its input with mean [0.5]") {
		t.Errorf("error %v, want the different normalisation named", err)
	}
}

// TestLoadRefusesBadValues: Load itself runs the value checks of loading
// a checkpoint, before the model is changed.
func TestLoadRefusesBadValues(t *testing.T) {
	b := cpu.New(1)
	src := lsqSmallCNN(t, b, 3)
	c := asCheckpoint(t, b, src, func(n string) string { return n })
	c.Tensors["bn2.running_var"].data = safetensors.FromFloat32s(make([]float32, 64))
	copy(c.Tensors["bn2.running_var"].data, safetensors.FromFloat32s([]float32{-2}))
	dst := lsqSmallCNN(t, b, 4)
	before, _ := checkpoint.Encode(b, dst, checkpoint.Contents{})
	_, err := Load(c, b, dst, grayNorm)
	if err == nil || !strings.Contains(err.Error(), `"bn2.running_var" holds -2 at element 0: a BatchNorm variance must not be negative`) {
		t.Fatalf("error %v, want the negative variance named", err)
	}
	after, _ := checkpoint.Encode(b, dst, checkpoint.Contents{})
	for i := range before.Tensors {
		if !slices.Equal(before.Tensors[i].Data, after.Tensors[i].Data) {
			t.Fatalf("the refused load changed %s", before.Tensors[i].Name)
		}
	}
}
