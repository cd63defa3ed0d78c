package qmul

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/internal/fuzzcheck"
	"github.com/qmulgpu/qmulgpu/qat"
)

// Memory the small readers may use: JSON decoding keeps a few copies of
// its input and 8 bytes an integer of at least 2 bytes.
const (
	allocBase    = 1 << 20
	allocPerByte = 64
)

// FuzzParseForget parses any --forget value: no panic, one-line errors,
// and a spec that, written again from its fields, parses to the same.
func FuzzParseForget(f *testing.F) {
	for _, s := range []string{"random:10", "random:2.5%", "class:3", "indices:forget.txt", "random:0%", "class:-1", "x:1", "random", "random:1e309%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, ok := fuzzcheck.Read(t, len(spec), allocBase, allocPerByte, func() (ForgetSpec, error) { return ParseForget(spec) })
		if !ok {
			return
		}
		var again string
		switch {
		case s.Kind == "random" && s.Frac > 0:
			again = "random:" + strconv.FormatFloat(s.Frac*100, 'g', -1, 64) + "%"
		case s.Kind == "random":
			again = "random:" + strconv.Itoa(s.N)
		case s.Kind == "class":
			again = "class:" + strconv.Itoa(s.Class)
		case s.Kind == "indices":
			again = "indices:" + s.File
		default:
			t.Fatalf("parsed to kind %q", s.Kind)
		}
		r, err := ParseForget(again)
		if err != nil || r.Kind != s.Kind || r.N != s.N || r.Class != s.Class || r.File != s.File || math.Abs(r.Frac-s.Frac) > 1e-15 {
			t.Fatalf("%q written again as %q: %+v, %v", spec, again, r, err)
		}
	})
}

// FuzzParseIndices reads any bytes as a forget set's index file: no
// panic, memory bounded by the input, one-line errors, and indices that,
// written again one a line, read back the same.
func FuzzParseIndices(f *testing.F) {
	f.Add([]byte("# forget these\n3\n 17 \n\n42\n"))
	f.Add([]byte("[1, 2, 3]"))
	f.Add([]byte("[1.5]"))
	f.Add([]byte("-4\n99999999999999999999\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		idx, ok := fuzzcheck.Read(t, len(raw), allocBase, allocPerByte, func() ([]int, error) { return ParseIndices(raw) })
		if !ok {
			return
		}
		var lines strings.Builder
		for _, i := range idx {
			lines.WriteString(strconv.Itoa(i) + "\n")
		}
		again, err := ParseIndices([]byte(lines.String()))
		if err != nil || !slices.Equal(again, idx) {
			t.Fatalf("written again: %v, %v, want %v", err, again, idx)
		}
	})
}

// FuzzParseMetrics reads any bytes as a --reference file: no panic,
// memory bounded by the input, one-line errors, and metrics that, written
// again as JSON, read back the same.
func FuzzParseMetrics(f *testing.F) {
	f.Add([]byte(`{"fa": 92.1, "ra": 99.5, "ta": 91.0, "mia": 14.2, "rte_s": 31.5, "method": "retrain", "avg_gap": 0}`))
	f.Add([]byte(`{"fa": 1, "ra": 1, "ta": 1, "mia": 101}`))
	f.Add([]byte(`{"fa": "x", "ra": 1, "ta": 1, "mia": 1, "mia_features": {"entropy": 3}, "mia_warnings": ["a"]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, ok := fuzzcheck.Read(t, len(raw), allocBase, allocPerByte, func() (*Metrics, error) { return ParseMetrics(raw) })
		if !ok {
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseMetrics(b)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("written again as %s: %v, %+v, want %+v", b, err, again, m)
		}
	})
}

// FuzzReadOrigin reads any checkpoint metadata for how the model was
// trained (the job, or the data set and split of an imported model, and
// the quantizers): no panic, memory bounded by the input, one-line errors,
// and an origin that, written again as metadata, reads back the same.
func FuzzReadOrigin(f *testing.F) {
	job := `{"data":{"dataset":"fashion-mnist","dir":"/usr/share/datasets/fashion-mnist","val_frac":0.1,"split_seed":1,"size":0},` +
		`"model":{"arch":"smallcnn","classes":10,"h":28,"w":28,"c":1},"recipe":{"epochs":15,"batch":128}}`
	quant := `{"scheme":"lsq","wbits":4,"abits":4,"float":["stem","downsample","classifier"]}`
	f.Add(job, "", "", "", quant)
	f.Add("", "svhn", "0.1", "7", "")
	f.Add(`{"data":{"dataset":""}}`, "cifar10", "x", "-1", `{"scheme":"lsq","wbits":9}`)
	f.Add(`{"data":[1]}`, "", "", "", `{"scheme":"`+strings.Repeat("q", 300)+`"}`)
	f.Fuzz(func(t *testing.T, job, dataset, valFrac, splitSeed, quant string) {
		meta := map[string]string{}
		for k, v := range map[string]string{"job": job, "dataset": dataset, "val_frac": valFrac, "split_seed": splitSeed, qat.MetaKey: quant} {
			if !utf8.ValidString(v) {
				return // a checkpoint's metadata is UTF-8 (safetensors refuses other headers)
			}
			if v != "" {
				meta[k] = v
			}
		}
		n := len(job) + len(dataset) + len(valFrac) + len(splitSeed) + len(quant)
		o, ok := fuzzcheck.Read(t, n, allocBase, allocPerByte, func() (Origin, error) { return ReadOrigin(meta, "") })
		if !ok {
			return
		}
		raw, err := json.Marshal(train.Job{Data: o.Data, Model: o.Model, Recipe: o.Recipe})
		if err != nil {
			return // values JSON cannot hold (a NaN fraction from val_frac)
		}
		again, err := ReadOrigin(map[string]string{"job": string(raw), qat.MetaKey: o.Quant.Meta()}, "")
		// The quantizers compare as written: no float layers is one
		// configuration, listed empty or left out.
		if err == nil && again.Quant.Meta() == o.Quant.Meta() {
			again.Quant = o.Quant
		}
		if err != nil || !reflect.DeepEqual(again, o) {
			t.Fatalf("written again: %v\n%+v\n%+v", err, again, o)
		}
	})
}
