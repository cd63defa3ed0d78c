package data

import (
	"encoding/binary"
	"slices"
	"testing"
)

func TestParseIDX(t *testing.T) {
	images, labels := idxImages(3, 4, 5), idxLabels(7, 0, 9)
	tests := []struct {
		name           string
		images, labels []byte
	}{
		{"plain", images, labels},
		{"gzip", gzipped(images), gzipped(labels)},
		{"mixed", images, gzipped(labels)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := ParseIDX(tt.images, tt.labels)
			if err != nil {
				t.Fatal(err)
			}
			checkDataset(t, ds)
			if ds.N != 3 || ds.H != 4 || ds.W != 5 || ds.C != 1 || ds.Classes != 10 {
				t.Fatalf("shape N=%d H=%d W=%d C=%d classes=%d, want 3x4x5x1, 10 classes", ds.N, ds.H, ds.W, ds.C, ds.Classes)
			}
			if want := []int32{7, 0, 9}; !slices.Equal(ds.Labels, want) {
				t.Errorf("labels %v, want %v", ds.Labels, want)
			}
			if ds.ClassNames[3] != "3" {
				t.Errorf("class name 3 = %q", ds.ClassNames[3])
			}
			for i := range 3 {
				img := ds.Image(i)
				for y := range 4 {
					for x := range 5 {
						if got, want := img[y*5+x], idxPixel(i, y, x); got != want {
							t.Fatalf("image %d pixel (%d,%d) = %d, want %d", i, y, x, got, want)
						}
					}
				}
			}
		})
	}
}

func TestParseIDXErrors(t *testing.T) {
	images, labels := idxImages(2, 3, 3), idxLabels(1, 2)
	zimages := gzipped(images)
	badCRC := slices.Clone(zimages)
	badCRC[len(badCRC)-8] ^= 0xff
	badMagic := slices.Clone(images)
	binary.BigEndian.PutUint32(badMagic, 0x00000903)
	zeroDim := slices.Clone(images)
	binary.BigEndian.PutUint32(zeroDim[8:], 0)
	huge := slices.Clone(images[:16])
	binary.BigEndian.PutUint32(huge[4:], 0xffffffff)
	binary.BigEndian.PutUint32(huge[8:], 0xffffffff)

	tests := []struct {
		name           string
		images, labels []byte
		want           string
	}{
		{"empty", nil, labels, "idx images: truncated header"},
		{"cut in header", images[:10], labels, "idx images: truncated header"},
		{"cut in data", images[:len(images)-1], labels, "truncated pixel data (want 18 bytes for 2x3x3)"},
		{"labels cut", images, labels[:9], "idx labels: truncated labels"},
		{"bad magic", badMagic, labels, "bad magic 0x00000903 (want 0x00000803)"},
		{"labels with 3 dims", images, images, "idx labels: wrong shape: 3 dimensions, want 1"},
		{"images with 1 dim", labels, labels, "idx images: wrong shape: 1 dimensions, want 3"},
		{"zero dimension", zeroDim, labels, "wrong shape: dimension 1 is 0"},
		{"huge shape", huge, labels, "exceed"},
		{"count mismatch", images, idxLabels(1, 2, 3), "idx: 2 images but 3 labels"},
		{"label out of range", images, idxLabels(1, 10), "label 10 at index 1 out of range [0, 10)"},
		{"trailing data", append(slices.Clone(images), 0), labels, "trailing data after the pixel data"},
		{"gzip bad checksum", badCRC, labels, "corrupt data: gzip: invalid checksum"},
		{"gzip truncated", zimages[:len(zimages)/2], labels, "truncated"},
		{"gzip bad header", []byte{0x1f, 0x8b, 0, 0, 0, 0, 0, 0, 0, 0, 0}, labels, "gzip header: corrupt data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIDX(tt.images, tt.labels)
			wantError(t, err, tt.want)
		})
	}
}

func TestLoadIDXFiles(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{
		"train-images-idx3-ubyte.gz": gzipped(idxImages(4, 28, 28)),
		"train-labels-idx1-ubyte.gz": gzipped(idxLabels(9, 8, 7, 6)),
		"t10k-images-idx3-ubyte":     idxImages(2, 28, 28),
		"t10k-labels-idx1-ubyte":     idxLabels(0, 1),
	})
	tests := []struct {
		name   string
		split  Split
		labels []int32
		class0 string
	}{
		{"mnist", Train, []int32{9, 8, 7, 6}, "0"},
		{"mnist", Test, []int32{0, 1}, "0"},
		{"fashion-mnist", Train, []int32{9, 8, 7, 6}, "T-shirt/top"},
		{"fashion-mnist", Test, []int32{0, 1}, "T-shirt/top"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.split.String(), func(t *testing.T) {
			ds, err := Load(tt.name, dir, tt.split, 0)
			if err != nil {
				t.Fatal(err)
			}
			checkDataset(t, ds)
			if ds.Name != tt.name || !slices.Equal(ds.Labels, tt.labels) || ds.ClassNames[0] != tt.class0 {
				t.Errorf("got name %q labels %v class 0 %q, want %q %v %q", ds.Name, ds.Labels, ds.ClassNames[0], tt.name, tt.labels, tt.class0)
			}
			if got, want := ds.Image(1)[28*5+6], idxPixel(1, 5, 6); got != want {
				t.Errorf("image 1 pixel (5,6) = %d, want %d", got, want)
			}
		})
	}
}

func TestLoadIDXErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string][]byte
		want  string
	}{
		{
			"missing labels",
			map[string][]byte{"train-images-idx3-ubyte": idxImages(1, 2, 2)},
			"has neither train-labels-idx1-ubyte nor train-labels-idx1-ubyte.gz",
		},
		{
			"count mismatch",
			map[string][]byte{
				"train-images-idx3-ubyte": idxImages(1, 2, 2),
				"train-labels-idx1-ubyte": idxLabels(1, 2),
			},
			"train-labels-idx1-ubyte: 2 labels but",
		},
		{
			"truncated images",
			map[string][]byte{
				"train-images-idx3-ubyte": idxImages(1, 2, 2)[:18],
				"train-labels-idx1-ubyte": idxLabels(1),
			},
			"train-images-idx3-ubyte: truncated pixel data",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			_, err := Load("mnist", dir, Train, 0)
			wantError(t, err, tt.want)
		})
	}
}
