package qat

import (
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/qmulgpu/qmulgpu/bench/pytorchtest"
	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/optim"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// TestCheckpointsLoadIntoPyTorch trains each model briefly (so BatchNorm
// statistics and LSQ steps are non-trivial), saves it, loads the file into
// the PyTorch twin in bench/torch_models.py with strict names and shapes,
// and compares evaluation logits sample by sample (compareLogits).
func TestCheckpointsLoadIntoPyTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	py := pytorchtest.Python(t)
	cases := []struct {
		cfg   models.Config
		quant Config
	}{
		{models.Config{Arch: "smallcnn", Classes: 10, H: 28, W: 28, C: 1}, Config{Scheme: "none"}},
		{models.Config{Arch: "smallcnn", Classes: 10, H: 28, W: 28, C: 1}, Config{Scheme: "lsq", WBits: 4, ABits: 4, Float: DefaultFloat()}},
		{models.Config{Arch: "resnet18", Classes: 10, H: 32, W: 32, C: 3}, Config{Scheme: "lsq", WBits: 4, ABits: 4, Float: DefaultFloat()}},
		{models.Config{Arch: "resnet18", Classes: 7, H: 64, W: 64, C: 3}, Config{Scheme: "none"}},
		{models.Config{Arch: "mobilenetv2", Classes: 10, H: 32, W: 32, C: 3, Width: 0.5}, Config{Scheme: "lsq", WBits: 4, ABits: 4, Float: DefaultFloat()}},
	}
	for _, tc := range cases {
		t.Run(tc.cfg.Arch+" "+tc.quant.String()+" "+strconv.Itoa(tc.cfg.H), func(t *testing.T) {
			b := cpu.New(2)
			m, err := models.New(b, engine.Float32, tc.cfg, 5)
			if err != nil {
				t.Fatal(err)
			}
			if err := Apply(b, m, tc.quant); err != nil {
				t.Fatal(err)
			}
			n := 4
			r := rand.New(rand.NewPCG(9, 9))
			xv := make([]float32, n*tc.cfg.H*tc.cfg.W*tc.cfg.C)
			for i := range xv {
				xv[i] = float32(r.NormFloat64())
			}
			yv := make([]int32, n)
			for i := range yv {
				yv[i] = int32(r.IntN(tc.cfg.Classes))
			}
			bt := &train.Batch{X: b.Alloc(engine.Float32, n, tc.cfg.H, tc.cfg.W, tc.cfg.C), Y: b.Alloc(engine.Int32, n), Index: make([]int32, n)}
			b.Upload(bt.X, xv)
			b.Upload(bt.Y, yv)
			opt := optim.NewSGD(b, m.Params(), 0.9, 5e-4, false)
			c := &nn.Ctx{B: b, Train: true}
			for step := 0; step < 3; step++ {
				train.Step(c, m, bt, nil, 1/float64(n))
				opt.Step(b, 0.05)
				nn.ZeroGrad(b, m.Params())
			}
			c.Train = false
			logits := m.Net.Forward(c, bt.X)
			ours := make([]float32, logits.Numel())
			b.Download(logits, ours)

			dir := t.TempDir()
			ckpt := filepath.Join(dir, "m.safetensors")
			if err := checkpoint.Save(ckpt, b, m, checkpoint.Contents{Meta: map[string]string{MetaKey: tc.quant.Meta()}}); err != nil {
				t.Fatal(err)
			}
			in, out := filepath.Join(dir, "x.f32"), filepath.Join(dir, "y.f32")
			if err := os.WriteFile(in, f32Bytes(xv), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(py, "../bench/crosscheck.py", ckpt, in, strconv.Itoa(n), strconv.Itoa(tc.cfg.H),
				strconv.Itoa(tc.cfg.W), strconv.Itoa(tc.cfg.C), out)
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("PyTorch side failed: %v\n%s", err, msg)
			}
			raw, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			theirs := bytesF32(raw)
			if len(theirs) != len(ours) {
				t.Fatalf("PyTorch gave %d logits, we %d", len(theirs), len(ours))
			}
			compareLogits(t, ours, theirs, n, tc.quant.Scheme != "none")
		})
	}
}

// Tolerances of compareLogits, relative to max(1, the largest |logit|).
const (
	// logitsTight bounds float summation-order differences.
	logitsTight = 1e-3
	// logitsFlipped bounds a sample whose fake-quantized activations
	// rounded differently somewhere: an activation within rounding error
	// of a quantizer's rounding boundary lands one step apart on the two
	// sides (the same inputs and weights, different summation orders).
	logitsFlipped = 5e-2
)

// compareLogits checks our evaluation logits against PyTorch's, sample by
// sample. Every sample of a float model must agree to logitsTight. In a
// fake-quantized model a sample may instead agree only to logitsFlipped,
// since in evaluation mode a rounding flip stays inside its own sample,
// but at least half the samples must agree tightly: a wrong name, layout
// or quantizer step would move every sample.
func compareLogits(t *testing.T, ours, theirs []float32, n int, quantized bool) {
	t.Helper()
	var scale float64
	for _, v := range theirs {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	scale = math.Max(1, scale)
	per := len(ours) / n
	tight := 0
	for i := range n {
		var worst float64
		for j := i * per; j < (i+1)*per; j++ {
			worst = math.Max(worst, math.Abs(float64(ours[j]-theirs[j])))
		}
		switch {
		case worst <= logitsTight*scale:
			tight++
		case !quantized || worst > logitsFlipped*scale:
			t.Errorf("sample %d: logits differ by up to %.3g (scale %.3g)\nours   %v\ntheirs %v", i, worst, scale, ours[i*per:(i+1)*per], theirs[i*per:(i+1)*per])
		default:
			t.Logf("sample %d: logits differ by %.3g (scale %.3g): a quantizer rounded one activation differently", i, worst, scale)
		}
	}
	if 2*tight < n {
		t.Errorf("%d of %d samples agree to %g: a rounding flip explains one sample, not most", tight, n, logitsTight)
	}
}

func f32Bytes(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for i, f := range v {
		u := math.Float32bits(f)
		out[4*i], out[4*i+1], out[4*i+2], out[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return out
}

func bytesF32(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
	}
	return v
}
