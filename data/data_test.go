package data

import (
	"slices"
	"testing"
)

func TestDatasetMethods(t *testing.T) {
	ds := &Dataset{
		Name:       "tiny",
		Images:     []uint8{0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23},
		Labels:     []int32{1, 0, 1},
		N:          3,
		H:          1,
		W:          2,
		C:          2,
		Classes:    3,
		ClassNames: []string{"a", "b", "c"},
	}
	if got := ds.Image(1); !slices.Equal(got, []uint8{10, 11, 12, 13}) || cap(got) != 4 {
		t.Errorf("Image(1) = %v (cap %d), want [10 11 12 13] (cap 4)", got, cap(got))
	}
	if got := ds.ClassCounts(); !slices.Equal(got, []int{1, 2, 0}) {
		t.Errorf("ClassCounts() = %v, want [1 2 0]", got)
	}

	s := ds.Subset([]int{2, 0, 2})
	checkDataset(t, s)
	if s.N != 3 || !slices.Equal(s.Labels, []int32{1, 1, 1}) || !slices.Equal(s.Images, []uint8{20, 21, 22, 23, 0, 1, 2, 3, 20, 21, 22, 23}) {
		t.Errorf("Subset([2 0 2]) = %+v", s)
	}
	s.Images[0] = 99
	if ds.Images[8] != 20 {
		t.Error("Subset shares pixels with its source")
	}
	if s.Name != "tiny" || s.H != 1 || s.W != 2 || s.C != 2 || s.Classes != 3 {
		t.Errorf("Subset changed the shape: %+v", s)
	}
	if e := ds.Subset(nil); e.N != 0 || len(e.Images) != 0 || len(e.Labels) != 0 {
		t.Errorf("empty Subset = %+v", e)
	}
}

func TestNamesStatsAugmentation(t *testing.T) {
	want := []string{"mnist", "fashion-mnist", "cifar10", "cifar100", "svhn", "folder"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	Names()[0] = "changed"
	if Names()[0] != "mnist" {
		t.Error("Names returns shared storage")
	}
	tests := []struct {
		name     string
		channels int
		aug      Augmentation
	}{
		{"mnist", 1, Augmentation{}},
		{"fashion-mnist", 1, Augmentation{}},
		{"cifar10", 3, Augmentation{Pad: 4, Flip: true}},
		{"cifar100", 3, Augmentation{Pad: 4, Flip: true}},
		{"svhn", 3, Augmentation{}},
		{"folder", 3, Augmentation{Pad: 4, Flip: true}},
		{"unknown", 0, Augmentation{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mean, std := Stats(tt.name)
			if len(mean) != tt.channels || len(std) != tt.channels {
				t.Fatalf("Stats: %d means, %d stds, want %d", len(mean), len(std), tt.channels)
			}
			for c := range mean {
				if mean[c] <= 0 || mean[c] >= 1 || std[c] <= 0 || std[c] >= 1 {
					t.Errorf("Stats: channel %d mean %v std %v out of (0, 1)", c, mean[c], std[c])
				}
			}
			if got := DefaultAugmentation(tt.name); got != tt.aug {
				t.Errorf("DefaultAugmentation = %+v, want %+v", got, tt.aug)
			}
		})
	}
}

func TestSplitString(t *testing.T) {
	for s, want := range map[Split]string{Train: "train", Test: "test", 7: "Split(7)"} {
		if got := s.String(); got != want {
			t.Errorf("Split(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		split Split
		size  int
		want  string
	}{
		{"imagenet", Train, 0, `"imagenet": unknown data set`},
		{"cifar10", 2, 0, "cifar10: invalid split Split(2)"},
		{"folder", Train, maxFolderSize + 1, "folder: image size 4097 out of range [1, 4096]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.name, t.TempDir(), tt.split, tt.size)
			wantError(t, err, tt.want)
		})
	}
}
