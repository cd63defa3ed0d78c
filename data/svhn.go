package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/qmulgpu/qmulgpu/internal/clip"
)

// SVHN cropped digits are 32x32 RGB images in ten classes.
const (
	svhnSide    = 32
	svhnPixels  = svhnSide * svhnSide * 3
	svhnClasses = 10
)

// loadSVHN loads split of SVHN cropped digits from dir.
func loadSVHN(dir string, split Split) (*Dataset, error) {
	path := filepath.Join(dir, split.String()+"_32x32.mat")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("svhn: %w", err)
	}
	vars, err := ParseMAT(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ds, err := svhnFromMAT(vars)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ds, nil
}

// svhnFromMAT builds an SVHN data set from the variables of a MAT file: X,
// a uint8 array of size 32x32x3xN holding the images, and y, N labels from
// 1 to 10, where 10 stands for the digit 0.
func svhnFromMAT(vars map[string]*MatArray) (*Dataset, error) {
	x, y := vars["X"], vars["y"]
	if x == nil || y == nil {
		return nil, errors.New("wrong shape: want variables X and y")
	}
	if x.Class != "uint8" {
		return nil, fmt.Errorf("X: class %s, want uint8", x.Class)
	}
	// MATLAB drops trailing singleton dimensions, so one image is 32x32x3.
	dims := x.Dims
	if len(dims) == 3 {
		dims = append(slices.Clip(dims), 1)
	}
	if len(dims) != 4 || dims[0] != svhnSide || dims[1] != svhnSide || dims[2] != 3 || dims[3] == 0 {
		return nil, fmt.Errorf("X: wrong shape %s, want [32 32 3 N] with N > 0", clip.Shape(x.Dims))
	}
	n := dims[3]
	if y.Len() != n || len(y.Dims) != 2 || (y.Dims[0] != 1 && y.Dims[1] != 1) {
		return nil, fmt.Errorf("y: wrong shape %s, want [%d 1] for %d images", clip.Shape(y.Dims), n, n)
	}
	labels := make([]int32, n)
	for i := range labels {
		v := y.Value(i)
		if v < 1 || v > svhnClasses || v != float64(int(v)) {
			return nil, fmt.Errorf("y: label %v at index %d out of range [1, %d]", v, i, svhnClasses)
		}
		labels[i] = int32(v) % svhnClasses
	}
	return &Dataset{
		Name:       "svhn",
		Images:     columnMajorToNHWC(x.Uint8, n),
		Labels:     labels,
		N:          n,
		H:          svhnSide,
		W:          svhnSide,
		C:          3,
		Classes:    svhnClasses,
		ClassNames: digitNames(svhnClasses),
	}, nil
}

// columnMajorToNHWC converts n 32x32x3 images from MATLAB's column-major
// order, where X(h,w,c,i) is at h + 32*(w + 32*(c + 3*i)), to NHWC order.
// It writes each image sequentially, reading its three colour planes
// (which fit in the L1 cache) with a stride of 32.
func columnMajorToNHWC(x []uint8, n int) []uint8 {
	const plane = svhnSide * svhnSide
	out := make([]uint8, n*svhnPixels)
	for i := range n {
		src := x[i*svhnPixels : (i+1)*svhnPixels]
		r, g, b := src[:plane], src[plane:2*plane], src[2*plane:3*plane]
		dst := out[i*svhnPixels : (i+1)*svhnPixels]
		k := 0
		for h := range svhnSide {
			for w := range svhnSide {
				p := w*svhnSide + h
				d := dst[k : k+3 : k+3]
				d[0], d[1], d[2] = r[p], g[p], b[p]
				k += 3
			}
		}
	}
	return out
}
