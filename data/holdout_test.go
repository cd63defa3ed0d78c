package data

import (
	"math"
	"slices"
	"testing"
)

// labelled returns a data set of 1x1x1 images with the given labels.
func labelled(classes int, labels []int32) *Dataset {
	return &Dataset{
		Name:       "test",
		Images:     make([]uint8, len(labels)),
		Labels:     labels,
		N:          len(labels),
		H:          1,
		W:          1,
		C:          1,
		Classes:    classes,
		ClassNames: digitNames(classes),
	}
}

func TestHoldOut(t *testing.T) {
	// Classes of 100, 37, 1 and 0 samples, interleaved.
	var labels []int32
	for i := range 138 {
		switch {
		case i < 74:
			labels = append(labels, int32(i%2))
		case i < 137:
			labels = append(labels, 0)
		default:
			labels = append(labels, 2)
		}
	}
	ds := labelled(4, labels)
	counts := ds.ClassCounts()
	if !slices.Equal(counts, []int{100, 37, 1, 0}) {
		t.Fatalf("class counts %v", counts)
	}
	for _, frac := range []float64{0, 0.1, 0.29, 0.5, 0.99} {
		train, val, err := HoldOut(ds, frac, 7)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.IsSorted(train) || !slices.IsSorted(val) {
			t.Errorf("frac %v: lists not sorted", frac)
		}
		all := slices.Concat(train, val)
		slices.Sort(all)
		for i, v := range all {
			if v != i {
				t.Fatalf("frac %v: train and val are not a partition of 0..%d", frac, ds.N-1)
			}
		}
		valCounts := ds.Subset(val).ClassCounts()
		for c, n := range counts {
			want := int(math.Floor(frac*float64(n) + 1e-9))
			if valCounts[c] != want {
				t.Errorf("frac %v: class %d has %d of %d in val, want %d", frac, c, valCounts[c], n, want)
			}
		}
		if frac == 0.29 && valCounts[0] != 29 {
			t.Errorf("0.29 of 100 gave %d", valCounts[0])
		}
		if frac == 0 && len(val) != 0 {
			t.Errorf("frac 0 gave %d validation samples", len(val))
		}
	}

	a, _, _ := HoldOut(ds, 0.5, 1)
	b, _, _ := HoldOut(ds, 0.5, 1)
	c, _, _ := HoldOut(ds, 0.5, 2)
	if !slices.Equal(a, b) {
		t.Error("the same seed gave different splits")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds gave the same split")
	}
}

func TestHoldOutErrors(t *testing.T) {
	ds := labelled(2, []int32{0, 1, 1})
	tests := []struct {
		name string
		ds   *Dataset
		frac float64
		want string
	}{
		{"frac 1", ds, 1, "test: hold-out fraction 1 out of range [0, 1)"},
		{"negative frac", ds, -0.1, "hold-out fraction -0.1 out of range"},
		{"NaN", ds, math.NaN(), "hold-out fraction NaN out of range"},
		{"bad label", labelled(2, []int32{0, 2}), 0.5, "test: label 2 of image 1 out of range [0, 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := HoldOut(tt.ds, tt.frac, 1)
			wantError(t, err, tt.want)
		})
	}
}
