package data

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// checkCIFARPixels checks that images holds the generated CIFAR pixels of
// records first, first+1, ... in HWC order.
func checkCIFARPixels(t *testing.T, images []uint8, first int) {
	t.Helper()
	for i := range len(images) / cifarPixels {
		for y := range 32 {
			for x := range 32 {
				for c := range 3 {
					got := images[i*cifarPixels+(y*32+x)*3+c]
					if want := cifarPixel(first+i, c, y, x); got != want {
						t.Fatalf("image %d (y=%d x=%d c=%d) = %d, want %d", i, y, x, c, got, want)
					}
				}
			}
		}
	}
}

func TestParseCIFAR(t *testing.T) {
	tests := []struct {
		name   string
		fine   bool
		labels []byte
	}{
		{"cifar10", false, []byte{3, 0, 9}},
		{"cifar100", true, []byte{99, 0, 42, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			images, labels, err := ParseCIFAR(cifarRecords(tt.fine, tt.labels...), tt.fine)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]int32, len(tt.labels))
			for i, l := range tt.labels {
				want[i] = int32(l)
			}
			if !slices.Equal(labels, want) {
				t.Errorf("labels %v, want %v", labels, want)
			}
			if len(images) != len(tt.labels)*cifarPixels {
				t.Fatalf("%d pixel bytes, want %d", len(images), len(tt.labels)*cifarPixels)
			}
			checkCIFARPixels(t, images, 0)
		})
	}
}

func TestParseCIFARErrors(t *testing.T) {
	ten := cifarRecords(false, 1, 2)
	badCoarse := cifarRecords(true, 5)
	badCoarse[0] = 20
	badFine := cifarRecords(true, 100)
	badFine[0] = 0
	tests := []struct {
		name    string
		records []byte
		fine    bool
		want    string
	}{
		{"empty", nil, false, "empty: no records"},
		{"cut in first record", ten[:1000], false, "truncated: 1000 bytes is not a multiple of the 3073-byte record"},
		{"cut mid-record", ten[:len(ten)-1], false, "truncated"},
		{"cifar100 record size", ten, true, "not a multiple of the 3074-byte record"},
		{"label out of range", cifarRecords(false, 3, 10), false, "record 1: label 10 out of range [0, 10)"},
		{"fine label out of range", badFine, true, "record 0: label 100 out of range [0, 100)"},
		{"coarse label out of range", badCoarse, true, "coarse label 20 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseCIFAR(tt.records, tt.fine)
			wantError(t, err, tt.want)
		})
	}
}

func TestLoadCIFAR10(t *testing.T) {
	root := t.TempDir()
	files := map[string][]byte{"cifar-10-batches-bin/test_batch.bin": cifarRecords(false, 4, 5)}
	var wantTrain []int32
	for b := range 5 {
		l := []byte{byte(2 * b), byte(2*b + 1)}
		files[fmt.Sprintf("cifar-10-batches-bin/data_batch_%d.bin", b+1)] = cifarRecords(false, l...)
		wantTrain = append(wantTrain, int32(l[0]), int32(l[1]))
	}
	writeFiles(t, root, files)

	ds, err := Load("cifar10", root, Train, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkDataset(t, ds)
	if ds.N != 10 || ds.H != 32 || ds.W != 32 || ds.C != 3 || ds.Name != "cifar10" {
		t.Fatalf("%s: N=%d H=%d W=%d C=%d, want cifar10 10x32x32x3", ds.Name, ds.N, ds.H, ds.W, ds.C)
	}
	if !slices.Equal(ds.Labels, wantTrain) {
		t.Errorf("labels %v, want %v", ds.Labels, wantTrain)
	}
	if !slices.Equal(ds.ClassNames, cifar10Names) {
		t.Errorf("class names %v, want the defaults", ds.ClassNames)
	}
	// Each batch restarts the generated pattern.
	for b := range 5 {
		checkCIFARPixels(t, ds.Images[2*b*cifarPixels:(2*b+2)*cifarPixels], 0)
	}

	// The test split, with class names from batches.meta.txt.
	meta := "zero\none\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\n\n"
	writeFiles(t, root, map[string][]byte{"cifar-10-batches-bin/batches.meta.txt": []byte(meta)})
	ds, err = Load("cifar10", root+"/cifar-10-batches-bin", Test, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkDataset(t, ds)
	if !slices.Equal(ds.Labels, []int32{4, 5}) || ds.ClassNames[4] != "four" {
		t.Errorf("labels %v class 4 %q, want [4 5] and \"four\"", ds.Labels, ds.ClassNames[4])
	}
	checkCIFARPixels(t, ds.Images, 0)
}

func TestLoadCIFAR100(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{
		"train.bin": cifarRecords(true, 0, 50, 99),
		"test.bin":  cifarRecords(true, 12),
	})
	ds, err := Load("cifar100", dir, Train, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkDataset(t, ds)
	if ds.Classes != 100 || !slices.Equal(ds.Labels, []int32{0, 50, 99}) || ds.ClassNames[99] != "worm" {
		t.Errorf("classes %d labels %v class 99 %q", ds.Classes, ds.Labels, ds.ClassNames[99])
	}
	checkCIFARPixels(t, ds.Images, 0)
	if !slices.IsSorted(cifar100Names) || len(cifar100Names) != 100 {
		t.Errorf("the default CIFAR-100 names are not 100 sorted names")
	}

	names := make([]string, 100)
	for i := range names {
		names[i] = fmt.Sprintf("class %02d", i)
	}
	writeFiles(t, dir, map[string][]byte{"fine_label_names.txt": []byte(strings.Join(names, "\n"))})
	ds, err = Load("cifar100", dir, Test, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ds.ClassNames, names) || !slices.Equal(ds.Labels, []int32{12}) {
		t.Errorf("class names %v labels %v", ds.ClassNames[:3], ds.Labels)
	}
}

func TestLoadCIFARErrors(t *testing.T) {
	full := map[string][]byte{}
	for _, f := range []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"} {
		full[f] = cifarRecords(false, 1, 2)
	}
	with := func(name string, b []byte) map[string][]byte {
		m := map[string][]byte{}
		for k, v := range full {
			m[k] = v
		}
		m[name] = b
		return m
	}
	without := func(name string) map[string][]byte {
		m := with(name, nil)
		delete(m, name)
		return m
	}
	tests := []struct {
		name  string
		files map[string][]byte
		want  string
	}{
		{"record count mismatch", with("data_batch_3.bin", cifarRecords(false, 1)), "data_batch_3.bin: wrong shape: 1 records but data_batch_1.bin has 2"},
		{"truncated batch", with("data_batch_4.bin", cifarRecords(false, 1, 2)[:5000]), "data_batch_4.bin: truncated"},
		{"missing batch", without("data_batch_2.bin"), "data_batch_2.bin: no such file"},
		{"label out of range", with("data_batch_5.bin", cifarRecords(false, 1, 11)), "data_batch_5.bin: record 1: label 11 out of range"},
		{"bad meta", with("batches.meta.txt", []byte("a\nb\n")), "batches.meta.txt: 2 class names, want 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			_, err := Load("cifar10", dir, Train, 0)
			wantError(t, err, tt.want)
		})
	}
}
