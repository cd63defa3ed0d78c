package data

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkSVHNConvert measures the column-major to NHWC conversion of a
// full SVHN training set (73257 images).
func BenchmarkSVHNConvert(b *testing.B) {
	const n = 73257
	x := make([]uint8, n*svhnPixels)
	for i := range x {
		x[i] = uint8(i)
	}
	b.SetBytes(int64(len(x)))
	for b.Loop() {
		columnMajorToNHWC(x, n)
	}
}

// BenchmarkLoadFashionMNIST measures loading the 60000 Fashion-MNIST
// training images.
func BenchmarkLoadFashionMNIST(b *testing.B) {
	if _, err := os.Stat(filepath.Join(fashionMNISTDir, "train-images-idx3-ubyte.gz")); err != nil {
		b.Skipf("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): %v", err)
	}
	for b.Loop() {
		if _, err := Load("fashion-mnist", fashionMNISTDir, Train, 0); err != nil {
			b.Fatal(err)
		}
	}
}
