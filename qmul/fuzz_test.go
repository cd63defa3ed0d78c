package qmul

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/internal/fuzzcheck"
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
		var s ForgetSpec
		var err error
		fuzzcheck.Alloc(t, len(spec), allocBase, allocPerByte, func() { s, err = ParseForget(spec) })
		if err != nil {
			fuzzcheck.Message(t, err)
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
		var idx []int
		var err error
		fuzzcheck.Alloc(t, len(raw), allocBase, allocPerByte, func() { idx, err = ParseIndices(raw) })
		if err != nil {
			fuzzcheck.Message(t, err)
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
		var m *Metrics
		var err error
		fuzzcheck.Alloc(t, len(raw), allocBase, allocPerByte, func() { m, err = ParseMetrics(raw) })
		if err != nil {
			fuzzcheck.Message(t, err)
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
