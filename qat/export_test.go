package qat

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/optim"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

func TestPack4RoundTrip(t *testing.T) {
	codes := []int32{-8, -1, 0, 7, 3, -5, 6}
	if got := unpack4(pack4(codes), len(codes), true); fmt.Sprint(got) != fmt.Sprint(codes) {
		t.Fatalf("signed round trip %v → %v", codes, got)
	}
	un := []int32{0, 15, 9, 4}
	if got := unpack4(pack4(un), len(un), false); fmt.Sprint(got) != fmt.Sprint(un) {
		t.Fatalf("unsigned round trip %v → %v", un, got)
	}
}

// TestIntegerExportAgreesWithFakeQuant trains smallcnn briefly with each
// scheme, exports it, and checks that integer inference predicts like the
// fake-quantized model on at least 99.9% of test images and that every
// weight code lies in its bit range (LoadInt refuses any that does not).
func TestIntegerExportAgreesWithFakeQuant(t *testing.T) {
	if _, err := data.Locate("fashion-mnist", ""); err != nil {
		t.Skipf("Fashion-MNIST not installed: %v", err)
	}
	spec := train.DataSpec{Dataset: "fashion-mnist", ValFrac: 0, SplitSeed: 1, Subset: 2000, TestSubset: 2000}
	splits, err := spec.Load()
	if err != nil {
		t.Fatal(err)
	}
	configs := []Config{
		{Scheme: "lsq", WBits: 4, ABits: 4},
		{Scheme: "lsq", WBits: 2, ABits: 2, PerChannel: true},
		{Scheme: "pact", WBits: 3, ABits: 3},
		{Scheme: "dorefa", WBits: 4, ABits: 4},
		{Scheme: "minmax", WBits: 8, ABits: 8},
	}
	for _, cfg := range configs {
		cfg.Float = DefaultFloat()
		t.Run(fmt.Sprint(cfg, cfg.PerChannel), func(t *testing.T) {
			b := cpu.New(2)
			mc := train.ModelFor(models.Config{Arch: "smallcnn"}, splits.Train)
			j := &train.Job{Data: spec, Model: mc, Out: t.TempDir(), Backend: b, Command: "test",
				Recipe:  train.Recipe{Epochs: 1, Batch: 100, Momentum: 0.9, WeightDecay: 5e-4, Seed: 2, Schedule: optim.Schedule{Kind: "constant", Base: 0.05, Epochs: 1}},
				Meta:    map[string]string{MetaKey: cfg.Meta()},
				Prepare: func(m *models.Model) error { return Apply(b, m, cfg) }}
			if _, err := j.Run(); err != nil {
				t.Fatal(err)
			}
			o, err := Open(j.Out+"/"+train.ModelFile, b, Config{})
			if err != nil {
				t.Fatal(err)
			}
			m, f := o.Model, o.File
			exp, err := Export(b, m, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := safetensors.Encode(&buf, exp); err != nil {
				t.Fatal(err)
			}
			reread, err := safetensors.Parse(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			im, err := LoadInt(reread, b)
			if err != nil {
				t.Fatal(err)
			}
			test := train.Upload(b, splits.Test)
			fake := train.Evaluate(b, m, test, splits.TestIdx, 256, false, nil)
			ints := train.Evaluate(b, im, test, splits.TestIdx, 256, false, nil)
			agree := 0
			for i := range fake.Pred {
				if fake.Pred[i] == ints.Pred[i] {
					agree++
				}
			}
			frac := float64(agree) / float64(len(fake.Pred))
			t.Logf("%s: fake-quant %.2f%%, integer %.2f%%, agreement %.3f%% (%s)", cfg, fake.Accuracy(), ints.Accuracy(), 100*frac, f.Metadata[MetaKey])
			if frac < 0.999 {
				t.Errorf("integer and fake-quantized predictions agree on %.3f%% < 99.9%%", 100*frac)
			}
			if fake.Accuracy() < 25 {
				t.Errorf("fake-quantized accuracy %.1f%%: training did not work", fake.Accuracy())
			}
		})
	}
}
