// Package data loads image classification data sets into memory.
//
// Supported sets are MNIST and Fashion-MNIST (IDX files), CIFAR-10 and
// CIFAR-100 (binary versions), SVHN cropped digits (MATLAB level-5 .mat
// files) and folders of PNG or JPEG images arranged by class, including the
// Tiny-ImageNet archive as distributed. Every set is
// read from local files: nothing is ever downloaded. [Locate] describes
// where the files are looked for.
//
// Images are held as uint8 pixels in NHWC order, which is the layout the
// rest of qmulgpu expects.
package data

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Dataset is an in-memory image classification set: uint8 pixels in NHWC
// order.
type Dataset struct {
	// Name is the data set's name, e.g. "fashion-mnist" or "cifar10".
	// The parsers leave it empty; Load sets it.
	Name string
	// Images holds N*H*W*C pixels, row-major [N][H][W][C].
	Images []uint8
	// Labels holds N labels in [0, Classes).
	Labels []int32
	// N is the number of images, H, W and C the height, width and number
	// of channels of each.
	N, H, W, C int
	// Classes is the number of classes.
	Classes int
	// ClassNames names each class; its length is Classes.
	ClassNames []string
}

// Image returns the i-th image's H*W*C bytes. The result aliases d.Images.
func (d *Dataset) Image(i int) []uint8 {
	size := d.H * d.W * d.C
	return d.Images[i*size : (i+1)*size : (i+1)*size]
}

// Subset returns a new Dataset holding copies of the images and labels
// selected by idx, in idx order. Indices may repeat. Subset panics if an
// index is out of range.
func (d *Dataset) Subset(idx []int) *Dataset {
	size := d.H * d.W * d.C
	s := &Dataset{
		Name:       d.Name,
		Images:     make([]uint8, len(idx)*size),
		Labels:     make([]int32, len(idx)),
		N:          len(idx),
		H:          d.H,
		W:          d.W,
		C:          d.C,
		Classes:    d.Classes,
		ClassNames: d.ClassNames,
	}
	for j, i := range idx {
		copy(s.Images[j*size:(j+1)*size], d.Image(i))
		s.Labels[j] = d.Labels[i]
	}
	return s
}

// ClassCounts returns the number of images of each class, indexed by label.
func (d *Dataset) ClassCounts() []int {
	counts := make([]int, d.Classes)
	for _, l := range d.Labels {
		counts[l]++
	}
	return counts
}

// Split selects the training or the test part of a data set.
type Split int

// The splits of a data set.
const (
	Train Split = iota
	Test
)

// String returns "train" or "test".
func (s Split) String() string {
	switch s {
	case Train:
		return "train"
	case Test:
		return "test"
	}
	return "Split(" + strconv.Itoa(int(s)) + ")"
}

// Names lists the supported data set names: "mnist", "fashion-mnist",
// "cifar10", "cifar100", "svhn" and "folder".
func Names() []string {
	names := make([]string, len(sets))
	for i, s := range sets {
		names[i] = s.name
	}
	return names
}

// Classes returns the number of classes of the named data set without
// loading it: a constant for the built-in sets, and for "folder" the
// number of class directories under train/ where [Locate] finds it.
func Classes(name, dir string) (int, error) {
	set, ok := lookup(name)
	switch {
	case !ok:
		return 0, unknownName(name)
	case set.classes > 0:
		return set.classes, nil
	}
	root, err := Locate(name, dir)
	if err != nil {
		return 0, err
	}
	classes, err := subdirs(filepath.Join(root, "train"))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return len(classes), nil
}

// defaultFolderSize is the side length folder images are resized to when
// Load is given size 0.
const defaultFolderSize = 32

// Load finds and loads split of the named data set. dir is the --data flag
// and may be empty; see [Locate] for how the files are found. For "folder",
// size is the side length images are resized to (they become square); 0
// means 32. size is ignored for the other sets.
//
// The result's Name is name. Its classes are named "0" to "9" for "mnist"
// and "svhn" (whose label 10 becomes 0), by the Fashion-MNIST garment
// names, by the CIFAR class names (read from batches.meta.txt or
// fine_label_names.txt where present), or by the class directories of a
// folder.
func Load(name, dir string, split Split, size int) (*Dataset, error) {
	if split != Train && split != Test {
		return nil, fmt.Errorf("%s: invalid split %v", name, split)
	}
	if name == "folder" {
		if size == 0 {
			size = defaultFolderSize
		}
		if size < 0 || size > maxFolderSize {
			return nil, fmt.Errorf("folder: image size %d out of range [1, %d]", size, maxFolderSize)
		}
	}
	root, err := Locate(name, dir)
	if err != nil {
		return nil, err
	}
	set, _ := lookup(name) // Locate refused unknown names.
	return set.load(root, split, size)
}

// Stats returns the per-channel normalisation constants of the named data
// set: the mean and standard deviation of its training pixels, in [0,1]
// pixel units. For "folder" they are the usual ImageNet constants. For an
// unknown name both results are nil. Each call returns fresh slices.
func Stats(name string) (mean, std []float32) {
	set, ok := lookup(name)
	if !ok {
		return nil, nil
	}
	return append([]float32(nil), set.mean...), append([]float32(nil), set.std...)
}

// Augmentation describes the default training augmentation of a data set:
// a random crop after zero padding each side by Pad pixels (0 means no
// crop) and, if Flip is set, a random horizontal flip.
type Augmentation struct {
	Pad  int
	Flip bool
}

// DefaultAugmentation returns the usual training augmentation for the named
// data set: padded random crops and flips for natural images ("cifar10",
// "cifar100", "folder") and none for digits and clothing ("mnist",
// "fashion-mnist", "svhn", and unknown names).
func DefaultAugmentation(name string) Augmentation {
	set, _ := lookup(name)
	return set.aug
}

// digitNames returns the class names "0" to "n-1".
func digitNames(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}

// unknownName returns the error for an unsupported data set name.
func unknownName(name string) error {
	return fmt.Errorf("%q: unknown data set (supported: %s)", name, strings.Join(Names(), ", "))
}

// AugmentationNames lists the values ParseAugmentation accepts.
func AugmentationNames() []string { return []string{"auto", "none", "crop", "flip", "crop+flip"} }

// ParseAugmentation reads an augmentation name: "auto" (the data set's
// usual, DefaultAugmentation), "none", "crop" (4-pixel padding), "flip" or
// "crop+flip".
func ParseAugmentation(name, dataset string) (Augmentation, error) {
	switch name {
	case "auto":
		return DefaultAugmentation(dataset), nil
	case "none":
		return Augmentation{}, nil
	case "crop":
		return Augmentation{Pad: 4}, nil
	case "flip":
		return Augmentation{Flip: true}, nil
	case "crop+flip":
		return Augmentation{Pad: 4, Flip: true}, nil
	}
	return Augmentation{}, fmt.Errorf("augmentation %q: want %s", name, strings.Join(AugmentationNames(), ", "))
}
