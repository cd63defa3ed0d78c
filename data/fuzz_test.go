package data

import (
	"runtime"
	"testing"
)

// allocSlack bounds the bytes a parser may allocate per input byte:
// compressed input inflates at most maxInflateRatio times, the inflated
// buffer may be grown to twice its size, and numeric MAT data may widen 8
// times to float64. allocBase covers fixed costs such as decompressor
// state.
const (
	allocSlack = 4 * 8 * maxInflateRatio
	allocBase  = 4 << 20
)

// checkAlloc runs parse and fails if it allocated more than the bound for
// an input of n bytes.
func checkAlloc(t *testing.T, n int, parse func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	parse()
	runtime.ReadMemStats(&after)
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(allocBase+allocSlack*n); got > limit {
		t.Fatalf("allocated %d bytes for %d input bytes (limit %d)", got, n, limit)
	}
}

func FuzzParseIDX(f *testing.F) {
	images, labels := idxImages(2, 3, 4), idxLabels(5, 9)
	f.Add(images, labels)
	f.Add(gzipped(images), gzipped(labels))
	f.Add(images[:20], labels)
	f.Add(idxImages(1, 28, 28), gzipped(idxLabels(3)))
	f.Fuzz(func(t *testing.T, images, labels []byte) {
		var (
			ds  *Dataset
			err error
		)
		checkAlloc(t, len(images)+len(labels), func() { ds, err = ParseIDX(images, labels) })
		if err != nil {
			return
		}
		checkDataset(t, ds)
		if ds.C != 1 || ds.Classes != 10 {
			t.Fatalf("C=%d classes=%d, want 1 and 10", ds.C, ds.Classes)
		}
	})
}

func FuzzParseCIFAR(f *testing.F) {
	f.Add(cifarRecords(false, 1, 2), false)
	f.Add(cifarRecords(true, 42), true)
	f.Add(cifarRecords(false, 3)[:100], false)
	f.Fuzz(func(t *testing.T, records []byte, fine bool) {
		var (
			images []uint8
			labels []int32
			err    error
		)
		checkAlloc(t, len(records), func() { images, labels, err = ParseCIFAR(records, fine) })
		if err != nil {
			return
		}
		classes := 10
		if fine {
			classes = 100
		}
		if len(labels) == 0 || len(images) != len(labels)*3072 {
			t.Fatalf("%d labels and %d pixel bytes", len(labels), len(images))
		}
		for i, l := range labels {
			if l < 0 || int(l) >= classes {
				t.Fatalf("label %d of record %d out of range", l, i)
			}
		}
	})
}

func FuzzParseMAT(f *testing.F) {
	small := matVar{name: "a", class: mxDOUBLE, dims: []int{2, 2}, typ: miINT16, data: make([]byte, 8)}
	f.Add(matFile(false, small))
	f.Add(matFile(true, small))
	f.Add(matFile(false, svhnVars(false, 1)...))
	f.Add(matFile(true, svhnVars(true, 10, 2)...))
	f.Add(matHeader())
	f.Fuzz(func(t *testing.T, b []byte) {
		var (
			vars map[string]*MatArray
			err  error
		)
		checkAlloc(t, len(b), func() { vars, err = ParseMAT(b) })
		if err != nil {
			return
		}
		for name, a := range vars {
			n := 1
			for _, d := range a.Dims {
				if d < 0 {
					t.Fatalf("%q: negative dimension in %v", name, a.Dims)
				}
				n *= d
			}
			if a.Name != name || len(a.Dims) < 2 || a.Len() != n {
				t.Fatalf("%q: name %q dims %v with %d elements", name, a.Name, a.Dims, a.Len())
			}
			if (a.Class == "uint8") != (a.Float64 == nil) {
				t.Fatalf("%q: class %s with Uint8 %d and Float64 %d elements", name, a.Class, len(a.Uint8), len(a.Float64))
			}
		}
		// Whatever parses must not crash the SVHN conversion either.
		if ds, err := svhnFromMAT(vars); err == nil {
			checkDataset(t, ds)
		}
	})
}
